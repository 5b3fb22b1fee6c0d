"""Person boxes for ``predict``: a box file, the whole image, or a person detector. No torch here
(the detector loads torchvision only when it is the chosen source).

Order of precedence (:func:`box_provider`): a boxes file, read by :class:`fasterpose.boxes.BoxTable`
(COCO detection results, a ``{file_name: [[...], ...]}`` mapping in ``box_format``, or the JSON that
ultralytics and MMDetection write); ``whole_image`` (one person filling each image); a person
detector ONNX file (:mod:`fasterpose.deploy.onnx_detector`, no torch); torchvision's person detector
from local weights. With none available it stops and says how to pass boxes, rather than guess that
every image holds one person.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.boxes import BoxTable, format_warning

EMPTY = np.zeros((0, 5), np.float32)


class BoxSource:
    """A callable ``(name, image_id, image) -> boxes (P, 5) xywh+score``, or None (the whole image).

    ``image_id`` is looked up in a boxes file only when given (None for files without a numeric name,
    so a COCO detection of image 2 is never handed to ``b.jpg``). Boxes scoring below ``threshold``
    are dropped; it can be set after construction (``predict`` takes it from the model's config).
    """

    def __init__(self, kind: str, table: BoxTable | None = None, detector: Any = None, threshold: float = 0.0):
        self.kind = kind  # "file", "whole-image" or "detector"
        self.table = table
        self.detector = detector
        self.threshold = threshold
        self.misread: list[str] = []  # names of images whose map boxes fit only as the other format
        self.looked_up = 0

    def __call__(self, name: str, image_id: int | None, image: np.ndarray) -> np.ndarray | None:
        if self.kind == "whole-image":
            return None
        if self.table is not None:
            found = self.table.lookup(name, image_id)
            boxes = EMPTY if found is None else found
            if self.table.read_as == "xywh" and len(boxes):  # a map read as xywh: are the numbers xyxy?
                self.looked_up += 1
                if format_warning(boxes[:, :4], (image.shape[1], image.shape[0]), "xywh"):
                    self.misread.append(name)
        else:
            boxes = self.detector(image)
        return boxes[boxes[:, 4] >= self.threshold]

    def format_note(self) -> str | None:
        """One line for the whole run when the map's boxes fit their images as xyxy rather than xywh."""
        if self.table is None or not self.misread or len(self.misread) * 2 < self.looked_up:
            return None
        return (
            f"{self.table.path}: the boxes of {len(self.misread)} of {self.looked_up} images (e.g. {self.misread[0]}) "
            "do not fit the image as x, y, width, height but do as x1, y1, x2, y2: pass --box-format xyxy "
            "if they are xyxy"
        )

    def unmatched_warning(self) -> str | None:
        """The boxes file's warning when none of its keys matched an input (None otherwise)."""
        return None if self.table is None else self.table.unmatched_warning()


def box_provider(
    boxes_file: str | os.PathLike[str] | None = None,
    whole_image: bool = False,
    detector_weights: str | os.PathLike[str] | None = None,
    threshold: float = 0.0,
    box_format: str = "xywh",
    detector: str | os.PathLike[str] | None = None,
    detector_format: str | None = None,
    runtime: str = "auto",
) -> BoxSource:
    """The box source of ``predict``; see the module docstring for the order of precedence."""
    if boxes_file:
        return BoxSource("file", BoxTable.load(Path(boxes_file), 0.0, box_format), threshold=threshold)
    if whole_image:
        return BoxSource("whole-image", threshold=threshold)
    if detector:  # an ONNX person detector file: torch-free (fasterpose.deploy.onnx_detector)
        from fasterpose.deploy.onnx_detector import MIN_SCORE, OnnxPersonDetector

        runtime = "openvino" if runtime == "openvino" else "auto"
        found = OnnxPersonDetector(detector, detector_format, MIN_SCORE, runtime)
        return BoxSource("detector", detector=found, threshold=threshold)
    try:
        from fasterpose.deploy.detector import NO_BOXES_HELP, PersonDetector, find_detector_weights, hub_checkpoints
    except ImportError as exc:  # the runtime install has no torch / torchvision
        raise ValueError(
            "no person boxes: pass --detector DET.onnx (an ultralytics YOLOv8/YOLO11, YOLOX or RTMDet ONNX file), "
            "--boxes DETECTIONS.json (COCO detections, a {file_name: boxes} map, or "
            f"ultralytics / MMDetection JSON) or --whole-image; the built-in person detector needs torch and "
            f"torchvision ({exc})"
        ) from exc

    weights = find_detector_weights(None if detector_weights is None else str(detector_weights))
    if weights is None:
        raise ValueError(NO_BOXES_HELP.format(cache=hub_checkpoints()))
    return BoxSource("detector", detector=PersonDetector(weights, 0.0), threshold=threshold)
