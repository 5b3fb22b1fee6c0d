"""What ``Predictor`` accepts as images, and how it reads each one. No torch.

* a numpy array (H, W, 3) uint8 in **BGR** order, as ``cv2.imread`` and ``cv2.VideoCapture`` return it
  and as ultralytics, MMPose and rtmlib take arrays; ``channel_order="rgb"`` for an RGB array
  (``np.asarray(PIL.Image)``, matplotlib, torchvision);
* a PIL image (any mode; converted to RGB and turned upright by its EXIF orientation, as a path is);
* an image path (OpenCV applies the file's EXIF orientation, as a photo viewer does);

and, for :meth:`Predictor.stream`, several of them: a list or tuple of the above, a folder of images
(read in name order, numbered as ``fasterpose predict`` numbers them) or a video file (frames from 0).
An image of a folder that cannot be read is skipped with an :class:`ImageSkippedWarning` naming it
(``fasterpose predict`` lists it under ``skipped``), so a folder can give fewer results than files.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fasterpose.pipeline.crops import as_rgb_image

CHANNEL_ORDERS = ("bgr", "rgb")


class ImageSkippedWarning(UserWarning):
    """An image of a folder that could not be read (its message names the file and the reason)."""


class Item(NamedTuple):
    image: Any  # an array in ``channel_order``, a PIL image or a path
    image_id: int
    path: str | None  # the image file or video it came from
    channel_order: str
    box_id: int | None = None  # the id a boxes file may key on: from the file name or the frame index
    read_ms: float = 0.0  # time spent reading and decoding ``image`` before it was handed over


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "convert")


def _upright(image: Any) -> Any:
    """A PIL image turned by its EXIF orientation tag, so it matches the same file read from its path."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, OSError, TypeError, KeyError):  # an EXIF block Pillow cannot parse
        return image  # as OpenCV reads such a file: no orientation applied


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
        return np.asarray(_upright(image).convert("RGB"))
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
    if not is_many(source):
        source = [source]
    if isinstance(source, list | tuple):  # numbered by position; a numeric file name is still its box id
        for i, image in enumerate(source):
            path = str(image) if isinstance(image, str | os.PathLike) else None
            stem = Path(path).stem if path else ""
            yield Item(image, i, path, channel_order, int(stem) if stem.isdigit() else None)
        return
    from fasterpose.deploy.sources import open_source

    src = open_source(str(source))
    src.on_skip = lambda skip: warnings.warn(f"skipped {skip['error']}", ImageSkippedWarning, stacklevel=2)
    folder = Path(source)
    frames = iter(src)
    while True:
        start = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        path = str(folder / frame.name) if src.kind == "images" else str(source)
        read_ms = (time.perf_counter() - start) * 1e3
        box_id = frame.image_id if frame.named_id else None
        yield Item(frame.image, frame.image_id, path, "rgb", box_id, read_ms)  # frames are RGB already
