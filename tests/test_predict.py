"""Inference: Predictor geometry and runtimes, the predict command on images, folders and video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_model
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy.predictor import Predictor
from fasterpose.deploy.smoothing import OneEuroFilter, PoseSmoother
from fasterpose.engine.checkpoint import CheckpointError, load_model_from_checkpoint, save_checkpoint
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.crops import as_rgb_image, crop_people
from fasterpose.runtimes.device import has_bf16

TINY = tiny_model((64, 96))


def tiny_cfg(*extra: str) -> Config:
    return apply_overrides(Config(), [*TINY, *extra])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg, "epoch": 0})
    return path


class BrightSpot(nn.Module):
    """Stub pose net: every joint's heatmap is the crop's brightness pooled to heatmap resolution."""

    def __init__(self, num_keypoints: int = 17, stride: int = 4) -> None:
        super().__init__()
        self.k, self.stride = num_keypoints, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = F.avg_pool2d(x.mean(1, keepdim=True), self.stride)
        return 10.0 * (m + 2.1).expand(-1, self.k, -1, -1).contiguous()  # black is -2.03 after normalising


def spot_image(points: list[tuple[int, int]], size: tuple[int, int] = (320, 240)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    for x, y in points:
        cv2.circle(img, (x, y), 3, (255, 255, 255), -1)
    return img


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "openvino"])
def test_keypoints_come_back_to_image_coordinates(runtime: str) -> None:
    """A bright spot inside each box is found where it is in the image, through crop + decode + back-projection."""
    cfg = tiny_cfg("loss.name=mse")
    spots = [(60, 70), (230, 150)]
    boxes = [[30, 20, 60, 120, 0.9], [200, 60, 70, 140, 0.8]]
    pred = Predictor(BrightSpot(), cfg, runtime=runtime)(spot_image(spots), boxes)
    assert len(pred) == 2
    for p, spot, box in zip(pred, spots, boxes, strict=True):
        assert p.keypoints.shape == (17, 3) and p.scores.shape == (17,)
        np.testing.assert_array_equal(p.xy, p.keypoints[:, :2])
        # one heatmap pixel is 4 input px = 4 * scale / input_w image px (about 10 px here)
        assert np.abs(p.xy - np.array(spot)).max() < 8.0
        np.testing.assert_allclose(p.box, box[:4])
        assert p.score > 0 and p.score == pytest.approx(box[4] * p.scores[p.scores > 0.2].mean())


def test_flip_test_keeps_the_spot() -> None:
    cfg = tiny_cfg("loss.name=mse")
    img = spot_image([(100, 100)])
    plain = Predictor(BrightSpot(), cfg, runtime="torch")(img, [[60, 30, 80, 150]])[0]
    flipped = Predictor(BrightSpot(), cfg, runtime="torch", flip_test=True)(img, [[60, 30, 80, 150]])[0]
    assert np.abs(flipped.xy - plain.xy).max() < 6.0
    assert np.abs(flipped.xy - [100, 100]).max() < 8.0


def test_runtimes_agree_on_a_checkpoint(checkpoint: Path) -> None:
    img = (np.random.default_rng(0).random((200, 300, 3)) * 255).astype(np.uint8)
    boxes = np.array([[10, 10, 80, 150], [100, 40, 90, 120], [150, 20, 60, 170]], np.float32)
    results = {rt: Predictor(checkpoint, runtime=rt)(img, boxes) for rt in ("torch", "onnxruntime", "openvino")}
    ref = results["torch"]
    assert 0 < ref[0].scores.min() < 1  # sigmoid (RCE) model: joint scores are probabilities
    for rt in ("onnxruntime", "openvino"):
        for a, b in zip(ref, results[rt], strict=True):
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_auto_runtime_is_the_measured_default(checkpoint: Path) -> None:
    """CPU ``auto``: ONNX Runtime at fp32 (fastest exact runtime in docs/deployment.md), OpenVINO at bf16."""
    img = (np.random.default_rng(1).random((120, 90, 3)) * 255).astype(np.uint8)
    auto = Predictor(checkpoint)
    assert (auto.runtime, auto.runner.precision) == ("onnxruntime", "fp32")
    ref = Predictor(checkpoint, runtime="torch")(img)[0]
    np.testing.assert_allclose(auto(img)[0].scores, ref.scores, atol=1e-5)
    with pytest.raises(ValueError, match="no bf16"):
        Predictor(checkpoint, runtime="onnxruntime", precision="bf16")


@pytest.mark.skipif(not has_bf16(), reason="this CPU has no bf16 (OpenVINO reports no BF16 capability)")
def test_auto_runtime_at_bf16_is_openvino(checkpoint: Path) -> None:
    bf16 = Predictor(checkpoint, precision="bf16")
    assert (bf16.runtime, bf16.runner.precision) == ("openvino", "bf16")


@pytest.mark.skipif(has_bf16(), reason="this CPU has bf16: the refusal path cannot be reached")
def test_bf16_refused_without_cpu_support(checkpoint: Path) -> None:
    """Refused with a clear error, never silently run at fp32."""
    with pytest.raises(RuntimeError, match="no bf16 support"):
        Predictor(checkpoint, precision="bf16")


def test_whole_image_and_no_boxes(checkpoint: Path) -> None:
    predictor = Predictor(checkpoint, runtime="torch")
    img = np.zeros((90, 50, 3), np.uint8)
    (whole,) = predictor(img)
    np.testing.assert_allclose(whole.box, [0, 0, 50, 90])
    assert len(predictor(img, np.zeros((0, 4)))) == 0
    with pytest.raises(ValueError, match="boxes must have shape"):
        predictor(img, [[1, 2, 3]])
    crops, *_ = crop_people(img, None, (64, 96))
    assert crops.shape == (1, 3, 96, 64) and crops.dtype == np.float32


def test_read_image_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.jpg"):
        as_rgb_image(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="RGB uint8"):
        as_rgb_image(np.zeros((4, 4), np.uint8))


def test_pickled_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tiny_cfg()
    bad = tmp_path / "bad.pt"
    payload = {
        "format": "fasterpose-checkpoint",
        "version": 1,
        "config": argparse.Namespace(a=1),
        "model": PoseModel.from_config(cfg).state_dict(),
    }
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load_model_from_checkpoint(str(bad))
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((40, 30, 3), np.uint8))
    assert main(["predict", "--checkpoint", str(bad), str(img), "--whole-image"]) == 1
    assert "refused" in capsys.readouterr().err


def test_predict_real_photo_with_detections(checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    coco = shared_data / "coco_mini"
    image = coco / "val2017" / "000000196141.jpg"
    dets = coco / "annotations" / "person_detections_val2017_mini.json"
    out, res = tmp_path / "drawn", tmp_path / "res.json"
    rc = main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            str(image),
            "--boxes",
            str(dets),
            "--det-threshold",
            "0.3",
            "--out",
            str(out),
            "--json",
            str(res),
        ]
    )
    assert rc == 0
    drawn = cv2.imread(str(out / image.name))
    assert drawn is not None and drawn.shape == cv2.imread(str(image)).shape
    results = json.loads(res.read_text())
    assert 1 <= len(results) <= 13  # 13 boxes above 0.3 before OKS-NMS
    assert {r["image_id"] for r in results} == {196141}
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)


def test_predict_folder_and_video(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.jpg", "b.png"):
        cv2.imwrite(str(folder / name), (rng.random((80, 60, 3)) * 255).astype(np.uint8))
    res = tmp_path / "folder.json"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(folder),
                "--whole-image",
                "--runtime",
                "torch",
                "--out",
                str(tmp_path / "out"),
                "--json",
                str(res),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.png"]
    assert sorted(r["file_name"] for r in json.loads(res.read_text())) == ["a.jpg", "b.png"]

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(5):
        writer.write((rng.random((48, 64, 3)) * 255).astype(np.uint8))
    writer.release()
    res = tmp_path / "video.json"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(video),
                "--whole-image",
                "--smooth",
                "--out",
                str(tmp_path / "vid"),
                "--json",
                str(res),
            ]
        )
        == 0
    )
    assert [r["frame"] for r in json.loads(res.read_text())] == [0, 1, 2, 3, 4]
    cap = cv2.VideoCapture(str(tmp_path / "vid" / "clip_pose.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


def test_no_boxes_offline_is_a_clear_error(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((40, 30, 3), np.uint8))
    assert main(["predict", "--checkpoint", str(checkpoint), str(img)]) == 1
    err = capsys.readouterr().err
    assert "--boxes" in err and "--whole-image" in err and "--detector-weights" in err


def test_detector_from_local_weights(tmp_path: Path) -> None:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    from fasterpose.deploy.detector import PersonDetector

    weights = tmp_path / "det.pth"
    torch.save(
        fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict(), weights
    )
    boxes = PersonDetector(weights, threshold=0.0)(np.zeros((120, 160, 3), np.uint8))
    assert boxes.ndim == 2 and boxes.shape[1] == 5
    torch.save({"x": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not a fasterrcnn"):
        PersonDetector(tmp_path / "wrong.pth", threshold=0.5)


def test_box_files(tmp_path: Path) -> None:
    """predict reads box files through fasterpose.boxes.BoxTable; the score threshold applies per lookup."""
    from fasterpose.deploy.boxes import box_provider

    coco = tmp_path / "dets.json"
    coco.write_text(
        json.dumps(
            [
                {"image_id": 7, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9},
                {"image_id": 7, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.1},
                {"image_id": 7, "category_id": 3, "bbox": [1, 2, 30, 40], "score": 0.9},
            ]
        )
    )
    img = np.zeros((50, 50, 3), np.uint8)
    source = box_provider(coco, threshold=0.5)
    np.testing.assert_allclose(source("000000000007.jpg", 7, img), [[1, 2, 30, 40, 0.9]])
    assert source("b.jpg", None, img).shape == (0, 5)  # a non-numeric name never takes an id's boxes
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"a.jpg": [[5, 5, 25, 35]]}))
    np.testing.assert_allclose(box_provider(named, box_format="xyxy")("a.jpg", None, img), [[5, 5, 20, 30, 1.0]])
    named.write_text(json.dumps({"a.jpg": [[5, 5]]}))
    with pytest.raises(ValueError, match="a.jpg"):
        box_provider(named)


def test_one_euro_smooths_jitter_and_follows_motion() -> None:
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    still = [f(np.array([100.0, 50.0]) + rng.normal(0, 2, 2), t / 30) for t in range(60)]
    assert np.std(np.array(still)[10:], axis=0).max() < 1.0  # raw jitter std is 2 px
    g = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    moving = [g(np.array([10.0 * t, 0.0]), t / 30) for t in range(60)]
    assert abs(moving[-1][0] - 590.0) < 15.0  # a fast joint lags little

    smoother = PoseSmoother()
    person = PosePrediction(0, np.zeros((17, 3), np.float32), 1.0, box=np.array([0, 0, 50, 100.0]))
    other = PosePrediction(0, np.full((17, 3), 200, np.float32), 1.0, box=np.array([180, 0, 50, 100.0]))
    person.keypoints[:, 2] = other.keypoints[:, 2] = 0.9
    smoother([person, other], 0.0)
    assert len(smoother.tracks) == 2
    out = smoother([other, person], 1 / 30)  # order swapped: matched by box IoU, not position
    assert len(smoother.tracks) == 2
    np.testing.assert_allclose(out[0].xy, 200.0)
    np.testing.assert_allclose(out[0].scores, 0.9)  # scores pass through unsmoothed


def test_top_level_api_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fasterpose; assert 'torch' not in sys.modules; "
        "from fasterpose import PoseModel, Predictor, PosePrediction, load_config, Config; "
        "from fasterpose.deploy.predictor import Predictor as P; assert Predictor is P; "
        "print(sorted(fasterpose.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Predictor" in out and "PosePrediction" in out
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import fasterpose

        _ = fasterpose.nope  # type: ignore[attr-defined]


def test_openvino_runners_released_in_any_order_keep_signals_deliverable() -> None:
    # An ov.Core's CPU plugin swaps in its own mmap'ed sigaltstack and restores the previous one on
    # release; runners sharing one Core keep the altstack mapped whatever order they are freed in, so
    # the next Python-handled signal (here SIGCHLD) is delivered. A wrong order kills the process with
    # a silent SIGSEGV, hence the child process.
    import subprocess
    import sys

    code = (
        "import signal, subprocess, sys\n"
        "import numpy as np, openvino as ov, openvino.opset13 as ops\n"
        "from fasterpose.deploy.runtimes import OpenVinoRunner\n"
        "p = ops.parameter([-1, 3, 8, 8], np.float32)\n"
        "model = ov.Model([ops.relu(p)], [p])\n"
        "a, b = OpenVinoRunner(model), OpenVinoRunner(model)\n"
        "del a\n"
        "del b\n"
        "signal.signal(signal.SIGCHLD, lambda *args: None)\n"
        "subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
        "print('survived')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "survived" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
