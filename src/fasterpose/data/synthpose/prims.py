"""SynthPose primitives: float shapes in image pixels, compiled once to cv2's fixed-point form.

Float primitives, as built by the person and scene code (colours are BGR int tuples):

* ``("poly", pts (n, 2), color)``: filled convex polygon;
* ``("seg", p1 (2,), p2 (2,), thickness, color)``: capsule (cv2 thick lines have round caps);
* ``("circ", centre (2,), radius, color)``: filled disc;
* ``("ell", centre (2,), (a, b), angle_deg, (half_w, half_h), color)``: filled ellipse with its
  axis-aligned half extents.

:func:`compile_prim` turns one into ``(kind, args, color, bounds)`` with integer coordinates in
units of 1/16 pixel (cv2's ``shift = 4``), so drawing the same shape into the image, the label map
and a mask costs one conversion.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4
_S = float(1 << SHIFT)

Prim = tuple  # a float primitive (see module docstring)
CPrim = tuple  # (kind, args, color, bounds (x0, y0, x1, y1))


def _ip(p: np.ndarray) -> tuple[int, int]:
    return math.floor(p[0] * _S + 0.5), math.floor(p[1] * _S + 0.5)


def compile_prim(p: Prim) -> CPrim:
    """A float primitive -> its fixed-point form with float bounds (x0, y0, x1, y1)."""
    kind = p[0]
    if kind == "poly":
        pts = np.asarray(p[1], np.float64)
        lo, hi = pts.min(0), pts.max(0)
        return kind, (np.round(pts * _S).astype(np.int32),), p[2], (lo[0], lo[1], hi[0], hi[1])
    if kind == "seg":
        a, b, t = p[1], p[2], max(int(p[3] + 0.5), 1)
        r = t / 2 + 0.5
        bounds = (min(a[0], b[0]) - r, min(a[1], b[1]) - r, max(a[0], b[0]) + r, max(a[1], b[1]) + r)
        return kind, (_ip(a), _ip(b), t), p[4], bounds
    if kind == "circ":
        c, r = p[1], float(p[2])
        return kind, (_ip(c), int(r * _S + 0.5)), p[3], (c[0] - r, c[1] - r, c[0] + r, c[1] + r)
    if kind == "ell":
        c, (ax, ay), hw, hh = p[1], p[2], p[4][0], p[4][1]
        args = (_ip(c), (int(ax * _S + 0.5), int(ay * _S + 0.5)), float(p[3]))
        return kind, args, p[5], (c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh)
    raise ValueError(f"SynthPose: unknown primitive kind {kind!r}")


def draw_prim(canvas: np.ndarray, p: CPrim, color: tuple[int, int, int] | int | None, line_type: int) -> None:
    """Draw a compiled primitive on ``canvas`` (H, W[, 3]); ``color`` None uses its own colour."""
    kind, args = p[0], p[1]
    c = p[2] if color is None else color
    if kind == "seg":
        cv2.line(canvas, args[0], args[1], c, args[2], line_type, SHIFT)
    elif kind == "poly":
        cv2.fillConvexPoly(canvas, args[0], c, line_type, SHIFT)
    elif kind == "circ":
        cv2.circle(canvas, args[0], args[1], c, -1, line_type, SHIFT)
    else:
        cv2.ellipse(canvas, args[0], args[1], args[2], 0, 360, c, -1, line_type, SHIFT)


def prims_extent(prims: list[CPrim]) -> np.ndarray:
    """(x0, y0, x1, y1) bounding compiled primitives."""
    b = np.array([p[3] for p in prims], np.float64)
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])
