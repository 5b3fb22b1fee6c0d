"""Worked example end to end: a COCO-format dataset in a 14-joint CrowdPose-order layout (neither COCO-17
nor MPII-16: other count, names and flip pairs), trained a few steps, scored by COCOeval with the layout's
sigmas, then predict and ONNX export.

SynthPose (4 train / 2 val images) relabelled by ``fasterpose data synthpose --layout crowdpose14``;
ResNet-18 cut at stride 16, 64x64 input, one thread.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fasterpose.cli import main as cli_main
from fasterpose.config import Config, load_config
from fasterpose.deploy.export import export_model
from fasterpose.deploy.metadata import read_metadata
from fasterpose.deploy.predictor import Predictor
from fasterpose.engine.checkpoint import load_checkpoint, load_model_from_checkpoint
from fasterpose.engine.train import train
from fasterpose.keypoints import DEFAULT_SIGMA
from fasterpose.pipeline.evaluate import build_eval_set, oracle_predictions, score_predictions

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "custom_keypoints_crowdpose14.yaml"
LAYOUT = REPO / "configs" / "layouts" / "synthpose_crowdpose14.yaml"
SIGMAS = [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth14")
    argv = [
        "data",
        "synthpose",
        "--out",
        str(root),
        "--train",
        "4",
        "--val",
        "2",
        "--seed",
        "3",
        "--layout",
        "crowdpose14",
        "--set",
        "min_people=2",
        "--set",
        "max_people=2",
    ]
    assert cli_main(argv) == 0
    return root


def example_config(root: Path, out: Path) -> Config:
    """The shipped example config, shrunk: 64x64 input, 16x16 maps, 1 epoch, half-body always on."""
    return load_config(
        CONFIG,
        [
            f"data.root={root}",
            "data.input_size=[64,64]",
            "data.heatmap_size=[16,16]",
            "data.sigma=1.0",
            "data.augment.half_body_prob=1.0",
            "data.augment.half_body_min_joints=3",
            "data.use_joint_weights=true",
            "train.epochs=1",
            "train.batch_size=4",
            "train.eval_every=0",
            "train.device=cpu",
            "train.amp=false",
            "train.cpu_amp=false",
            "train.warmup_iters=0",
            "train.max_minutes=null",
            f"train.out_dir={out}",
            "eval.batch_size=16",
            "eval.dark=false",
        ],
    )


def test_dataset_has_its_own_categories_entry(data_root: Path) -> None:
    data = json.loads((data_root / "annotations" / "person_keypoints_train.json").read_text())
    (cat,) = data["categories"]
    assert len(cat["keypoints"]) == 14 and cat["keypoints"][12:] == ["head", "neck"]
    assert min(min(pair) for pair in cat["skeleton"]) == 1  # COCO's 1-based skeleton
    assert all(len(a["keypoints"]) == 42 for a in data["annotations"])


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path]:
    out = tmp_path_factory.mktemp("run14")
    result = train(example_config(data_root, out), progress=False)
    assert result.status == "finished" and result.global_step >= 2
    return load_config(out / "config.yaml"), out / "last.pth"


def test_train_writes_the_layout_and_a_14_joint_model(trained: tuple[Config, Path]) -> None:
    cfg, ckpt = trained
    assert cfg.model.num_keypoints == 14 and cfg.data.layout is not None
    layout = cfg.data.layout
    assert layout.keypoints[12:] == ("head", "neck") and layout.sigmas == tuple(SIGMAS)
    assert ("head", "neck") in layout.skeleton and len(layout.skeleton) == 14  # from the categories entry
    assert ("left_shoulder", "right_shoulder") in (layout.flip_pairs or ())
    assert load_checkpoint(ckpt)["config"]["data"]["layout"]["name"] == "synthpose_crowdpose14"
    model, _ = load_model_from_checkpoint(ckpt)
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 64, 64)).shape) == (1, 14, 16, 16)


def _pycocotools_ap(ann: Path, results: list[dict[str, Any]], sigmas: list[float]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_eval_uses_the_layout_sigmas(trained: tuple[Config, Path], data_root: Path, tmp_path: Path) -> None:
    """The trained model and shifted ground truth scored with COCOeval: AP equals pycocotools run with the
    layout's 14 sigmas, and not the one with the default sigmas."""
    cfg, ckpt = trained
    model, _ = load_model_from_checkpoint(ckpt)
    from fasterpose.pipeline.evaluate import evaluate_on_dataset

    metrics = evaluate_on_dataset(
        model, cfg, build_eval_set(cfg, "val"), tmp_path / "model", progress=False, device="cpu"
    ).metrics
    assert 0.0 <= metrics["AP"] <= 1.0
    eval_set = build_eval_set(cfg)
    oracle = oracle_predictions(cfg, eval_set)
    # shift joint j by (j % 5) * 2 px: OKS spread over COCOeval's thresholds, so AP depends on the sigmas
    shift = (np.arange(14) % 5 * 2.0)[:, None]
    moved = [dataclasses.replace(p, keypoints=p.keypoints + np.hstack([shift, 0 * shift, 0 * shift])) for p in oracle]
    metrics, _ = score_predictions(moved, cfg, eval_set, tmp_path)
    results = json.loads((tmp_path / "results_val_gt.json").read_text())
    assert len(results[0]["keypoints"]) == 42
    ann = data_root / "annotations" / "person_keypoints_val.json"
    assert 0.2 < metrics["AP"] < 0.95
    assert metrics["AP"] == pytest.approx(_pycocotools_ap(ann, results, SIGMAS), abs=1e-12)
    assert abs(metrics["AP"] - _pycocotools_ap(ann, results, [DEFAULT_SIGMA] * 14)) > 0.02


def test_predict_and_onnx_export(trained: tuple[Config, Path], data_root: Path, tmp_path: Path) -> None:
    cfg, ckpt = trained
    model, _ = load_model_from_checkpoint(ckpt)
    onnx_path = export_model(model, cfg, tmp_path / "m14.onnx", "onnx")
    file_cfg, _ = read_metadata(onnx_path)
    assert file_cfg is not None and file_cfg.data.layout == cfg.data.layout
    image = sorted((data_root / "val").glob("*.jpg"))[0]
    box = [[4.0, 4.0, 100.0, 150.0]]
    torch_pose = Predictor(ckpt, runtime="torch", flip_test=True)(image, box)[0]
    onnx_pred = Predictor(onnx_path, runtime="onnxruntime", flip_test=True)
    assert onnx_pred.spec.num_keypoints == 14 and onnx_pred.spec.source == "config data.layout"
    assert onnx_pred.spec.flip_pairs == ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11))
    onnx_pose = onnx_pred(image, box)[0]
    assert onnx_pose.keypoints.shape == (14, 3) and onnx_pose.xy.shape == (14, 2)
    np.testing.assert_allclose(onnx_pose.xy, torch_pose.xy, atol=0.05)
    out_json = tmp_path / "pred.json"
    argv = [
        "predict",
        str(image),
        "--checkpoint",
        str(onnx_path),
        "--whole-image",
        "--out",
        str(tmp_path / "drawn"),
        "--json",
        str(out_json),
        "--threshold",
        "0",
    ]
    assert cli_main(argv) == 0
    (entry,) = json.loads(out_json.read_text())
    assert len(entry["keypoints"]) == 42
    assert len(list((tmp_path / "drawn").iterdir())) == 1
