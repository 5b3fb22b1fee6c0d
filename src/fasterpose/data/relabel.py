"""Rewrite a COCO keypoint dataset in another keypoint layout (a subset, renaming or midpoints of its joints).

A relabelling maps each new joint to one source joint or to the mean of several (a midpoint);
a derived joint is labelled only when all its sources are, with the lowest of their visibilities.
:data:`CROWDPOSE14_FROM_COCO17` turns SynthPose's (COCO's) 17 joints into a 14-joint layout in
CrowdPose's order, the worked example of training on one's own keypoints.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.atomic import atomic_write_text
from fasterpose.data.coco import AnnotationError, load_json

# CrowdPose's joint order; "head" is SynthPose's nose point, "neck" the midpoint of the shoulders.
CROWDPOSE14_FROM_COCO17: dict[str, tuple[str, ...]] = {
    "left_shoulder": ("left_shoulder",),
    "right_shoulder": ("right_shoulder",),
    "left_elbow": ("left_elbow",),
    "right_elbow": ("right_elbow",),
    "left_wrist": ("left_wrist",),
    "right_wrist": ("right_wrist",),
    "left_hip": ("left_hip",),
    "right_hip": ("right_hip",),
    "left_knee": ("left_knee",),
    "right_knee": ("right_knee",),
    "left_ankle": ("left_ankle",),
    "right_ankle": ("right_ankle",),
    "head": ("nose",),
    "neck": ("left_shoulder", "right_shoulder"),
}
CROWDPOSE14_SKELETON: tuple[tuple[str, str], ...] = (
    ("head", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)  # fmt: skip
RELABELLINGS = {"crowdpose14": (CROWDPOSE14_FROM_COCO17, CROWDPOSE14_SKELETON)}


def relabel_keypoints(
    keypoints: np.ndarray, source_names: tuple[str, ...], mapping: dict[str, tuple[str, ...]]
) -> np.ndarray:
    """(N, K, 3) keypoints in ``source_names`` order -> (N, len(mapping), 3) in the mapping's order."""
    kpts = np.asarray(keypoints, dtype=np.float64)
    index = {n: i for i, n in enumerate(source_names)}
    out = np.zeros((kpts.shape[0], len(mapping), 3))
    for j, (name, sources) in enumerate(mapping.items()):
        missing = [s for s in sources if s not in index]
        if missing or not sources:
            raise ValueError(f"new joint {name!r}: source joints {missing or sources} are not in {list(source_names)}")
        src = kpts[:, [index[s] for s in sources]]
        labelled = np.asarray((src[..., 2] > 0).all(axis=1))
        out[:, j, :2] = np.where(labelled[:, None], src[..., :2].mean(axis=1), 0.0)
        out[:, j, 2] = np.where(labelled, src[..., 2].min(axis=1), 0.0)
    return out


def relabel_coco(
    data: dict[str, Any],
    mapping: dict[str, tuple[str, ...]],
    skeleton: tuple[tuple[str, str], ...],
    source: str = "annotations",
) -> dict[str, Any]:
    """A copy of a COCO keypoint dict in the new layout: keypoints, ``num_keypoints`` and the category's
    ``keypoints`` / ``skeleton`` (1-based, the COCO convention) rewritten; everything else kept."""
    out = copy.deepcopy(data)
    cats = [c for c in out.get("categories") or [] if isinstance(c, dict) and c.get("keypoints")]
    if len(cats) != 1:
        raise AnnotationError(f"{source}: expected one category with keypoint names, found {len(cats)}")
    names = tuple(cats[0]["keypoints"])
    new_names = list(mapping)
    position = {n: i + 1 for i, n in enumerate(new_names)}
    cats[0]["keypoints"] = new_names
    cats[0]["skeleton"] = [[position[a], position[b]] for a, b in skeleton]
    for i, ann in enumerate(out.get("annotations") or []):
        raw = ann.get("keypoints")
        if not isinstance(raw, list) or len(raw) != 3 * len(names):
            raise AnnotationError(f"{source}: annotations[{i}]: expected {3 * len(names)} keypoint values")
        new = relabel_keypoints(np.asarray(raw, np.float64).reshape(1, -1, 3), names, mapping)[0]
        ann["keypoints"] = [v for x, y, vis in new for v in (round(float(x), 2), round(float(y), 2), int(vis))]
        ann["num_keypoints"] = int((new[:, 2] > 0).sum())
    return out


def relabel_synthpose(root: str | Path, layout: str) -> list[Path]:
    """Rewrite a just-generated SynthPose dataset's annotation files in the named relabelling (e.g. crowdpose14)."""
    if layout not in RELABELLINGS:
        raise ValueError(f"unknown relabelling {layout!r}; valid: {sorted(RELABELLINGS)}")
    mapping, skeleton = RELABELLINGS[layout]
    written = []
    for split in ("train", "val"):
        path = Path(root) / "annotations" / f"person_keypoints_{split}.json"
        if path.is_file():
            data = relabel_coco(load_json(path), mapping, skeleton, str(path))
            data.setdefault("info", {})["relabelled"] = layout
            atomic_write_text(path, json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n", "annotations")
            written.append(path)
    return written
