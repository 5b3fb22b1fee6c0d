"""``fasterpose data check|show|synthpose`` and the drawing helpers they use."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from conftest import simple_keypoints, write_coco
from fasterpose.cli import main
from fasterpose.keypoints import COCO_17, MPII_16
from fasterpose.visualize import LEFT_COLOR, RIGHT_COLOR, draw_heatmaps, draw_poses, make_grid


# ----------------------------------------------------------------------------- check
def test_check_passes_on_clean_data(tiny_coco: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ann, images = tiny_coco
    assert main(["data", "check", "--ann", str(ann), "--images", str(images)]) == 0
    assert capsys.readouterr().out.startswith("OK ")


def test_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kp_outside = simple_keypoints()
    kp_outside[0:2] = [500, -3]  # joint 0 beyond the 160x120 image
    people = [
        {"bbox": [10, 10, 0, 20], "keypoints": simple_keypoints()},  # zero width
        {"bbox": [10, 10, 30, -4], "keypoints": simple_keypoints()},  # negative height
        {"bbox": [10, 10, 30, 40], "keypoints": kp_outside},
        {"bbox": [10, 10, 30, 40], "keypoints": [1, 2, 3]},  # wrong length
        {"bbox": [10, 10, 30, 40], "keypoints": simple_keypoints(), "image_id": 5},  # unknown image
    ]
    ann, images = write_coco(tmp_path, people, num_images=4)
    # image 2 missing, image 3 a corrupt JPEG, image 4 truncated
    (images / "000000000002.jpg").unlink()
    (images / "000000000003.jpg").write_bytes(b"\xff\xd8garbage\xff\xd9")
    data4 = (images / "000000000004.jpg").read_bytes()
    (images / "000000000004.jpg").write_bytes(data4[: len(data4) // 2])
    assert main(["data", "check", "--ann", str(ann), "--images", str(images)]) == 1
    out = capsys.readouterr().out
    for expected in (
        "000000000002.jpg: image file not found",
        "000000000003.jpg: cannot decode",
        "000000000004.jpg: truncated JPEG",
        "(id 1, image 1): zero or negative box size 0x20",
        "(id 2, image 1): zero or negative box size 30x-4",
        "(id 3, image 1): keypoint 0 at (500, -3) is outside the 160x120 image",
        "(id 4, image 1): expected 51 keypoint values, got 3",
        "(id 5, image 5): image_id 5 is not in 'images'",
        "FAIL",
    ):
        assert expected in out, expected
    assert str(ann) in out


@pytest.mark.parametrize("text", ['{"images": [', "[1, 2"])
def test_check_malformed_json(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    assert main(["data", "check", "--ann", str(path)]) == 1
    assert "malformed JSON" in capsys.readouterr().out


def test_check_mpii_and_detections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((50, 60, 3), np.uint8))
    entry = {"image": "a.jpg", "center": [30, 25], "scale": 0.2, "joints": [[10, 10]] * 16, "joints_vis": [1] * 16}
    bad = {**entry, "scale": -1, "joints": [[100, 10]] + [[10, 10]] * 15}
    mpii = tmp_path / "mpii.json"
    mpii.write_text(json.dumps([entry]))
    assert main(["data", "check", "--ann", str(mpii), "--images", str(tmp_path / "images")]) == 0
    mpii.write_text(json.dumps([entry, bad]))
    assert main(["data", "check", "--ann", str(mpii), "--images", str(tmp_path / "images")]) == 1
    out = capsys.readouterr().out
    assert "entry [1] (a.jpg): zero, negative" in out and "keypoint 0 at (99, 9) is outside the 60x50" in out
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 5, 0], "score": 0.5}]))
    assert main(["data", "check", "--ann", str(dets)]) == 1
    assert "detection [0]: zero or negative box size 5x0" in capsys.readouterr().out


@pytest.mark.real_data
def test_check_passes_on_real_data(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coco = shared_data / "coco_mini"
    for ann, images in (
        ("person_keypoints_train2017_mini.json", "train2017"),
        ("person_keypoints_val2017_mini.json", "val2017"),
    ):
        assert main(["data", "check", "--ann", str(coco / "annotations" / ann), "--images", str(coco / images)]) == 0
    assert main(["data", "check", "--ann", str(coco / "annotations/person_detections_val2017_mini.json")]) == 0
    mpii = shared_data / "mpii_mini"
    assert main(["data", "check", "--ann", str(mpii / "mpii_mini.json"), "--images", str(mpii / "images")]) == 0
    assert capsys.readouterr().out.count("OK ") == 4


# ----------------------------------------------------------------------------- show
def test_show_writes_a_grid(tiny_coco: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann, _ = tiny_coco
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "data:\n"
        f"  root: {ann.parent.parent}\n"
        "  train_ann: annotations/person_keypoints_train.json\n"
        "  train_images: train\n"
    )
    out = tmp_path / "grid" / "g.png"
    args = ["data", "show", str(config), "--n", "4", "--out", str(out), "data.input_size=[96,128]"]
    assert main([*args, "data.heatmap_size=[24,32]"]) == 0
    grid = cv2.imread(str(out))
    # 4 tiles of (crop | heatmaps) = 192x128 each, 2 columns, 2-px padding
    assert grid.shape == (2 * 130 + 2, 2 * 194 + 2, 3)
    assert "4 augmented train samples" in capsys.readouterr().out


# ----------------------------------------------------------------------------- synthpose
def test_synthpose_passes_arguments_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    fake = types.ModuleType("fasterpose.data.synthpose")

    @dataclasses.dataclass
    class SynthPoseKnobs:
        difficulty: float = 1.0

    def generate(out_dir: Path, num_train: int, num_val: int, seed: int, **knobs: float) -> dict[str, Any]:
        if set(knobs) - {"difficulty"}:
            raise ValueError(f"SynthPose: unknown knob(s) {sorted(knobs)}")
        calls.append((out_dir, num_train, num_val, seed, SynthPoseKnobs(**knobs).difficulty))
        return {"train": {"people": num_train}, "val": {"people": num_val}}

    fake.generate = generate  # type: ignore[attr-defined]
    fake.SynthPoseKnobs = SynthPoseKnobs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fasterpose.data.synthpose", fake)
    import fasterpose.data

    monkeypatch.setattr(fasterpose.data, "synthpose", fake, raising=False)
    out = tmp_path / "sp"
    assert main(["data", "synthpose", "--out", str(out), "--train", "3", "--val", "2", "--seed", "9"]) == 0
    assert main(["data", "synthpose", "--out", str(out), "--train", "1", "--val", "1", "--set", "difficulty=0.5"]) == 0
    assert calls == [(out, 3, 2, 9, 1.0), (out, 1, 1, 0, 0.5)]
    assert main(["data", "synthpose", "--out", str(out), "--set", "colour=red"]) == 1  # unknown option


# ----------------------------------------------------------------------------- drawing
def test_draw_poses_colours_left_and_right() -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    kpts = np.full((17, 2), 100.0)
    kpts[5] = (150, 50)  # left shoulder
    kpts[6] = (50, 50)  # right shoulder
    scores = np.zeros(17)
    scores[[5, 6]] = 1.0
    out = draw_poses(img, kpts[None], scores[None], COCO_17, threshold=0.3)
    assert tuple(out[50, 150]) == LEFT_COLOR and tuple(out[50, 50]) == RIGHT_COLOR
    assert not out[100, 100].any()  # joints under the threshold are not drawn
    assert not img.any()  # the input is not modified
    boxed = draw_poses(img, kpts, None, COCO_17, boxes=np.array([[10, 10, 30, 30]]))
    assert boxed[10, 25].any()
    with pytest.raises(ValueError, match=r"\(P, 16, 2\)"):
        draw_poses(img, kpts, None, MPII_16)


def test_heatmap_overlay_and_grid() -> None:
    img = np.full((64, 48, 3), 100, np.uint8)
    hm = np.zeros((17, 16, 12), np.float32)
    hm[3, 8, 6] = 1.0
    out = draw_heatmaps(img, hm)
    assert out.shape == img.shape and (out != img).any() and (out[0, 0] == img[0, 0]).all()
    grid = make_grid([img] * 5, cols=3, pad=2)
    assert grid.shape == (2 * 66 + 2, 3 * 50 + 2, 3)
