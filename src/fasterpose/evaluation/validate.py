"""Keypoint results checked before pycocotools sees them.

pycocotools scores whatever it is given: a NaN joint makes the OKS NaN, which its matcher counts
as a match (an all-NaN results file scores AP 1.0); a string score sorts as text; a result whose
``category_id`` is not the ground truth's person category is never matched (AP 0.0). Every
results entry therefore passes :func:`check_results` first, on every path that scores COCO
keypoints (``eval-results``, ``eval`` and the training loop's evaluation all go through
:class:`~fasterpose.evaluation.coco.CocoEvaluator`).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Any

from fasterpose.data.coco_schema import is_int, is_number, number_problem
from fasterpose.data.errors import DataError, summarize


class ResultsError(DataError):
    """A keypoint results entry that pycocotools would score wrongly; names the source and entry."""


@dataclass(frozen=True)
class ResultsTarget:
    """What results are scored against: the ground truth's images and categories, the layout's size.

    Attributes:
        num_keypoints: joints per result (3 values each).
        image_ids: image ids of the ground truth.
        category_ids: category ids of the ground truth.
        person_id: the person category (results without ``category_id`` get it).
    """

    num_keypoints: int
    image_ids: Set[int]
    category_ids: Set[int]
    person_id: int


def _entry_problems(entry: Any, target: ResultsTarget, where: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: not a mapping but {type(entry).__name__}"]
    missing = [key for key in ("image_id", "keypoints", "score") if key not in entry]
    if missing:
        return [f"{where}: lacks {', '.join(repr(m) for m in missing)}"]
    where = f"{where} (image {entry['image_id']!r})"
    problems = []
    image_id = entry["image_id"]
    if not is_int(image_id):
        problems.append(f"{where}: image_id must be an integer, got {image_id!r}")
    elif image_id not in target.image_ids:
        problems.append(f"{where}: image_id {image_id} is absent from the ground truth")
    problem = number_problem(entry["keypoints"], 3 * target.num_keypoints, "keypoint")
    if problem:
        problems.append(f"{where}: {problem}")
    if not is_number(entry["score"]):
        problems.append(f"{where}: score is {entry['score']!r}, not a finite number")
    category = entry.get("category_id", target.person_id)
    if not is_int(category):
        problems.append(f"{where}: category_id must be an integer, got {category!r}")
    elif category not in target.category_ids:
        problems.append(
            f"{where}: category_id {category} is absent from the ground truth "
            f"(its categories: {sorted(target.category_ids)[:10]}; the person is {target.person_id})"
        )
    return problems


def check_results(
    entries: Iterable[Any], target: ResultsTarget, source: str, start: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Validate COCO keypoint results; return the person results to score and how many were not.

    Args:
        entries: result dicts ``{image_id, keypoints: [x, y, s] * K, score[, category_id]}``.
        target: the ground truth they are scored against.
        source: the file (or "predictions") named in every message.
        start: index of the first entry within ``source`` (for messages).

    Returns:
        (results, other): copies of the person results with ``category_id`` filled in, and the
        number of results for another category of the ground truth (left out of keypoint AP).

    Raises:
        ResultsError: NaN / infinite / non-numeric keypoints or score, a wrong keypoint count, an
            image or category absent from the ground truth; one line naming the first entries.
    """
    problems: list[str] = []
    kept: list[dict[str, Any]] = []
    other = 0
    for i, entry in enumerate(entries, start=start):
        found = _entry_problems(entry, target, f"{source}: result [{i}]")
        if found:
            problems += found
            continue
        category = entry.get("category_id", target.person_id)
        if category != target.person_id:
            other += 1
            continue
        kept.append({**entry, "category_id": target.person_id})
    if problems:
        raise ResultsError(summarize(problems))
    return kept, other
