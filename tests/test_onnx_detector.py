"""Person boxes from a detector ONNX file (``fasterpose.deploy.onnx_detector``), torch-free.

The detector graphs are built here (``scripts/replay_detector.py``): constant outputs holding known
boxes in each real layout behind a real input (name, 1 x 3 x 640 x 640), so letterboxing, decoding,
the person filter, the threshold, NMS and the mapping back to the image all run as for an export.
Expected image boxes are worked out by hand from each family's published preprocessing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fasterpose.cli import main
from fasterpose.deploy.onnx_detector import (
    FAMILIES,
    DetectorFileError,
    OnnxPersonDetector,
    detect_layout,
    letterbox,
    nms,
)

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("replay_detector", ROOT / "scripts" / "replay_detector.py")
assert _spec is not None and _spec.loader is not None
replay = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replay)

W, H = 300, 200  # a non-square image: the letterbox pads it vertically
PEOPLE = np.array([[30.0, 40.0, 130.0, 190.0], [150.0, 20.0, 280.0, 180.0]])  # x1, y1, x2, y2 in the image
# Image -> 640x640 input, by hand: r = min(640/200, 640/300) = 32/15.
R = 640 / 300
# ultralytics: round(300 r) x round(200 r) = 640 x 427, centred: top = round(213/2 - 0.1) = 106
# YOLOX preproc: int() -> 640 x 426 at the top left; MMDetection (round) -> 640 x 427 at the top left
TO_INPUT = {
    "yolov8": (np.array([R, 427 / 200]), np.array([0.0, 106.0])),
    "yolox": (np.array([R, 426 / 200]), np.zeros(2)),
    "yolox-mmdeploy": (np.array([R, 427 / 200]), np.zeros(2)),
    "rtmdet": (np.array([R, 427 / 200]), np.zeros(2)),
}
LAYOUT_OF = {"yolov8": "yolov8", "yolox": "yolox", "yolox-mmdeploy": "yolox", "rtmdet": "rtmdet"}


def to_input(layout: str, boxes: np.ndarray) -> np.ndarray:
    scale, offset = TO_INPUT[layout]
    return boxes * np.tile(scale, 2) + np.tile(offset, 2)


def make(
    tmp: Path,
    layout: str,
    boxes: np.ndarray,
    scores: list[float],
    classes: list[int] | None = None,
    name: str | None = None,
) -> Path:
    outputs = replay.encode(layout, to_input(layout, boxes), scores, classes)
    return replay.write_detector(tmp / (name or f"{layout}.onnx"), layout, outputs)


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


def as_xyxy(found: np.ndarray) -> np.ndarray:
    return np.concatenate([found[:, :2], found[:, :2] + found[:, 2:4]], axis=1)


@pytest.mark.parametrize("layout", ["yolov8", "yolox", "yolox-mmdeploy", "rtmdet"])
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_known_boxes_come_back_in_image_pixels(tmp_path: Path, layout: str, runtime: str) -> None:
    det = OnnxPersonDetector(make(tmp_path, layout, PEOPLE, [0.9, 0.8]), runtime=runtime)
    assert det.format == LAYOUT_OF[layout] and det.input_size == (640, 640)
    found = det(image())
    assert found.shape == (2, 5) and found.dtype == np.float32
    np.testing.assert_allclose(as_xyxy(found), PEOPLE, atol=1e-3)  # xywh + score, best first
    np.testing.assert_allclose(found[:, 4], [0.9, 0.8], atol=1e-6)


def test_letterbox_places_and_pads_as_each_family_does() -> None:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30
    canvas, scale, offset = letterbox(img, (640, 640), FAMILIES["yolov8"])
    assert (
        (canvas[:106] == 114).all() and (canvas[106 + 427 :] == 114).all() and (canvas[106:533] == [10, 20, 30]).all()
    )
    np.testing.assert_allclose(scale, TO_INPUT["yolov8"][0])
    np.testing.assert_allclose(offset, [0, 106])
    canvas, scale, offset = letterbox(img, (640, 640), FAMILIES["yolox"])
    assert (canvas[:426] == [10, 20, 30]).all() and (canvas[426:] == 114).all() and offset.tolist() == [0, 0]


def test_preprocessing_channel_order_and_normalisation(tmp_path: Path) -> None:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 50  # RGB in
    x = OnnxPersonDetector(make(tmp_path, "yolov8", PEOPLE, [0.9, 0.8])).preprocess(img)[0]
    assert x.shape == (1, 3, 640, 640) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 300, 300], [200 / 255, 100 / 255, 50 / 255], rtol=1e-6)  # RGB / 255
    np.testing.assert_allclose(x[0, :, 0, 0], [114 / 255] * 3, rtol=1e-6)  # padding
    x = OnnxPersonDetector(make(tmp_path, "yolox", PEOPLE, [0.9, 0.8])).preprocess(img)[0]
    np.testing.assert_allclose(x[0, :, 100, 300], [50, 100, 200])  # BGR, raw 0-255
    x = OnnxPersonDetector(make(tmp_path, "rtmdet", PEOPLE, [0.9, 0.8])).preprocess(img)[0]
    mean, std = np.array([103.53, 116.28, 123.675]), np.array([57.375, 57.12, 58.395])
    np.testing.assert_allclose(x[0, :, 100, 300], (np.array([50, 100, 200]) - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(x[0, :, 639, 0], (114 - mean) / std, rtol=1e-5)  # padded at the bottom


@pytest.mark.parametrize("layout", ["yolov8", "yolox", "rtmdet"])
def test_only_people_above_the_threshold(tmp_path: Path, layout: str) -> None:
    boxes = np.array([[30.0, 40.0, 130.0, 190.0], [150.0, 20.0, 280.0, 180.0], [10.0, 10.0, 60.0, 60.0]])
    path = make(tmp_path, layout, boxes, [0.9, 0.95, 0.4], classes=[0, 2, 0])  # box 2 is a car
    found = OnnxPersonDetector(path, threshold=0.3)(image())
    np.testing.assert_allclose(as_xyxy(found), boxes[[0, 2]], atol=1e-3)
    found = OnnxPersonDetector(path, threshold=0.5)(image())
    np.testing.assert_allclose(as_xyxy(found), boxes[[0]], atol=1e-3)


def test_the_best_class_decides_in_yolov8(tmp_path: Path) -> None:
    outputs = replay.encode("yolov8", to_input("yolov8", PEOPLE[:1]), [0.6])
    outputs["output0"][0, 4 + 15, 0] = 0.9  # the same box scores higher as a cat: ultralytics calls it a cat
    path = replay.write_detector(tmp_path / "cat.onnx", "yolov8", outputs)
    assert len(OnnxPersonDetector(path, threshold=0.3)(image())) == 0


def test_a_yolox_graph_that_decodes_inside_is_not_decoded_twice(tmp_path: Path) -> None:
    raw = replay.encode("yolox", to_input("yolox", PEOPLE), [0.9, 0.8])["output"]
    decoded = raw.copy()  # the same anchors as decode_in_inference writes them: cx, cy, w, h in pixels
    decoded[0, :, 2:4] = 1.0
    for i, box in enumerate(to_input("yolox", PEOPLE)):
        j = decoded.shape[1] - 1 - 3 * i  # where replay.encode put person i
        decoded[0, j, :4] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]
    path = replay.write_detector(tmp_path / "yolox_decoded.onnx", "yolox", {"output": decoded})
    found = OnnxPersonDetector(path)(image())
    np.testing.assert_allclose(as_xyxy(found), PEOPLE, atol=1e-3)


@pytest.mark.parametrize("layout", ["yolov8", "yolox"])
def test_duplicates_are_suppressed_when_the_graph_has_no_nms(tmp_path: Path, layout: str) -> None:
    boxes = np.array([[30.0, 40.0, 130.0, 190.0], [32.0, 42.0, 131.0, 190.0], [150.0, 20.0, 280.0, 180.0]])
    found = OnnxPersonDetector(make(tmp_path, layout, boxes, [0.7, 0.9, 0.8]))(image())
    np.testing.assert_allclose(as_xyxy(found), boxes[[1, 2]], atol=1e-3)  # the 0.7 twin of box 1 goes


def test_a_graph_with_nms_inside_is_trusted(tmp_path: Path) -> None:
    boxes = np.array([[30.0, 40.0, 130.0, 190.0], [32.0, 42.0, 131.0, 190.0]])
    found = OnnxPersonDetector(make(tmp_path, "rtmdet", boxes, [0.7, 0.9]))(image())
    assert len(found) == 2  # mmdeploy ran its NMS already; no second one with other settings


def test_nms_greedy_order_and_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]  # box 0 overlaps box 1 by 9/11; box 3 by 5/10.5
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]


def test_layout_from_outputs_and_refusals(tmp_path: Path) -> None:
    assert detect_layout([("output0", (1, 84, 8400))]) == "channels-first"
    assert detect_layout([("output0", (1, 84, "anchors"))]) == "channels-first"
    assert detect_layout([("output", (1, 8400, 85))]) == "anchors-last"
    assert detect_layout([("dets", (1, 100, 5)), ("labels", (1, 100))]) == "dets-labels"
    assert detect_layout([("heatmaps", (1, 17, 64, 48))]) == ""
    pose = replay.write_detector(tmp_path / "pose.onnx", "yolov8", {"heatmaps": np.zeros((1, 17, 64, 48), np.float32)})
    with pytest.raises(
        DetectorFileError, match=r"pose\.onnx: not a person detector layout.*heatmaps \(1, 17, 64, 48\)"
    ):
        OnnxPersonDetector(pose)
    with pytest.raises(DetectorFileError, match=r"yolov8\.onnx: outputs output0 \(1, 84, 256\) are not a rtmdet"):
        OnnxPersonDetector(make(tmp_path, "yolov8", PEOPLE, [0.9, 0.8]), format="rtmdet")
    # dets + labels: RTMDet unless named yolox, or told
    assert OnnxPersonDetector(make(tmp_path, "rtmdet", PEOPLE, [0.9, 0.8], name="end2end.onnx")).format == "rtmdet"
    assert OnnxPersonDetector(tmp_path / "end2end.onnx", format="yolox").family == FAMILIES["yolox-mmdeploy"]


def test_dynamic_input_falls_back_to_640(tmp_path: Path) -> None:
    outputs = replay.encode("yolov8", to_input("yolov8", PEOPLE), [0.9, 0.8])
    path = replay.write_detector(tmp_path / "dyn.onnx", "yolov8", outputs, dynamic_input=True)
    det = OnnxPersonDetector(path)
    assert det.input_size == (640, 640)
    np.testing.assert_allclose(as_xyxy(det(image())), PEOPLE, atol=1e-3)


# ---- through fasterpose predict, and without torch ---------------------------------------------------------


@pytest.fixture(scope="module")
def pose_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from fasterpose.config import Config, apply_overrides
    from fasterpose.deploy.export import export_model
    from fasterpose.models.pose_model import PoseModel

    tiny = ["model.backbone=resnet18", "model.pretrained=false", "data.input_size=[32,64]", "data.heatmap_size=[8,16]"]
    cfg = apply_overrides(Config(), tiny)
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    return export_model(model, cfg, tmp_path_factory.mktemp("pose") / "model.onnx", "onnx")


def _photo(folder: Path) -> Path:
    path = folder / "photo.jpg"
    cv2.imwrite(str(path), image())
    return path


@pytest.mark.parametrize("layout", ["yolov8", "yolox", "rtmdet"])
def test_predict_draws_the_people_the_detector_found(pose_onnx: Path, tmp_path: Path, layout: str) -> None:
    faint = np.array([[5.0, 5.0, 25.0, 30.0]])  # a 0.2 person: under the default 0.3 for a detector file
    det = make(tmp_path, layout, np.concatenate([PEOPLE, faint]), [0.9, 0.8, 0.2])
    photo = _photo(tmp_path)
    args = ["predict", "--checkpoint", str(pose_onnx), str(photo), "--detector", str(det), "--out", str(tmp_path / "o")]
    assert main([*args, "--json", str(tmp_path / "people.json"), "--no-nms"]) == 0
    people = json.loads((tmp_path / "people.json").read_text())
    assert len(people) == 2 and all(len(p["keypoints"]) == 17 * 3 for p in people)
    np.testing.assert_allclose(as_xyxy(np.array([p["bbox"] for p in people])), PEOPLE, atol=1e-2)
    assert cv2.imread(str(tmp_path / "o" / "photo.jpg")).shape == (H, W, 3)
    # --det-threshold drops the 0.8 person; the default (0.3) kept it
    assert main([*args[:-2], "--json", str(tmp_path / "one.json"), "--no-save", "--det-threshold", "0.85"]) == 0
    assert len(json.loads((tmp_path / "one.json").read_text())) == 1


def test_predict_refuses_a_file_that_is_no_detector(
    pose_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo(tmp_path)
    assert main(["predict", "--checkpoint", str(pose_onnx), str(photo), "--detector", str(pose_onnx), "--no-save"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx: not a person detector layout" in err[0] and "Traceback" not in err[0]


def test_predictor_takes_a_detector_path(pose_onnx: Path, tmp_path: Path) -> None:
    from fasterpose.deploy.predictor import Predictor

    people = Predictor(pose_onnx, detector=make(tmp_path, "yolox", PEOPLE, [0.9, 0.8]))(str(_photo(tmp_path)))
    np.testing.assert_allclose(as_xyxy(np.stack([p.box for p in people])), PEOPLE, atol=1e-2)
    given = Predictor(pose_onnx, detector=make(tmp_path, "yolox", PEOPLE, [0.9, 0.8]))(image(), [[0, 0, 50, 50, 1.0]])
    assert len(given) == 1  # boxes passed in win over the detector
    own = Predictor(pose_onnx, detector=lambda img: np.array([[10, 20, 60, 90, 0.7]], np.float32))(
        str(_photo(tmp_path))
    )
    assert len(own) == 1 and np.allclose(own[0].box, [10, 20, 60, 90])  # any callable image -> xywh + score


BLOCKER = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, BlockTorch())
"""


def test_the_detector_path_runs_without_torch(pose_onnx: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path)
    dets = {layout: str(make(tmp_path, layout, PEOPLE, [0.9, 0.8])) for layout in ("yolov8", "yolox", "rtmdet")}
    code = (
        BLOCKER
        + f"""
import json
from fasterpose.cli import main
from fasterpose import Predictor
counts = {{}}
for layout, det in {dets!r}.items():
    assert main(["predict", "--checkpoint", {str(pose_onnx)!r}, {str(photo)!r}, "--detector", det,
                 "--json", layout + ".json", "--out", layout]) == 0
    counts[layout] = len(json.load(open(layout + ".json")))
counts["api"] = len(Predictor({str(pose_onnx)!r}, detector={dets["rtmdet"]!r})({str(photo)!r}))
assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "timm")]
print(json.dumps(counts))
"""
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"yolov8": 2, "yolox": 2, "rtmdet": 2, "api": 2}
