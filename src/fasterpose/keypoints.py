"""Dataset knowledge as data: joint names, flip pairs, OKS sigmas, skeleton, joint weights.

One :class:`KeypointSpec` per keypoint layout. Dataset parsers, transforms, the codec, the
evaluators and the drawing code read everything layout-specific from here. ``coco17`` and
``mpii16`` are built in; any other layout is data (a YAML file, a config's ``data.layout`` and the
dataset's COCO ``categories`` entry), turned into a spec by :mod:`fasterpose.layouts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KeypointSpec:
    """A keypoint layout.

    Attributes:
        name: layout name (``"coco17"``, ``"mpii16"``).
        names: joint names, index order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        sigmas: per-joint OKS sigmas (COCO convention); used by OKS-NMS and COCOeval.
        skeleton: limbs as (i, j) index pairs, for drawing.
        upper_body: joint indices counted as upper body (half-body augmentation).
        joint_weights: per-joint loss weights (HRNet's ``USE_DIFFERENT_JOINTS_WEIGHT``).
        source: where the layout came from (a file, ``built-in``), named in error messages.
        default_sigmas: the sigmas are a stated default, not the dataset's own (AP not comparable).
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    joint_weights: tuple[float, ...] = field(default=())
    source: str = "built-in"
    default_sigmas: bool = False

    def __post_init__(self) -> None:
        k = len(self.names)
        where = f"{self.source}: layout {self.name}"
        if k == 0:
            raise ValueError(f"{where}: no joints")
        if len(set(self.names)) != k:
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"{where}: joint names repeat: {dup}")
        if len(self.sigmas) != k:
            raise ValueError(f"{where}: sigmas: {len(self.sigmas)} values for {k} joints")
        if self.joint_weights and len(self.joint_weights) != k:
            raise ValueError(f"{where}: joint_weights: {len(self.joint_weights)} values for {k} joints")
        for entry, pairs in (("flip_pairs", self.flip_pairs), ("skeleton", self.skeleton)):
            for i, (a, b) in enumerate(pairs):
                if not (0 <= a < k and 0 <= b < k):
                    raise ValueError(f"{where}: {entry}[{i}]: joint index out of range 0..{k - 1} in ({a}, {b})")
        flipped = [j for pair in self.flip_pairs for j in pair]
        if len(set(flipped)) != len(flipped):
            raise ValueError(f"{where}: flip_pairs: a joint appears in more than one pair")
        if any(not 0 <= j < k for j in self.upper_body):
            raise ValueError(f"{where}: upper_body: joint index out of range 0..{k - 1}")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` such that ``flipped[:, j] = original[:, p[j]]`` after a mirror."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def weights(self) -> np.ndarray:
        """Per-joint loss weights, shape (K,); ones when the layout defines none."""
        if not self.joint_weights:
            return np.ones(self.num_keypoints, dtype=np.float32)
        return np.asarray(self.joint_weights, dtype=np.float32)


COCO_17 = KeypointSpec(
    name="coco17",
    names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    upper_body=tuple(range(11)),
    joint_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5),
)

MPII_16 = KeypointSpec(
    name="mpii16",
    names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    # MPII has no OKS sigmas; these are the values mmpose uses for OKS-based NMS on MPII.
    sigmas=(
        0.089,
        0.083,
        0.107,
        0.107,
        0.083,
        0.089,
        0.026,
        0.026,
        0.026,
        0.026,
        0.062,
        0.072,
        0.179,
        0.179,
        0.072,
        0.062,
    ),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (7, 12),
        (12, 11),
        (11, 10),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
    joint_weights=(1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5),
)

_SPECS = {s.name: s for s in (COCO_17, MPII_16)}


BUILTIN_LAYOUTS = tuple(_SPECS)


def get_spec(name: str) -> KeypointSpec:
    """Look a built-in layout up by name (``coco17`` or ``mpii16``); see :func:`fasterpose.layouts.resolve_layout`
    for layouts given as data."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint layout {name!r}; valid: {sorted(_SPECS)}") from None
