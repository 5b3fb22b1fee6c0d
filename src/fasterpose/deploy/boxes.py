"""Person boxes for ``predict``: a box file, the whole image, or a person detector. No torch here
(the detector loads torchvision only when it is the chosen source).

Order of precedence (:func:`box_provider`): a boxes file (a COCO detections file
``[{image_id, category_id, bbox: xywh, score}]``, ``image_id`` matched to the numeric file stem or
the frame index, or a ``{file_name: [[x, y, w, h(, score)], ...]}`` mapping); ``whole_image`` (one
person filling each image); torchvision's person detector from local weights. With none available
it stops and says how to pass boxes, rather than guess that every image holds one person.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BoxFn = Callable[[str, int, np.ndarray], "np.ndarray | None"]


def load_box_file(path: str | os.PathLike[str], threshold: float) -> dict[Any, np.ndarray]:
    """Boxes (P, 5) xywh+score keyed by image id (int) or file name (str)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"boxes file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a readable JSON boxes file ({exc})") from exc
    table: dict[Any, list[list[float]]] = {}
    if isinstance(data, dict):
        for key, boxes in data.items():
            rows = [[float(v) for v in b] for b in boxes] if isinstance(boxes, list) else None
            if rows is None or any(len(r) not in (4, 5) for r in rows):
                raise ValueError(f"{p}: boxes for {key!r} must be a list of [x, y, w, h(, score)]")
            table[key] = [r if len(r) == 5 else [*r, 1.0] for r in rows]
    elif isinstance(data, list):
        for i, det in enumerate(data):
            if not isinstance(det, dict) or "bbox" not in det or "image_id" not in det:
                raise ValueError(f"{p}: entry {i} is not a COCO detection ({{image_id, bbox, score}})")
            if int(det.get("category_id", 1)) != 1:
                continue
            table.setdefault(int(det["image_id"]), []).append([*map(float, det["bbox"]), float(det.get("score", 1.0))])
    else:
        raise ValueError(f"{p}: expected a list of COCO detections or a {{file_name: boxes}} mapping")
    out = {}
    for key, rows in table.items():
        arr = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
        out[key] = arr[(arr[:, 4] >= threshold) & (arr[:, 2] > 1) & (arr[:, 3] > 1)]
    return out


def box_provider(
    boxes_file: str | os.PathLike[str] | None = None,
    whole_image: bool = False,
    detector_weights: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
) -> BoxFn:
    """A callable (name, image_id, image) -> boxes (P, 5) xywh+score, or None (the whole image)."""
    if boxes_file:
        table = load_box_file(boxes_file, threshold)
        empty = np.zeros((0, 5), np.float32)
        return lambda name, image_id, image: table.get(name, table.get(image_id, empty))
    if whole_image:
        return lambda name, image_id, image: None
    try:
        from fasterpose.deploy.detector import NO_BOXES_HELP, PersonDetector, find_detector_weights, hub_checkpoints
    except ImportError as exc:  # the runtime install has no torch / torchvision
        raise ValueError(
            "no person boxes: pass --boxes DETECTIONS.json (COCO detections format) or --whole-image; the "
            f"built-in person detector needs torch and torchvision ({exc})"
        ) from exc

    weights = find_detector_weights(None if detector_weights is None else str(detector_weights))
    if weights is None:
        raise ValueError(NO_BOXES_HELP.format(cache=hub_checkpoints()))
    detector = PersonDetector(weights, threshold)
    return lambda name, image_id, image: detector(image)
