"""Temporal smoothing of video keypoints: the One-Euro filter and a box-IoU person tracker.

One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): an exponential low-pass whose cutoff rises
with the signal's speed, ``cutoff = min_cutoff + beta * |dx/dt|``, so a still joint is smoothed
hard (little jitter) and a fast one lags little. Units here: pixels and seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from fasterpose.evaluation.predictions import PosePrediction


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filter an array signal (any shape) sampled at irregular times.

    Args:
        min_cutoff: cutoff frequency (Hz) of a still signal; lower = smoother.
        beta: speed coefficient (Hz per pixel/s); higher = less lag on fast motion.
        d_cutoff: cutoff (Hz) of the derivative estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"need min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered value of ``x`` observed at time ``t`` (seconds)."""
        value = np.asarray(x, dtype=np.float64)
        if self.x is None or self.t is None or self.dx is None or t <= self.t:
            self.x, self.dx, self.t = value.copy(), np.zeros_like(value), t
            return value.astype(np.float32)
        dt = t - self.t
        dx = (value - self.x) / dt
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + _alpha(cutoff, dt) * (value - self.x)
        self.t = t
        return self.x.astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes a (N, 4) and b (M, 4), xywh -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


@dataclass
class _Track:
    box: np.ndarray
    filter: OneEuroFilter
    last_seen: float


class PoseSmoother:
    """Smooth each person's keypoints over video frames.

    People are matched frame to frame greedily by box IoU (>= ``iou_threshold``); each track has
    its own One-Euro filter. A track unseen for ``max_age`` seconds is dropped.
    """

    def __init__(
        self, min_cutoff: float = 1.0, beta: float = 0.05, iou_threshold: float = 0.3, max_age: float = 1.0
    ) -> None:
        self.min_cutoff, self.beta = min_cutoff, beta
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.tracks: list[_Track] = []

    def __call__(self, predictions: list[PosePrediction], t: float) -> list[PosePrediction]:
        """Smoothed copies of ``predictions`` (same order) for the frame at time ``t`` (seconds)."""
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.max_age]
        if any(p.box is None for p in predictions):
            raise ValueError("smoothing matches people by box: every prediction needs its box")
        boxes = np.array([p.box for p in predictions], dtype=np.float64).reshape(-1, 4)
        iou = box_iou(boxes, np.array([tr.box for tr in self.tracks]).reshape(-1, 4))
        assigned: dict[int, int] = {}
        while iou.size and iou.max() >= self.iou_threshold:
            flat = int(iou.argmax())
            i, j = divmod(flat, iou.shape[1])
            assigned[i] = j
            iou[i, :] = -1.0
            iou[:, j] = -1.0
        out = []
        for i, pred in enumerate(predictions):
            if i in assigned:
                track = self.tracks[assigned[i]]
            else:
                track = _Track(np.asarray(pred.box), OneEuroFilter(self.min_cutoff, self.beta), t)
                self.tracks.append(track)
            track.box, track.last_seen = np.asarray(pred.box), t
            xy = track.filter(pred.xy, t)
            out.append(replace(pred, keypoints=np.concatenate([xy, pred.scores[:, None]], axis=1).astype(np.float32)))
        return out
