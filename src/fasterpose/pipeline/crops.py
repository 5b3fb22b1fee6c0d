"""Person crops as the network sees them: the padded box warped to the input and normalised.

One function, :func:`warp_crops`, makes every inference crop (dataset evaluation, ``Predictor``,
INT8 calibration), so they cannot drift apart.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from fasterpose.boxes import as_xywh
from fasterpose.data.image_io import read_image as read_image_file
from fasterpose.data.transforms import normalize_image
from fasterpose.geometry import box_to_center_scale, get_affine_transform


def as_rgb_image(source: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a path (:func:`fasterpose.data.read_image`) or an array."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ValueError(f"image array must be RGB uint8 of shape (H, W, 3), got {source.dtype} {source.shape}")
        return source
    return read_image_file(source)


def as_boxes(boxes: Any, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (P, 4) xywh or (P, 5) xywh+score, or None for the whole image -> (P, 4), (P,) scores."""
    if boxes is None:
        h, w = image_hw
        return np.array([[0.0, 0.0, w, h]], dtype=np.float32), np.ones(1, dtype=np.float32)
    return as_xywh(boxes, "xywh")  # one box parser (fasterpose.boxes); NaN / inf boxes are errors


def box_crops(boxes_xywh: np.ndarray, input_size: tuple[int, int], padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres (P, 2) and scales (P, 2) of boxes (P, 4): padded, at the input's aspect ratio."""
    w, h = int(input_size[0]), int(input_size[1])
    centers = np.empty((len(boxes_xywh), 2), np.float32)
    scales = np.empty((len(boxes_xywh), 2), np.float32)
    for i, box in enumerate(boxes_xywh):
        centers[i], scales[i] = box_to_center_scale(box, w / h, padding)
    return centers, scales


def warp_crops(image: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Warp each crop (centre, scale; no rotation) of an RGB uint8 image to the input, normalised.

    Returns (P, 3, H, W) float32, ImageNet mean/std in RGB order.
    """
    w, h = int(input_size[0]), int(input_size[1])
    n = len(centers)
    raw = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        mat = get_affine_transform(centers[i], scales[i], 0.0, (w, h))
        cv2.warpAffine(image, mat, (w, h), dst=raw[i], flags=cv2.INTER_LINEAR)
    return normalize_image(raw)


def crop_people(
    image: np.ndarray, boxes: Any, input_size: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Warp each padded box to the network input and normalise.

    Args:
        image: (H, W, 3) RGB uint8.
        boxes: see :func:`as_boxes`; None means one box over the whole image.
        input_size: (W, H) of the network input.

    Returns:
        crops (P, 3, H, W) float32, centers (P, 2), scales (P, 2), boxes (P, 4), box scores (P,).
    """
    xywh, box_scores = as_boxes(boxes, image.shape[:2])
    centers, scales = box_crops(xywh, input_size, padding)
    return warp_crops(image, centers, scales, input_size), centers, scales, xywh, box_scores
