"""Drawing: skeletons on images, heatmap overlays, image grids (all RGB uint8 in and out), training curves.

Left joints and limbs are drawn in one colour, right ones in another, the rest (nose, spine,
shoulder and hip lines) in a third, so a left/right swap is visible at a glance.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fasterpose.atomic import atomic_write_bytes
from fasterpose.keypoints import KeypointSpec

LEFT_COLOR = (255, 128, 0)  # orange (RGB)
RIGHT_COLOR = (0, 160, 255)  # blue
CENTER_COLOR = (0, 220, 0)  # green
BOX_COLOR = (255, 255, 0)


def _side(name: str) -> int:
    """-1 left, +1 right, 0 centre, from the joint name."""
    if name.startswith("left") or name.startswith("l_"):
        return -1
    if name.startswith("right") or name.startswith("r_"):
        return 1
    return 0


def _color(side: int) -> tuple[int, int, int]:
    return LEFT_COLOR if side < 0 else RIGHT_COLOR if side > 0 else CENTER_COLOR


def draw_poses(
    image_rgb: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None,
    spec: KeypointSpec,
    threshold: float = 0.3,
    boxes: np.ndarray | None = None,
    hollow: np.ndarray | None = None,
) -> np.ndarray:
    """Draw people on a copy of the image.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        keypoints: (P, K, 2) (or (K, 2) for one person) in image pixels.
        scores: (P, K) joint scores, or None to draw every joint; joints at or below
            ``threshold`` are skipped, and so are limbs touching them.
        spec: keypoint layout (names decide left/right colours, skeleton gives the limbs).
        boxes: optional (P, 4) ``xywh`` boxes.
        hollow: optional (P, K) bool: joints drawn as rings, not dots (e.g. occluded ones).

    Returns:
        (H, W, 3) uint8 RGB image with the poses drawn.
    """
    out = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2:
        kpts = kpts[None]
    if kpts.ndim != 3 or kpts.shape[1:] != (spec.num_keypoints, 2):
        raise ValueError(f"keypoints must have shape (P, {spec.num_keypoints}, 2), got {kpts.shape}")
    num = kpts.shape[0]
    sc = np.ones(kpts.shape[:2]) if scores is None else np.asarray(scores, dtype=np.float64).reshape(num, -1)
    size = max(out.shape[0], out.shape[1])
    thick = max(1, round(size / 250))
    radius = max(2, round(size / 180))
    sides = [_side(n) for n in spec.names]
    rings = np.zeros(kpts.shape[:2], bool) if hollow is None else np.asarray(hollow, bool).reshape(num, -1)
    if boxes is not None:
        for x, y, w, h in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            cv2.rectangle(out, (round(x), round(y)), (round(x + w), round(y + h)), BOX_COLOR, thick)
    for p in range(num):
        ok = (sc[p] > threshold) & np.isfinite(kpts[p]).all(axis=1)
        pts = [(round(x), round(y)) if o else None for (x, y), o in zip(kpts[p], ok, strict=True)]
        for a, b in spec.skeleton:
            pa, pb = pts[a], pts[b]
            if pa is None or pb is None:
                continue
            side = sides[a] if sides[a] == sides[b] else 0
            cv2.line(out, pa, pb, _color(side), thick, cv2.LINE_AA)
        for j, pt in enumerate(pts):
            if pt is None:
                continue
            if rings[p, j]:
                cv2.circle(out, pt, radius, _color(sides[j]), 1, cv2.LINE_AA)
                continue
            cv2.circle(out, pt, radius, _color(sides[j]), -1, cv2.LINE_AA)
            cv2.circle(out, pt, radius, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_heatmaps(image_rgb: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Overlay the per-pixel maximum over joints of heatmaps (K, h, w) on an image (H, W, 3).

    Heatmaps are clipped to [0, 1], resized to the image and coloured with the JET colour map.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must have shape (K, h, w), got {hm.shape}")
    peak = np.clip(hm.max(axis=0), 0.0, 1.0)
    height, width = image_rgb.shape[:2]
    peak = cv2.resize(peak, (width, height), interpolation=cv2.INTER_LINEAR)
    colored = cv2.cvtColor(cv2.applyColorMap((peak * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    weight = (alpha * peak)[..., None]
    blended = image_rgb.astype(np.float32) * (1 - weight) + colored.astype(np.float32) * weight
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def make_grid(tiles: list[np.ndarray], cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Arrange equally sized (H, W, 3) tiles in a grid (row-major), black padding between them."""
    if not tiles:
        raise ValueError("make_grid needs at least one tile")
    h, w = tiles[0].shape[:2]
    cols = cols or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            tile = cv2.resize(tile, (w, h))
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = tile
    return grid


def save_image(path: str, image_rgb: np.ndarray) -> None:
    """Write an RGB image (any format OpenCV knows from the extension); raises on failure."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"{path}: could not write image (unknown extension or unwritable folder)")


def plot_training_curve(
    steps: Sequence[Sequence[float]],
    evals: Sequence[Sequence[float]],
    metric: str,
    path: str | Path,
    title: str | None = None,
) -> None:
    """Training loss and lr per step (left), validation ``metric`` per epoch (right) -> PNG at ``path``.

    ``steps``: rows ``[step, loss, lr]``; ``evals``: rows ``[epoch, value]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    s = np.asarray(steps, np.float64).reshape(-1, 3)
    if len(s):
        ax_loss.plot(s[:, 0], s[:, 1], color="tab:blue", lw=1)
        ax_lr = ax_loss.twinx()
        ax_lr.plot(s[:, 0], s[:, 2], color="tab:gray", lw=1, ls="--")
        ax_lr.set_ylabel("learning rate (dashed)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    e = np.asarray(evals, np.float64).reshape(-1, 2)
    if len(e):
        ax_val.plot(e[:, 0], e[:, 1], "o-", color="tab:green")
        ax_val.annotate(
            f"{e[-1, 1]:.3f}", (e[-1, 0], e[-1, 1]), textcoords="offset points", xytext=(-10, 8), ha="right"
        )
        ax_val.set_xlim(0, max(1.0, float(e[:, 0].max())) * 1.05)
        ax_val.set_ylim(0, min(1.0, max(0.1, float(e[:, 1].max()) * 1.15)))
    else:
        ax_val.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_val.transAxes)
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel(f"validation {metric}")
    ax_val.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue(), "figure")
