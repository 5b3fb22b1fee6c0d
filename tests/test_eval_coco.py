"""CocoEvaluator and ``fasterpose eval-results`` against pycocotools run directly."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fasterpose.cli import main
from fasterpose.evaluation.coco import STAT_NAMES, CocoEvaluator
from fasterpose.evaluation.predictions import PosePrediction

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VAL_ANN = DATA / "coco_mini" / "annotations" / "person_keypoints_val2017_mini.json"


def require_val() -> Path:
    if not VAL_ANN.is_file():
        pytest.skip(f"real data not found at {VAL_ANN}")
    return VAL_ANN


def imperfect_results(ann: Path, seed: int = 0) -> list[dict]:
    """GT-derived results with perturbed joints, missing people, duplicates and a false positive."""
    rng = np.random.default_rng(seed)
    data = json.loads(ann.read_text())
    results = []
    for a in data["annotations"]:
        if a["num_keypoints"] == 0 or a["iscrowd"]:
            continue
        if rng.uniform() < 0.2:
            continue  # missed person
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        scale = np.sqrt(max(a["area"], 1.0))
        kp[:, :2] += rng.normal(0, 0.05 * scale, size=(17, 2))
        kp[:, 2] = rng.uniform(0.1, 1.0, size=17)
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.reshape(-1).tolist(),
                "score": float(rng.uniform(0.2, 1.0)),
            }
        )
        if rng.uniform() < 0.3:  # duplicate, slightly moved, lower score
            dup = kp.copy()
            dup[:, :2] += rng.normal(0, 2.0, size=(17, 2))
            results.append(
                {
                    "image_id": a["image_id"],
                    "category_id": 1,
                    "keypoints": dup.reshape(-1).tolist(),
                    "score": float(rng.uniform(0.0, 0.2)),
                }
            )
    fp = np.zeros((17, 3))
    fp[:, :2] = rng.uniform(0, 300, size=(17, 2))
    fp[:, 2] = 0.5
    results.append(
        {"image_id": data["images"][0]["id"], "category_id": 1, "keypoints": fp.reshape(-1).tolist(), "score": 0.9}
    )
    return results


def pycocotools_directly(ann: Path, res: Path) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        dt = gt.loadRes(str(res))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.useSegm = None
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def test_eval_results_cli_equals_pycocotools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann = require_val()
    res = tmp_path / "results.json"
    res.write_text(json.dumps(imperfect_results(ann)))
    expected = pycocotools_directly(ann, res)
    assert 0.2 < expected[0] < 0.95  # the file is genuinely imperfect
    assert main(["eval-results", str(res), "--ann", str(ann), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    got = json.loads(last)
    assert list(got) == list(STAT_NAMES)
    np.testing.assert_allclose([got[k] for k in STAT_NAMES], expected, rtol=0, atol=1e-9)


def test_evaluator_accepts_predictions_and_ground_truth_scores_one(tmp_path: Path) -> None:
    ann = require_val()
    data = json.loads(ann.read_text())
    preds = [
        PosePrediction(image_id=a["image_id"], keypoints=np.asarray(a["keypoints"], float).reshape(17, 3), score=1.0)
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]
    ev = CocoEvaluator(ann)
    ev.process(preds)
    stats = ev.evaluate()
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    ev.write_results(tmp_path / "r.json")
    assert len(json.loads((tmp_path / "r.json").read_text())) == len(preds)
    ev.reset()
    assert ev.evaluate() == dict.fromkeys(STAT_NAMES, 0.0)


def test_evaluator_errors_are_clear(tmp_path: Path) -> None:
    ann = require_val()
    ev = CocoEvaluator(ann)
    with pytest.raises(ValueError, match="keypoint values"):
        ev.process([{"image_id": 785, "keypoints": [0.0] * 10, "score": 1.0}])
    with pytest.raises(ValueError, match="image_id 123456789 is absent from the ground truth"):
        ev.process([{"image_id": 123456789, "keypoints": [0.0] * 51, "score": 1.0}])
    with pytest.raises(FileNotFoundError, match="not found"):
        CocoEvaluator(tmp_path / "missing.json")
