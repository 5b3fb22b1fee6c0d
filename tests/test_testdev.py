"""COCO test-dev: ``eval --split test-dev`` on a generated image-info file (images, no annotations) and a
detections file writes the server's results file (one entry per kept person), without scoring."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from fasterpose.cli import main as cli_main
from fasterpose.config import apply_overrides, config_from_dict, dump_config
from fasterpose.data.synthpose import generate
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.testdev import results_file_name, server_entries, write_server_results
from fasterpose.keypoints import COCO_17
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import save_weights
from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset
from fasterpose.pipeline.topdown import postprocess


@pytest.fixture(scope="module")
def testdev(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """SynthPose val images as a test split: an image-info file, detections (GT boxes, each twice, the second a
    lower-scored duplicate, a low-score box, a non-person box), one image without any detection; a tiny model."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("testdev")
    generate(root, 0, 3, seed=2, min_people=1, max_people=2)
    val = json.loads((root / "annotations" / "person_keypoints_val.json").read_text())
    info = {k: v for k, v in val.items() if k != "annotations"}  # like image_info_test-dev2017.json
    (root / "annotations" / "image_info_test.json").write_text(json.dumps(info))
    last = max(img["id"] for img in val["images"])
    dets = []
    for a in val["annotations"]:
        if a["image_id"] == last:
            continue  # an image the detector found nobody in
        x, y, w, h = a["bbox"]
        dets += [
            {"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": 0.9},
            {"image_id": a["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": 0.8},
            {"image_id": a["image_id"], "category_id": 3, "bbox": [x, y, w, h], "score": 0.9},
        ]
    dets.append({"image_id": val["images"][0]["id"], "category_id": 1, "bbox": [1, 1, 20, 30], "score": 0.05})
    (root / "dets.json").write_text(json.dumps(dets))
    cfg = config_from_dict(
        {
            "name": "tiny fp/r18",
            "model": {"backbone": "resnet18", "pretrained": False, "feature_index": -2},
            "data": {
                "dataset": "coco",
                "root": str(root),
                "test_ann": "annotations/image_info_test.json",
                "test_images": "val",
                "test_det_file": "dets.json",
                "det_score_threshold": 0.1,
                "input_size": [64, 64],
                "heatmap_size": [16, 16],
                "sigma": 1.0,
                "num_workers": 0,
            },
            "eval": {"batch_size": 8},
        }
    )
    torch.manual_seed(0)
    weights = save_weights(PoseModel.from_config(cfg), cfg, root / "model.safetensors")
    config = root / "test.yaml"
    dump_config(cfg, config)
    people = sum(1 for a in val["annotations"] if a["image_id"] != last)
    return {"root": root, "cfg": cfg, "config": config, "weights": weights, "people": people, "info": info}


def test_results_file_in_the_server_format(
    testdev: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "eval",
        str(testdev["config"]),
        "--checkpoint",
        str(testdev["weights"]),
        "--split",
        "test-dev",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert cli_main(argv) == 0
    path = tmp_path / "person_keypoints_test-dev2017_tiny-fp-r18_results.json"
    results = json.loads(path.read_text())
    info_ids = {img["id"] for img in testdev["info"]["images"]}
    assert all(tuple(r) == ("image_id", "category_id", "keypoints", "score") for r in results)
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and r["image_id"] in info_ids for r in results)
    # one entry per kept person: the library's own rescoring + OKS-NMS over the same boxes
    model = PoseModel.from_config(apply_overrides(testdev["cfg"], [f"model.weights={testdev['weights']}"]))
    cfg = testdev["cfg"]
    eval_set = build_eval_set(cfg, "test-dev", use_gt_boxes=False)
    preds = evaluate_on_dataset(model, cfg, eval_set, tmp_path / "library", progress=False, device="cpu").predictions
    assert len(preds) == 2 * testdev["people"]  # low-score and non-person boxes dropped
    kept = postprocess(preds, COCO_17, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
    assert len(results) == len(kept) < len(preds)  # the duplicate boxes went to OKS-NMS
    np.testing.assert_allclose(
        [r["keypoints"] for r in results], [k.keypoints.reshape(-1) for k in kept], atol=1e-3, rtol=0
    )
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reads it as a keypoint results file
        gt = COCO(str(testdev["root"] / "annotations" / "image_info_test.json"))
        assert len(gt.loadRes(str(path)).getAnnIds()) == len(results)
    capsys.readouterr()
    assert cli_main(argv) == 1  # an earlier results file is never replaced
    assert "exists: remove it or write the results elsewhere" in capsys.readouterr().err


def test_entries_are_checked(tmp_path: Path) -> None:
    good = PosePrediction(image_id=5, keypoints=np.ones((17, 3), np.float32), score=0.5)
    assert server_entries([good], 17, [5])[0]["keypoints"][:3] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="image_id 5 is not in the image-info file"):
        server_entries([good], 17, [6])
    with pytest.raises(ValueError, match="51 keypoint values, expected 42"):
        server_entries([good], 14)
    bad = PosePrediction(image_id=5, keypoints=np.full((17, 3), np.nan, np.float32), score=0.5)
    with pytest.raises(ValueError, match="not finite"):
        server_entries([bad], 17)
    with pytest.raises(ValueError, match="no people to submit"):
        write_server_results([], tmp_path / "r.json")
    assert (
        results_file_name("FasterPose R50/256x192")
        == "person_keypoints_test-dev2017_FasterPose-R50-256x192_results.json"
    )


def test_missing_test_dev_paths_are_named(testdev: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = apply_overrides(testdev["cfg"], ["data.test_det_file=null"])
    with pytest.raises(ValueError, match=r"split test-dev needs .* data.test_det_file"):
        build_eval_set(cfg, "test-dev", use_gt_boxes=False)
    assert cli_main(["eval", str(testdev["config"]), "--oracle", "--split", "test-dev"]) == 1
    assert "--oracle needs ground truth" in capsys.readouterr().err
