"""OKS-based non-maximum suppression of person poses (SimpleBaseline/HRNet semantics), in numpy.

The overlap of a kept pose ``g`` with a candidate ``d`` is the lineage's ``oks_iou``:

    e_k = ((x_dk - x_gk)^2 + (y_dk - y_gk)^2) / (2 sigma_k)^2 / ((area_g + area_d) / 2 + eps) / 2
    oks(g, d) = mean_k exp(-e_k)

with ``eps = np.spacing(1)``. With ``in_vis_threshold`` set, the mean runs only over the joints
whose score *in the candidate d* exceeds it (the lineage writes ``list(vg > t) and list(vd > t)``,
which Python evaluates to the second list), and a candidate with no such joint has overlap 0.
HRNet's COCO evaluation calls ``oks_nms`` without ``in_vis_thre``, i.e. over all joints.

Greedy: visit poses by descending score (ties: higher index first, the lineage's
``scores.argsort()[::-1]``); keep a pose unless a pose
already kept overlaps it by more than ``threshold``. The overlaps are computed a few candidates at
a time against the poses still alive (see :func:`oks_nms`), cheaper than the full N x N matrix once N
reaches a few dozen; from 32 people on, pairs that cannot reach the threshold are ruled out from a
few joints first (:class:`_Prefilter`). The timings are in ``scripts/bench_eval.py``'s JSONs.
"""

from __future__ import annotations

import math

import numpy as np

EPS = float(np.spacing(1))
_BLOCK = 8  # candidates whose overlap rows are computed together (see oks_nms)
_BLOCK_MAX_ALIVE = 160  # above this many alive candidates, one row at a time
_PREFILTER_MIN = 32  # people in the image from which pairs are ruled out before they are computed
_FAR = 2.3  # a joint pair with e >= _FAR is "far": exp(-e) <= 0.1003 (see _far_joints_allowed)


def oks_matrix(
    keypoints: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | tuple[float, ...],
    in_vis_threshold: float | None = None,
) -> np.ndarray:
    """Pairwise OKS overlaps.

    Args:
        keypoints: (N, K, 3) x, y, score.
        areas: (N,) person areas (the lineage uses the crop area, scale_w * scale_h).
        sigmas: (K,) per-joint OKS sigmas.
        in_vis_threshold: when set, average only over joints of the *candidate* (column) pose
            whose score exceeds it.

    Returns:
        (N, N) matrix ``M[g, d] = oks(g, d)``; symmetric unless ``in_vis_threshold`` is set.
    """
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[2] < 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kpts.shape}")
    n, k = kpts.shape[:2]
    sig = np.asarray(sigmas, dtype=np.float64)
    if sig.shape != (k,):
        raise ValueError(f"sigmas must have shape ({k},), got {sig.shape}")
    area = np.asarray(areas, dtype=np.float64).reshape(-1)
    if area.shape != (n,):
        raise ValueError(f"areas must have shape ({n},), got {area.shape}")
    variances = (sig * 2.0) ** 2
    d2 = (kpts[:, None, :, 0] - kpts[None, :, :, 0]) ** 2 + (kpts[:, None, :, 1] - kpts[None, :, :, 1]) ** 2
    mean_area = (area[:, None] + area[None, :]) / 2.0 + EPS
    e = d2 / variances / mean_area[..., None] / 2.0
    sim = np.exp(-e)  # (N, N, K)
    if in_vis_threshold is None:
        return sim.mean(axis=2)
    mask = (kpts[:, :, 2] > in_vis_threshold).astype(np.float64)  # (N, K), candidate's joints
    count = mask.sum(axis=1)  # (N,)
    total = (sim * mask[None, :, :]).sum(axis=2)
    return np.where(count[None, :] > 0, total / np.maximum(count[None, :], 1.0), 0.0)


def _far_joints_allowed(k: int, threshold: float) -> int | None:
    """How many far joints (e >= _FAR) a pair overlapping by more than ``threshold`` can have at most;
    None when that bound cannot rule a pair out (a low threshold or few joints).

    Each far joint adds at most exp(-_FAR) to the mean instead of up to 1, so overlap > threshold needs
    fewer than ``k (1 - threshold) / (1 - exp(-_FAR))`` far joints (rounded up, to stay safe).
    """
    bound = k * (1.0 - threshold) / (1.0 - math.exp(-_FAR))
    if not 0.0 <= bound < k:
        return None
    m = math.floor(bound + 1e-6)
    return m if 2 * m + 1 < k else None


class _Prefilter:
    """Which (kept, candidate) pairs can overlap by more than the threshold at all; the others are not
    computed. A pair above the threshold has at most ``m`` far joints (:func:`_far_joints_allowed`), so
    among any ``m + 1`` joints at least one is near (e < _FAR): the ``m + 1`` joints with the smallest
    sigmas are checked first, their e computed in the lineage's operations exactly as the full overlap
    computes them. A pair whose checked joints are all far has an overlap below the threshold by a
    margin far above float rounding (``m + 1`` exceeds the bound by at least 1e-6 joints)."""

    def __init__(self, xy: np.ndarray, k: int, m: int, variances: np.ndarray) -> None:
        joints = np.argsort(variances, kind="stable")[: m + 1]
        self.xy = np.ascontiguousarray(np.concatenate([xy[:, joints], xy[:, k + joints]], axis=1))
        self.variances = variances[joints]
        self.n = joints.size

    def pairs(self, block: np.ndarray, alive: np.ndarray, mean_area: np.ndarray) -> np.ndarray:
        """(B, A) True where block member b and alive candidate a may overlap by more than the threshold."""
        diff = self.xy[alive][None, :, :] - self.xy[block][:, None, :]
        e = _exponents(diff, self.n, self.variances, mean_area[block[:, None], alive[None, :]])
        return np.asarray((e < _FAR).any(axis=2))


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | tuple[float, ...],
    threshold: float = 0.9,
    in_vis_threshold: float | None = None,
) -> np.ndarray:
    """Indices of the poses kept by greedy OKS-NMS, in descending score order.

    Args:
        keypoints: (N, K, 3) poses of ONE image (x, y, joint score).
        scores: (N,) person scores.
        areas: (N,) person areas.
        sigmas: (K,) OKS sigmas.
        threshold: a pose is suppressed when its overlap with a kept pose is > threshold.
        in_vis_threshold: see :func:`oks_matrix`.

    Returns:
        int64 array of kept indices into the input.
    """
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    kpts = np.asarray(keypoints, dtype=np.float64)
    n = sc.shape[0]
    if kpts.ndim != 3 or kpts.shape[0] != n or kpts.shape[2] < 3:
        raise ValueError(f"keypoints must have shape ({n}, K, 3) for {n} scores, got {kpts.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    variances = (np.asarray(sigmas, dtype=np.float64) * 2.0) ** 2
    if variances.shape != (kpts.shape[1],):
        raise ValueError(f"sigmas must have shape ({kpts.shape[1]},), got {variances.shape}")
    area = np.asarray(areas, dtype=np.float64).reshape(-1)
    if area.shape != (n,):
        raise ValueError(f"areas must have shape ({n},), got {area.shape}")
    k = kpts.shape[1]
    xy = np.ascontiguousarray(kpts[:, :, :2].transpose(0, 2, 1).reshape(n, 2 * k))  # x..., y...
    mean_area = (area[:, None] + area[None, :]) / 2.0 + EPS  # (N, N)
    mask = None if in_vis_threshold is None else kpts[:, :, 2] > in_vis_threshold
    # The lineage's loop, vectorised: the overlaps of the next few candidates (a block) with every
    # candidate still alive, in one array; then the greedy walk through the block, where a block
    # member already suppressed by a pose kept before it is skipped, and each kept one suppresses
    # what it overlaps by more than the threshold. Every overlap goes through the lineage's oks_iou
    # operation order (d^2 / var / mean_area / 2) element by element, so the same poses are kept as
    # with one row per kept pose. Blocks of _BLOCK while few candidates are alive (numpy's per-call
    # cost dominates there), single rows once many are (the block's wasted rows would dominate).
    # Without a joint mask, pairs that cannot reach the threshold are ruled out first (_Prefilter) and
    # only the others are computed, in the same operations: the kept poses are the same.
    far = _far_joints_allowed(k, float(threshold)) if mask is None and n >= _PREFILTER_MIN else None
    prefilter = None if far is None else _Prefilter(xy, k, far, variances)
    alive = np.argsort(sc, kind="stable")[::-1]  # descending; ties: higher index first, as argsort()[::-1]
    keep: list[int] = []
    while alive.size:
        block = alive[: _BLOCK if alive.size <= _BLOCK_MAX_ALIVE else 1]
        if prefilter is not None:
            bi, ai = np.nonzero(prefilter.pairs(block, alive, mean_area))
            g, d = block[bi], alive[ai]
            suppressed = np.zeros((block.size, alive.size), dtype=bool)
            suppressed[bi, ai] = _oks(xy[d] - xy[g], k, variances, mean_area[g, d], None) > threshold
        else:
            diff = xy[alive][None, :, :] - xy[block][:, None, :]
            areas_ = mean_area[block[:, None], alive[None, :]]
            suppressed = _oks(diff, k, variances, areas_, None if mask is None else mask[alive]) > threshold
        gone = np.zeros(alive.size, dtype=bool)
        for j in range(block.size):  # block members come first in alive, in visiting order
            if not gone[j]:
                keep.append(int(block[j]))
                gone |= suppressed[j]
                gone[j] = True
        alive = alive[~gone]
    return np.asarray(keep, dtype=np.int64)


def _oks(diff: np.ndarray, k: int, variances: np.ndarray, mean_area: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The lineage's oks_iou of pairs from their coordinate differences ``diff`` (..., 2K: x..., y...,
    candidate minus kept; overwritten) and ``mean_area`` (...), in its operation order (d^2 / var /
    mean_area / 2 element by element); ``mask`` (..., K): the candidates' joints that count."""
    e = _exponents(diff, k, variances, mean_area)
    np.negative(e, out=e)
    sim = np.exp(e, out=e)
    if mask is None:
        return sim.sum(axis=-1) / k
    count = mask.sum(axis=-1)
    return np.where(count > 0, (sim * mask).sum(axis=-1) / np.maximum(count, 1), 0.0)


def _exponents(diff: np.ndarray, k: int, variances: np.ndarray, mean_area: np.ndarray) -> np.ndarray:
    """e = d^2 / var / mean_area / 2 per joint (..., K), in the lineage's order, from ``diff`` (..., 2K)."""
    diff *= diff
    e = diff[..., :k] + diff[..., k:]
    e /= variances
    e /= mean_area[..., None]
    e /= 2.0
    return e
