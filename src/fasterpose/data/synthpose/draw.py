"""SynthPose drawing: a posed body -> depth-ordered 2D primitives, and the cv2 calls that draw them.

A person is a list of parts (torso, head, neck and the eight limb segments), each a few primitives
(convex polygons, capsules = thick lines with round caps, ellipses, circles) in image pixels with
the depth of the part; parts are drawn far to near (painter's algorithm), so a limb behind the
torso is hidden by it. The same primitives are drawn three times: in colour (anti-aliased) into the
image, as a label (``1 + 16 * person + part``) into the label map that decides keypoint visibility,
and as 1 into the person's own (amodal) mask that gives its box, area and segmentation.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from fasterpose.data.synthpose.body import FACE_MIN_FACING, FACE_NORMALS, Body
from fasterpose.data.synthpose.prims import CPrim, Prim, compile_prim, draw_prim, prims_extent

# part ids (label = 1 + 16 * person_slot + part)
TORSO, HEAD, NECK, L_UARM, L_FARM, R_UARM, R_FARM, L_THIGH, L_SHIN, R_THIGH, R_SHIN = range(11)
PARTS_PER_PERSON = 16
OCCLUDER_LABEL = 255
# the parts on which each COCO-17 keypoint may be seen
KEYPOINT_PARTS: tuple[frozenset[int], ...] = (
    *(frozenset({HEAD}),) * 5,
    frozenset({TORSO, L_UARM}), frozenset({TORSO, R_UARM}),
    frozenset({L_UARM, L_FARM}), frozenset({R_UARM, R_FARM}),
    frozenset({L_FARM}), frozenset({R_FARM}),
    frozenset({TORSO, L_THIGH}), frozenset({TORSO, R_THIGH}),
    frozenset({L_THIGH, L_SHIN}), frozenset({R_THIGH, R_SHIN}),
    frozenset({L_SHIN}), frozenset({R_SHIN}),
)  # fmt: skip

Color = tuple[int, int, int]

_SKIN_RGB = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 30))
_HAIR_RGB = ((20, 20, 20), (60, 40, 25), (110, 75, 40), (200, 170, 100), (150, 150, 150), (150, 60, 30))


def random_color(rng: np.random.Generator, v_range: tuple[float, float] = (0.2, 1.0)) -> Color:
    """A random saturated-or-not BGR colour."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.15, 1.0), rng.uniform(*v_range))
    return int(b * 255), int(g * 255), int(r * 255)


def _jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: float = 12.0) -> Color:
    c = np.clip(np.asarray(rgb, float) + rng.normal(0.0, amount, 3), 0, 255).astype(int)
    return int(c[2]), int(c[1]), int(c[0])


def shade(c: Color, f: float) -> Color:
    return int(c[0] * f), int(c[1] * f), int(c[2] * f)


@dataclass
class Look:
    """A person's appearance: BGR colours and clothing choices."""

    skin: Color
    shirt: Color
    pants: Color
    shoes: Color
    hair: Color
    long_sleeves: bool
    shorts: bool
    hair_style: int  # 0 bald, 1 short, 2 long
    stripes: Color | None
    outline: bool

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Look:
        skin_rgb = _SKIN_RGB[int(rng.integers(len(_SKIN_RGB)))]
        return cls(
            skin=_jitter(skin_rgb, rng) if rng.random() > 0.1 else random_color(rng),
            shirt=random_color(rng),
            pants=random_color(rng, (0.1, 0.8)),
            shoes=random_color(rng, (0.05, 0.5)),
            hair=_jitter(_HAIR_RGB[int(rng.integers(len(_HAIR_RGB)))], rng, 8.0),
            long_sleeves=bool(rng.random() < 0.5),
            shorts=bool(rng.random() < 0.3),
            hair_style=int(rng.choice(3, p=[0.1, 0.6, 0.3])),
            stripes=random_color(rng) if rng.random() < 0.3 else None,
            outline=bool(rng.random() < 0.7),
        )


@dataclass
class PersonDrawing:
    """A projected person: keypoints (17, 3) camera x, y (image px), z (depth, px); parts as
    (depth, part_id, [prims]); facing (17,) False where the body itself turns the point away."""

    keypoints: np.ndarray
    parts: list[tuple[float, int, list[CPrim]]] = field(default_factory=list)
    facing: np.ndarray = field(default_factory=lambda: np.ones(17, bool))
    _extent: np.ndarray | None = None

    def extent(self) -> np.ndarray:
        """(x0, y0, x1, y1) bounding everything drawn, from the compiled primitives (cached)."""
        if self._extent is None:
            self._extent = prims_extent([p for _, _, prims in self.parts for p in prims])
        return self._extent


def _ellipsoid(centre: np.ndarray, cam_from_local: np.ndarray, semi: np.ndarray, color: Color) -> Prim:
    """Orthographic shadow of an ellipsoid: the image of the unit ball under A = (M diag(semi))[:2]
    is the ellipse x^T (A A^T)^-1 x <= 1."""
    a = cam_from_local[:2] * semi
    sxx, sxy, syy = float(a[0] @ a[0]), float(a[0] @ a[1]), float(a[1] @ a[1])
    mid, rad = (sxx + syy) / 2, float(np.hypot((sxx - syy) / 2, sxy))
    angle = 0.5 * np.degrees(np.arctan2(2 * sxy, sxx - syy))
    axes = (np.sqrt(mid + rad), np.sqrt(max(mid - rad, 0.0)))
    return ("ell", centre[:2], axes, float(angle), (np.sqrt(sxx), np.sqrt(syy)), color)


def _head_prims(
    body: Body,
    kp: np.ndarray,
    facing: np.ndarray,
    hc: np.ndarray,
    head_cam: np.ndarray,
    scale: float,
    cam: Callable[[np.ndarray], np.ndarray],
    look: Look,
) -> list[Prim]:
    """Skin and hair ellipsoids of the head (centre ``hc``, rotation ``head_cam`` camera-from-head),
    then the face points (nose, eyes, ears: ``kp[:5]`` where ``facing``) and the mouth, far to near."""
    hs, m = body.shape.head, head_cam * scale
    skin = _ellipsoid(hc, m, np.array([0.047, 0.063, 0.055]) * hs, look.skin)
    hair: list[Prim] = []
    if look.hair_style:
        hair.append(
            _ellipsoid(hc + m @ np.array([0, 0.012, -0.01]) * hs, m, np.array([0.051, 0.066, 0.057]) * hs, look.hair)
        )
    if look.hair_style == 2:
        hair.append(
            _ellipsoid(hc + m @ np.array([0, -0.035, -0.035]) * hs, m, np.array([0.056, 0.075, 0.03]) * hs, look.hair)
        )
    facing_cam = -head_cam[2, 2]
    head_prims = (hair + [skin]) if facing_cam > -0.2 else ([skin] + hair)
    r_px = 0.011 * hs * scale
    ear_c, dark = shade(look.skin, 0.8), (25, 20, 20)
    for k in np.argsort(-kp[:5, 2]):  # far to near
        if not facing[k]:
            continue
        c = kp[k, :2]
        if k == 0:
            head_prims.append(("circ", c, max(r_px * 0.8, 0.6), shade(look.skin, 0.72)))
        elif k <= 2:
            if r_px >= 2.0:
                head_prims.append(("circ", c, r_px, (235, 235, 235)))
            head_prims.append(("circ", c, max(r_px * 0.55, 0.6), dark))
        else:
            head_prims.append(("circ", c, max(r_px * 1.1, 0.6), ear_c))
    if facing_cam > 0.3 and r_px >= 1.5:
        mouth = cam(
            np.array([(0.016, -0.033, 0.05), (-0.016, -0.033, 0.05)]) * hs @ body.frames["head"].T
            + body.extra["head_centre"]
        )
        head_prims.append(("seg", mouth[0, :2], mouth[1, :2], max(r_px * 0.5, 1.0), (60, 50, 140)))
    return head_prims


def build_person(body: Body, rot: np.ndarray, scale: float, offset: np.ndarray, look: Look) -> PersonDrawing:
    """Project a posed body (rotation ``rot`` camera-from-body, ``scale`` px per height, ``offset``
    (3,) camera translation) into parts of primitives."""
    sh, b = body.shape, body.shape.build

    def cam(p: np.ndarray) -> np.ndarray:
        return p @ rot.T * scale + offset

    kp = cam(body.joints)
    ex = {k: cam(v) for k, v in body.extra.items()}
    up_cam, head_cam = rot @ body.frames["upper"], rot @ body.frames["head"]
    out = PersonDrawing(keypoints=kp)
    # self-occlusion: face points by their normals, shoulders/hips by the side they sit on
    toward = -(FACE_NORMALS @ head_cam.T)[:, 2]
    out.facing[:5] = toward >= FACE_MIN_FACING
    out.facing[5], out.facing[6] = up_cam[2, 0] < 0.6, -up_cam[2, 0] < 0.6
    out.facing[11], out.facing[12] = rot[2, 0] < 0.6, -rot[2, 0] < 0.6
    eps = 0.03 * scale  # ties go to limbs (in front of the torso)
    oc = look.outline

    def limb(p1: np.ndarray, p2: np.ndarray, width: float, color: Color) -> list[Prim]:
        t = max(width * b * scale, 1.0)
        prims: list[Prim] = []
        if oc and t >= 4:
            prims.append(("seg", p1[:2], p2[:2], t + 2, shade(color, 0.55)))
        prims.append(("seg", p1[:2], p2[:2], t, color))
        return prims

    # torso: convex hull of chest, waist and hip corners; pants over the pelvis; collar on the front
    wb = b**0.5
    chest = np.array([(sx * (sh.shoulder_half + 0.025) * wb, 0.275, sz * 0.055) for sx in (1, -1) for sz in (1, -1)])
    waist = np.array([(sx * 0.105 * wb, 0.13, sz * 0.065) for sx in (1, -1) for sz in (1, -1)])
    hips = np.array([(sx * (sh.hip_half + 0.045) * wb, -0.045, sz * 0.06) for sx in (1, -1) for sz in (1, -1)])
    belt = np.array([(sx * (sh.hip_half + 0.04) * wb, 0.07, sz * 0.063) for sx in (1, -1) for sz in (1, -1)])
    up = body.frames["upper"]
    torso_pts = cam(np.concatenate([chest @ up.T, waist @ up.T, hips]))[:, :2]
    prims: list[Prim] = [("poly", cv2.convexHull(torso_pts.astype(np.float32))[:, 0], look.shirt)]
    if look.stripes is not None:
        for y in np.linspace(0.27, 0.12, 5):
            ends = cam(np.array([(0.1 * wb, y, 0.0), (-0.1 * wb, y, 0.0)]) @ up.T)
            prims.append(("seg", ends[0, :2], ends[1, :2], max(0.012 * scale, 1.0), look.stripes))
    pants_pts = cam(np.concatenate([hips, belt]))[:, :2]
    prims.append(("poly", cv2.convexHull(pants_pts.astype(np.float32))[:, 0], look.pants))
    if up_cam[2, 2] < -0.3:  # chest faces the camera: a V-neck collar
        collar = cam(np.array([(0.045, 0.28, 0.058), (-0.045, 0.28, 0.058), (0.0, 0.225, 0.062)]) @ up.T)
        prims.append(("poly", collar[:, :2], look.skin))
    torso_depth = float((ex["neck_base"][2] + ex["pelvis"][2]) / 2)
    out.parts.append((torso_depth, TORSO, prims))

    # head: skin and hair ellipsoids, then the face points that face the camera
    hs, hc, m = sh.head, ex["head_centre"], head_cam * scale
    head_prims = _head_prims(body, kp, out.facing, hc, head_cam, scale, cam, look)
    neck_top = hc + m @ np.array([0.0, -0.035, -0.01]) * hs
    out.parts.append((float(hc[2]) + 1e-3, NECK, limb(ex["neck_base"], neck_top, 0.05, shade(look.skin, 0.9))))
    out.parts.append((float(hc[2]), HEAD, head_prims))

    # limbs
    for k_sh, k_el, k_wr, hand, ua, fa in ((5, 7, 9, "l_hand", L_UARM, L_FARM), (6, 8, 10, "r_hand", R_UARM, R_FARM)):
        out.parts.append((float(kp[[k_sh, k_el], 2].mean()) - eps, ua, limb(kp[k_sh], kp[k_el], 0.058, look.shirt)))
        fa_prims = limb(kp[k_el], kp[k_wr], 0.046, look.shirt if look.long_sleeves else look.skin)
        fa_prims.append(("circ", ((kp[k_wr] + ex[hand]) / 2)[:2], max(0.026 * b * scale, 0.8), look.skin))
        out.parts.append((float(kp[[k_el, k_wr], 2].mean()) - eps, fa, fa_prims))
    for k_hp, k_kn, k_an, toe, th, sn in (
        (11, 13, 15, "l_toe", L_THIGH, L_SHIN),
        (12, 14, 16, "r_toe", R_THIGH, R_SHIN),
    ):
        out.parts.append((float(kp[[k_hp, k_kn], 2].mean()) - eps, th, limb(kp[k_hp], kp[k_kn], 0.085, look.pants)))
        sn_prims = limb(kp[k_kn], kp[k_an], 0.062, look.skin if look.shorts else look.pants)
        sn_prims += limb(kp[k_an], ex[toe], 0.045, look.shoes)
        out.parts.append((float(kp[[k_kn, k_an], 2].mean()) - eps, sn, sn_prims))
    out.parts = [(d, pid, [compile_prim(p) for p in prims]) for d, pid, prims in sorted(out.parts, key=lambda t: -t[0])]
    return out


def draw_person(image: np.ndarray, labels: np.ndarray, person: PersonDrawing, slot: int, antialias: bool) -> None:
    """Draw ``person`` into the colour image and the label map (label ``1 + 16 * slot + part``)."""
    lt = cv2.LINE_AA if antialias else cv2.LINE_8
    for _, part, prims in person.parts:
        label = 1 + PARTS_PER_PERSON * slot + part
        for p in prims:
            draw_prim(image, p, None, lt)
            draw_prim(labels, p, label, cv2.LINE_8)


def person_mask(person: PersonDrawing, scratch: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The person's amodal mask clipped to the image: (crop (h, w) uint8, x0, y0). ``scratch`` is
    an image-sized uint8 buffer, overwritten."""
    height, width = scratch.shape
    x0, y0, x1, y1 = person.extent()
    xa, ya = min(max(int(np.floor(x0)) - 1, 0), width), min(max(int(np.floor(y0)) - 1, 0), height)
    xb, yb = max(min(int(np.ceil(x1)) + 2, width), xa), max(min(int(np.ceil(y1)) + 2, height), ya)
    scratch[ya:yb, xa:xb] = 0
    for _, _, prims in person.parts:
        for p in prims:
            draw_prim(scratch, p, 1, cv2.LINE_8)
    return np.ascontiguousarray(scratch[ya:yb, xa:xb]), xa, ya
