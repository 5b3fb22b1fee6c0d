"""``fasterpose predict`` as a user meets it: where outputs go, what is refused, what is reported."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pytest
import torch

from fasterpose.atomic import atomic_write, atomic_write_text
from fasterpose.cli import build_parser, main
from fasterpose.deploy.sources import image_ids
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.models.pose_model import PoseModel
from test_predict import tiny_cfg


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = tiny_cfg("data.det_score_threshold=0.5")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(path, {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg, "epoch": 0})
    return path


def _images(folder: Path, names: tuple[str, ...] = ("a.jpg", "b.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        cv2.imwrite(str(folder / name), (rng.random((80, 60, 3)) * 255).astype(np.uint8))
    return folder


def predict(ckpt: Path, *args: str) -> int:
    return main(["predict", "--checkpoint", str(ckpt), "--runtime", "torch", *args])


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_default_run_writes_a_new_numbered_folder(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _images(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    assert predict(ckpt, str(src), "--whole-image") == 0
    first = tmp_path / "runs" / "predict"
    assert sorted(p.name for p in first.iterdir()) == ["a.jpg", "b.png", "results.json", "results_summary.json"]
    assert "runs/predict" in capsys.readouterr().out
    before = _digests(first)
    assert predict(ckpt, str(src), "--whole-image") == 0
    assert "runs/predict2" in capsys.readouterr().out
    assert (tmp_path / "runs" / "predict2" / "results.json").is_file() and _digests(first) == before


def test_no_save_keeps_nothing_and_out_file_writes_that_file(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _images(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    assert predict(ckpt, str(src), "--whole-image", "--no-save") == 0
    assert not (tmp_path / "runs").exists()
    out = tmp_path / "single" / "pose.jpg"
    assert predict(ckpt, str(src / "a.jpg"), "--whole-image", "--out", str(out)) == 0
    assert cv2.imread(str(out)).shape == (80, 60, 3) and sorted(p.name for p in out.parent.iterdir()) == ["pose.jpg"]
    assert predict(ckpt, str(src / "a.jpg"), "--whole-image", "--out", str(out)) == 1  # exists: refused
    assert predict(ckpt, str(src / "a.jpg"), "--whole-image", "--out", str(out), "--overwrite") == 0


def test_options_that_do_nothing_warn(ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _images(tmp_path / "imgs")
    with caplog.at_level(logging.WARNING):
        assert predict(ckpt, str(src), "--whole-image", "--smooth", "--max-frames", "3", "--no-save") == 0
    assert "--smooth applies to a video" in caplog.text and "--max-frames applies to a video" in caplog.text


def test_image_ids_never_collide(ckpt: Path, tmp_path: Path) -> None:
    src = _images(tmp_path / "imgs", ("000000000001.jpg", "b.jpg"))
    res = tmp_path / "r.json"
    assert predict(ckpt, str(src), "--whole-image", "--no-save", "--json", str(res)) == 0
    assert {r["file_name"]: r["image_id"] for r in json.loads(res.read_text())} == {"000000000001.jpg": 1, "b.jpg": 2}
    paths = [Path(n) for n in ("001.png", "1.jpg", "b.jpg", "7.jpg")]
    assert image_ids(paths) == [(1, True), (8, False), (9, False), (7, True)]
    assert image_ids([Path("x.jpg"), Path("y.jpg")]) == [(0, False), (1, False)]


def test_nothing_found_is_said(ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _images(tmp_path / "imgs", ("a.jpg", "b.jpg", "c.jpg"))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[5, 5, 40, 60, 0.9]]}))
    with caplog.at_level(logging.WARNING):
        assert predict(ckpt, str(src), "--boxes", str(boxes), "--no-save") == 0
    assert "2 of 3 images had no person boxes" in caplog.text and "matched" not in caplog.text
    caplog.clear()
    boxes.write_text(json.dumps({"other.jpg": [[5, 5, 40, 60, 0.9]]}))
    with caplog.at_level(logging.WARNING):
        assert predict(ckpt, str(src), "--boxes", str(boxes), "--no-save") == 0
    assert "3 of 3 images had no person boxes" in caplog.text
    assert "none of its 1 image keys" in caplog.text and "'other.jpg'" in caplog.text


def test_det_threshold_defaults_to_the_config_value(ckpt: Path, tmp_path: Path) -> None:
    src = _images(tmp_path / "imgs", ("a.jpg",))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[5, 5, 40, 60, 0.9], [20, 10, 30, 60, 0.4]]}))
    res = tmp_path / "r.json"
    for extra, people in (((), 1), (("--det-threshold", "0.0"), 2)):  # the config says 0.5
        assert (
            predict(
                ckpt,
                str(src),
                "--boxes",
                str(boxes),
                "--no-nms",
                "--no-save",
                "--json",
                str(res),
                "--overwrite",
                *extra,
            )
            == 0
        )
        assert len(json.loads(res.read_text())) == people


def test_help_is_for_users() -> None:
    parser = build_parser("predict")  # the lazy CLI adds a command's options only when it is the one run
    sub = next(a for a in parser._actions if a.dest == "command").choices["predict"]  # type: ignore[attr-defined]
    text = sub.format_help()
    assert text.split("\n\n")[1].startswith("Find the pose of every person")  # the description follows usage
    assert "examples:" in text and "fasterpose predict --checkpoint" in text and "image_id" in text
    assert "data.det_score_threshold" in text
    for action in sub._actions:
        if action.dest not in ("help", "source", "checkpoint"):
            assert action.help and "default" in action.help, action.dest


def test_device_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    from fasterpose.deploy.models import model_device as predictor_device

    for gpu in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda gpu=gpu: gpu)
        assert predictor_device("auto", "model.onnx") == "cpu"  # exported files run on the CPU runtimes
        assert predictor_device("auto", "best.pth", runtime="onnxruntime") == "cpu"
        assert predictor_device("auto", "best.pth") == ("cuda" if gpu else "cpu")
    assert predictor_device("cuda:1", "best.pth") == "cuda:1"


# ---- output safety


def test_out_at_the_source_leaves_every_source_file_byte_identical(ckpt: Path, tmp_path: Path) -> None:
    src = _images(tmp_path / "imgs", ("a.jpg", "b.png", "000000000003.jpg"))
    before = _digests(src)
    for out in (src, src / "drawn", tmp_path):
        assert predict(ckpt, str(src), "--whole-image", "--out", str(out)) == 1
    assert predict(ckpt, str(src / "a.jpg"), "--whole-image", "--out", str(src / "a.jpg"), "--overwrite") == 1
    assert predict(ckpt, str(src), "--whole-image", "--no-save", "--json", str(src / "r.json")) == 1
    assert _digests(src) == before


def test_existing_files_are_never_replaced_unasked(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _images(tmp_path / "imgs")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"mine")
    assert predict(ckpt, str(src), "--whole-image", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "a.jpg already exist" in err and (out / "a.jpg").read_bytes() == b"mine"
    assert not (out / "results.json").exists()  # refused before any work
    assert predict(ckpt, str(src), "--whole-image", "--out", str(out), "--overwrite") == 0
    assert cv2.imread(str(out / "a.jpg")) is not None


def test_atomic_json_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    atomic_write_text(path, "[1]")

    def half_then_fail(fh: BinaryIO) -> None:
        fh.write(b"[2, ")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="results.json"):
        atomic_write(path, half_then_fail, "results")
    assert path.read_text() == "[1]" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


# ---- one bad item


def test_a_truncated_jpeg_in_a_folder_is_skipped_and_the_rest_kept(
    ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _images(tmp_path / "imgs", ("a.jpg", "b.jpg", "c.jpg", "d.png"))
    data = (src / "b.jpg").read_bytes()
    (src / "b.jpg").write_bytes(data[: len(data) // 2])
    res = tmp_path / "r.json"
    with caplog.at_level(logging.WARNING):
        assert predict(ckpt, str(src), "--whole-image", "--out", str(tmp_path / "o"), "--json", str(res)) == 0
    assert sorted({r["file_name"] for r in json.loads(res.read_text())}) == ["a.jpg", "c.jpg", "d.png"]
    summary = json.loads((tmp_path / "r_summary.json").read_text())
    assert [s["file"] for s in summary["skipped"]] == ["b.jpg"] and "truncated" in summary["skipped"][0]["error"]
    assert "1 unreadable image(s) skipped: b.jpg" in caplog.text


def _video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    writer.release()
    return path


def test_a_video_that_stops_early_says_how_many_frames(
    ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    video = _video(tmp_path / "clip.avi", 20)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    announced = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    res = tmp_path / "r.json"
    with caplog.at_level(logging.WARNING):
        assert predict(ckpt, str(video), "--whole-image", "--no-save", "--json", str(res)) == 0
    read = len(json.loads(res.read_text()))
    assert 0 < read < announced == 20
    assert f"stopped decoding after {read} of the {announced} frames" in caplog.text


def test_ctrl_c_during_a_video_keeps_the_results(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fasterpose.deploy.predictor import Predictor

    video = _video(tmp_path / "clip.avi", 8)
    calls = {"n": 0}
    original = Predictor.__call__

    def interrupt_on_fourth(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "__call__", interrupt_on_fourth)
    out = tmp_path / "o"
    assert predict(ckpt, str(video), "--whole-image", "--out", str(out)) == 130
    assert [r["frame"] for r in json.loads((out / "results.json").read_text())] == [0, 1, 2]
    assert json.loads((out / "results_summary.json").read_text())["interrupted"] is True
    cap = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
