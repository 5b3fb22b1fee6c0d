"""MPII PCKh, by the MPII protocol as SimpleBaseline/HRNet compute it.

A joint counts as correct when ``||pred - gt|| <= threshold * head_size``. The head size is
``0.6 * ||head box diagonal||`` (``SC_BIAS = 0.6``) when head boxes are known; otherwise (e.g. the
SimpleBaseline JSON, which carries none) the head-top to upper-neck distance, the head-segment
length that the 0.6 factor approximates. Only joints labelled visible in the ground truth count.

Reported (percent): per group the mean of the left and right joint PCKh (head = head top), and
``Mean`` = correct / visible over all joints except pelvis and thorax, which is HRNet's
``sum(PCKh * jnt_ratio)`` with those two masked out. ``Mean@0.1`` uses threshold 0.1.
``Mean@0.1(HRNet)`` is the number HRNet's code prints as "Mean@0.1": it reads row 11 of
``arange(0, 0.51, 0.01)``, which is threshold 0.11, so it is reported under its own name for
comparison with published HRNet / SimpleBaseline tables (:data:`METRIC_NOTES` says so in files).

Coordinates: the SimpleBaseline/HRNet MPII JSON holds 0-based pixel coordinates, our predictions
too, so they compare directly. Against MATLAB's 1-based ``gt_*.mat`` pass ``gt_one_based=True``:
predictions get ``+ 1`` as HRNet does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.validate import ResultsError
from fasterpose.keypoints import MPII_16, KeypointSpec

if TYPE_CHECKING:
    from fasterpose.data.records import PersonRecord

SC_BIAS = 0.6
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("head_top",)),
    ("Shoulder", ("left_shoulder", "right_shoulder")),
    ("Elbow", ("left_elbow", "right_elbow")),
    ("Wrist", ("left_wrist", "right_wrist")),
    ("Hip", ("left_hip", "right_hip")),
    ("Knee", ("left_knee", "right_knee")),
    ("Ankle", ("left_ankle", "right_ankle")),
)
EXCLUDED_FROM_MEAN = ("pelvis", "thorax")


def head_sizes_from_boxes(boxes: np.ndarray) -> np.ndarray:
    """``0.6 * diagonal`` of head boxes (N, 4) given as x1, y1, x2, y2; returns (N,)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return SC_BIAS * np.linalg.norm(b[:, 2:] - b[:, :2], axis=1)


def head_sizes_from_joints(gt: np.ndarray, spec: KeypointSpec = MPII_16) -> np.ndarray:
    """Head-top to upper-neck distance of ground-truth joints (N, K, 2+); returns (N,)."""
    g = np.asarray(gt, dtype=np.float64)
    top, neck = spec.names.index("head_top"), spec.names.index("upper_neck")
    return np.linalg.norm(g[:, top, :2] - g[:, neck, :2], axis=1)


HRNET_MEAN_01 = "Mean@0.1(HRNet)"
# What a reader of a metrics file or printed table needs to know about a key
METRIC_NOTES = {
    HRNET_MEAN_01: "HRNet's printed Mean@0.1, which is threshold 0.11 (row 11 of arange(0, 0.51, 0.01)); "
    "Mean@0.1 is threshold 0.1",
}


def metric_name(threshold: float) -> str:
    """``Mean@<t>``; the 0.11 of HRNet's "Mean@0.1" as :data:`HRNET_MEAN_01`."""
    return HRNET_MEAN_01 if abs(threshold - 0.11) < 1e-9 else f"Mean@{threshold:g}"


@dataclass
class PckhResult:
    """Per-joint PCKh (percent, (K,), NaN where no joint is visible) at each threshold, and counts."""

    thresholds: tuple[float, ...]
    per_joint: dict[float, np.ndarray]
    visible_count: np.ndarray
    head_size_source: str
    names: tuple[str, ...] = field(default=MPII_16.names)

    def metrics(self) -> dict[str, float]:
        """HRNet's table at threshold 0.5 (or the first threshold) plus ``Mean@t`` for the others
        (0.11 as ``Mean@0.1(HRNet)``, see :func:`metric_name`)."""
        main = 0.5 if 0.5 in self.per_joint else self.thresholds[0]
        pck = self.per_joint[main]
        idx = {n: i for i, n in enumerate(self.names)}
        out: dict[str, float] = {}
        for group, joints in GROUPS:
            out[group] = float(np.mean([pck[idx[j]] for j in joints]))
        out["Mean"] = self.mean(main)
        for t in self.thresholds:
            if t != main:
                out[metric_name(t)] = self.mean(t)
        return out

    def mean(self, threshold: float) -> float:
        """Correct / visible over every joint but pelvis and thorax, in percent."""
        keep = np.array([n not in EXCLUDED_FROM_MEAN for n in self.names])
        counts = self.visible_count[keep]
        correct = np.nan_to_num(self.per_joint[threshold][keep]) / 100.0 * counts
        total = counts.sum()
        return float(100.0 * correct.sum() / total) if total > 0 else float("nan")


def compute_pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray | None = None,
    spec: KeypointSpec = MPII_16,
    thresholds: Sequence[float] = (0.5, 0.1, 0.11),
    gt_one_based: bool = False,
) -> PckhResult:
    """PCKh of predictions against ground truth.

    Args:
        pred: (N, K, 2+) predicted joints, 0-based image pixels.
        gt: (N, K, 2+) ground-truth joints (0-based unless ``gt_one_based``).
        visible: (N, K) ground-truth visibility (> 0 counts).
        head_sizes: optional (N,) MPII normalisers ``0.6 * head-box diagonal`` (see
            :func:`head_sizes_from_boxes`); without them the head size is the head-top /
            upper-neck distance of the ground truth.
        thresholds: fractions of the head size.
        gt_one_based: ground truth in MATLAB 1-based coordinates (predictions get + 1).
    """
    p = np.asarray(pred, dtype=np.float64)[..., :2]
    g = np.asarray(gt, dtype=np.float64)[..., :2]
    vis = np.asarray(visible, dtype=np.float64) > 0
    n, k = g.shape[:2]
    if p.shape != (n, k, 2) or vis.shape != (n, k):
        raise ValueError(f"shapes disagree: pred {p.shape}, gt {g.shape}, visible {vis.shape}")
    if k != spec.num_keypoints:
        raise ValueError(f"{k} joints but layout {spec.name} has {spec.num_keypoints}")
    if gt_one_based:
        p = p + 1.0
    if head_sizes is not None:
        head = np.asarray(head_sizes, dtype=np.float64).reshape(-1)
        source = "head_box"
    else:
        head = head_sizes_from_joints(g, spec)
        source = "head_top_upper_neck"
    if head.shape != (n,):
        raise ValueError(f"{head.shape[0]} head sizes for {n} people")
    bad = vis.any(axis=1) & ~(head > 0)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} people have a non-positive head size ({source}), "
            f"e.g. index {int(np.flatnonzero(bad)[0])}"
        )
    err = np.linalg.norm(p - g, axis=2) / np.where(head > 0, head, 1.0)[:, None]
    count = vis.sum(axis=0).astype(np.float64)
    per_joint: dict[float, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in thresholds:
            hits = ((err <= t) & vis).sum(axis=0)
            per_joint[float(t)] = np.where(count > 0, 100.0 * hits / count, np.nan)
    return PckhResult(tuple(float(t) for t in thresholds), per_joint, count, source, spec.names)


class PckhEvaluator:
    """``reset / process / evaluate`` for MPII: predictions matched to records by ``index``.

    Args:
        records: the evaluated :class:`~fasterpose.data.records.PersonRecord` list (0-based
            keypoints (K, 3), visibility in column 2, optional ``head_size``).
        spec: keypoint layout (MPII_16).
        thresholds: PCKh thresholds (fractions of the head size).
    """

    def __init__(
        self,
        records: Sequence[PersonRecord],
        spec: KeypointSpec = MPII_16,
        thresholds: Sequence[float] = (0.5, 0.1, 0.11),
    ) -> None:
        if not records:
            raise ValueError("PCKh needs at least one ground-truth record")
        self.records = list(records)
        self.spec = spec
        self.thresholds = tuple(thresholds)
        self.last_result: PckhResult | None = None
        self._pred: dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self._pred = {}
        self.last_result = None

    def process(self, predictions: Iterable[PosePrediction]) -> None:
        """Add predictions (matched to records by ``index``).

        Raises:
            ResultsError: an index outside the records, or NaN / infinite joints (which PCKh would
                otherwise count as plain misses, hiding a broken model).
        """
        for p in predictions:
            if not 0 <= p.index < len(self.records):
                raise ResultsError(f"prediction index {p.index} outside the {len(self.records)} records")
            joints = np.asarray(p.keypoints, dtype=np.float64)[:, :2]
            if not np.isfinite(joints).all():
                bad = int(np.flatnonzero(~np.isfinite(joints).all(axis=1))[0])
                raise ResultsError(
                    f"prediction for record {p.index} ({self.records[p.index].image_path}): joint {bad} is "
                    f"{joints[bad].tolist()}, not finite"
                )
            self._pred[p.index] = joints

    def evaluate(self) -> dict[str, float]:
        """PCKh table (percent) over every record; a record with no prediction scores as missed."""
        k = self.spec.num_keypoints
        gt = np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in self.records])
        if gt.shape[1] != k:
            raise ValueError(f"records have {gt.shape[1]} joints, layout {self.spec.name} has {k}")
        pred = np.full((len(self.records), k, 2), np.inf)
        for i, kp in self._pred.items():
            pred[i] = kp
        sizes = [r.head_size for r in self.records]
        head = None if any(s is None for s in sizes) else np.asarray(sizes, dtype=np.float64)
        self.last_result = compute_pckh(pred, gt[..., :2], gt[..., 2], head, self.spec, self.thresholds)
        return self.last_result.metrics()

    @property
    def head_size_source(self) -> str:
        """``"head_box"`` or ``"head_top_upper_neck"`` (after :meth:`evaluate`)."""
        return self.last_result.head_size_source if self.last_result else "unknown"
