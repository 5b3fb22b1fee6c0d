"""Image decoding with clear errors: every failure names the file and what is wrong with it.

``read_image`` returns RGB uint8 (H, W, 3) for any input OpenCV can decode: grayscale is replicated
to three channels, an alpha channel is dropped, 16-bit images are scaled to 8 bit. A missing file,
an empty file, bytes that do not decode, and a JPEG cut short (no end-of-image marker) raise
:class:`ImageReadError`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from fasterpose.data.errors import DataError

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_EOI_SEARCH_BYTES = 4096  # trailing bytes in which a JPEG's end-of-image marker must appear
# what libjpeg prints (through OpenCV) for a JPEG it decodes only in part
_LIBJPEG_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid JPEG file structure")
_STDERR_LOCK = threading.Lock()


class ImageReadError(DataError):
    """An image file that is missing or cannot be decoded; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_image_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a file's bytes, raising :class:`ImageReadError` when it is missing or empty."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(p, "image file not found") from None
    except IsADirectoryError:
        raise ImageReadError(p, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(p, "image file is empty (0 bytes)")
    return data


def check_jpeg_complete(data: bytes, path: str | os.PathLike[str]) -> None:
    """Raise when JPEG bytes lack the end-of-image marker (a truncated download or copy).

    OpenCV decodes such files anyway and fills the missing rows with grey, so a truncated JPEG
    would otherwise train silently on a half-grey picture.
    """
    if data[:2] == _JPEG_SOI and _JPEG_EOI not in data[-_EOI_SEARCH_BYTES:]:
        raise ImageReadError(path, f"truncated JPEG: no end-of-image marker ({len(data)} bytes)")


def decode_image(data: bytes, path: str | os.PathLike[str], rgb: bool = True) -> np.ndarray:
    """Decode encoded image bytes to uint8 (H, W, 3), RGB (or BGR with ``rgb=False``).

    ``IMREAD_COLOR`` makes OpenCV replicate grayscale, drop alpha and scale 16-bit to 8-bit.
    """
    check_jpeg_complete(data, path)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageReadError(path, f"cannot decode image ({exc.err or exc})") from None
    if img is None or img.size == 0:
        raise ImageReadError(path, f"cannot decode image: not a valid image file ({len(data)} bytes)")
    if rgb:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB uint8 of shape (H, W, 3).

    Raises:
        ImageReadError: the file is missing, empty, not an image, or a truncated JPEG.
    """
    return decode_image(read_image_bytes(path), path, rgb=True)


def read_image_bgr(path: str | os.PathLike[str]) -> np.ndarray:
    """Like :func:`read_image` but BGR (OpenCV order), saving a colour conversion on large images."""
    return decode_image(read_image_bytes(path), path, rgb=False)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image file, decoding it fully (used by validation)."""
    img = read_image_bgr(path)
    return int(img.shape[1]), int(img.shape[0])


def decode_warnings(data: bytes, path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Decode like :func:`decode_image` (BGR) and return libjpeg's warnings about the file too.

    libjpeg reports damaged entropy-coded data ("Corrupt JPEG data: premature end of data segment",
    "... extraneous bytes before marker") on the C ``stderr`` and OpenCV returns an image anyway,
    with the damaged part grey or smeared. The warnings are caught by pointing file descriptor 2 at
    a temporary file for the length of the decode. That is process-wide, so this is for checks
    (``fasterpose data check``), not for DataLoader threads.

    Returns:
        (image (H, W, 3) uint8 BGR, warnings): the libjpeg lines that say the file is damaged.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            img = decode_image(data, path, rgb=False)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines() if any(w in line for w in _LIBJPEG_WARNINGS)]
    other = "".join(line for line in text.splitlines(keepends=True) if not any(w in line for w in _LIBJPEG_WARNINGS))
    if other:
        sys.stderr.write(other)  # whatever else was printed meanwhile is not ours to swallow
    return img, lines
