"""Scores that cannot be silently wrong: results, ground truth and detections are validated first.

Every case runs on tiny generated files (no real data needed) through the command line or the
evaluator that ``eval`` and the training loop use; each asserts the error names the file, the
entry and the problem, or that the score equals the one of a clean equivalent.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fasterpose.cli import main
from fasterpose.data import AnnotationError, DataError, PersonRecord, parse_coco_detections, parse_mpii
from fasterpose.evaluation import CocoEvaluator, PckhEvaluator, PosePrediction, ResultsError
from fasterpose.keypoints import MPII_16


def make_gt(person_id: int = 1, people: int = 6, seed: int = 0) -> dict[str, Any]:
    """Two 200x160 images, ``people`` labelled persons of category ``person_id``."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 160} for i in (1, 2)]
    anns = []
    for n in range(people):
        x, y = rng.uniform(10, 120), rng.uniform(10, 80)
        kp = np.zeros((17, 3))
        kp[:, 0] = x + rng.uniform(0, 60, 17)
        kp[:, 1] = y + rng.uniform(0, 70, 17)
        kp[:, 2] = 2
        kp[n % 17, :] = 0  # one unlabelled joint
        anns.append(
            {
                "id": 100 + n,
                "image_id": 1 + n % 2,
                "category_id": person_id,
                "iscrowd": 0,
                "bbox": [x, y, 60.0, 70.0],
                "area": 3000.0 + 100 * n,
                "keypoints": kp.reshape(-1).round(2).tolist(),
                "num_keypoints": 16,
            }
        )
    cat = {"id": person_id, "name": "person", "supercategory": "person", "keypoints": [f"k{j}" for j in range(17)]}
    return {"images": images, "annotations": anns, "categories": [cat]}


def make_results(gt: dict[str, Any], seed: int = 1, category: bool = True) -> list[dict[str, Any]]:
    """GT-derived results with noise, scores in (0.2, 1), so AP is high but below 1."""
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        kp[:, :2] += rng.normal(0, 4.0, (17, 2))
        kp[:, 2] = rng.uniform(0.3, 1.0, 17)
        entry = {"image_id": a["image_id"], "keypoints": kp.reshape(-1).tolist(), "score": float(rng.uniform(0.2, 1))}
        if category:
            entry["category_id"] = a["category_id"]
        out.append(entry)
    return out


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def eval_results(tmp_path: Path, gt: object, results: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    ann = write(tmp_path / "gt.json", gt)
    res = write(tmp_path / "res.json", results)
    rc = main(["eval-results", str(res), "--ann", str(ann), "--json"])
    out = capsys.readouterr()
    return rc, out.out + out.err


def ap_of(out: str) -> float:
    return float(json.loads(out.strip().splitlines()[-1])["AP"])


# ----------------------------------------------------------------------------- results
def test_all_nan_keypoints_are_an_error_never_ap_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = make_gt()
    results = make_results(gt)
    for r in results:
        r["keypoints"] = [math.nan] * 51
    rc, out = eval_results(tmp_path, gt, results, capsys)
    assert rc == 1
    assert "res.json: result [0] (image 1): keypoint[0] is nan (not a finite number)" in out
    assert '"AP"' not in out  # no score printed at all


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("keypoints", "inf", "keypoint[3] is inf (not a finite number)"),
        ("keypoints", "str", "keypoint[3] is '12.5' (not a number)"),
        ("keypoints", "short", "expected 51 keypoint values, got 48"),
        ("score", math.nan, "score is nan, not a finite number"),
        ("score", "0.9", "score is '0.9', not a finite number"),
        ("image_id", "1", "image_id must be an integer, got '1'"),
        ("image_id", 99, "image_id 99 is absent from the ground truth"),
        ("category_id", 3, "category_id 3 is absent from the ground truth"),
    ],
)
def test_bad_result_entries_name_file_entry_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object, message: str
) -> None:
    gt = make_gt()
    results = make_results(gt)
    entry = results[2]
    if field == "keypoints":
        kp = entry["keypoints"]
        entry["keypoints"] = {"inf": kp[:3] + [math.inf] + kp[4:], "str": kp[:3] + ["12.5"] + kp[4:], "short": kp[:48]}[
            value  # type: ignore[index]
        ]
    else:
        entry[field] = value
    rc, out = eval_results(tmp_path, gt, results, capsys)
    assert rc == 1
    assert f"res.json: result [2] (image {entry['image_id']!r}): {message}" in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1  # one line, no traceback


def test_person_category_id_seven_scores_as_id_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt1, gt7 = make_gt(person_id=1), make_gt(person_id=7)
    results = make_results(gt1, category=False)  # no category_id: the person, whatever its id
    rc, out = eval_results(tmp_path, gt1, results, capsys)
    assert rc == 0
    ap1 = ap_of(out)
    assert 0.3 < ap1 < 1.0  # a real, imperfect score
    rc, out = eval_results(tmp_path, gt7, results, capsys)
    assert rc == 0 and ap_of(out) == pytest.approx(ap1, abs=1e-12)
    # results that carry the GT's own category id score the same
    rc, out = eval_results(tmp_path, gt7, make_results(gt7), capsys)
    assert rc == 0 and ap_of(out) == pytest.approx(ap1, abs=1e-12)
    # the evaluator fed predictions (the eval / training path) labels them with the person id too
    ev = CocoEvaluator(write(tmp_path / "gt7.json", gt7))
    ev.process(PosePrediction(r["image_id"], np.asarray(r["keypoints"]).reshape(17, 3), r["score"]) for r in results)
    assert ev.evaluate()["AP"] == pytest.approx(ap1, abs=1e-12)


def test_other_keypoint_categories_are_excluded_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    gt = make_gt()
    rc, out = eval_results(tmp_path, gt, make_results(gt), capsys)
    clean_ap = ap_of(out)
    mixed = copy.deepcopy(gt)
    mixed["categories"].append({"id": 2, "name": "dog", "keypoints": [f"d{j}" for j in range(17)]})
    for a in copy.deepcopy(gt["annotations"][:2]):
        mixed["annotations"].append({**a, "id": a["id"] + 1000, "category_id": 2})
    results = make_results(gt)
    results.append({**results[0], "category_id": 2})
    with caplog.at_level(logging.WARNING):
        rc, out = eval_results(tmp_path, mixed, results, capsys)
    assert rc == 0 and ap_of(out) == pytest.approx(clean_ap, abs=1e-12)  # not averaged with the dog
    assert "categories ['dog'] also have keypoints; only the person (id 1) is scored" in caplog.text
    assert "1 results of other categories are not scored" in caplog.text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: g["annotations"][3].update(id=100), "annotations[3] (id 100, image 2): duplicate annotation id 100"),
        (lambda g: g["annotations"][1].update(id="101"), "annotations[1] (id '101', image 2): id must be an integer"),
        (lambda g: g["images"][0].update(id="1"), "images[0] (1.jpg): id must be an integer, got '1'"),
        (lambda g: g["annotations"][0].update(id=[100]), "annotations[0] (id [100], image 1): id must be an integer"),
        (lambda g: g["annotations"][0].update(image_id="1"), "image_id must be an integer, got '1'"),
        (lambda g: g["annotations"][2].update(area="3000"), "annotations[2] (id 102, image 1): area is '3000'"),
        (lambda g: g["annotations"][2]["keypoints"].__setitem__(4, math.nan), "keypoint[4] is nan"),
        (lambda g: g["annotations"][2].pop("num_keypoints"), "lacks 'num_keypoints'"),
        (lambda g: g.pop("categories"), "no 'categories' list"),
        (lambda g: g["categories"].append({"id": 9, "name": "person"}), "2 categories are named 'person'"),
    ],
)
def test_bad_ground_truth_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, message: str
) -> None:
    gt = make_gt()
    results = make_results(gt)
    mutate(gt)
    rc, out = eval_results(tmp_path, gt, results, capsys)
    assert rc == 1
    assert "gt.json" in out and message in out
    with pytest.raises(AnnotationError, match="gt.json"):
        CocoEvaluator(tmp_path / "gt.json")


# ----------------------------------------------------------------------------- detections
def _detections_setup(tmp_path: Path) -> tuple[Path, Path]:
    gt = make_gt()
    gt["images"].append({"id": 3, "file_name": "3.jpg", "width": 200, "height": 160})
    ann = write(tmp_path / "gt.json", gt)
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9} for _ in range(3)]
    return ann, write(tmp_path / "dets.json", dets)


@pytest.mark.parametrize(
    ("value", "message"),
    [("0.9", "score is '0.9', not a finite number"), (math.nan, "score is nan"), (math.inf, "score is inf")],
)
def test_detection_scores_must_be_finite_numbers(tmp_path: Path, value: object, message: str) -> None:
    ann, det_file = _detections_setup(tmp_path)
    dets = json.loads(det_file.read_text())
    dets[1]["score"] = value
    write(det_file, dets)
    with pytest.raises(AnnotationError, match=rf"dets\.json: detection \[1\]: {message}"):
        parse_coco_detections(det_file, ann, tmp_path)


def test_partial_detections_say_how_many_images_have_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann, det_file = _detections_setup(tmp_path)
    with caplog.at_level(logging.WARNING):
        records = parse_coco_detections(det_file, ann, tmp_path)
    assert len(records) == 3
    assert "dets.json: 2 of the 3 images in" in caplog.text and "have no person detection" in caplog.text


def test_detections_of_no_person_category_are_an_error(tmp_path: Path) -> None:
    ann, det_file = _detections_setup(tmp_path)
    write(det_file, [{**d, "category_id": 5} for d in json.loads(det_file.read_text())])
    with pytest.raises(AnnotationError, match=r"none of the 3 detections has the person category id 1"):
        parse_coco_detections(det_file, ann, tmp_path)


# ----------------------------------------------------------------------------- MPII
def _mpii_entry() -> dict[str, Any]:
    joints = [[100.0 + j, 50.0 + 2 * j] for j in range(16)]
    return {"image": "a.jpg", "center": [120.0, 80.0], "scale": 1.0, "joints": joints, "joints_vis": [1] * 16}


@pytest.mark.parametrize(
    ("joint", "message"), [(math.nan, "joint coordinate\\[10\\] is nan"), ("7", "joint coordinate\\[10\\] is '7'")]
)
def test_mpii_nan_or_string_joints_are_rejected(tmp_path: Path, joint: object, message: str) -> None:
    entry = _mpii_entry()
    entry["joints"][5][0] = joint
    ann = write(tmp_path / "mpii.json", [_mpii_entry(), entry])
    with pytest.raises(AnnotationError, match=rf"mpii\.json: entry \[1\]: joints: {message}"):
        parse_mpii(ann, tmp_path)


def test_pckh_rejects_non_finite_predictions(tmp_path: Path) -> None:
    kp = np.zeros((16, 3), np.float32)
    kp[:, :2] = np.arange(32).reshape(16, 2)
    kp[:, 2] = 1
    record = PersonRecord("img.jpg", 0, np.array([0, 0, 50, 50], np.float32), kp, head_size=10.0)
    ev = PckhEvaluator([record], MPII_16)
    bad = kp.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ResultsError, match=r"record 0 \(img\.jpg\): joint 4 is \[nan, 9\.0\], not finite"):
        ev.process([PosePrediction(0, bad, 1.0, index=0)])
    ev.process([PosePrediction(0, kp, 1.0, index=0)])
    assert ev.evaluate()["Mean"] == pytest.approx(100.0)


def test_errors_are_data_errors() -> None:
    assert issubclass(ResultsError, DataError) and issubclass(AnnotationError, DataError)
    assert issubclass(DataError, ValueError)  # the CLI prints ValueError as one line
