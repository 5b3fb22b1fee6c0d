"""What ``Predictor`` accepts as images, and how it reads each one. No torch.

* a numpy array (H, W, 3) uint8 in **BGR** order, as ``cv2.imread`` and ``cv2.VideoCapture`` return it
  and as ultralytics, MMPose and rtmlib take arrays; ``channel_order="rgb"`` for an RGB array
  (``np.asarray(PIL.Image)``, matplotlib, torchvision);
* a PIL image (any mode; converted to RGB);
* an image path;

and, for :meth:`Predictor.stream`, several of them: a list or tuple of the above, a folder of images
(read in name order, numbered as ``fasterpose predict`` numbers them) or a video file (frames from 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fasterpose.pipeline.crops import as_rgb_image

CHANNEL_ORDERS = ("bgr", "rgb")


class Item(NamedTuple):
    image: Any  # an array in ``channel_order``, a PIL image or a path
    image_id: int
    path: str | None  # the image file or video it came from
    channel_order: str


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "convert")


def to_rgb(image: Any, channel_order: str = "bgr") -> np.ndarray:
    """An RGB uint8 (H, W, 3) image from a ``channel_order`` array, a PIL image or a path."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image array must be uint8 of shape (H, W, 3) ({channel_order.upper()}), got {image.dtype} "
                f"{image.shape}"
            )
        return np.ascontiguousarray(image[..., ::-1]) if channel_order == "bgr" else image
    if _is_pil(image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, str | os.PathLike):
        raise TypeError(f"an image is a numpy array, a PIL image or a path, got {type(image).__name__}")
    return as_rgb_image(image)


def is_many(source: Any) -> bool:
    """A list / tuple of images, a folder or a video file (not one image)."""
    if isinstance(source, list | tuple):
        return True
    if not isinstance(source, str | os.PathLike):
        return False
    from fasterpose.deploy.sources import VIDEO_SUFFIXES

    path = Path(source)
    return path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES


def iter_items(source: Any, channel_order: str = "bgr") -> Iterator[Item]:
    """The images of ``source`` in order, each with its image id and file (see the module docstring)."""
    if isinstance(source, list | tuple):
        for i, image in enumerate(source):
            path = str(image) if isinstance(image, str | os.PathLike) else None
            yield Item(image, i, path, channel_order)
        return
    if not is_many(source):
        path = str(source) if isinstance(source, str | os.PathLike) else None
        yield Item(source, 0, path, channel_order)
        return
    from fasterpose.deploy.sources import open_source

    src = open_source(str(source))
    folder = Path(source)
    for frame in src:  # frames are RGB already
        path = str(folder / frame.name) if src.kind == "images" else str(source)
        yield Item(frame.image, frame.image_id, path, "rgb")
