"""SynthPose bodies: a kinematic skeleton with human proportions and joint limits.

A body is built in its own frame (units of standing height; ``x`` = the person's left, ``y`` = up,
``z`` = the way the person faces), posed by 22 joint angles sampled around a few everyday pose
templates and clipped to joint limits, then rotated (yaw, camera elevation, in-plane lean), scaled
and projected orthographically into the image. Camera coordinates: ``x`` right, ``y`` down, ``z``
away from the camera, in image pixels; ``z`` orders drawing and decides self-occlusion.

At yaw 0 the person faces the camera, so their left side (body ``+x``) lands at larger image ``x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------- pose parameters
PARAM_NAMES = (
    "spine_flex", "spine_side", "spine_twist", "head_yaw", "head_pitch", "head_roll",
    "l_sh_abd", "l_sh_flex", "l_sh_twist", "l_elbow",
    "r_sh_abd", "r_sh_flex", "r_sh_twist", "r_elbow",
    "l_hip_flex", "l_hip_abd", "l_hip_twist", "l_knee",
    "r_hip_flex", "r_hip_abd", "r_hip_twist", "r_knee",
)  # fmt: skip
_P = {n: i for i, n in enumerate(PARAM_NAMES)}
NUM_PARAMS = len(PARAM_NAMES)

# joint limits in degrees (lower, upper), same order as PARAM_NAMES
LIMITS = np.array([
    (-25, 70), (-30, 30), (-40, 40), (-75, 75), (-40, 45), (-30, 30),
    (-20, 175), (-60, 175), (-90, 90), (0, 150),
    (-20, 175), (-60, 175), (-90, 90), (0, 150),
    (-30, 125), (-20, 60), (-40, 40), (0, 150),
    (-30, 125), (-20, 60), (-40, 40), (0, 150),
], dtype=np.float64)  # fmt: skip

# per-parameter noise (degrees) around a template at pose_variation = 1
NOISE = np.array([8, 6, 12, 30, 15, 8, 20, 22, 35, 25, 20, 22, 35, 25, 15, 8, 12, 18, 15, 8, 12, 18], float)

# templates: name -> {param: degrees}; unspecified parameters are 0
_TEMPLATES: dict[str, dict[str, float]] = {
    "stand": {"l_sh_abd": 10, "r_sh_abd": 10, "l_elbow": 10, "r_elbow": 10, "l_hip_abd": 4, "r_hip_abd": 4},
    "walk": {"l_sh_flex": 25, "r_sh_flex": -20, "l_elbow": 25, "r_elbow": 15, "l_sh_abd": 6, "r_sh_abd": 6,
             "l_hip_flex": -15, "l_knee": 10, "r_hip_flex": 25, "r_knee": 20},
    "run": {"spine_flex": 15, "l_sh_flex": 50, "l_elbow": 90, "r_sh_flex": -40, "r_elbow": 90,
            "l_hip_flex": -20, "l_knee": 90, "r_hip_flex": 60, "r_knee": 70, "head_pitch": -10},
    "arms_up": {"l_sh_abd": 155, "r_sh_abd": 155, "l_elbow": 15, "r_elbow": 15, "head_pitch": -15},
    "t_pose": {"l_sh_abd": 90, "r_sh_abd": 90, "l_elbow": 5, "r_elbow": 5, "l_hip_abd": 8, "r_hip_abd": 8},
    "sit": {"l_hip_flex": 90, "r_hip_flex": 90, "l_knee": 90, "r_knee": 90, "l_hip_abd": 10,
            "r_hip_abd": 10, "l_sh_flex": 25, "r_sh_flex": 25, "l_elbow": 60, "r_elbow": 60},
    "squat": {"spine_flex": 30, "l_hip_flex": 110, "r_hip_flex": 110, "l_knee": 130, "r_knee": 130,
              "l_hip_abd": 20, "r_hip_abd": 20, "l_sh_flex": 70, "r_sh_flex": 70, "head_pitch": -25},
    "wave": {"l_sh_abd": 100, "l_sh_twist": 80, "l_elbow": 100, "r_sh_abd": 10, "r_elbow": 10},
    "point": {"l_sh_flex": 90, "l_elbow": 5, "r_sh_abd": 10, "r_elbow": 15, "head_yaw": 20},
    "kick": {"spine_flex": -10, "r_hip_flex": 80, "r_knee": 15, "l_sh_abd": 40, "r_sh_abd": 40,
             "l_knee": 10},
    "lunge": {"l_hip_flex": 80, "l_knee": 85, "r_hip_flex": -25, "r_knee": 15, "spine_flex": 10,
              "l_sh_flex": 20, "r_sh_flex": 20, "l_elbow": 40, "r_elbow": 40},
    "bend": {"spine_flex": 65, "l_sh_flex": 70, "r_sh_flex": 70, "l_elbow": 15, "r_elbow": 15,
             "head_pitch": -30, "l_knee": 10, "r_knee": 10},
    "cross_arms": {"l_sh_flex": 60, "l_sh_abd": -15, "l_sh_twist": -60, "l_elbow": 120,
                   "r_sh_flex": 55, "r_sh_abd": -15, "r_sh_twist": -60, "r_elbow": 115},
    "jump": {"l_sh_abd": 140, "r_sh_abd": 140, "l_hip_abd": 35, "r_hip_abd": 35, "l_knee": 20, "r_knee": 20},
}  # fmt: skip
TEMPLATE_NAMES = tuple(_TEMPLATES)
TEMPLATE_PROBS = np.array([3, 3, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1], float)
TEMPLATE_PROBS /= TEMPLATE_PROBS.sum()
TEMPLATES = np.zeros((len(_TEMPLATES), NUM_PARAMS))
for _t, _spec in enumerate(_TEMPLATES.values()):
    for _name, _deg in _spec.items():
        TEMPLATES[_t, _P[_name]] = _deg

_SWAP = np.arange(NUM_PARAMS)
_SWAP[6:10], _SWAP[10:14], _SWAP[14:18], _SWAP[18:22] = range(10, 14), range(6, 10), range(18, 22), range(14, 18)
_NEGATE_ON_MIRROR = np.array([_P[n] for n in ("spine_side", "spine_twist", "head_yaw", "head_roll")])


def sample_pose(rng: np.random.Generator, pose_variation: float = 1.0) -> np.ndarray:
    """Sample joint angles (NUM_PARAMS,) in degrees: a template, mirrored half of the time,
    plus Gaussian noise scaled by ``pose_variation``; with probability ``0.15 * pose_variation``
    the limbs are drawn uniformly within their limits instead. Always clipped to LIMITS."""
    t = int(rng.choice(len(TEMPLATE_NAMES), p=TEMPLATE_PROBS))
    angles = TEMPLATES[t].copy()
    if rng.random() < 0.5:
        angles = angles[_SWAP]
        angles[_NEGATE_ON_MIRROR] *= -1
    angles += rng.standard_normal(NUM_PARAMS) * NOISE * pose_variation
    if rng.random() < 0.15 * pose_variation:
        uniform = rng.uniform(LIMITS[:, 0], LIMITS[:, 1])
        angles[6:] = uniform[6:]
    return np.clip(angles, LIMITS[:, 0], LIMITS[:, 1])


# ---------------------------------------------------------------------------- rotations
def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


_BODY_TO_CAMERA = np.diag([1.0, -1.0, -1.0])  # yaw 0: facing the camera, up = image up


def view_rotation(yaw: float, elevation: float, roll: float) -> np.ndarray:
    """Camera-from-body rotation (3, 3): yaw about the body's vertical, then camera elevation
    about the camera x axis, then in-plane roll (all degrees)."""
    return rot_z(roll) @ rot_x(elevation) @ _BODY_TO_CAMERA @ rot_y(yaw)


# ---------------------------------------------------------------------------- the posed body
@dataclass
class Shape:
    """Per-person proportions (units of standing height) and build."""

    upper_arm: float = 0.17
    forearm: float = 0.15
    thigh: float = 0.245
    shin: float = 0.245
    shoulder_half: float = 0.12
    hip_half: float = 0.085
    head: float = 1.0  # head size factor
    build: float = 1.0  # limb thickness factor

    @classmethod
    def sample(cls, rng: np.random.Generator, thickness_range: tuple[float, float]) -> Shape:
        j = 1.0 + 0.04 * rng.standard_normal(4)
        return cls(
            upper_arm=0.17 * j[0],
            forearm=0.15 * j[1],
            thigh=0.245 * j[2],
            shin=0.245 * j[3],
            shoulder_half=0.12 * rng.uniform(0.88, 1.12),
            hip_half=0.085 * rng.uniform(0.9, 1.15),
            head=rng.uniform(0.92, 1.12),
            build=rng.uniform(*thickness_range),
        )


@dataclass
class Body:
    """A posed body in the body frame (units of height), before the view transform.

    joints: (17, 3) COCO-17 keypoints. extra: named auxiliary points (3,) (neck base, head centre,
    hand and toe ends, pelvis). frames: named rotations (3, 3) body-from-local (upper body, head).
    """

    joints: np.ndarray
    extra: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]
    shape: Shape


# face points and their outward normals in the head frame (nose, l_eye, r_eye, l_ear, r_ear)
FACE_POINTS = np.array([
    (0.0, -0.012, 0.058), (0.021, 0.012, 0.044), (-0.021, 0.012, 0.044),
    (0.047, 0.0, -0.004), (-0.047, 0.0, -0.004),
])  # fmt: skip
FACE_NORMALS = np.array(
    [(0.0, -0.1, 1.0), (0.35, 0.1, 0.93), (-0.35, 0.1, 0.93), (1.0, 0.0, -0.15), (-1.0, 0.0, -0.15)]
)
FACE_NORMALS /= np.linalg.norm(FACE_NORMALS, axis=1, keepdims=True)
# a face point is seen when its normal points at least this much toward the camera
FACE_MIN_FACING = np.array([-0.25, 0.05, 0.05, -0.35, -0.35])


def pose_body(angles: np.ndarray, shape: Shape) -> Body:
    """Forward kinematics: joint angles (NUM_PARAMS,) in degrees -> a :class:`Body`."""
    a = angles
    up = rot_x(a[0]) @ rot_z(a[1]) @ rot_y(a[2])  # upper body frame
    neck_base = up @ np.array([0.0, 0.29, 0.0])
    head = up @ rot_y(a[3]) @ rot_x(a[4]) @ rot_z(a[5])
    head_centre = neck_base + up @ np.array([0.0, 0.045, 0.0]) + head @ np.array([0.0, 0.07, 0.008]) * shape.head
    face = head_centre + (FACE_POINTS * shape.head) @ head.T
    joints = np.zeros((17, 3))
    joints[0:5] = face
    extra: dict[str, np.ndarray] = {"neck_base": neck_base, "head_centre": head_centre, "pelvis": np.zeros(3)}
    down = np.array([0.0, -1.0, 0.0])
    for side, s, base in (("l", 1.0, 6), ("r", -1.0, 10)):
        shoulder = up @ np.array([s * shape.shoulder_half, 0.27, -0.005])
        r_sh = up @ rot_z(s * a[base]) @ rot_x(-a[base + 1]) @ rot_y(s * a[base + 2])
        elbow = shoulder + r_sh @ down * shape.upper_arm
        r_el = r_sh @ rot_x(-a[base + 3])
        wrist = elbow + r_el @ down * shape.forearm
        k = 5 if side == "l" else 6
        joints[k], joints[k + 2], joints[k + 4] = shoulder, elbow, wrist
        extra[f"{side}_hand"] = wrist + r_el @ down * 0.055
    for side, s, base in (("l", 1.0, 14), ("r", -1.0, 18)):
        hip = np.array([s * shape.hip_half, 0.0, 0.0])
        r_hip = rot_z(s * a[base + 1]) @ rot_x(-a[base]) @ rot_y(s * a[base + 2])
        knee = hip + r_hip @ down * shape.thigh
        r_kn = r_hip @ rot_x(a[base + 3])
        ankle = knee + r_kn @ down * shape.shin
        k = 11 if side == "l" else 12
        joints[k], joints[k + 2], joints[k + 4] = hip, knee, ankle
        extra[f"{side}_toe"] = ankle + r_kn @ np.array([0.0, -0.035, 0.115])
    return Body(joints=joints, extra=extra, frames={"upper": up, "head": head}, shape=shape)


def sample_view(rng: np.random.Generator, pose_variation: float = 1.0) -> tuple[float, float, float]:
    """(yaw, elevation, roll) in degrees: mostly frontal, some backs and profiles, slight lean,
    occasionally a strongly rotated (lying, acrobatic) body."""
    u = rng.random()
    if u < 0.45:
        yaw = rng.normal(0.0, 30.0)
    elif u < 0.65:
        yaw = rng.normal(180.0, 30.0)
    else:
        yaw = rng.uniform(-180.0, 180.0)
    elevation = float(np.clip(rng.normal(0.0, 10.0), -35, 35))
    roll = rng.normal(0.0, 7.0 * pose_variation)
    if rng.random() < 0.05 * pose_variation:
        roll = rng.choice([-1.0, 1.0]) * rng.uniform(45.0, 110.0)
    return float(yaw), elevation, float(roll)
