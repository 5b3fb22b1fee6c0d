"""Top-down training augmentation and the affine crop, as SimpleBaseline/HRNet define them.

The sampling follows the lineage code (which the paper reuses):

* half-body: with probability ``half_body_prob`` when more than ``half_body_min_joints`` joints
  are labelled, crop the upper or the lower body around its labelled joints, aspect-corrected and
  padded by 1.5. The upper body is chosen when a standard normal draw is below 0.5, as the lineage
  writes it (``np.random.randn() < 0.5``: probability 0.69, not a fair coin);
* scale: ``s *= clip(1 + N(0, 1) * scale_factor, 1 - scale_factor, 1 + scale_factor)``;
* rotation: with probability ``rotation_prob``, ``clip(N(0, 1) * rotation_factor, -2 rf, 2 rf)``
  degrees (so the factor is a standard deviation, as in the lineage), else 0;
* flip: with probability 0.5, mirror (pixel column ``x -> W - 1 - x``) and swap left/right joints.

The flip is folded into the crop's affine matrix, so each sample costs one ``cv2.warpAffine``
and keypoints always go through exactly the matrix the pixels went through. All randomness comes
from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fasterpose.config import AugmentConfig
from fasterpose.geometry import affine_points, get_affine_transform

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
HALF_BODY_PADDING = 1.5
_NORM_SCALE = (1.0 / (255.0 * IMAGENET_STD)).astype(np.float32)[:, None, None]
_NORM_OFFSET = (IMAGENET_MEAN / IMAGENET_STD).astype(np.float32)[:, None, None]


@dataclass(frozen=True)
class CropParams:
    """Where to crop: centre (2,) and scale (2,) in (unflipped) image pixels, rotation in degrees."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False


def half_body_crop(
    keypoints: np.ndarray, upper_body: tuple[int, ...], aspect_ratio: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and scale of an upper- or lower-body crop from the labelled joints (K, 3); None if too few."""
    labelled = keypoints[:, 2] > 0
    is_upper = np.zeros(len(keypoints), dtype=bool)
    is_upper[list(upper_body)] = True
    upper = keypoints[labelled & is_upper, :2]
    lower = keypoints[labelled & ~is_upper, :2]
    use_upper = rng.standard_normal() < 0.5 and len(upper) > 2  # the lineage's randn() < 0.5 (p = 0.69)
    selected = upper if use_upper or len(lower) <= 2 else lower
    if len(selected) < 2:
        return None
    center = selected.mean(axis=0)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    if w <= 0 or h <= 0:
        return None
    scale = np.array([w, h], dtype=np.float32) * HALF_BODY_PADDING
    return center.astype(np.float32), scale


def sample_crop(
    center: np.ndarray,
    scale: np.ndarray,
    keypoints: np.ndarray,
    augment: AugmentConfig,
    upper_body: tuple[int, ...],
    aspect_ratio: float,
    rng: np.random.Generator,
) -> CropParams:
    """Draw one training crop (half-body, scale, rotation, flip) in the lineage's order."""
    c = np.asarray(center, dtype=np.float32).copy()
    s = np.asarray(scale, dtype=np.float32).copy()
    num_labelled = int((keypoints[:, 2] > 0).sum())
    if num_labelled > augment.half_body_min_joints and rng.random() < augment.half_body_prob:
        half = half_body_crop(keypoints, upper_body, aspect_ratio, rng)
        if half is not None:
            c, s = half
    sf, rf = augment.scale_factor, augment.rotation_factor
    s = s * float(np.clip(rng.standard_normal() * sf + 1.0, 1.0 - sf, 1.0 + sf))
    rotation = 0.0
    if rng.random() < augment.rotation_prob:
        rotation = float(np.clip(rng.standard_normal() * rf, -2.0 * rf, 2.0 * rf))
    flip = bool(augment.flip and rng.random() < 0.5)
    return CropParams(center=c, scale=s.astype(np.float32), rotation=rotation, flip=flip)


def crop_matrix(params: CropParams, input_size: tuple[int, int], image_width: int) -> np.ndarray:
    """2x3 matrix from image pixels to input pixels (W, H), including the mirror when flipped."""
    if not params.flip:
        return get_affine_transform(params.center, params.scale, params.rotation, input_size)
    mirror = np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mirrored_center = np.array([image_width - 1.0 - params.center[0], params.center[1]], dtype=np.float32)
    crop = get_affine_transform(mirrored_center, params.scale, params.rotation, input_size).astype(np.float64)
    return (crop @ mirror).astype(np.float32)


def warp_image(image: np.ndarray, matrix: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Affine crop (H, W, 3) -> (input H, input W, 3), bilinear, black outside the image."""
    return cv2.warpAffine(image, matrix, (int(input_size[0]), int(input_size[1])), flags=cv2.INTER_LINEAR)


def transform_keypoints(keypoints: np.ndarray, matrix: np.ndarray, flip_index: np.ndarray | None = None) -> np.ndarray:
    """Move keypoints (K, 3) with the crop matrix; swap left/right when ``flip_index`` is given.

    Unlabelled joints (visibility 0) stay all zero.
    """
    out = np.zeros_like(keypoints, dtype=np.float32)
    labelled = keypoints[:, 2] > 0
    out[labelled, :2] = affine_points(keypoints[labelled, :2], matrix)
    out[labelled, 2] = keypoints[labelled, 2]
    if flip_index is not None:
        out = out[flip_index]
    return out


def normalize_image(crop: np.ndarray, bgr: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W), or a batch (N, H, W, 3) -> (N, 3, H, W), with ImageNet
    mean/std (RGB order in the output): the one normalisation of training and inference crops."""
    if crop.ndim == 4:
        batch = crop[..., ::-1] if bgr else crop
        out = np.empty((len(batch), 3, *batch.shape[1:3]), np.float32)
        np.multiply(batch.astype(np.float32).transpose(0, 3, 1, 2), _NORM_SCALE, out=out)
        out -= _NORM_OFFSET
        return out
    channels = cv2.split(crop)
    if bgr:
        channels = channels[::-1]
    out = np.empty((3, *crop.shape[:2]), dtype=np.float32)
    for c in range(3):
        out[c] = channels[c]
    out *= _NORM_SCALE
    out -= _NORM_OFFSET
    return out


def denormalize_image(tensor: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_image`: float (3, H, W) -> uint8 RGB (H, W, 3)."""
    img = np.asarray(tensor, dtype=np.float32).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
