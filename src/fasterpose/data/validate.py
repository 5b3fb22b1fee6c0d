"""Validation of an annotation file and its images: list every problem instead of stopping at the first.

Formats: COCO person keypoints (a mapping with ``images`` / ``annotations``), COCO results-format
detections (a list of ``{image_id, bbox, score}``) and MPII's SimpleBaseline JSON (a list of
``{image, center, scale, joints, joints_vis}``). Each problem is one line naming the file and the
entry. Used by ``fasterpose data check``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.data.coco import load_json
from fasterpose.data.coco_schema import (
    EMPTY_BOX,
    coco_problems,
    has_area,
    is_int,
    is_number,
    number_list,
    number_problem,
    person_category,
    read_detection,
)
from fasterpose.data.errors import AnnotationError
from fasterpose.data.image_io import ImageReadError, damaged_message, decode_warnings, read_image_bgr, read_image_bytes


def _is_box(value: Any) -> bool:
    return number_problem(value, 4, "bbox") is None


def _check_image(path: Path, expected: tuple[int, int] | None, problems: list[str]) -> None:
    size = _read_size(path, problems)
    if size is None or expected is None or size == (float(expected[0]), float(expected[1])):
        return
    # an EXIF-turned photo annotated on its stored pixels: training reads those (in_annotated_frame)
    stored = read_image_bgr(path, upright=False)
    if (stored.shape[1], stored.shape[0]) != tuple(expected):
        problems.append(f"{path}: image is {size[0]:g}x{size[1]:g} but the annotation says {expected[0]}x{expected[1]}")


def _check_keypoints(raw: Any, k: int, size: tuple[float, float] | None, where: str, problems: list[str]) -> int:
    """Validate a flat COCO keypoint list; returns the number of labelled joints."""
    values, problem = number_list(raw, 3 * k, "keypoint")
    if values is None:
        problems.append(f"{where}: {problem}")
        return 0
    kpts = values.reshape(k, 3)
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


def _image_sizes(data: dict[str, Any], image_dir: Path | None, problems: list[str]) -> dict[Any, tuple[float, float]]:
    """``image id -> (width, height)`` from the JSON; checks each image file when ``image_dir`` is given."""
    sizes: dict[Any, tuple[float, float]] = {}
    for img in data["images"]:
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str):
            continue  # reported by the schema check
        has_size = all(is_int(img.get(key)) and img[key] > 0 for key in ("width", "height"))
        if has_size and is_int(img.get("id")):
            sizes[img["id"]] = (float(img["width"]), float(img["height"]))
        if image_dir is not None:
            _check_image(image_dir / img["file_name"], (img["width"], img["height"]) if has_size else None, problems)
    return sizes


def _annotation_extras(ann: dict[str, Any], size: tuple[float, float] | None, k: int, where: str) -> list[str]:
    """Problems beyond the schema (visibility, joints or box outside the image, num_keypoints)."""
    problems: list[str] = []
    if _is_box(ann.get("bbox")):
        x, y, w, h = ann["bbox"]
        if not has_area(w, h):
            problems.append(f"{where}: {EMPTY_BOX} {w:g}x{h:g}")
        elif size is not None and (x >= size[0] or y >= size[1] or x + w <= 0 or y + h <= 0):
            problems.append(f"{where}: box {ann['bbox']} lies outside the {size[0]:g}x{size[1]:g} image")
    if number_problem(ann.get("keypoints"), 3 * k, "keypoint") is None:
        labelled = _check_keypoints(ann["keypoints"], k, size, where, problems)
        if is_int(ann.get("num_keypoints")) and ann["num_keypoints"] != labelled:
            problems.append(f"{where}: num_keypoints is {ann['num_keypoints']} but {labelled} joints are labelled")
    return problems


def check_coco(data: dict[str, Any], path: Path, image_dir: Path | None, problems: list[str]) -> dict[str, int]:
    """Schema (as training and COCO evaluation read it), then images and per-annotation extras."""
    cats = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    person = next((c for c in cats if c.get("name") == "person"), None)
    k = len(person["keypoints"]) if person and isinstance(person.get("keypoints"), list) else 17
    problems += coco_problems(data, path, k, for_eval=True)
    if not isinstance(data.get("images"), list):
        return {}
    try:
        person_id = (person_category(data, path) or {}).get("id", 1)
    except AnnotationError:
        person_id = 1
    cat_ids = {c["id"] for c in cats if is_int(c.get("id"))}
    sizes = _image_sizes(data, image_dir, problems)
    anns: list[Any] = data["annotations"] if isinstance(data.get("annotations"), list) else []
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            continue
        where = f"{path}: annotations[{i}] (id {ann.get('id', '?')!r}, image {ann.get('image_id', '?')!r})"
        category = ann.get("category_id", person_id)
        if cat_ids and is_int(category) and category not in cat_ids:
            problems.append(f"{where}: category_id {category} is not in 'categories'")
        if category == person_id:
            size = sizes.get(ann["image_id"]) if is_int(ann.get("image_id")) else None
            problems += _annotation_extras(ann, size, k, where)
    return {"images": len(data["images"]), "annotations": len(anns)}


def check_detections(data: list[Any], path: Path, problems: list[str]) -> dict[str, int]:
    for i, det in enumerate(data):
        where = f"{path}: detection [{i}]"
        d, wrong = read_detection(det)
        if d is None:
            problems += [f"{where}: {p}" for p in wrong]
        elif not has_area(d.box[2], d.box[3]):
            problems.append(f"{where}: {EMPTY_BOX} {d.box[2]:g}x{d.box[3]:g}")
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
        if not is_number(scale) or scale <= 0:
            problems.append(f"{where}: zero, negative, non-numeric or missing person scale {scale!r}")
        if not _is_number_pair(entry.get("center")):
            problems.append(f"{where}: center must be 2 finite numbers, got {entry.get('center')!r}")
        joints: Any = entry.get("joints")
        vis: Any = entry.get("joints_vis")
        if joints is None:
            continue
        pairs_ok = isinstance(joints, list) and all(_is_number_pair(j) for j in joints)
        vis_ok = pairs_ok and isinstance(vis, list) and len(vis) == len(joints) and all(is_number(v) for v in vis)
        if not (pairs_ok and vis_ok):
            problems.append(
                f"{where}: joints must be pairs of finite numbers with one numeric joints_vis value each "
                f"(NaN, strings and missing values are rejected)"
            )
            continue
        # MATLAB 1-based coordinates: shift to 0-based before the bounds check
        flat: list[Any] = []
        for (x, y), v in zip(joints, vis, strict=True):
            labelled = isinstance(v, int | float) and v > 0
            flat += [x - 1 if labelled else 0, y - 1 if labelled else 0, 2 if labelled else 0]
        _check_keypoints(flat, len(joints), sizes.get(str(entry["image"])), where, problems)
    return {"images": len(names), "annotations": len(data)}


def _is_number_pair(value: Any) -> bool:
    return number_problem(value, 2, "pair") is None


def _read_size(path: Path, problems: list[str]) -> tuple[float, float] | None:
    """(width, height) of an image file; a problem when it is unreadable, truncated or damaged."""
    try:
        img, warnings = decode_warnings(read_image_bytes(path), path)
    except ImageReadError as exc:
        problems.append(str(exc))
        return None
    if warnings:
        problems.append(f"{path}: {damaged_message(warnings)}")
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
