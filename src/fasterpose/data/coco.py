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

from fasterpose.boxes import looks_xyxy, outside_image
from fasterpose.data.coco_schema import (
    EMPTY_BOX,
    has_area,
    other_keypoint_categories,
    person_category,
    read_detection,
    require_coco,
)
from fasterpose.data.errors import AnnotationError
from fasterpose.data.records import PersonRecord

log = logging.getLogger(__name__)


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


def coco_image_table(data: Any, path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """``image_id -> image entry`` of a COCO dict whose images were validated (:func:`require_coco`)."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(f"{path}: not a COCO annotation file (expected a mapping with an 'images' list)")
    return {int(img["id"]): img for img in data["images"]}


def person_category_id(data: dict[str, Any], path: str | os.PathLike[str]) -> int:
    """Id of the person category (any id, found by name); 1 when the file lists no categories."""
    person = person_category(data, path)
    if person is None:
        return 1
    other = other_keypoint_categories(data, person["id"])
    if other:
        log.warning(
            "%s: categories %s also have keypoints; only %r (id %s) is used",
            path,
            other,
            person.get("name"),
            person["id"],
        )
    return int(person["id"])


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


def parse_coco_keypoints(
    ann_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    num_keypoints: int = 17,
    for_eval: bool = False,
) -> list[PersonRecord]:
    """Ground-truth person records from a COCO ``person_keypoints`` JSON (SimpleBaseline filter).

    The file is validated first (:func:`~fasterpose.data.coco_schema.require_coco`; with
    ``for_eval`` also what COCO evaluation reads), so a malformed entry fails here, naming the file
    and the entry, not in the middle of training. Returns records with ``box`` (4,) clipped xywh and
    ``keypoints`` (K, 3) in image pixels.
    """
    data = load_json(ann_file)
    require_coco(data, ann_file, num_keypoints, for_eval=for_eval)
    images = coco_image_table(data, ann_file)
    person_id = person_category_id(data, ann_file)
    image_dir = Path(image_dir)
    dropped: Counter[str] = Counter()
    records: list[PersonRecord] = []
    for ann in data["annotations"]:
        if ann.get("category_id", person_id) != person_id:
            dropped["not a person"] += 1
            continue
        if ann.get("iscrowd", 0):
            dropped["crowd"] += 1
            continue
        img = images[ann["image_id"]]
        kpts = np.asarray(ann["keypoints"], dtype=np.float32).reshape(num_keypoints, 3)
        if kpts.max() <= 0:
            dropped["no labelled joint"] += 1
            continue
        width, height = float(img.get("width", 0)), float(img.get("height", 0))
        box = clip_box_simplebaseline(ann["bbox"], width, height)
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
                annotation_id=int(ann["id"]),
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

    ``ann_file`` (a COCO keypoint or image-info JSON) maps ``image_id`` to file names; a keypoint
    file is validated as evaluation ground truth. A detection that is not a mapping, or whose
    image id, score or box is not a (finite) number, is an error. Boxes scoring below
    ``score_threshold`` are dropped; boxes with no area are dropped with a warning, and so are the
    images left without any box (their people count as missed).
    """
    dets = load_json(det_file)
    if not isinstance(dets, list):
        raise AnnotationError(f"{det_file}: detections must be a JSON list in COCO results format")
    ann_data = load_json(ann_file)
    has_annotations = isinstance(ann_data, dict) and "annotations" in ann_data
    require_coco(ann_data, ann_file, num_keypoints, for_eval=has_annotations, need_sizes=False, need_annotations=False)
    images = coco_image_table(ann_data, ann_file)
    person_id = person_category_id(ann_data, ann_file)
    image_dir = Path(image_dir)
    records: list[PersonRecord] = []
    skipped: Counter[str] = Counter()
    other_categories: set[Any] = set()
    covered: set[int] = set()
    for i, det in enumerate(dets):
        where = f"{det_file}: detection [{i}]"
        d, problems = read_detection(det)
        if d is None:
            raise AnnotationError(f"{where}: {'; '.join(problems)}")
        box, score = d.box, d.score
        if d.category_id not in (None, person_id):
            other_categories.add(d.category_id)
            continue
        img = images.get(d.image_id)
        if img is None:
            raise AnnotationError(f"{where}: image_id {d.image_id} is not in {ann_file}")
        covered.add(d.image_id)
        if score < score_threshold:
            skipped["below score threshold"] += 1
            continue
        if not has_area(box[2], box[3]):
            skipped[EMPTY_BOX] += 1
            continue
        size = (int(img.get("width", 0)), int(img.get("height", 0)))
        if min(size) > 0 and outside_image(np.asarray(box), np.asarray(size))[0]:
            skipped["entirely outside the image"] += 1
            continue
        records.append(
            PersonRecord(
                image_path=str(image_dir / img["file_name"]),
                image_id=d.image_id,
                box=box,
                keypoints=np.zeros((num_keypoints, 3), dtype=np.float32),
                box_score=score,
                annotation_id=-1,
                image_size=(int(img.get("width", 0)), int(img.get("height", 0))),
            )
        )
    if dets and not covered and other_categories:
        raise AnnotationError(
            f"{det_file}: none of the {len(dets)} detections has the person category id {person_id} of {ann_file} "
            f"(found category ids {sorted(other_categories, key=str)[:10]})"
        )
    check_detection_box_format(det_file, records)
    _report_detection_coverage(det_file, ann_file, len(images), covered, {r.image_id for r in records}, skipped)
    return records


def check_detection_box_format(det_file: str | os.PathLike[str], records: list[PersonRecord]) -> None:
    """Refuse a detection file whose boxes are [x1, y1, x2, y2], not COCO's [x, y, width, height].

    The rule is ``predict``'s (:func:`fasterpose.boxes.format_warning`): a box that does not fit its
    image as xywh but does as xyxy counts; half or more of the boxes (of images with a known size)
    is an error naming the fix, fewer a warning counting them.
    """
    sized = [r for r in records if r.image_size and min(r.image_size) > 0]
    if not sized:
        return
    bad = int(looks_xyxy(np.stack([r.box for r in sized]), np.array([r.image_size for r in sized])).sum())
    if not bad:
        return
    what = (
        f"{det_file}: {bad} of {len(sized)} detection boxes do not fit their image as [x, y, width, height] "
        "(the COCO results format) but do as [x1, y1, x2, y2]"
    )
    if bad * 2 >= len(sized):
        raise AnnotationError(f"{what}: convert them to [x1, y1, x2 - x1, y2 - y1] and pass the new file")
    log.warning("%s: check the box format of those detections", what)


def _report_detection_coverage(
    det_file: str | os.PathLike[str],
    ann_file: str | os.PathLike[str],
    num_images: int,
    covered: set[int],
    kept: set[int],
    skipped: Counter[str],
) -> None:
    if skipped[EMPTY_BOX]:
        log.warning(
            "%s: dropped %d detections with a zero or negative box size",
            det_file,
            skipped[EMPTY_BOX],
        )
    if skipped["entirely outside the image"]:
        log.warning(
            "%s: dropped %d detections entirely outside their image", det_file, skipped["entirely outside the image"]
        )
    if len(covered) < num_images:
        log.warning(
            "%s: %d of the %d images in %s have no person detection; their people count as missed",
            det_file,
            num_images - len(covered),
            num_images,
            ann_file,
        )
    if len(kept) < len(covered):
        log.warning(
            "%s: %d more images have no detection left after the score threshold and the box checks",
            det_file,
            len(covered) - len(kept),
        )
