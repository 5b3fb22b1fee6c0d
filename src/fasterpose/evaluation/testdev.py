"""COCO test-dev submissions: the results file the COCO evaluation server takes, written without scoring.

The server wants one JSON list with one entry per kept person,
``{"image_id": int, "category_id": 1, "keypoints": [x1, y1, s1, ..., xK, yK, sK], "score": float}``,
in a file named ``person_keypoints_test-dev2017_<method>_results.json`` (zipped for upload).
Test-dev has no public annotations: the image ids come from the image-info file
(``image_info_test-dev2017.json``) and every entry is checked against it before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fasterpose.atomic import atomic_write_text
from fasterpose.evaluation.predictions import PosePrediction

SERVER_KEYS = ("image_id", "category_id", "keypoints", "score")


def results_file_name(method: str, test_set: str = "test-dev2017") -> str:
    """``person_keypoints_test-dev2017_<method>_results.json``, the server's naming (method: letters, digits, -)."""
    clean = re.sub(r"[^A-Za-z0-9-]+", "-", method).strip("-") or "fasterpose"
    return f"person_keypoints_{test_set}_{clean}_results.json"


def server_entries(
    people: Iterable[PosePrediction], num_keypoints: int, image_ids: Sequence[int] | None = None, category_id: int = 1
) -> list[dict[str, Any]]:
    """Kept people (rescored, after OKS-NMS) -> server entries, rounded; checked for count, finiteness and ids."""
    known = None if image_ids is None else {int(i) for i in image_ids}
    out: list[dict[str, Any]] = []
    for n, p in enumerate(people):
        flat = [float(v) for v in p.keypoints.reshape(-1)]
        if len(flat) != 3 * num_keypoints:
            raise ValueError(
                f"person {n} (image {p.image_id}): {len(flat)} keypoint values, expected {3 * num_keypoints}"
            )
        if not all(math.isfinite(v) for v in (*flat, p.score)):
            raise ValueError(f"person {n} (image {p.image_id}): keypoints or score are not finite")
        if known is not None and int(p.image_id) not in known:
            raise ValueError(f"person {n}: image_id {p.image_id} is not in the image-info file")
        out.append(
            {
                "image_id": int(p.image_id),
                "category_id": int(category_id),
                "keypoints": [round(v, 3) for v in flat],
                "score": round(float(p.score), 6),
            }
        )
    return out


def write_server_results(entries: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the results file; an existing file is never replaced (pass another path)."""
    p = Path(path)
    if p.exists():
        raise FileExistsError(f"{p} exists: remove it or write the results elsewhere (--out)")
    if not entries:
        raise ValueError(f"{p}: no people to submit (no detections kept)")
    for i, e in enumerate(entries):
        if tuple(e) != SERVER_KEYS:
            raise ValueError(f"{p}: entry {i} has keys {list(e)}, the server takes exactly {list(SERVER_KEYS)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(p, json.dumps(entries, separators=(",", ":")), what="results file")
