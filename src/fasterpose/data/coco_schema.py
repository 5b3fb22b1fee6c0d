"""The COCO keypoint file schema: which category is the person, and what every entry must hold.

One set of rules serves three readers: the parser that feeds training and evaluation
(:func:`~fasterpose.data.coco.parse_coco_keypoints`, which raises on the first problems),
``fasterpose data check`` (which lists them all) and the COCO evaluator (before pycocotools sees the
file). pycocotools checks none of this: a string id, a duplicate annotation id, a NaN joint or a
second category with keypoints changes the AP without a word.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from fasterpose.data.errors import AnnotationError, summarize

PathLike = str | os.PathLike[str]


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer (not a bool, not a string, not a float)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (int or float, not a bool or a string)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


_PLAIN = frozenset((int, float))


def number_problem(raw: Any, length: int | None, what: str) -> str | None:
    """None when ``raw`` is a list of ``length`` finite numbers, else what is wrong with it.

    The problem names the first offending position (``keypoint[4] is 'abc' (not a number)``), so
    that a message built on it points at the value to fix. Plain JSON lists take a fast path
    (types checked, finiteness by one sum) that keeps a 250k-annotation file to a few seconds.
    """
    if not isinstance(raw, list):
        return f"{what} must be a list of numbers, got {type(raw).__name__}"
    if length is not None and len(raw) != length:
        return f"expected {length} {what} values, got {len(raw)}"
    if _PLAIN.issuperset(map(type, raw)) and math.isfinite(sum(raw)):
        return None
    for i, v in enumerate(raw):
        if not is_number(v):
            kind = "not a finite number" if isinstance(v, int | float) and not isinstance(v, bool) else "not a number"
            return f"{what}[{i}] is {v!r} ({kind})"
    return None  # finite numbers whose sum overflows


def number_list(raw: Any, length: int | None, what: str) -> tuple[np.ndarray | None, str | None]:
    """``raw`` as float64 (N,) when it is a list of finite numbers; else ``(None, problem)`` (see
    :func:`number_problem`)."""
    problem = number_problem(raw, length, what)
    if problem is not None:
        return None, problem
    return np.asarray(raw, dtype=np.float64), None


EMPTY_BOX = "zero or negative box size"


def has_area(width: Any, height: Any) -> Any:
    """The one empty-box rule of every box source (annotations, detection files, user boxes): a box
    needs a width and a height above 0 px (element-wise for arrays)."""
    return (width > 0) & (height > 0) if isinstance(width, np.ndarray) else width > 0 and height > 0


@dataclass(frozen=True)
class Detection:
    """One entry of a COCO results-format detection file: ``{image_id, category_id?, bbox, score}``."""

    image_id: int
    category_id: int | None
    box: np.ndarray  # (4,) float32 [x, y, w, h]
    score: float


def read_detection(det: Any, default_score: float | None = None) -> tuple[Detection | None, list[str]]:
    """One COCO detection entry checked: ``(Detection, [])``, or ``(None, every problem found)``.

    ``image_id`` and ``category_id`` (optional) are integers, ``bbox`` is 4 finite numbers, ``score`` a
    finite number (missing: ``default_score``, when given). The box's area is not judged here (see
    :func:`has_area`): a caller drops or reports an empty box by its own duty.
    """
    need = ["image_id", "bbox"] + ([] if default_score is not None else ["score"])
    if not isinstance(det, dict) or not set(need) <= det.keys():
        return None, ["lacks " + ", ".join(map(repr, need[:-1])) + f" or {need[-1]!r}"]
    problems = []
    if not is_int(det["image_id"]):
        problems.append(f"image_id must be an integer, got {det['image_id']!r}")
    if "category_id" in det and not is_int(det["category_id"]):
        problems.append(f"category_id must be an integer, got {det['category_id']!r}")
    score = det.get("score", default_score)
    if not is_number(score):
        problems.append(f"score is {score!r}, not a finite number")
    box, problem = number_list(det["bbox"], 4, "bbox")
    if problem is not None:
        problems.append(f"{problem} (bbox is [x, y, w, h])")
    if problems or box is None or not is_number(score):
        return None, problems
    category = int(det["category_id"]) if "category_id" in det else None
    return Detection(int(det["image_id"]), category, box.astype(np.float32), float(score)), []


def person_category(data: Mapping[str, Any], path: PathLike) -> dict[str, Any] | None:
    """The category whose keypoints are scored: the one named ``person``, whatever its id.

    A file whose categories include no ``person`` but exactly one category with keypoints uses
    that one. Returns None when the file has no ``categories`` list (callers treat category id 1,
    or a missing ``category_id``, as the person).

    Raises:
        AnnotationError: two categories named ``person``, or categories of which none is a person.
    """
    cats = data.get("categories")
    if not cats:
        return None
    if not isinstance(cats, list):
        raise AnnotationError(f"{path}: 'categories' must be a list, got {type(cats).__name__}")
    entries = [c for c in cats if isinstance(c, dict)]
    named = [c for c in entries if c.get("name") == "person"]
    if len(named) > 1:
        raise AnnotationError(
            f"{path}: {len(named)} categories are named 'person' (ids {[c.get('id') for c in named]})"
        )
    if named:
        return named[0]
    with_keypoints = [c for c in entries if c.get("keypoints")]
    if len(with_keypoints) == 1:
        return with_keypoints[0]
    names = [c.get("name") for c in entries][:10]
    raise AnnotationError(f"{path}: no category named 'person' among the categories {names}")


def other_keypoint_categories(data: Mapping[str, Any], person_id: Any) -> list[str]:
    """Names (or ids) of the categories other than the person that declare keypoints."""
    cats: list[Any] = data["categories"] if isinstance(data.get("categories"), list) else []
    return [
        str(c.get("name", c.get("id")))
        for c in cats
        if isinstance(c, dict) and c.get("keypoints") and c.get("id") != person_id
    ]


def person_annotation_problems(ann: Mapping[str, Any], num_keypoints: int, where: str, for_eval: bool) -> list[str]:
    """What is wrong with one person annotation (keypoints, bbox, area, num_keypoints, iscrowd)."""
    problems = []
    if "keypoints" not in ann:
        problems.append(f"{where}: lacks 'keypoints' (a person annotation needs {3 * num_keypoints} values)")
    else:
        problem = number_problem(ann["keypoints"], 3 * num_keypoints, "keypoint")
        if problem:
            problems.append(f"{where}: {problem}")
    if "bbox" not in ann:
        problems.append(f"{where}: lacks 'bbox'")
    else:
        problem = number_problem(ann["bbox"], 4, "bbox")
        if problem:
            problems.append(f"{where}: {problem} (bbox is [x, y, w, h])")
    if "area" in ann:
        if not is_number(ann["area"]) or ann["area"] < 0:
            problems.append(f"{where}: area is {ann['area']!r}, not a number >= 0")
    elif for_eval:
        problems.append(f"{where}: lacks 'area' (COCO evaluation scales OKS by it)")
    if "num_keypoints" in ann:
        if not is_int(ann["num_keypoints"]) or not 0 <= ann["num_keypoints"] <= num_keypoints:
            problems.append(f"{where}: num_keypoints is {ann['num_keypoints']!r}, not an integer in 0..{num_keypoints}")
    elif for_eval:
        problems.append(f"{where}: lacks 'num_keypoints' (COCO evaluation ignores people with 0)")
    if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
        problems.append(f"{where}: iscrowd is {ann['iscrowd']!r}, not 0 or 1")
    return problems


def _category_problems(data: Mapping[str, Any], path: PathLike, num_keypoints: int, for_eval: bool) -> list[str]:
    problems = []
    try:
        person = person_category(data, path)
    except AnnotationError as exc:
        return [str(exc)]
    seen: set[Any] = set()
    for i, cat in enumerate(data.get("categories") or []):
        if not isinstance(cat, dict) or not is_int(cat.get("id")):
            problems.append(f"{path}: categories[{i}]: id must be an integer, got {_get(cat, 'id')!r}")
        elif cat["id"] in seen:
            problems.append(f"{path}: categories[{i}]: duplicate category id {cat['id']}")
        else:
            seen.add(cat["id"])
    if person is None and for_eval:
        problems.append(f"{path}: no 'categories' list (COCO evaluation needs the person category)")
    names = person.get("keypoints") if person else None
    if isinstance(names, list) and names and len(names) != num_keypoints:
        problems.append(
            f"{path}: the person category lists {len(names)} keypoint names, the keypoint layout has {num_keypoints}"
        )
    return problems


def _image_problems(data: Mapping[str, Any], path: PathLike, need_sizes: bool) -> tuple[list[str], set[Any]]:
    problems: list[str] = []
    ids: set[Any] = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            problems.append(f"{path}: images[{i}] is not a mapping")
            continue
        where = f"{path}: images[{i}] ({img.get('file_name', '?')})"
        if not is_int(img.get("id")):
            problems.append(f"{where}: id must be an integer, got {img.get('id')!r}")
        elif img["id"] in ids:
            problems.append(f"{where}: duplicate image id {img['id']}")
        else:
            ids.add(img["id"])
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            problems.append(f"{where}: lacks a 'file_name' string")
        if need_sizes and not all(is_int(img.get(k)) and img[k] > 0 for k in ("width", "height")):
            problems.append(
                f"{where}: width/height must be positive integers, got {img.get('width')!r}x{img.get('height')!r}"
            )
    return problems, ids


def coco_problems(
    data: Any,
    path: PathLike,
    num_keypoints: int = 17,
    *,
    for_eval: bool = False,
    need_sizes: bool = True,
    need_annotations: bool = True,
) -> list[str]:
    """Every schema problem of a COCO keypoint file, one line each (empty when it is sound).

    Args:
        data: the loaded JSON.
        path: the file, named in each message.
        num_keypoints: joints per person annotation.
        for_eval: also require what COCOeval reads (categories, ``area``, ``num_keypoints``,
            ``category_id``).
        need_sizes: require positive integer ``width`` / ``height`` per image (training crops use them).
        need_annotations: require an ``annotations`` list (an image-info file has none).
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        return [f"{path}: not a COCO annotation file (expected a mapping with an 'images' list)"]
    problems = _category_problems(data, path, num_keypoints, for_eval)
    image_problems, image_ids = _image_problems(data, path, need_sizes)
    problems += image_problems
    anns = data.get("annotations")
    if anns is None and not need_annotations:
        return problems
    if not isinstance(anns, list):
        return [*problems, f"{path}: no 'annotations' list (is this an image-info file?)"]
    try:
        person = person_category(data, path)
    except AnnotationError:
        person = None
    person_id = person.get("id") if person else 1
    ann_ids: set[Any] = set()
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            problems.append(f"{path}: annotations[{i}] is not a mapping")
            continue
        where = f"{path}: annotations[{i}] (id {ann.get('id', '?')!r}, image {ann.get('image_id', '?')!r})"
        if "id" not in ann:
            problems.append(f"{where}: lacks 'id'")
        elif not is_int(ann["id"]):
            problems.append(f"{where}: id must be an integer, got {ann['id']!r}")
        elif ann["id"] in ann_ids:
            problems.append(f"{where}: duplicate annotation id {ann['id']} (COCO evaluation would keep only one)")
        else:
            ann_ids.add(ann["id"])
        if "image_id" not in ann:
            problems.append(f"{where}: lacks 'image_id'")
        elif not is_int(ann["image_id"]):
            problems.append(f"{where}: image_id must be an integer, got {ann['image_id']!r}")
        elif ann["image_id"] not in image_ids:
            problems.append(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if "category_id" not in ann and for_eval:
            problems.append(f"{where}: lacks 'category_id' (COCO evaluation selects people by it)")
        category = ann.get("category_id", person_id)
        if not is_int(category):
            problems.append(f"{where}: category_id must be an integer, got {category!r}")
        elif category == person_id:
            problems += person_annotation_problems(ann, num_keypoints, where, for_eval)
    return problems


def require_coco(data: Any, path: PathLike, num_keypoints: int = 17, **kwargs: bool) -> None:
    """Raise :class:`AnnotationError` (one line: the first problems and a count) unless the file is sound.

    Keyword arguments as :func:`coco_problems`.
    """
    problems = coco_problems(data, path, num_keypoints, **kwargs)
    if problems:
        raise AnnotationError(summarize(problems, f"; `fasterpose data check --ann {path}` lists them all"))


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else entry
