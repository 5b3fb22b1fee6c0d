"""SynthPose scenes: backgrounds, clutter, occluders and camera effects (all vectorised cv2/numpy).

Backgrounds are built at low resolution and resized (gradients, smooth colour noise, checks and
stripes, a wall/floor split), then cluttered with random shapes, some of them limb-like capsules
in skin and cloth colours so that "a thick line" alone does not mean "a person". Occluders are
solid or striped shapes drawn in front of a chosen person. The finish step applies brightness and
contrast, optional blur and pixel noise.
"""

from __future__ import annotations

from statistics import NormalDist

import cv2
import numpy as np

from fasterpose.data.synthpose.draw import Color, Prim, random_color, shade

# standard normal quantiles at the 256 byte values' bin centres
_NORMAL_PPF = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)])


def make_background(rng: np.random.Generator, width: int, height: int, clutter: float) -> np.ndarray:
    """A (height, width, 3) uint8 BGR background with ``Poisson(6 * clutter)`` clutter shapes."""
    kind = int(rng.integers(4))
    size = (width, height)
    if kind == 0:  # bilinear gradient between four corner colours
        corners = np.array([[random_color(rng) for _ in range(2)] for _ in range(2)], np.uint8)
        img = cv2.resize(corners, size, interpolation=cv2.INTER_LINEAR)
    elif kind == 1:  # smooth colour noise
        g = int(rng.integers(2, 9))
        base = np.array(random_color(rng), float)
        grid = np.clip(base + rng.normal(0, 50, (g, g, 3)), 0, 255).astype(np.uint8)
        img = cv2.resize(grid, size, interpolation=cv2.INTER_CUBIC)
    elif kind == 2:  # checks or stripes of two colours
        gx, gy = int(rng.integers(1, 16)), int(rng.integers(1, 16))
        a, b = np.array(random_color(rng), np.uint8), np.array(random_color(rng), np.uint8)
        parity = (np.arange(gy)[:, None] + np.arange(gx)[None, :]) % 2
        img = cv2.resize(np.where(parity[..., None] == 1, a, b), size, interpolation=cv2.INTER_NEAREST)
    else:  # wall and floor
        wall = np.array([random_color(rng), random_color(rng)], np.uint8)[:, None]
        floor = np.array([random_color(rng, (0.1, 0.7)), random_color(rng, (0.1, 0.7))], np.uint8)[:, None]
        split = int(rng.uniform(0.3, 0.8) * height)
        img = np.empty((height, width, 3), np.uint8)
        img[:split] = cv2.resize(wall, (width, split), interpolation=cv2.INTER_LINEAR)
        img[split:] = cv2.resize(floor, (width, height - split), interpolation=cv2.INTER_LINEAR)
    img = np.ascontiguousarray(img)
    for _ in range(int(rng.poisson(6.0 * clutter))):
        _clutter_shape(img, rng, width, height)
    return img


def _clutter_shape(img: np.ndarray, rng: np.random.Generator, width: int, height: int) -> None:
    s = min(width, height)
    c = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
    r = int(s * rng.uniform(0.03, 0.25))
    color = random_color(rng)
    kind = int(rng.integers(5))
    if kind == 0:
        cv2.rectangle(img, (c[0] - r, c[1] - r // 2), (c[0] + r, c[1] + r), color, -1)
    elif kind == 1:
        cv2.circle(img, c, r, color, -1, cv2.LINE_AA)
    elif kind == 2:
        pts = (np.array(c) + rng.normal(0, r, (6, 2))).astype(np.int32)
        cv2.fillConvexPoly(img, cv2.convexHull(pts), color, cv2.LINE_AA)
    elif kind == 3:  # limb-like capsule, often skin- or cloth-coloured
        end = (int(c[0] + rng.normal(0, r * 1.5)), int(c[1] + rng.normal(0, r * 1.5)))
        cv2.line(img, c, end, color, max(int(s * rng.uniform(0.01, 0.05)), 1), cv2.LINE_AA)
    else:  # thin lines (edges, cables)
        end = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.line(img, c, end, shade(color, 0.7), int(rng.integers(1, 4)), cv2.LINE_AA)


def make_occluder(rng: np.random.Generator, anchor: np.ndarray, person_height: float) -> list[Prim]:
    """Primitives of one occluder centred near ``anchor`` (2,), sized relative to the person."""
    major = person_height * rng.uniform(0.18, 0.5)
    minor = major * rng.uniform(0.3, 1.0)
    centre = anchor + rng.normal(0, 0.06 * person_height, 2)
    color: Color = random_color(rng)
    theta = rng.uniform(0, np.pi)
    u, v = np.array([np.cos(theta), np.sin(theta)]), np.array([-np.sin(theta), np.cos(theta)])
    kind = int(rng.integers(4))
    prims: list[Prim] = []
    if kind == 0:  # box, maybe striped
        corners = np.array(
            [centre + su * major / 2 * u + sv * minor / 2 * v for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        )
        prims.append(("poly", corners, color))
        if rng.random() < 0.5:
            stripe = random_color(rng)
            for t in np.linspace(-0.35, 0.35, 4):
                a, b = centre + t * major * u - 0.45 * minor * v, centre + t * major * u + 0.45 * minor * v
                prims.append(("seg", a, b, max(0.06 * major, 1.0), stripe))
    elif kind == 1:  # ellipse (ball, bag)
        half = np.abs(u) * major / 2 + np.abs(v) * minor / 2
        prims.append(("ell", centre, (major / 2, minor / 2), float(np.degrees(theta)), tuple(half), color))
    elif kind == 2:  # pole / railing
        a, b = centre - 1.2 * major * u, centre + 1.2 * major * u
        prims.append(("seg", a, b, max(minor * 0.35, 2.0), color))
    else:  # blob
        pts = (centre + rng.normal(0, major / 3, (7, 2))).astype(np.float32)
        prims.append(("poly", cv2.convexHull(pts)[:, 0].astype(np.float64), color))
    return prims


def finish(img: np.ndarray, rng: np.random.Generator, noise: float, blur_prob: float) -> np.ndarray:
    """Brightness/contrast jitter, optional Gaussian blur, then Gaussian pixel noise of standard
    deviation up to ``noise`` (grey levels), one draw per pixel and channel."""
    img = cv2.convertScaleAbs(img, alpha=rng.uniform(0.8, 1.2), beta=rng.uniform(-20, 20))
    if rng.random() < blur_prob:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.3))
    if noise > 0:
        # Gaussian noise by inverse-CDF lookup of random bytes (10x faster than standard_normal);
        # cv2.add saturates uint8 + int16 to uint8 exactly as clip(img + noise, 0, 255) does
        lut = np.round(_NORMAL_PPF * (noise * rng.uniform(0.3, 1.0))).astype(np.int16)
        u = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape)
        img = cv2.add(img, cv2.LUT(u, lut), dtype=cv2.CV_8U)
    return img
