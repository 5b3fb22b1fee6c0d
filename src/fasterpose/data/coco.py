"""COCO person-keypoint annotations and COCO-format person detections, parsed to ``PersonRecord``.

Ground truth is filtered as SimpleBaseline/HRNet do for training (and, with GT boxes, for
validation): only the person category, no crowd regions, boxes clipped to the image
(``x2 = min(W - 1, x1 + max(0, w - 1))``), empty boxes dropped and people without a single
labelled joint dropped. SynthPose writes the same format and goes through the same code.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .records import PersonRecord

log = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """An annotation file that is missing, not valid JSON, or not in the expected layout."""


def load_json(path: str | os.PathLike[str]) -> Any:
    """Load a JSON file; every failure raises :class:`AnnotationError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"{p}: annotation file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{p}: cannot read annotation file ({exc})") from None
    if not text.strip():
        raise AnnotationError(f"{p}: annotation file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise AnnotationError(f"{p}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None


def _person_category_ids(data: dict[str, Any]) -> set[int]:
    cats = data.get("categories") or []
    ids = {int(c["id"]) for c in cats if isinstance(c, dict) and c.get("name") == "person" and "id" in c}
    return ids or {1}


def coco_image_table(data: Any, path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """``image_id -> image entry`` from a COCO dict, validating the fields the pipeline reads."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(f"{path}: not a COCO annotation file (expected a mapping with an 'images' list)")
    table: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise AnnotationError(f"{path}: images[{i}] lacks 'id' or 'file_name'")
        table[int(img["id"])] = img
    return table


def clip_box_simplebaseline(box: list[float], width: float, height: float) -> np.ndarray | None:
    """Clip an ``xywh`` box to the image exactly as SimpleBaseline does; None when it is empty."""
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    x1 = max(0.0, x)
    y1 = max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if not (w * h > 0 and x2 > x1 and y2 > y1):
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32)


def _keypoints(ann: dict[str, Any], num_keypoints: int, where: str) -> np.ndarray:
    raw = ann.get("keypoints")
    if not isinstance(raw, list) or len(raw) != 3 * num_keypoints:
        got = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise AnnotationError(f"{where}: expected {3 * num_keypoints} keypoint values, got {got}")
    try:
        kpts = np.asarray(raw, dtype=np.float32).reshape(num_keypoints, 3)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: keypoints are not all numbers") from None
    if not np.isfinite(kpts).all():
        raise AnnotationError(f"{where}: keypoints contain NaN or infinity")
    return kpts


def parse_coco_keypoints(
    ann_file: str | os.PathLike[str], image_dir: str | os.PathLike[str], num_keypoints: int = 17
) -> list[PersonRecord]:
    """Ground-truth person records from a COCO ``person_keypoints`` JSON (SimpleBaseline filter).

    Returns records with ``box`` (4,) clipped xywh and ``keypoints`` (K, 3) in image pixels.
    """
    data = load_json(ann_file)
    images = coco_image_table(data, ann_file)
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise AnnotationError(f"{ann_file}: no 'annotations' list (is this an image-info file?)")
    person_ids = _person_category_ids(data)
    image_dir = Path(image_dir)
    dropped: Counter[str] = Counter()
    records: list[PersonRecord] = []
    for i, ann in enumerate(anns):
        where = f"{ann_file}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann:
            raise AnnotationError(f"{where}: lacks 'image_id' or 'bbox'")
        if int(ann.get("category_id", 1)) not in person_ids:
            dropped["not a person"] += 1
            continue
        if ann.get("iscrowd", 0):
            dropped["crowd"] += 1
            continue
        img = images.get(int(ann["image_id"]))
        if img is None:
            raise AnnotationError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        kpts = _keypoints(ann, num_keypoints, where)
        if kpts.max() <= 0:
            dropped["no labelled joint"] += 1
            continue
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise AnnotationError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        width, height = float(img.get("width", 0)), float(img.get("height", 0))
        box = clip_box_simplebaseline(bbox, width, height)
        if box is None:
            dropped["empty box after clipping"] += 1
            continue
        records.append(
            PersonRecord(
                image_path=str(image_dir / img["file_name"]),
                image_id=int(ann["image_id"]),
                box=box,
                keypoints=kpts,
                box_score=1.0,
                annotation_id=int(ann.get("id", -1)),
                image_size=(int(width), int(height)),
                extra={"area": float(ann.get("area", 0.0))},
            )
        )
    if dropped:
        log.info("%s: kept %d people, dropped %s", ann_file, len(records), dict(dropped))
    return records


def parse_coco_detections(
    det_file: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    num_keypoints: int = 17,
    score_threshold: float = 0.0,
) -> list[PersonRecord]:
    """Person records from detector boxes in COCO results format (keypoints all zero).

    ``ann_file`` (a COCO keypoint or image-info JSON) maps ``image_id`` to file names. Boxes
    scoring below ``score_threshold`` and boxes with no area are dropped (the latter with a warning).
    """
    dets = load_json(det_file)
    if not isinstance(dets, list):
        raise AnnotationError(f"{det_file}: detections must be a JSON list in COCO results format")
    images = coco_image_table(load_json(ann_file), ann_file)
    image_dir = Path(image_dir)
    records: list[PersonRecord] = []
    bad_boxes = 0
    for i, det in enumerate(dets):
        where = f"{det_file}: detection [{i}]"
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            raise AnnotationError(f"{where}: lacks 'image_id', 'bbox' or 'score'")
        if int(det.get("category_id", 1)) != 1:
            continue
        score = float(det["score"])
        if score < score_threshold:
            continue
        img = images.get(int(det["image_id"]))
        if img is None:
            raise AnnotationError(f"{where}: image_id {det['image_id']} is not in {ann_file}")
        bbox = det["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise AnnotationError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        box = np.asarray(bbox, dtype=np.float32)
        if not (np.isfinite(box).all() and box[2] > 0 and box[3] > 0):
            bad_boxes += 1
            continue
        records.append(
            PersonRecord(
                image_path=str(image_dir / img["file_name"]),
                image_id=int(det["image_id"]),
                box=box,
                keypoints=np.zeros((num_keypoints, 3), dtype=np.float32),
                box_score=score,
                annotation_id=-1,
                image_size=(int(img.get("width", 0)), int(img.get("height", 0))),
            )
        )
    if bad_boxes:
        log.warning("%s: dropped %d detections with zero or negative width/height", det_file, bad_boxes)
    return records
