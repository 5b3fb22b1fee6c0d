"""Annotation parsers: COCO ground truth (SimpleBaseline filter), detections, MPII, and bad JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import simple_keypoints, write_coco
from fasterpose.config import DataConfig
from fasterpose.data import (
    AnnotationError,
    build_records,
    parse_coco_detections,
    parse_coco_keypoints,
    parse_mpii,
)


def test_coco_filter_matches_simplebaseline(tmp_path: Path) -> None:
    kp = simple_keypoints()
    people = [
        {"bbox": [10, 10, 50, 60], "keypoints": kp},  # kept
        {"bbox": [10, 10, 50, 60], "keypoints": kp, "iscrowd": 1},  # crowd
        {"bbox": [10, 10, 50, 60], "keypoints": [0] * 51},  # no labelled joint
        {"bbox": [10, 10, 0, 60], "keypoints": kp},  # zero width
        {"bbox": [10, 10, 30, -5], "keypoints": kp},  # negative height
        {"bbox": [500, 10, 30, 30], "keypoints": kp},  # entirely right of the 160-px image
        {"bbox": [-20, -10, 100, 200], "keypoints": kp},  # clipped to the image
        {"bbox": [10, 10, 50, 60], "keypoints": kp, "category_id": 2},  # not a person
    ]
    ann, images = write_coco(tmp_path, people, image_size=(160, 120))
    records = parse_coco_keypoints(ann, images)
    assert [r.annotation_id for r in records] == [1, 7]
    np.testing.assert_allclose(records[0].box, [10, 10, 49, 59])  # SimpleBaseline's w - 1
    # the lineage adds w - 1 to the clipped x1: x2 = min(W - 1, max(0, x) + w - 1)
    np.testing.assert_allclose(records[1].box, [0, 0, 99, 119])
    r = records[0]
    assert r.keypoints.shape == (17, 3) and r.keypoints.dtype == np.float32
    assert r.image_path == str(images / "000000000001.jpg") and r.image_id == 1
    assert r.image_size == (160, 120) and r.box_score == 1.0


def test_coco_detections_threshold_and_bad_boxes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann, images = write_coco(tmp_path, [], num_images=2)
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.3},
        {"image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 20], "score": 0.95},  # zero width
        {"image_id": 2, "category_id": 3, "bbox": [5, 5, 20, 20], "score": 0.99},  # not a person
    ]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    with caplog.at_level(logging.WARNING):
        records = parse_coco_detections(det_file, ann, images, score_threshold=0.5)
    assert len(records) == 1
    assert records[0].box_score == pytest.approx(0.9) and not records[0].keypoints.any()
    assert "dets.json" in caplog.text and "zero or negative" in caplog.text
    assert len(parse_coco_detections(det_file, ann, images, score_threshold=0.0)) == 2


def test_detections_unknown_image_is_an_error(tmp_path: Path) -> None:
    ann, images = write_coco(tmp_path, [])
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps([{"image_id": 99, "bbox": [1, 2, 3, 4], "score": 1.0}]))
    with pytest.raises(AnnotationError, match=r"dets\.json.*image_id 99"):
        parse_coco_detections(det_file, ann, images)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"images": [], "annotations": [', r"malformed JSON at line 1 .*truncated"),
        ('{"images": [}', r"malformed JSON at line 1 column 13"),
        ("", r"empty"),
        ('{"annotations": []}', r"not a COCO annotation file"),
        ('{"images": [], "annotations": [{"id": 1}]}', r"annotations\[0\].*lacks"),
    ],
)
def test_malformed_json_names_file_and_problem(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=pattern) as info:
        parse_coco_keypoints(path, tmp_path)
    assert str(path) in str(info.value)


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="not found"):
        parse_coco_keypoints(tmp_path / "nope.json", tmp_path)


def test_wrong_keypoint_count(tmp_path: Path) -> None:
    ann, images = write_coco(tmp_path, [{"bbox": [1, 1, 20, 20], "keypoints": [1, 1, 2] * 5}])
    with pytest.raises(AnnotationError, match="expected 51 keypoint values, got 15"):
        parse_coco_keypoints(ann, images)


def _mpii_entry(image: str = "a.jpg", scale: float = 1.0) -> dict[str, object]:
    joints = [[100.0 + j, 50.0 + 2 * j] for j in range(16)]
    vis = [1] * 16
    vis[3] = 0
    joints[3] = [-1.0, -1.0]
    return {"image": image, "center": [120.0, 80.0], "scale": scale, "joints": joints, "joints_vis": vis}


def test_mpii_one_based_to_zero_based(tmp_path: Path) -> None:
    ann = tmp_path / "mpii.json"
    ann.write_text(json.dumps([_mpii_entry("a.jpg"), _mpii_entry("b.jpg"), _mpii_entry("a.jpg", 2.0)]))
    records = parse_mpii(ann, tmp_path / "images")
    r = records[0]
    np.testing.assert_allclose(r.keypoints[0], [99.0, 49.0, 1.0])  # 1-based -> 0-based
    np.testing.assert_allclose(r.keypoints[3], [0, 0, 0])  # unlabelled
    # square box of side scale*200 centred at (cx - 1, cy + 15 * scale - 1)
    np.testing.assert_allclose(r.box, [119 - 100, 94 - 100, 200, 200])
    assert [x.image_id for x in records] == [0, 1, 0]
    assert [x.annotation_id for x in records] == [0, 1, 2]
    assert r.head_size is None and r.image_path.endswith("images/a.jpg")


def test_mpii_head_boxes_from_mat(tmp_path: Path) -> None:
    from scipy.io import savemat

    ann = tmp_path / "valid.json"
    ann.write_text(json.dumps([_mpii_entry(), _mpii_entry()]))
    boxes = np.zeros((2, 2, 2))
    boxes[1, :, 0] = [30, 40]  # diagonal 50
    boxes[0, :, 1] = [10, 10]
    boxes[1, :, 1] = [16, 18]  # diagonal 10
    savemat(tmp_path / "gt_valid.mat", {"headboxes_src": boxes})
    records = parse_mpii(ann, tmp_path, tmp_path / "gt_valid.mat")
    assert [r.head_size for r in records] == pytest.approx([30.0, 6.0])
    # build_records finds gt_valid.mat next to the validation JSON
    cfg = DataConfig(dataset="mpii", keypoints="mpii16", root=str(tmp_path), val_ann="valid.json", val_images=".")
    assert build_records(cfg, "val")[1].head_size == pytest.approx(6.0)
    ann.write_text(json.dumps([_mpii_entry()]))
    with pytest.raises(AnnotationError, match="2 head boxes for 1 people"):
        parse_mpii(ann, tmp_path, tmp_path / "gt_valid.mat")


def test_mpii_bad_scale(tmp_path: Path) -> None:
    ann = tmp_path / "mpii.json"
    ann.write_text(json.dumps([_mpii_entry(scale=0.0)]))
    with pytest.raises(AnnotationError, match=r"mpii\.json: entry \[0\]: zero, negative"):
        parse_mpii(ann, tmp_path)


def test_build_records_dispatch_and_errors(tiny_coco: tuple[Path, Path]) -> None:
    ann, images = tiny_coco
    root = ann.parent.parent
    cfg = DataConfig(root=str(root), train_ann="annotations/person_keypoints_train.json", train_images="train")
    assert len(build_records(cfg, "train")) == 2
    synth = DataConfig(**{**cfg.__dict__, "dataset": "synthpose"})
    assert len(build_records(synth, "train")) == 2
    with pytest.raises(ValueError, match="det_file"):
        build_records(cfg, "val", use_gt_boxes=False)
    with pytest.raises(ValueError, match="split"):
        build_records(cfg, "test")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_records(DataConfig(**{**cfg.__dict__, "dataset": "lsp"}), "train")


# ----------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_coco(shared_data: Path) -> None:
    root = shared_data / "coco_mini"
    cfg = DataConfig(
        root=str(root),
        train_ann="annotations/person_keypoints_train2017_mini.json",
        val_ann="annotations/person_keypoints_val2017_mini.json",
        det_file="annotations/person_detections_val2017_mini.json",
    )
    train = build_records(cfg, "train")
    val = build_records(cfg, "val")
    assert len(train) == 35 and len(val) == 30  # the README's "with keypoints" counts
    assert int(sum((r.keypoints[:, 2] > 0).sum() for r in val)) == 385
    assert all(Path(r.image_path).is_file() for r in train + val)
    dets = build_records(cfg, "val", use_gt_boxes=False)
    assert len(dets) == 118 and {r.image_id for r in dets} == {785, 40083, 196141, 197388}
    high = build_records(DataConfig(**{**cfg.__dict__, "det_score_threshold": 0.5}), "val", use_gt_boxes=False)
    assert 0 < len(high) < 118 and min(r.box_score for r in high) >= 0.5


@pytest.mark.real_data
def test_real_mpii(shared_data: Path) -> None:
    root = shared_data / "mpii_mini"
    raw = json.loads((root / "mpii_mini.json").read_text())
    records = parse_mpii(root / "mpii_mini.json", root / "images")
    assert len(records) == 5
    for entry, r in zip(raw, records, strict=True):
        vis = np.asarray(entry["joints_vis"]) > 0
        np.testing.assert_allclose(r.keypoints[vis, :2], np.asarray(entry["joints"])[vis] - 1)
        assert Path(r.image_path).is_file()
