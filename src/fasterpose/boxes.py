"""Person boxes in the forms people hand over, and the detector files that carry them.

Everything here is numpy only (no torch), so the torch-free runtime can read boxes too.

Box formats (``box_format``):

* ``"xywh"``: x, y of the top-left corner, width, height (COCO, this project's default);
* ``"xyxy"``: x1, y1, x2, y2 (torchvision, ultralytics, MMDetection, rtmlib);

each optionally followed by a score (P, 5). Internally every box becomes xywh + score.

Box files (:meth:`BoxTable.load`), recognised by their shape:

* COCO detection results: ``[{"image_id", "category_id", "bbox": xywh, "score"}, ...]``; only
  ``category_id == person_category`` (1) is kept;
* a COCO annotation file (``{"images", "annotations", ...}``, e.g. ``person_keypoints_val2017.json``):
  its non-crowd person boxes (the category named ``person``, else ``person_category``), score 1,
  looked up by each image's ``file_name``; a line saying so is logged;
* a mapping ``{file_name: [[x, y, w, h(, score)], ...]}`` (boxes read in ``box_format``);
* ultralytics ``Results.to_json()`` / ``summary()``: ``[{"name", "class", "confidence",
  "box": {"x1", "y1", "x2", "y2"}}, ...]`` for one image, or ``{file_name: [...]}`` for several;
  only ``name == "person"`` (or ``class == person_label`` when there is no name) is kept;
* MMDetection ``DetInferencer`` predictions: ``{"labels", "scores", "bboxes": xyxy}`` for one image,
  ``{file_name: {...}}`` for several, or a folder of ``<image stem>.json`` files (its ``preds/``);
  only ``labels == person_label`` (0, COCO's person in MMDetection's 0-based class list) is kept.

A file for one image (ultralytics or MMDetection) applies to a single-image source only.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.data.coco_schema import has_area, read_detection

log = logging.getLogger(__name__)
BOX_FORMATS = ("xywh", "xyxy")
SINGLE_IMAGE = "<single image>"


class BoxFormatWarning(UserWarning):
    """Boxes that fit the image only when read in the other format (:func:`format_warning`)."""


class BoxFileError(ValueError):
    """A boxes file that cannot be read as any supported format (message names file and entry)."""


def as_xywh(boxes: Any, box_format: str = "xywh") -> tuple[np.ndarray, np.ndarray]:
    """Boxes (P, 4) or (P, 5) with scores, in ``box_format`` -> (P, 4) xywh float32, (P,) scores."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f"boxes must have shape (P, 4) or (P, 5) ({box_format}[, score]), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("boxes contain NaN or infinite values")
    scores = arr[:, 4].copy() if arr.shape[1] == 5 else np.ones(len(arr), np.float32)
    xywh = arr[:, :4].copy()
    if box_format == "xyxy":
        xywh[:, 2:] -= xywh[:, :2]
    return xywh, scores


def _fits(xyxy: np.ndarray, width: float, height: float, slack: float) -> np.ndarray:
    """Per box: positive size and inside the image grown by ``slack`` of its size on each side."""
    x1, y1, x2, y2 = xyxy.T
    mx, my = slack * width, slack * height
    return (x2 > x1) & (y2 > y1) & (x1 >= -mx) & (y1 >= -my) & (x2 <= width + mx) & (y2 <= height + my)


def looks_xyxy(xywh: np.ndarray, image_wh: np.ndarray, slack: float = 0.1) -> np.ndarray:
    """Per box (N, 4) read as xywh, with its image's (N, 2) width and height: it does not fit the image
    but its xyxy reading does (the rule of :func:`format_warning`, per box)."""
    xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
    wh = np.asarray(image_wh, np.float64).reshape(-1, 2)
    as_given = xywh.copy()
    as_given[:, 2:] += as_given[:, :2]
    w, h = wh[:, 0], wh[:, 1]
    return ~_fits(as_given, w, h, slack) & _fits(xywh, w, h, slack)  # type: ignore[arg-type]


def outside_image(xywh: np.ndarray, image_wh: np.ndarray) -> np.ndarray:
    """Per xywh box (N, 4): no pixel of it inside its image (N, 2) (a person drawn at x = 5058)."""
    xywh = np.asarray(xywh, np.float64).reshape(-1, 4)
    wh = np.asarray(image_wh, np.float64).reshape(-1, 2)
    x1, y1 = xywh[:, 0], xywh[:, 1]
    x2, y2 = x1 + xywh[:, 2], y1 + xywh[:, 3]
    return (x2 <= 0) | (y2 <= 0) | (x1 >= wh[:, 0]) | (y1 >= wh[:, 1])


def format_warning(boxes: Any, image_wh: tuple[int, int], box_format: str, slack: float = 0.1) -> str | None:
    """A warning when the boxes look like the other format than ``box_format``; None when they fit.

    An xywh box whose right/bottom edge falls far outside the image while its xyxy reading fits (or
    an xyxy box with x2 <= x1 or y2 <= y1 while its xywh reading fits) is counted; the warning comes
    when at least half of the boxes are such.
    """
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, np.shape(boxes)[-1] if np.size(boxes) else 4)[:, :4]
    if len(arr) == 0:
        return None
    w, h = float(image_wh[0]), float(image_wh[1])
    as_given = arr.copy()
    other = arr.copy()
    if box_format == "xywh":
        as_given[:, 2:] += as_given[:, :2]  # xyxy view of the boxes read as xywh
    else:
        other[:, 2:] += other[:, :2]  # xyxy view of the boxes read as xywh
    bad = ~_fits(as_given, w, h, slack) & _fits(other, w, h, slack)
    if bad.sum() * 2 < len(arr):
        return None
    other_name = "xyxy" if box_format == "xywh" else "xywh"
    return (
        f"{int(bad.sum())} of {len(arr)} boxes do not fit a {w:.0f}x{h:.0f} image as {box_format} but do as "
        f"{other_name}: pass box_format='{other_name}' (CLI: --box-format {other_name}) if they are {other_name}"
    )


def _number(value: Any, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BoxFileError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(out):
        raise BoxFileError(f"{where}: {value!r} is not finite")
    return out


def _rows(rows: Any, where: str, box_format: str) -> list[list[float]]:
    """A list of [4 or 5 numbers] boxes in ``box_format`` -> xywh+score rows."""
    if not isinstance(rows, list):
        raise BoxFileError(f"{where}: expected a list of boxes, got {type(rows).__name__}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) not in (4, 5):
            raise BoxFileError(f"{where}[{i}]: a box is [x, y, w, h(, score)] ({box_format}), got {row!r}")
        vals = [_number(v, f"{where}[{i}]") for v in row]
        xywh, score = as_xywh([vals], box_format)
        out.append([*xywh[0].tolist(), float(score[0])])
    return out


def _is_ultralytics(entries: Any) -> bool:
    return isinstance(entries, list) and all(isinstance(e, dict) and "box" in e for e in entries) and bool(entries)


def _is_mmdet(entry: Any) -> bool:
    return isinstance(entry, dict) and "bboxes" in entry and ("scores" in entry or "labels" in entry)


def _ultralytics_rows(entries: list[dict[str, Any]], where: str, person_label: int) -> list[list[float]]:
    out = []
    for i, e in enumerate(entries):
        is_person = e.get("name") == "person" if "name" in e else int(e.get("class", -1)) == person_label
        if not is_person:
            continue
        box = e["box"]
        if not isinstance(box, dict) or not {"x1", "y1", "x2", "y2"} <= box.keys():
            raise BoxFileError(f"{where}[{i}]: ultralytics box must have x1, y1, x2, y2, got {box!r}")
        x1, y1, x2, y2 = (_number(box[k], f"{where}[{i}].box.{k}") for k in ("x1", "y1", "x2", "y2"))
        out.append([x1, y1, x2 - x1, y2 - y1, _number(e.get("confidence", 1.0), f"{where}[{i}].confidence")])
    return out


def _mmdet_rows(entry: dict[str, Any], where: str, person_label: int) -> list[list[float]]:
    bboxes = entry["bboxes"]
    n = len(bboxes) if isinstance(bboxes, list) else -1
    labels = entry.get("labels", [person_label] * max(n, 0))
    scores = entry.get("scores", [1.0] * max(n, 0))
    if n < 0 or not isinstance(labels, list) or not isinstance(scores, list) or not len(labels) == len(scores) == n:
        raise BoxFileError(f"{where}: MMDetection 'bboxes', 'labels' and 'scores' must be lists of one length")
    out = []
    for i, (box, label, score) in enumerate(zip(bboxes, labels, scores, strict=True)):
        if int(_number(label, f"{where}.labels[{i}]")) != person_label:
            continue
        (row,) = _rows([[*box, score]] if isinstance(box, list) else [box], f"{where}.bboxes[{i}]", "xyxy")
        out.append(row)
    return out


def empty_box_warning(path: Path, empty: int, total: int, box_format: str) -> str | None:
    """A warning for boxes of a file dropped for a zero or negative width or height (None when none were);
    when half or more of an xyxy file is such (x2 <= x1 or y2 <= y1), its likely fix: the numbers are xywh."""
    if not empty:
        return None
    msg = f"{path}: {empty} of {total} boxes have a zero or negative width or height and are dropped"
    if box_format == "xyxy" and empty * 2 >= total:
        msg += " (x2 <= x1 or y2 <= y1 as xyxy): pass --box-format xywh (box_format='xywh') if they are xywh"
    return msg


@dataclass
class BoxTable:
    """Person boxes (P, 5) xywh+score per image, looked up by file name, stem or numeric image id."""

    path: Path
    boxes: dict[Any, np.ndarray]
    matched: set[Any] = field(default_factory=set)
    read_as: str | None = None  # the box_format a {file_name: boxes} map was read in (None: the file's own)

    @classmethod
    def load(
        cls,
        path: str | Path,
        threshold: float = 0.0,
        box_format: str = "xywh",
        person_category: int = 1,
        person_label: int = 0,
    ) -> BoxTable:
        """Read any supported boxes file (or a folder of MMDetection per-image JSONs); keep score >= threshold."""
        p = Path(path)
        if p.is_dir():
            files = sorted(p.glob("*.json"))
            if not files:
                raise BoxFileError(f"{p}: a boxes folder must hold MMDetection per-image <stem>.json files; none found")
            data: Any = {f.stem: _read_json(f) for f in files}
        elif p.is_file():
            data = _read_json(p)
        else:
            raise FileNotFoundError(f"boxes file not found: {p}")
        if _is_coco_annotations(data):
            table = _coco_annotations(data, str(p), person_category)
            count = sum(len(rows) for rows in table.values())
            log.info(
                "%s: a COCO annotation file: using its %d non-crowd person boxes (ground truth, score 1) of %d images",
                p,
                count,
                len(table),
            )
        else:
            table = _parse(data, str(p), box_format, person_category, person_label)
        out, total, empty = {}, 0, 0
        for key, rows in table.items():
            arr = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
            sized = has_area(arr[:, 2], arr[:, 3])
            total, empty = total + len(arr), empty + int((~sized).sum())
            out[key] = arr[(arr[:, 4] >= threshold) & sized]
        warning = empty_box_warning(p, empty, total, box_format)
        if warning:
            warnings.warn(warning, UserWarning, stacklevel=2)
        is_map = isinstance(data, dict) and not _is_mmdet(data) and not _is_coco_annotations(data)
        is_map = is_map and any(not (_is_mmdet(v) or _is_ultralytics(v)) for v in data.values())
        return cls(p, out, read_as=box_format if is_map else None)

    def lookup(self, name: str, image_id: int | None = None) -> np.ndarray | None:
        """Boxes for one image by file name, then stem, then image id (a number, or its digits as a map's key:
        ``{"785": ...}`` is ``000000000785.jpg``'s); None when the file has none for it."""
        digits = str(image_id) if image_id is not None else None
        keys: Iterable[Any] = (name, Path(name).stem, image_id, digits, SINGLE_IMAGE)
        for key in keys:
            if key is not None and key in self.boxes:
                self.matched.add(key)
                return self.boxes[key]
        return None

    def check_single_image(self, num_images: int) -> None:
        if SINGLE_IMAGE in self.boxes and num_images != 1:
            raise BoxFileError(
                f"{self.path}: holds the boxes of one image (ultralytics/MMDetection single-image output) but the "
                f"source has {num_images} images; use a {{file_name: ...}} mapping or a folder of <stem>.json files"
            )

    def unmatched_warning(self) -> str | None:
        """A warning when no key of the file matched any input image name or id."""
        if self.matched or not self.boxes:
            return None
        sample = ", ".join(repr(k) for k in list(self.boxes)[:3])
        return (
            f"{self.path}: none of its {len(self.boxes)} image keys (e.g. {sample}) matched an input file name, "
            "stem or numeric image id: every image was processed without boxes"
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoxFileError(f"{path}: not a readable JSON boxes file ({exc})") from exc


def _parse(data: Any, where: str, box_format: str, person_category: int, person_label: int) -> dict[Any, list]:
    if _is_ultralytics(data):
        return {SINGLE_IMAGE: _ultralytics_rows(data, where, person_label)}
    if _is_mmdet(data):
        return {SINGLE_IMAGE: _mmdet_rows(data, where, person_label)}
    if isinstance(data, list):
        return _coco_detections(data, where, person_category)
    if not isinstance(data, dict):
        raise BoxFileError(f"{where}: expected COCO detections, a {{file_name: boxes}} mapping, or detector output")
    table: dict[Any, list] = {}
    for key, value in data.items():
        at = f"{where}: {key!r}"
        if _is_mmdet(value):
            table[key] = _mmdet_rows(value, at, person_label)
        elif _is_ultralytics(value):
            table[key] = _ultralytics_rows(value, at, person_label)
        else:
            table[key] = _rows(value, at, box_format)
    return table


def _is_coco_annotations(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


def _coco_annotations(data: dict[str, Any], where: str, person_category: int) -> dict[Any, list]:
    """A COCO annotation file's non-crowd person boxes (score 1) by image ``file_name`` (its base name)."""
    named = [c.get("id") for c in data.get("categories") or [] if isinstance(c, dict) and c.get("name") == "person"]
    person = int(_number(named[0], f"{where}: categories")) if named else person_category
    names: dict[int, str] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise BoxFileError(f"{where}: images[{i}] needs an id and a file_name")
        names[int(_number(image["id"], f"{where}: images[{i}].id"))] = Path(image["file_name"]).name
    table: dict[Any, list] = {name: [] for name in names.values()}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "bbox" not in ann or "image_id" not in ann:
            raise BoxFileError(f"{where}: annotations[{i}] is not a COCO annotation ({{image_id, bbox, ...}})")
        if ann.get("iscrowd") or int(_number(ann.get("category_id", person), f"{where}: annotations[{i}]")) != person:
            continue
        image_id = int(_number(ann["image_id"], f"{where}: annotations[{i}].image_id"))
        if image_id not in names:
            raise BoxFileError(f"{where}: annotations[{i}] refers to image_id {image_id}, which is not in images")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise BoxFileError(f"{where}: annotations[{i}].bbox must be [x, y, w, h], got {bbox!r}")
        table[names[image_id]].append([*(_number(v, f"{where}: annotations[{i}].bbox") for v in bbox), 1.0])
    return table


def _coco_detections(data: list[Any], where: str, person_category: int) -> dict[Any, list]:
    table: dict[Any, list] = {}
    for i, det in enumerate(data):
        d, problems = read_detection(det, default_score=1.0)  # the detection reader of data.coco and validate
        if d is None:
            raise BoxFileError(
                f"{where}: entry {i} {'; '.join(problems)} (a COCO detection is {{image_id, bbox, score}})"
            )
        if d.category_id not in (None, person_category):
            continue
        table.setdefault(d.image_id, []).append([*d.box.tolist(), d.score])
    return table
