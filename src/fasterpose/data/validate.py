"""Validation of an annotation file and its images: list every problem instead of stopping at the first.

Formats: COCO person keypoints (a mapping with ``images`` / ``annotations``), COCO results-format
detections (a list of ``{image_id, bbox, score}``) and MPII's SimpleBaseline JSON (a list of
``{image, center, scale, joints, joints_vis}``). Each problem is one line naming the file and the
entry. Used by ``fasterpose data check``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .coco import AnnotationError, load_json
from .image_io import ImageReadError, read_image_bgr


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def _check_image(path: Path, expected: tuple[int, int] | None, problems: list[str]) -> None:
    size = _read_size(path, problems)
    if size is not None and expected is not None and size != (float(expected[0]), float(expected[1])):
        problems.append(f"{path}: image is {size[0]:g}x{size[1]:g} but the annotation says {expected[0]}x{expected[1]}")


def _check_keypoints(raw: Any, k: int, size: tuple[float, float] | None, where: str, problems: list[str]) -> int:
    """Validate a flat COCO keypoint list; returns the number of labelled joints."""
    if not isinstance(raw, list) or len(raw) != 3 * k:
        got = len(raw) if isinstance(raw, list) else type(raw).__name__
        problems.append(f"{where}: expected {3 * k} keypoint values, got {got}")
        return 0
    try:
        kpts = np.asarray(raw, dtype=np.float64).reshape(k, 3)
    except (TypeError, ValueError):
        problems.append(f"{where}: keypoints are not all numbers")
        return 0
    if not np.isfinite(kpts).all():
        problems.append(f"{where}: keypoints contain NaN or infinity")
        return 0
    bad_vis = sorted({float(v) for v in kpts[:, 2]} - {0.0, 1.0, 2.0})
    if bad_vis:
        problems.append(f"{where}: keypoint visibility must be 0, 1 or 2, found {bad_vis}")
    labelled = kpts[:, 2] > 0
    if size is not None:
        w, h = size
        outside = labelled & ((kpts[:, 0] < 0) | (kpts[:, 0] > w) | (kpts[:, 1] < 0) | (kpts[:, 1] > h))
        for j in np.flatnonzero(outside):
            problems.append(
                f"{where}: keypoint {j} at ({kpts[j, 0]:g}, {kpts[j, 1]:g}) is outside the {w:g}x{h:g} image"
            )
    return int(labelled.sum())


def check_coco(data: dict[str, Any], path: Path, image_dir: Path | None, problems: list[str]) -> dict[str, int]:
    if not isinstance(data.get("images"), list):
        problems.append(f"{path}: no 'images' list")
        return {}
    anns = data.get("annotations")
    if not isinstance(anns, list):
        problems.append(f"{path}: no 'annotations' list")
        anns = []
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    person = next((c for c in cats if c.get("name") == "person"), None)
    k = len(person["keypoints"]) if person and isinstance(person.get("keypoints"), list) else 17
    person_id = int(person["id"]) if person and "id" in person else 1
    images: dict[Any, tuple[float, float] | None] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            problems.append(f"{path}: images[{i}] lacks 'id' or 'file_name'")
            continue
        if img["id"] in images:
            problems.append(f"{path}: images[{i}]: duplicate image id {img['id']}")
        has_size = isinstance(img.get("width"), int) and isinstance(img.get("height"), int)
        if not has_size or img["width"] <= 0 or img["height"] <= 0:
            problems.append(f"{path}: images[{i}] ({img['file_name']}): missing or invalid width/height")
        size = (int(img["width"]), int(img["height"])) if has_size else None
        images[img["id"]] = (float(size[0]), float(size[1])) if size else None
        if image_dir is not None:
            _check_image(image_dir / str(img["file_name"]), size, problems)
    ann_ids: set[Any] = set()
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            problems.append(f"{path}: annotations[{i}] is not a mapping")
            continue
        where = f"{path}: annotations[{i}] (id {ann.get('id', '?')}, image {ann.get('image_id', '?')})"
        if ann.get("id") in ann_ids:
            problems.append(f"{where}: duplicate annotation id")
        ann_ids.add(ann.get("id"))
        if ann.get("image_id") not in images:
            problems.append(f"{where}: image_id is not in 'images'")
        img_size = images.get(ann.get("image_id"))
        if not _is_box(ann.get("bbox")):
            problems.append(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {ann.get('bbox')!r}")
        elif ann["bbox"][2] <= 0 or ann["bbox"][3] <= 0:
            problems.append(f"{where}: zero or negative box size {ann['bbox'][2]:g}x{ann['bbox'][3]:g}")
        elif img_size is not None:
            x, y, w, h = ann["bbox"]
            if x >= img_size[0] or y >= img_size[1] or x + w <= 0 or y + h <= 0:
                problems.append(f"{where}: box {ann['bbox']} lies outside the {img_size[0]:g}x{img_size[1]:g} image")
        if ann.get("category_id", person_id) != person_id or "keypoints" not in ann:
            continue
        labelled = _check_keypoints(ann["keypoints"], k, img_size, where, problems)
        if "num_keypoints" in ann and ann["num_keypoints"] != labelled:
            problems.append(f"{where}: num_keypoints is {ann['num_keypoints']} but {labelled} joints are labelled")
    return {"images": len(images), "annotations": len(anns)}


def check_detections(data: list[Any], path: Path, problems: list[str]) -> dict[str, int]:
    for i, det in enumerate(data):
        where = f"{path}: detection [{i}]"
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            problems.append(f"{where}: lacks 'image_id', 'bbox' or 'score'")
        elif not _is_box(det["bbox"]):
            problems.append(f"{where}: bbox must be 4 finite numbers, got {det['bbox']!r}")
        elif det["bbox"][2] <= 0 or det["bbox"][3] <= 0:
            problems.append(f"{where}: zero or negative box size {det['bbox'][2]:g}x{det['bbox'][3]:g}")
    return {"detections": len(data)}


def check_mpii(data: list[Any], path: Path, image_dir: Path | None, problems: list[str]) -> dict[str, int]:
    names = sorted({str(e["image"]) for e in data if isinstance(e, dict) and "image" in e})
    sizes: dict[str, tuple[float, float] | None] = {}
    for name in names:
        sizes[name] = _read_size(image_dir / name, problems) if image_dir is not None else None
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "image" not in entry:
            problems.append(f"{path}: entry [{i}] lacks 'image'")
            continue
        where = f"{path}: entry [{i}] ({entry['image']})"
        scale = entry.get("scale")
        if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
            problems.append(f"{where}: zero, negative or missing person scale {scale!r}")
        center = entry.get("center")
        if not (isinstance(center, list) and len(center) == 2):
            problems.append(f"{where}: center must be 2 numbers, got {center!r}")
        joints, vis = entry.get("joints"), entry.get("joints_vis")
        if joints is None:
            continue
        pairs_ok = isinstance(joints, list) and all(isinstance(j, list) and len(j) == 2 for j in joints)
        if not (pairs_ok and isinstance(vis, list) and len(vis) == len(joints)):
            problems.append(f"{where}: joints must be (x, y) pairs with one joints_vis value each")
            continue
        # MATLAB 1-based coordinates: shift to 0-based before the bounds check
        flat: list[Any] = []
        for (x, y), v in zip(joints, vis, strict=True):
            labelled = isinstance(v, int | float) and v > 0
            flat += [x - 1 if labelled else 0, y - 1 if labelled else 0, 2 if labelled else 0]
        _check_keypoints(flat, len(joints), sizes.get(str(entry["image"])), where, problems)
    return {"images": len(names), "annotations": len(data)}


def _read_size(path: Path, problems: list[str]) -> tuple[float, float] | None:
    try:
        img = read_image_bgr(path)
    except ImageReadError as exc:
        problems.append(str(exc))
        return None
    return float(img.shape[1]), float(img.shape[0])


def check_annotations(
    ann_file: str | os.PathLike[str], image_dir: str | os.PathLike[str] | None = None
) -> tuple[list[str], dict[str, int]]:
    """Validate an annotation file (and its images when ``image_dir`` is given).

    Returns:
        (problems, counts): one message per problem (empty when all is well) and what was checked.
    """
    path = Path(ann_file)
    problems: list[str] = []
    images = Path(image_dir) if image_dir is not None else None
    if images is not None and not images.is_dir():
        problems.append(f"{images}: image folder not found")
        images = None
    try:
        data = load_json(path)
    except AnnotationError as exc:
        return [*problems, str(exc)], {}
    if isinstance(data, dict):
        counts = check_coco(data, path, images, problems)
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "score" in data[0]:
        counts = check_detections(data, path, problems)
    elif isinstance(data, list):
        counts = check_mpii(data, path, images, problems)
    else:
        problems.append(f"{path}: neither a COCO mapping nor a list of MPII entries or detections")
        counts = {}
    return problems, counts
