"""MPII Human Pose in the SimpleBaseline/HRNet JSON layout, parsed to ``PersonRecord``.

Each JSON entry is ``{image, center, scale, joints[16][2], joints_vis[16]}``. Coordinates are
MATLAB 1-based (the lineage code subtracts 1 from the joints and the centre; we do the same, so
records are 0-based image pixels like COCO's). ``scale * 200`` px is the person's size; the
lineage moves the centre down by ``15 * scale`` px "to avoid cropping limbs". We express that crop
as a square ``box`` of side ``scale * 200`` around the moved centre, so the dataset's usual
``box -> centre/scale`` step (input aspect, padding 1.25) gives exactly the lineage crop.

Head boxes for PCKh come from ``gt_valid.mat`` (``headboxes_src`` (2, 2, N)) when that file is
given; ``head_size`` is MPII's normaliser ``0.6 * ||head box diagonal||`` (PCKh@0.5 threshold is
``0.5 * head_size``). Without it ``head_size`` stays None.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.data.coco import load_json
from fasterpose.data.coco_schema import is_number, number_list
from fasterpose.data.errors import AnnotationError
from fasterpose.data.records import PersonRecord

NUM_JOINTS = 16
PIXEL_STD = 200.0  # MPII's scale unit: scale * 200 px is the person's height
CENTER_SHIFT = 15.0  # lineage: centre y += 15 * scale
HEAD_SIZE_FACTOR = 0.6  # MPII's SC_BIAS: head size = 0.6 * head-box diagonal


def load_head_sizes(mat_file: str | os.PathLike[str]) -> np.ndarray:
    """Head sizes (N,) = 0.6 * head-box diagonal from an MPII ``gt_valid.mat``-style file."""
    from scipy.io import loadmat

    p = Path(mat_file)
    if not p.is_file():
        raise AnnotationError(f"{p}: head-box file not found")
    try:
        mat = loadmat(str(p))
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise AnnotationError(f"{p}: cannot read MATLAB file ({exc})") from None
    if "headboxes_src" not in mat:
        found = sorted(k for k in mat if not k.startswith("_"))
        raise AnnotationError(f"{p}: no 'headboxes_src' variable (found {found})")
    boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
        raise AnnotationError(f"{p}: headboxes_src must have shape (2, 2, N), got {boxes.shape}")
    return (HEAD_SIZE_FACTOR * np.linalg.norm(boxes[1] - boxes[0], axis=0)).astype(np.float32)


def _entry_geometry(entry: dict[str, Any], where: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(center (2,), scale, keypoints (16, 3) 0-based) of one entry; every value a finite JSON number."""
    center, problem = number_list(entry["center"], 2, "center")
    if center is None:
        raise AnnotationError(f"{where}: {problem}")
    scale = entry["scale"]
    if not is_number(scale) or scale <= 0:
        raise AnnotationError(f"{where}: zero, negative or non-numeric person scale {scale!r}")
    kpts = np.zeros((NUM_JOINTS, 3), dtype=np.float32)
    if "joints" in entry:
        raw: Any = entry["joints"]
        pairs = isinstance(raw, list) and len(raw) == NUM_JOINTS and all(isinstance(j, list) for j in raw)
        if not pairs:
            raise AnnotationError(f"{where}: joints must be {NUM_JOINTS} (x, y) pairs")
        flat = [v for pair in raw for v in pair]
        joints, problem = number_list(flat, 2 * NUM_JOINTS, "joint coordinate")
        if joints is None:
            raise AnnotationError(f"{where}: joints: {problem} (NaN joints are rejected, as in COCO files)")
        vis, problem = number_list(entry.get("joints_vis", [1] * NUM_JOINTS), NUM_JOINTS, "joints_vis")
        if vis is None:
            raise AnnotationError(f"{where}: {problem}")
        joints = joints.reshape(NUM_JOINTS, 2)
        labelled = vis > 0
        kpts[labelled, :2] = joints[labelled] - 1.0  # MATLAB 1-based -> 0-based
        kpts[labelled, 2] = vis[labelled]
    return center, float(scale), kpts


def parse_mpii(
    ann_file: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    head_boxes_file: str | os.PathLike[str] | None = None,
) -> list[PersonRecord]:
    """Person records from an MPII JSON; keypoints (16, 3) 0-based, visibility 0/1 as given."""
    data = load_json(ann_file)
    if not isinstance(data, list):
        raise AnnotationError(f"{ann_file}: MPII annotations must be a JSON list of person entries")
    head_sizes = load_head_sizes(head_boxes_file) if head_boxes_file is not None else None
    if head_sizes is not None and len(head_sizes) != len(data):
        raise AnnotationError(f"{head_boxes_file}: {len(head_sizes)} head boxes for {len(data)} people in {ann_file}")
    image_dir = Path(image_dir)
    image_ids: dict[str, int] = {}
    records: list[PersonRecord] = []
    for i, entry in enumerate(data):
        where = f"{ann_file}: entry [{i}]"
        if not isinstance(entry, dict) or not {"image", "center", "scale"} <= entry.keys():
            raise AnnotationError(f"{where}: lacks 'image', 'center' or 'scale'")
        center, scale, kpts = _entry_geometry(entry, where)
        side = scale * PIXEL_STD
        crop_center = center.copy()
        if crop_center[0] != -1:
            crop_center[1] += CENTER_SHIFT * scale
        crop_center -= 1.0
        box = np.array([crop_center[0] - side / 2, crop_center[1] - side / 2, side, side], dtype=np.float32)
        name = str(entry["image"])
        image_id = image_ids.setdefault(name, len(image_ids))
        records.append(
            PersonRecord(
                image_path=str(image_dir / name),
                image_id=image_id,
                box=box,
                keypoints=kpts,
                box_score=1.0,
                annotation_id=i,
                head_size=None if head_sizes is None else float(head_sizes[i]),
                extra={"mpii_center": center.tolist(), "mpii_scale": scale, "mpii_index": i},
            )
        )
    return records
