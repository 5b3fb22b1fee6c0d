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
a time against the poses still alive (see :func:`oks_nms`; 100 people: under 3 ms on one core,
``scripts/bench_eval.py``), cheaper than the full N x N matrix once N reaches a few dozen.
"""

from __future__ import annotations

import numpy as np

EPS = float(np.spacing(1))
_BLOCK = 8  # candidates whose overlap rows are computed together (see oks_nms)
_BLOCK_MAX_ALIVE = 160  # above this many alive candidates, one row at a time


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
    alive = np.argsort(sc, kind="stable")[::-1]  # descending; ties: higher index first, as argsort()[::-1]
    keep: list[int] = []
    while alive.size:
        block = alive[: _BLOCK if alive.size <= _BLOCK_MAX_ALIVE else 1]
        diff = xy[alive][None, :, :] - xy[block][:, None, :]
        diff *= diff
        e = diff[..., :k] + diff[..., k:]
        e /= variances
        e /= mean_area[block[:, None], alive[None, :]][..., None]
        e /= 2.0
        np.negative(e, out=e)
        sim = np.exp(e, out=e)
        if mask is None:
            overlap = sim.sum(axis=2) / k
        else:
            m = mask[alive]
            count = m.sum(axis=1)
            overlap = np.where(count > 0, (sim * m).sum(axis=2) / np.maximum(count, 1), 0.0)
        suppressed = overlap > threshold
        gone = np.zeros(alive.size, dtype=bool)
        for j in range(block.size):  # block members come first in alive, in visiting order
            if not gone[j]:
                keep.append(int(block[j]))
                gone |= suppressed[j]
                gone[j] = True
        alive = alive[~gone]
    return np.asarray(keep, dtype=np.int64)
