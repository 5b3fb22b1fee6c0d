"""``Predictor``: pose estimation for the people in an image, on any runtime.

    image: a BGR uint8 array (as cv2.imread returns it; channel_order="rgb" for RGB), a PIL image or a path
    boxes (P, 4|5) xywh or xyxy [score]
      -> the top-down pipeline (:class:`~fasterpose.pipeline.topdown.TopDownPipeline`)
      -> Results: the people (PosePrediction), in box order, with numpy access, drawing and per-stage speed
    a list of images, a folder or a video -> one Results per image (:meth:`Predictor.stream`)

The same pipeline scores datasets (``fasterpose eval``), so a model's AP and its served
keypoints come from one code path. No torch is imported for ``.onnx`` / ``.xml`` files.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from fasterpose.boxes import BoxFormatWarning, as_xywh, format_warning, outside_image
from fasterpose.config import Config
from fasterpose.deploy.inputs import Item, is_many, iter_items, to_rgb
from fasterpose.deploy.models import model_device, open_model
from fasterpose.deploy.results import Results
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.pipeline.topdown import TopDownPipeline

if TYPE_CHECKING:
    from torch import nn


class Predictor:
    """Pose estimation for the people in an image.

    Args:
        model_or_path: a ``PoseModel`` (then ``cfg`` is required), a training checkpoint, a weights
            file (``.safetensors``), or an exported ``.onnx`` / ``.xml`` file.
        cfg: experiment config (input size, codec, loss, keypoint layout); read from the file when
            omitted.
        runtime: ``auto`` (the CPU runtime measured fastest, see docs/deployment.md; torch on a
            GPU), ``torch``, ``onnxruntime`` or ``openvino``.
        flip_test: also run the mirrored crops and average the flipped-back heatmaps.
        device: torch device (other runtimes are CPU only); ``auto``: CUDA when available for a
            torch model, else the CPU.
        precision: ``fp32`` / ``bf16`` (torch autocast or OpenVINO hint); exported files default to
            the precision they were exported at.
        batch_size: crops per runtime call.
        detector: person boxes for images called without ``boxes``: a detector ``.onnx`` file (ultralytics
            YOLOv8/YOLO11, YOLOX or mmdeploy RTMDet; :class:`~fasterpose.deploy.onnx_detector.OnnxPersonDetector`,
            no torch) or a callable RGB image -> (P, 5) x, y, w, h, score. None: such images are one person.
    """

    def __init__(
        self,
        model_or_path: nn.Module | str | os.PathLike[str],
        cfg: Config | None = None,
        runtime: str = "auto",
        flip_test: bool = False,
        device: str = "auto",
        precision: str | None = None,
        batch_size: int = 32,
        detector: Any = None,
    ) -> None:
        self.device = model_device(device, model_or_path, runtime)
        runner, own = open_model(model_or_path, runtime, precision, self.device, cfg)
        self.cfg = cfg or own
        self.pipeline = TopDownPipeline.from_config(self.cfg, runner, flip_test=flip_test, batch_size=batch_size)
        self.runner = runner
        self.spec = self.pipeline.spec
        self.codec = self.pipeline.codec
        self.input_size = self.pipeline.input_size
        self.padding = self.pipeline.padding
        self.flip_test = flip_test
        from fasterpose.deploy.onnx_detector import open_detector

        self.detector = open_detector(detector, runtime="openvino" if runtime == "openvino" else "auto")

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, 3, H, W) -> heatmaps (N, K, h, w): probabilities for logit models, with flip test."""
        return self.pipeline.heatmaps(crops)

    @overload
    def __call__(
        self,
        image: np.ndarray,
        boxes: Any = None,
        image_id: int = 0,
        box_format: str = "xywh",
        channel_order: str = "bgr",
    ) -> Results: ...
    @overload
    def __call__(
        self,
        image: list[Any] | tuple[Any, ...],
        boxes: Any = None,
        image_id: int = 0,
        box_format: str = "xywh",
        channel_order: str = "bgr",
    ) -> list[Results]: ...
    @overload
    def __call__(
        self,
        image: str | os.PathLike[str] | Any,
        boxes: Any = None,
        image_id: int = 0,
        box_format: str = "xywh",
        channel_order: str = "bgr",
    ) -> Results | list[Results]: ...
    def __call__(
        self,
        image: Any,
        boxes: Any = None,
        image_id: int = 0,
        box_format: str = "xywh",
        channel_order: str = "bgr",
    ) -> Results | list[Results]:
        """Predict every person of an image; a list of images, a folder or a video gives a list of
        :class:`Results`, one per image (``list(self.stream(...))``; see :meth:`stream`).

        Args:
            image: a uint8 (H, W, 3) array in BGR order (as ``cv2.imread`` returns it; ``channel_order="rgb"``
                for an RGB array), a PIL image, or an image path.
            boxes: person boxes (P, 4) or (P, 5) with scores, in image pixels; None = the detector's boxes
                when this Predictor has one, else one person filling the whole image.
            image_id: recorded in each prediction (and its ``to_coco`` entry).
            box_format: ``xywh`` (x, y, width, height: COCO) or ``xyxy`` (x1, y1, x2, y2: torchvision,
                ultralytics, MMDetection). Boxes that fit the image only when read in the other format
                give a warning naming the fix.
            channel_order: ``bgr`` (default, OpenCV's order) or ``rgb``: the order of an array's channels.

        Returns:
            :class:`Results`: one :class:`PosePrediction` per box, in box order (``keypoints`` (K, 3)
            x, y, score in image pixels, ``xy`` (K, 2), ``scores`` (K,), ``box`` xywh, ``score`` = box
            score x mean of the joint scores above ``eval.in_vis_threshold``), with batch arrays,
            ``plot()``, ``save()``, ``to_coco()`` and ``speed`` (ms per stage). No OKS-NMS (see :meth:`suppress`).
        """
        if is_many(image):
            return list(self.stream(image, boxes, box_format, channel_order))
        start = time.perf_counter()
        img = to_rgb(image, channel_order)
        detect_ms = None
        if boxes is None and self.detector is not None:
            found = time.perf_counter()
            boxes, box_format = self.detector(img), "xywh"
            detect_ms = (time.perf_counter() - found) * 1e3
        xywh = None
        if boxes is not None:
            xy, scores = as_xywh(boxes, box_format)  # validates the shape and values first
            h, w = img.shape[:2]
            warning = format_warning(boxes, (w, h), box_format) if len(xy) else None
            if warning:
                warnings.warn(warning, BoxFormatWarning, stacklevel=2)
            xywh = np.concatenate([xy, scores[:, None]], axis=1)
            outside = outside_image(xy, np.array([[w, h]]))
            if outside.any():  # no pixel to look at: a person there would be made up
                i = int(np.flatnonzero(outside)[0])
                warnings.warn(
                    f"{int(outside.sum())} of {len(xy)} boxes lie entirely outside the {w}x{h} image and are "
                    f"skipped (box {i}: {xy[i].round(1).tolist()} as x, y, width, height)",
                    UserWarning,
                    stacklevel=2,
                )
                xywh = xywh[~outside]
        path = str(image) if isinstance(image, str | os.PathLike) else None
        speed = {"preprocess": (time.perf_counter() - start) * 1e3}
        if detect_ms is not None:  # the person detector is its own stage, not part of preprocessing
            speed["preprocess"] -= detect_ms
            speed["detect"] = detect_ms
        people = self.pipeline(img, xywh, image_id, speed=speed)
        return Results(people, img, self.spec, path, speed=speed)

    def stream(
        self, source: Any, boxes: Any = None, box_format: str = "xywh", channel_order: str = "bgr"
    ) -> Iterator[Results]:
        """One :class:`Results` per image of ``source``, as each is done (a video is never held in memory).

        Args:
            source: one image (as for a call), a list or tuple of them, a folder of images (name order;
                ``image_id`` as ``fasterpose predict`` numbers them) or a video file (frames numbered from 0).
                An unreadable image of a folder is skipped with an
                :class:`~fasterpose.deploy.inputs.ImageSkippedWarning` naming it.
            boxes: None (the detector's boxes when this Predictor has one, else one person filling each
                image), a boxes file or :class:`~fasterpose.boxes.BoxTable`, or for a list one entry of boxes
                per image; for one image, its boxes. A boxes file is read as ``fasterpose predict`` reads it:
                looked up by file name, then stem, then image id, where the id is a numeric file name (as
                ``fasterpose predict`` numbers a folder) or a video's frame index, never a list position; in
                ``box_format``; one warning at the end when its boxes fit as the other format, or when none of
                its keys matched an image.
            box_format, channel_order: as for a call (``channel_order`` applies to arrays in a list).

        ``speed["preprocess"]`` includes reading and decoding each image, for a folder and a video too.
        """
        from fasterpose.boxes import BoxTable
        from fasterpose.deploy.boxes import BoxSource

        table = BoxTable.load(Path(boxes), 0.0, box_format) if isinstance(boxes, str | os.PathLike) else boxes
        per_image = is_many(source) and boxes is not None and not isinstance(table, BoxTable)
        if per_image and not isinstance(source, list | tuple):
            raise ValueError("boxes for a folder or a video: a boxes file or BoxTable (or None for whole images)")
        if per_image and len(boxes) != len(source):
            raise ValueError(f"{len(source)} images but {len(boxes)} entries of boxes: give one per image")
        from_file = None
        if isinstance(table, BoxTable):
            table.check_single_image(_image_count(source))
            from_file = BoxSource("file", table)
        for item in iter_items(source, channel_order):
            if is_many(item.image):
                raise ValueError(f"item {item.image_id} of the list is not one image (a list, folder or video)")
            start = time.perf_counter()
            image = _read_item(item, isinstance(source, list | tuple))  # read here, so its time is measured
            if from_file is not None:
                name = Path(item.path).name if item.path else ""
                these = from_file(name, item.box_id, image)
            else:
                these = boxes[item.image_id] if per_image else boxes
            read_ms = item.read_ms + (time.perf_counter() - start) * 1e3
            if from_file is None:
                results = self(image, these, item.image_id, box_format, "rgb")
            else:
                with warnings.catch_warnings():  # misread boxes are counted: one warning at the end
                    warnings.simplefilter("ignore", BoxFormatWarning)
                    results = self(image, these, item.image_id, "xywh", "rgb")
            results.speed["preprocess"] += read_ms
            results.path = item.path
            yield results
        if from_file is not None:
            notes = ((from_file.format_note(), BoxFormatWarning), (from_file.unmatched_warning(), UserWarning))
            for note, kind in notes:
                if note:
                    warnings.warn(note, kind, stacklevel=2)

    @overload
    def suppress(self, people: Results) -> Results: ...
    @overload
    def suppress(self, people: list[PosePrediction]) -> list[PosePrediction]: ...
    def suppress(self, people: Results | list[PosePrediction]) -> Results | list[PosePrediction]:
        """OKS-NMS over one image's people (``eval.oks_nms_threshold``), survivors in input order."""
        kept = self.pipeline.suppress(list(people))
        return people.with_people(kept) if isinstance(people, Results) else kept


def _read_item(item: Item, listed: bool) -> np.ndarray:
    """``item`` as RGB; a bad array or object of a list names its place there (a bad file names itself)."""
    try:
        return to_rgb(item.image, item.channel_order)
    except (ValueError, TypeError) as exc:
        if not listed or type(exc) not in (ValueError, TypeError):
            raise
        raise type(exc)(f"item {item.image_id} of the list: {exc}") from exc


def _image_count(source: Any) -> int:
    """How many images ``source`` holds (0 for a video: unknown until read)."""
    from fasterpose.deploy.sources import image_files

    if isinstance(source, list | tuple):
        return len(source)
    if not is_many(source):
        return 1
    return len(image_files(source)) if Path(source).is_dir() else 0
