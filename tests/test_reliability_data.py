"""``data check`` sees what training would choke on, and loading a dataset runs the same checks.

Each malformed entry must be named (file, entry, problem) by ``fasterpose data check`` and, for
the annotation problems, by :func:`build_records` when a dataset is loaded for training or
evaluation; damaged JPEGs that OpenCV decodes anyway (libjpeg "Corrupt JPEG data") are reported.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import simple_keypoints, write_coco
from fasterpose.cli import main
from fasterpose.config import DataConfig
from fasterpose.data import AnnotationError, build_records
from fasterpose.data.image_io import decode_warnings, read_image_bytes


def two_people(tmp_path: Path) -> tuple[Path, Path]:
    people = [
        {"bbox": [30, 10, 60, 70], "keypoints": simple_keypoints(40, 20)},
        {"bbox": [80, 40, 50, 60], "keypoints": simple_keypoints(85, 45)},
    ]
    return write_coco(tmp_path, people, name="val")


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def check(ann: Path, images: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["data", "check", "--ann", str(ann), "--images", str(images)])
    return rc, capsys.readouterr().out


ANNOTATION_FAULTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "no keypoints",
        lambda d: d["annotations"][1].pop("keypoints"),
        "annotations[1] (id 2, image 1): lacks 'keypoints'",
    ),
    (
        "string keypoint",
        lambda d: d["annotations"][0]["keypoints"].__setitem__(4, "32"),
        "annotations[0] (id 1, image 1): keypoint[4] is '32' (not a number)",
    ),
    (
        "string id",
        lambda d: d["annotations"][1].update(id="2"),
        "annotations[1] (id '2', image 1): id must be an integer, got '2'",
    ),
    (
        "string image id",
        lambda d: d["annotations"][1].update(image_id="1"),
        "annotations[1] (id 2, image '1'): image_id must be an integer, got '1'",
    ),
    (
        "string area",
        lambda d: d["annotations"][0].update(area="100"),
        "annotations[0] (id 1, image 1): area is '100', not a number >= 0",
    ),
    (
        "duplicate id",
        lambda d: d["annotations"][1].update(id=1),
        "annotations[1] (id 1, image 1): duplicate annotation id 1",
    ),
]


@pytest.mark.parametrize(("name", "change", "message"), ANNOTATION_FAULTS, ids=[f[0] for f in ANNOTATION_FAULTS])
def test_check_and_loading_name_the_bad_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, change: Any, message: str
) -> None:
    ann, images = two_people(tmp_path)
    edit_json(ann, change)
    rc, out = check(ann, images, capsys)
    assert rc == 1 and f"{ann}: {message}" in out and "FAIL" in out
    # the same check when the split is loaded (training or evaluation): before any epoch runs
    cfg = DataConfig(root=str(tmp_path), val_ann=f"annotations/{ann.name}", val_images="val")
    with pytest.raises(AnnotationError) as info:
        build_records(cfg, "val")
    assert f"{ann}: {message}" in str(info.value) and "\n" not in str(info.value)


def test_validation_ground_truth_is_checked_as_evaluation_reads_it(tmp_path: Path) -> None:
    ann, _ = two_people(tmp_path)
    edit_json(ann, lambda d: d["annotations"][0].pop("num_keypoints"))
    cfg = DataConfig(
        root=str(tmp_path), train_ann=f"annotations/{ann.name}", train_images="val", val_ann=f"annotations/{ann.name}"
    )
    cfg = DataConfig(**{**cfg.__dict__, "val_images": "val"})
    assert len(build_records(cfg, "train")) == 2  # training does not read num_keypoints
    with pytest.raises(AnnotationError, match=r"annotations\[0\] \(id 1, image 1\): lacks 'num_keypoints'"):
        build_records(cfg, "val")  # COCO evaluation does


def test_check_reports_image_size_different_from_the_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann, images = two_people(tmp_path)
    edit_json(ann, lambda d: d["images"][0].update(width=200))
    rc, out = check(ann, images, capsys)
    assert rc == 1
    assert f"{images / '000000000001.jpg'}: image is 160x120 but the annotation says 200x120" in out


def _tag_sideways(path: Path) -> np.ndarray:
    """Rewrite the JPEG at ``path`` with its pixels kept and an EXIF tag "turn 90 degrees clockwise to view",
    as a phone stores a portrait; returns the stored pixels (BGR) as OpenCV decodes them without the tag."""
    pil = pytest.importorskip("PIL.Image")
    stored = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    exif = pil.Exif()
    exif[0x0112] = 6
    pil.fromarray(stored[..., ::-1]).save(path, quality=100, subsampling=0, exif=exif.tobytes())
    return cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)


def test_an_exif_turned_photo_is_read_in_the_frame_its_annotation_was_drawn_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The annotation's width and height tell whether it was drawn on the stored pixels or the upright ones."""
    from fasterpose.data.image_io import ImageReadError, in_annotated_frame, read_image_bgr

    ann, images = two_people(tmp_path)  # annotated 160x120: the stored pixels
    photo = images / "000000000001.jpg"
    stored = _tag_sideways(photo)
    upright = read_image_bgr(photo)
    assert upright.shape == (160, 120, 3)  # OpenCV turns it, as a viewer does
    np.testing.assert_array_equal(in_annotated_frame(upright, photo, (160, 120)), stored)
    assert in_annotated_frame(upright, photo, (120, 160)) is upright  # drawn on the upright photo
    assert in_annotated_frame(upright, photo, None) is upright
    with pytest.raises(ImageReadError, match=r"000000000001.jpg: image is 120x160 but its annotation says 200x120"):
        in_annotated_frame(upright, photo, (200, 120))
    rc, out = check(ann, images, capsys)
    assert rc == 0, out  # not a size problem: training reads the stored pixels
    from fasterpose.codec import HeatmapCodec
    from fasterpose.data import TopDownDataset
    from fasterpose.keypoints import COCO_17

    cfg = DataConfig(root=str(tmp_path), val_ann=f"annotations/{ann.name}", val_images="val")
    records = build_records(cfg, "val")
    dataset = TopDownDataset(records, COCO_17, HeatmapCodec((48, 64), (12, 16), 2.0))
    crop = dataset.prepare(0).crop
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), stored)  # the same pixels with no tag (lossless)
    untagged = TopDownDataset([dataclasses.replace(records[0], image_path=str(plain))], COCO_17, dataset.codec)
    np.testing.assert_array_equal(crop, untagged.prepare(0).crop)
    from fasterpose.pipeline.evaluate import EvalSet, crop_batches  # evaluation reads it as training does

    def eval_crops(record: Any) -> np.ndarray:
        es = EvalSet([record], np.array([[80.0, 60.0]], np.float32), np.array([[90.0, 120.0]], np.float32), "val", ann)
        return next(crop_batches(es, [[0]], (48, 64), 1))[0]

    np.testing.assert_array_equal(
        eval_crops(records[0]), eval_crops(dataclasses.replace(records[0], image_path=str(plain)))
    )


def _jpeg(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3)).astype(np.uint8), (7, 7), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _damaged(kind: str) -> bytes:
    data = _jpeg()
    if kind == "cut, end marker kept":  # a partial download "repaired" by appending FFD9
        return data[: len(data) // 2] + b"\xff\xd9"
    if kind == "bytes flipped":  # bit rot in the entropy-coded data
        mid = len(data) // 2
        return data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 40]) + data[mid + 40 :]
    return data[: len(data) // 2]  # truncated: no end marker at all


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("cut, end marker kept", "damaged JPEG, it decodes only in part (libjpeg: Corrupt JPEG data"),
        ("bytes flipped", "damaged JPEG, it decodes only in part (libjpeg: Corrupt JPEG data"),
        ("truncated", "truncated JPEG: no end-of-image marker"),
    ],
)
def test_check_reports_damaged_jpegs_that_opencv_decodes_anyway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str
) -> None:
    ann, images = two_people(tmp_path)
    path = images / "000000000001.jpg"
    data = _damaged(kind)
    path.write_bytes(data)
    if kind != "truncated":
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None  # OpenCV says nothing
    rc, out = check(ann, images, capsys)
    assert rc == 1 and f"{path}: {message}" in out


def test_decode_warnings_is_quiet_on_a_clean_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "ok.jpg"
    path.write_bytes(_jpeg())
    img, warnings = decode_warnings(read_image_bytes(path), path)
    assert img.shape == (120, 160, 3) and warnings == []
    _, warnings = decode_warnings(_damaged("bytes flipped"), path)
    assert warnings and warnings[0].startswith("Corrupt JPEG data")


def test_check_detection_and_mpii_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": "1", "bbox": [1, 2, 3, 4], "score": "high"}]))
    assert main(["data", "check", "--ann", str(dets)]) == 1
    out = capsys.readouterr().out
    assert f"{dets}: detection [0]: image_id must be an integer, got '1'" in out
    assert f"{dets}: detection [0]: score is 'high', not a finite number" in out
    mpii = tmp_path / "mpii.json"
    joints = [[10.0 + j, 20.0] for j in range(16)]
    joints[2] = ["12", 20.0]
    mpii.write_text(
        json.dumps([{"image": "a.jpg", "center": [50, 50], "scale": 1.0, "joints": joints, "joints_vis": [1] * 16}])
    )
    assert main(["data", "check", "--ann", str(mpii)]) == 1  # a string coordinate
    assert f"{mpii}: entry [0] (a.jpg): joints must be pairs of finite numbers" in capsys.readouterr().out
    mpii.write_text(json.dumps([{"image": "a.jpg", "center": [50, 50], "scale": 1.0, "joints": 5, "joints_vis": [1]}]))
    assert main(["data", "check", "--ann", str(mpii)]) == 1  # joints not a list
    assert "joints must be pairs of finite numbers" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("difficulty=abc", "--set difficulty='abc': SynthPose knob 'difficulty' must be a number (default 1.0)"),
        ("max_people=2.5", "SynthPose knob 'max_people' must be an integer (default 4)"),
        ("scale_range=[0.3]", "SynthPose knob 'scale_range' must be a list of 2 numbers"),
        ("antialias=yes please", "SynthPose knob 'antialias' must be true or false"),
        ("difficulty=[1", "--set difficulty=[1: '[1' is not a valid value"),
    ],
)
def test_synthpose_bad_knob_value_is_one_line_naming_the_knob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, message: str
) -> None:
    out_dir = tmp_path / "sp"
    assert main(["data", "synthpose", "--out", str(out_dir), "--train", "1", "--val", "0", "--set", option]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or (err.startswith("error: ") and message in err and "\n" not in err)
    assert not out_dir.exists()  # refused before anything was written
