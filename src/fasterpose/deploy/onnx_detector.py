"""A person detector from an ONNX file, run by ONNX Runtime or OpenVINO: no torch.

:class:`OnnxPersonDetector` reads the detector files people already have or make with one command,
and returns person boxes as ``(P, 5)`` x, y, width, height, score in image pixels (what
:class:`~fasterpose.deploy.detector.PersonDetector` returns, so the rest of ``predict`` is the same).

Families (``format``) and what their own projects do before and after the network (the facts below
were read from each project's published code and configs; the code here is ours):

``yolov8`` (also YOLO11), ultralytics ``yolo export model=yolov8n.pt format=onnx``
    Output ``(1, 4 + nc, N)`` (``output0``, e.g. ``(1, 84, 8400)``): per anchor cx, cy, w, h in input
    pixels, then ``nc`` class scores (already sigmoid; no objectness); no NMS inside. Input
    ``images`` (1, 3, 640, 640). Preprocessing as ultralytics' ``LetterBox`` and its ONNX Runtime
    example (``examples/YOLOv8-ONNXRuntime``): scale ``r = min(H / h, W / w)``, resized size
    ``round(w r) x round(h r)`` (bilinear), padding split between both sides (``round(pad/2 -
    0.1)`` before, the rest after) with value 114, BGR -> RGB, ``/ 255``. A box's class is its best
    score (ultralytics' NMS, ``multi_label=False``); NMS IoU 0.7 (ultralytics' ``iou`` default).
``yolox``, Megvii YOLOX ``python3 tools/export_onnx.py --output-name yolox_s.onnx -n yolox-s -c yolox_s.pth``
    Output ``(1, N, 5 + nc)`` (``output``): raw per-anchor cx, cy offsets and log w, h on the
    stride-8/16/32 grids, objectness, class scores (both already sigmoid); decoded as YOLOX's
    ``demo_postprocess`` does (``xy = (xy + grid) * stride``, ``wh = exp(wh) * stride``); score =
    objectness x class score, class = the best one (YOLOX's class-agnostic ``multiclass_nms``), NMS
    IoU 0.45 (YOLOX's ONNX Runtime demo and rtmlib). A graph exported with its decoding inside
    (``decode_in_inference``: pixel sizes where raw outputs hold log-space ones, told apart on the
    confident anchors by :func:`yolox_already_decoded`) is read as it is. Preprocessing as YOLOX's ``preproc`` and
    rtmlib's ``YOLOX``: ``r = min(H / h, W / w)``, resized to ``int(w r) x int(h r)`` at the top
    left of a canvas of 114, BGR, raw 0-255 values (no mean / std).
    mmdeploy's YOLOX (``tools/deploy.py configs/mmdet/detection/detection_onnxruntime_static.py
    .../yolox_s_8xb8-300e_coco.py yolox_s.pth demo.jpg``) has the NMS inside: ``dets`` (1, N, 5)
    x1, y1, x2, y2, score in input pixels and ``labels`` (1, N); MMDetection's YOLOX config
    preprocesses the same way (keep-ratio resize, ``Pad`` of 114 at the bottom right, BGR, no
    mean / std).
``rtmdet``, mmdeploy ``tools/deploy.py configs/mmdet/detection/detection_onnxruntime_static.py CONFIG CKPT IMAGE``
    Outputs ``dets`` (1, N, 5) and ``labels`` (1, N) (NMS inside), input ``input``. Preprocessing
    as MMDetection's RTMDet configs (``rtmdet_*_8xb32-300e_coco.py``, also mmpose's person-only
    ``rtmdet_nano_320-8xb32_coco-person.py`` at 320 x 320) and rtmlib's ``RTMDet``: keep-ratio
    resize (``round``), ``Pad`` of 114 at the bottom right, BGR, mean (103.53, 116.28, 123.675),
    std (57.375, 57.12, 58.395).

Person is class 0 in all three (COCO order; also the person-only RTMDet). The layout is read from
the graph's outputs (names and shapes); a ``dets`` / ``labels`` graph is taken as RTMDet unless the
file name contains ``yolox`` (the two differ only in their mean / std), or ``format`` names it. The
input size comes from the graph's input shape (640 when it is dynamic). Boxes are mapped back to
the image by undoing the padding and the per-axis resize factor, then clipped to the image.

Candidates scoring below :data:`MIN_SCORE` (MMDetection's test ``score_thr``) are never kept, at
most :data:`MAX_CANDIDATES` enter the NMS and :data:`MAX_DETECTIONS` leave it (ultralytics'
``max_det``). Greedy NMS keeps the same boxes above any threshold whatever lower-scoring boxes it
also saw, so a later, higher threshold (``predict --det-threshold``) gives what running the
detector at that threshold would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("yolov8", "yolo11", "yolox", "rtmdet")
PERSON = 0
MIN_SCORE = 0.001
MAX_CANDIDATES = 3000
MAX_DETECTIONS = 300
# What a photo gets when nobody chose a threshold: rtmlib keeps detector boxes scoring above 0.3,
# YOLOX's ONNX Runtime demo draws from 0.3.
DEFAULT_SCORE = 0.3
DEFAULT_INPUT = (640, 640)
EMPTY = np.zeros((0, 5), np.float32)


@dataclass(frozen=True)
class Family:
    """How one detector family prepares an image and suppresses duplicates (see the module docstring)."""

    name: str
    centred: bool  # letterbox padding on both sides (ultralytics) or only bottom / right
    rounded: bool  # resized size rounded (ultralytics, MMDetection) or truncated (YOLOX's preproc)
    rgb: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    iou: float
    pad: int = 114


FAMILIES = {
    "yolov8": Family("yolov8", True, True, True, (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), 0.7),
    "yolox": Family("yolox", False, False, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0.45),
    "yolox-mmdeploy": Family("yolox", False, True, False, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0.45),
    "rtmdet": Family("rtmdet", False, True, False, (103.53, 116.28, 123.675), (57.375, 57.12, 58.395), 0.65),
}
# Which output layouts each format may have.
LAYOUTS = {"yolov8": ("channels-first",), "yolox": ("anchors-last", "dets-labels"), "rtmdet": ("dets-labels",)}


class DetectorFileError(ValueError):
    """An ONNX file whose outputs match no detector layout read here (or not the one named)."""


Shape = tuple[int | str | None, ...]


def _describe(outputs: list[tuple[str, Shape]]) -> str:
    def dim(d: int | str | None) -> str:
        return str(d) if isinstance(d, int) else "?"

    return ", ".join(f"{name} ({', '.join(dim(d) for d in shape)})" for name, shape in outputs)


def detect_layout(outputs: list[tuple[str, Shape]]) -> str:
    """The output layout: ``channels-first`` (1, 4+nc, N), ``anchors-last`` (1, N, 5+nc) or
    ``dets-labels`` (dets (1, N, 5) + labels (1, N)); ``""`` when none fits."""
    if len(outputs) == 2:
        by_rank = sorted(outputs, key=lambda o: -len(o[1]))
        (_, dets), (_, labels) = by_rank
        if len(dets) == 3 and dets[2] == 5 and len(labels) == 2:
            return "dets-labels"
        return ""
    if len(outputs) != 1 or len(outputs[0][1]) != 3:
        return ""
    _, a, b = outputs[0][1]
    if isinstance(a, int) and isinstance(b, int):
        if a < b and a >= 5:
            return "channels-first"
        if a > b and b >= 6:
            return "anchors-last"
        return ""
    if isinstance(a, int) and a >= 5:  # the anchor axis is the dynamic one
        return "channels-first"
    if isinstance(b, int) and b >= 6:
        return "anchors-last"
    return ""


def choose_family(path: Path, layout: str, fmt: str | None, outputs: list[tuple[str, Shape]]) -> str:
    """The family (a :data:`FAMILIES` key) for this file's layout and the ``format`` asked for."""
    if not layout:
        raise DetectorFileError(
            f"{path}: not a person detector layout read here (outputs: {_describe(outputs)}); expected ultralytics "
            "YOLOv8/YOLO11 (1, 4+nc, N), YOLOX (1, N, 5+nc), or mmdeploy's dets (1, N, 5) + labels (1, N)"
        )
    if fmt is None:
        fmt = {"channels-first": "yolov8", "anchors-last": "yolox"}.get(layout)
        if fmt is None:  # dets / labels: RTMDet and mmdeploy's YOLOX differ only in their normalisation
            fmt = "yolox" if "yolox" in path.name.lower() else "rtmdet"
    fmt = "yolov8" if fmt == "yolo11" else fmt
    if fmt not in LAYOUTS:
        raise ValueError(f"detector format must be one of {FORMATS}, got {fmt!r}")
    if layout not in LAYOUTS[fmt]:
        raise DetectorFileError(
            f"{path}: outputs {_describe(outputs)} are not a {fmt} layout ({' or '.join(LAYOUTS[fmt])}); "
            "leave --detector-format out to have it read from the file"
        )
    return "yolox-mmdeploy" if fmt == "yolox" and layout == "dets-labels" else fmt


def letterbox(image: np.ndarray, size: tuple[int, int], family: Family) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize ``image`` keeping its aspect ratio into a ``size`` (H, W) canvas of ``family.pad``.

    Returns the canvas, the per-axis scale (x, y) from image to canvas pixels, and the offset (x, y)
    of the image's top-left corner in the canvas.
    """
    import cv2

    h, w = image.shape[:2]
    H, W = size
    r = min(H / h, W / w)
    if family.rounded:
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
    else:
        nw, nh = max(1, int(w * r)), max(1, int(h * r))
    nw, nh = min(nw, W), min(nh, H)
    left = round((W - nw) / 2 - 0.1) if family.centred else 0
    top = round((H - nh) / 2 - 0.1) if family.centred else 0
    canvas = np.full((H, W, 3), family.pad, np.uint8)
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + nh, left : left + nw] = resized
    return canvas, np.array([nw / w, nh / h]), np.array([left, top], dtype=np.float64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept ``boxes`` (N, 4) x1, y1, x2, y2, best first."""
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


def yolox_grid(size: tuple[int, int], strides: tuple[int, ...] = (8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """YOLOX's anchor points: grid cells (N, 2) x, y and their strides (N, 1), stride 8 first."""
    grids, steps = [], []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(size[0] // s), np.arange(size[1] // s), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full((grids[-1].shape[0], 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b[:, :2] - b[:, 2:4] / 2, b[:, :2] + b[:, 2:4] / 2], axis=1)


def decode(
    layout: str, outputs: list[np.ndarray], size: tuple[int, int], path: Path | str = "detector"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Raw outputs -> boxes (N, 4) x1, y1, x2, y2 in input pixels, scores (N,), classes (N,), and
    whether the graph already ran its NMS."""
    if layout == "dets-labels":
        dets, labels = sorted(outputs, key=lambda o: -o.ndim)
        dets = dets[0].astype(np.float32)
        return dets[:, :4], dets[:, 4], labels[0].astype(np.int64), True
    out = outputs[0][0].astype(np.float32)
    if layout == "channels-first":
        pred = out.T  # (N, 4 + nc)
        cls = pred[:, 4:]
        best = cls.argmax(1)
        return _cxcywh_to_xyxy(pred[:, :4]), cls[np.arange(len(cls)), best], best, False
    grid, stride = yolox_grid(size)
    if len(grid) != len(out):
        raise DetectorFileError(
            f"{path}: {len(out)} YOLOX anchors, but a {size[1]}x{size[0]} input has {len(grid)} on the "
            "stride 8/16/32 grids; is this a YOLOX raw export?"
        )
    cls = out[:, 5:] * out[:, 4:5]
    best = cls.argmax(1)
    score = cls[np.arange(len(cls)), best]
    if yolox_already_decoded(out[:, 2:4], score):
        cxcywh = out[:, :4]  # exported with decode_in_inference: pixels already
    else:
        xy = (out[:, :2] + grid) * stride
        wh = np.exp(np.clip(out[:, 2:4], None, 30.0)) * stride
        cxcywh = np.concatenate([xy, wh], axis=1)
    return _cxcywh_to_xyxy(cxcywh), score, best, False


# A raw YOLOX width/height is log(size / stride): 6 means a box 400 times its stride (3200 px at
# stride 8), larger than any detector input. A YOLOX graph exported with its decoding inside
# (``decode_in_inference``) gives sizes in pixels instead, which are above 6 for any real person.
_RAW_YOLOX_WH_MAX = 6.0


def yolox_already_decoded(wh: np.ndarray, score: np.ndarray, min_score: float = 0.05) -> bool:
    """Whether YOLOX outputs (N, 2) width/height of anchors scoring ``score`` (N,) are pixel sizes
    (decoded inside the graph) rather than raw log-space values: decided on the confident anchors."""
    confident = wh[score >= min_score]
    return bool(len(confident)) and float(np.median(confident)) > _RAW_YOLOX_WH_MAX


def _unreadable(path: Path, exc: BaseException) -> DetectorFileError:
    text = " ".join(str(exc).split()).rsplit("failed:", 1)[-1].strip().rstrip(".")[:120]
    return DetectorFileError(f"{path}: not a readable ONNX model (truncated or corrupt?){': ' + text if text else ''}")


class _OrtSession:
    def __init__(self, path: Path, num_threads: int | None) -> None:
        from fasterpose.runtimes.base import ModelFileError
        from fasterpose.runtimes.onnxruntime_runner import OnnxRuntimeRunner

        try:  # the runner's session options; bytes, as a detector carries no FasterPose content hash to check
            self.session = OnnxRuntimeRunner(path.read_bytes(), num_threads).session
        except ModelFileError as exc:
            raise _unreadable(path, exc.__cause__ or exc) from exc
        inp = self.session.get_inputs()[0]
        self.input = (inp.name, tuple(inp.shape))
        self.outputs = [(o.name, tuple(o.shape)) for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o) for o in self.session.run(None, {self.input[0]: x})]


class _OpenVinoSession:
    def __init__(self, path: Path, num_threads: int | None) -> None:
        from fasterpose.runtimes.base import default_num_threads
        from fasterpose.runtimes.openvino_runner import openvino_core

        core = openvino_core()  # the process's one Core (see its docstring)
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:
            raise _unreadable(path, exc) from exc

        def shape(port: Any) -> Shape:
            return tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())

        self.input = (model.inputs[0].get_any_name(), shape(model.inputs[0]))
        self.outputs = [(o.get_any_name(), shape(o)) for o in model.outputs]
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(num_threads or default_num_threads()),
        }
        self.request = core.compile_model(model, "CPU", config).create_infer_request()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return [np.array(self.request.get_output_tensor(i).data) for i in range(len(self.outputs))]


def _input_size(shape: Shape) -> tuple[int, int]:
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int) and shape[2] > 0 and shape[3] > 0:
        return int(shape[2]), int(shape[3])
    return DEFAULT_INPUT


class OnnxPersonDetector:
    """A person detector from an ONNX file (see the module docstring for the families it reads).

    Args:
        path: the detector's ``.onnx`` file.
        format: ``yolov8`` / ``yolo11``, ``yolox`` or ``rtmdet``; None: read from the graph's outputs.
        threshold: boxes scoring below this are dropped (floor :data:`MIN_SCORE`).
        runtime: ``auto`` / ``onnxruntime`` or ``openvino``.
        iou: NMS IoU threshold for graphs without NMS inside (default: the family's own).
        num_threads: runtime threads.

    Call with an RGB uint8 (H, W, 3) image; returns person boxes (P, 5) x, y, w, h, score, best first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        threshold: float = DEFAULT_SCORE,
        runtime: str = "auto",
        iou: float | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"detector file not found: {self.path}")
        from fasterpose.runtimes.suffixes import ONNX, exported_kind

        if exported_kind(self.path) != ONNX:
            raise ValueError(f"{self.path}: a detector must be an .onnx file (ultralytics, YOLOX or mmdeploy export)")
        if runtime == "auto":
            from fasterpose.deploy.runtimes import auto_cpu_runtime

            runtime = auto_cpu_runtime(None)
        if runtime not in ("onnxruntime", "openvino"):
            raise ValueError(f"a detector runs on onnxruntime or openvino, not {runtime!r}")
        self.session = (
            _OrtSession(self.path, num_threads)
            if runtime == "onnxruntime"
            else _OpenVinoSession(self.path, num_threads)
        )
        self.runtime = runtime
        self.layout = detect_layout(self.session.outputs)
        key = choose_family(self.path, self.layout, None if format is None else format.lower(), self.session.outputs)
        self.family = FAMILIES[key]
        self.format = self.family.name
        self.input_size = _input_size(self.session.input[1])
        self.threshold = threshold
        self.iou = self.family.iou if iou is None else iou

    def __repr__(self) -> str:
        return f"OnnxPersonDetector({str(self.path)!r}, format={self.format!r}, input={self.input_size})"

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB uint8 image -> network input (1, 3, H, W) float32, scale (x, y), offset (x, y)."""
        fam = self.family
        canvas, scale, offset = letterbox(image if fam.rgb else image[:, :, ::-1], self.input_size, fam)
        x = (canvas.astype(np.float32) - np.array(fam.mean, np.float32)) / np.array(fam.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), scale, offset

    def postprocess(
        self, outputs: list[np.ndarray], scale: np.ndarray, offset: np.ndarray, image_size: tuple[int, int]
    ) -> np.ndarray:
        """Raw outputs -> person boxes (P, 5) x, y, w, h, score in the pixels of an image of ``image_size`` (W, H)."""
        boxes, scores, classes, suppressed = decode(self.layout, outputs, self.input_size, self.path)
        keep = (classes == PERSON) & (scores >= max(self.threshold, MIN_SCORE)) & np.isfinite(boxes).all(1)
        boxes, scores = boxes[keep], scores[keep]
        if not suppressed and len(scores):
            top = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
            boxes, scores = boxes[top], scores[top]
            kept = nms(boxes, scores, self.iou)[:MAX_DETECTIONS]
            boxes, scores = boxes[kept], scores[kept]
        xyxy = (boxes.astype(np.float64) - np.tile(offset, 2)) / np.tile(scale, 2)
        w, h = image_size
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
        wh = xyxy[:, 2:] - xyxy[:, :2]
        real = (wh > 0).all(1)
        out = np.concatenate([xyxy[:, :2], wh, scores[:, None]], axis=1)[real]
        return out[np.argsort(-out[:, 4], kind="stable")].astype(np.float32) if len(out) else EMPTY.copy()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> person boxes (P, 5) x, y, w, h, score."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"the detector takes an (H, W, 3) image, got shape {image.shape}")
        x, scale, offset = self.preprocess(image)
        return self.postprocess(self.session(x), scale, offset, (image.shape[1], image.shape[0]))


def open_detector(detector: Any, fmt: str | None = None, runtime: str = "auto", **kwargs: Any) -> Any:
    """A detector callable from an ``.onnx`` path (:class:`OnnxPersonDetector`) or an existing callable."""
    if detector is None or callable(detector):
        return detector
    if isinstance(detector, str | os.PathLike):
        return OnnxPersonDetector(detector, fmt, runtime=runtime, **kwargs)
    raise TypeError(f"detector: an .onnx path or a callable image -> (P, 5) boxes, got {type(detector).__name__}")
