"""Boxes, crops and the affine maps between image and network-input coordinates.

Conventions: a person crop is described by ``center`` (x, y) and ``scale`` (w, h), both in image
pixels; ``scale`` is the size of the image region that maps onto the whole network input (so it
already carries the 1.25 padding and the input aspect ratio). Rotation is in degrees,
counter-clockwise positive as in SimpleBaseline/HRNet.
"""

from __future__ import annotations

import math

import numpy as np


def box_to_center_scale(
    box: np.ndarray | tuple[float, float, float, float],
    aspect_ratio: float,
    padding: float = 1.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Convert an ``xywh`` box to the crop centre and size.

    The box is widened or heightened to the input aspect ratio ``w / h``, then padded.

    Returns:
        center (2,), scale (2,) as float32, in image pixels.
    """
    x, y, w, h = (float(v) for v in box)
    if not (w > 0 and h > 0) or not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"box must have positive finite width and height, got xywh={[x, y, w, h]}")
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    scale = np.array([w * padding, h * padding], dtype=np.float32)
    return center, scale


def get_affine_transform(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: float,
    output_size: tuple[int, int],
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix that maps the image region (centre, scale, rotation) onto ``output_size`` (w, h).

    The region's centre goes to ``(w / 2, h / 2)`` and its width to ``w``. With ``inverse`` the
    matrix maps output coordinates back to the image.
    """
    out_w, out_h = float(output_size[0]), float(output_size[1])
    sx = out_w / float(scale[0])
    sy = out_h / float(scale[1])
    theta = math.radians(rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    # output = S * R * (p - c) + o, where R rotates the image content by +rotation degrees
    # counter-clockwise in the output (y axis down, hence the sign pattern).
    rot = np.array([[cos, sin], [-sin, cos]], dtype=np.float64)
    lin = np.diag([sx, sy]) @ rot
    offset = np.array([out_w * 0.5, out_h * 0.5]) - lin @ np.asarray(center, dtype=np.float64)
    mat = np.concatenate([lin, offset[:, None]], axis=1)
    if inverse:
        mat = invert_affine(mat)
    return mat.astype(np.float32)


def invert_affine(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(mat, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def affine_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points of shape (..., 2); returns the same shape."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(mat, dtype=np.float64)
    out = pts @ m[:, :2].T + m[:, 2]
    return out.astype(np.float32)


def input_to_image(
    points: np.ndarray, center: np.ndarray, scale: np.ndarray, input_size: tuple[int, int]
) -> np.ndarray:
    """Map network-input pixel coordinates (N, K, 2) or (K, 2) back to the image (no rotation)."""
    pts = np.asarray(points, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    if pts.ndim == 3:
        c = c[:, None, :]
        s = s[:, None, :]
    size = np.asarray(input_size, dtype=np.float64)
    return (c + (pts - size * 0.5) * s / size).astype(np.float32)
