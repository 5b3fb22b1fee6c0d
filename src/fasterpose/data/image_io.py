"""Image decoding with clear errors: every failure names the file and what is wrong with it.

``read_image`` returns RGB uint8 (H, W, 3) for any input OpenCV can decode: grayscale is replicated
to three channels, an alpha channel is dropped, 16-bit images are scaled to 8 bit. A missing file,
an empty file, bytes that do not decode, a JPEG cut short (no end-of-image marker) and a JPEG that
libjpeg decodes only in part (damaged in the middle: "Corrupt JPEG data") raise
:class:`ImageReadError`, naming the file; libjpeg's and libpng's own lines never reach ``stderr``.
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

    ``IMREAD_COLOR`` makes OpenCV replicate grayscale, drop alpha and scale 16-bit to 8-bit. A JPEG
    that libjpeg decodes only in part (its "Corrupt JPEG data" / "Premature end of JPEG file"
    warnings, which OpenCV prints and then returns an image anyway) raises :class:`ImageReadError`
    naming the file and libjpeg's words; so does a PNG that libpng refuses (its words too).
    """
    img, warnings, codec_errors = _decode_captured(data, path)
    if warnings:
        raise ImageReadError(path, damaged_message(warnings))
    if img is None or img.size == 0:
        why = f" (libpng: {'; '.join(codec_errors[:2])})" if codec_errors else ""
        raise ImageReadError(path, f"cannot decode image: not a valid image file ({len(data)} bytes){why}")
    if rgb:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def damaged_message(warnings: list[str]) -> str:
    """The problem text for a JPEG that libjpeg decoded only in part (``warnings``: its lines)."""
    return f"damaged JPEG, it decodes only in part (libjpeg: {'; '.join(warnings[:2])})"


class _Capture:
    """One per process: a temporary file that fd 2 points at while a decode runs (see below)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the process)


_capture: _Capture | None = None


def _reset_after_fork() -> None:
    global _STDERR_LOCK, _capture
    _STDERR_LOCK = threading.Lock()  # a lock a parent's thread held at fork would never be released
    _capture = None  # the parent's file is shared with it: each process writes its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _decode_captured(data: bytes, path: str | os.PathLike[str]) -> tuple[np.ndarray | None, list[str], list[str]]:
    """OpenCV's decode (BGR) with what libjpeg / libpng print on C ``stderr`` meanwhile caught.

    Returns (image or None, libjpeg's damage warnings, libpng's error lines). File descriptor 2 is
    pointed at a per-process temporary file for the decode: a few system calls (microseconds, see
    ``scripts/bench_image_integrity.py``). That is process-wide, so decodes in one process take a
    lock; whatever else was printed meanwhile is written back to ``stderr``.
    """
    global _capture
    check_jpeg_complete(data, path)
    buf = np.frombuffer(data, dtype=np.uint8)
    with _STDERR_LOCK:
        if _capture is None or _capture.pid != os.getpid():
            _capture = _Capture()
        fd = _capture.file.fileno()
        saved = os.dup(2)
        try:
            os.dup2(fd, 2)
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise ImageReadError(path, f"cannot decode image ({exc.err or exc})") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            text = _drain(fd)
    if not text:
        return img, [], []
    lines = text.splitlines(keepends=True)
    warnings = [line.strip() for line in lines if any(w in line for w in _LIBJPEG_WARNINGS)]
    png = [line.strip().removeprefix("libpng error: ") for line in lines if line.startswith("libpng error")]
    other = "".join(
        line
        for line in lines
        if not any(w in line for w in _LIBJPEG_WARNINGS) and line.strip() and not line.startswith("libpng error")
    )
    if other:
        sys.stderr.write(other)  # whatever else was printed meanwhile is not ours to swallow
    return img, warnings, png


def _drain(fd: int) -> str:
    """What was written to the capture file since the last drain; empties it (no read when empty)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return ""
    text = os.pread(fd, size, 0).decode("utf-8", errors="replace")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return text


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
    """Decode (BGR) and return libjpeg's warnings about the file instead of raising on them.

    For ``fasterpose data check``, which lists every problem: :func:`decode_image` raises
    :class:`ImageReadError` for the same damage.

    Returns:
        (image (H, W, 3) uint8 BGR, warnings): the libjpeg lines that say the file is damaged.
    """
    img, warnings, codec_errors = _decode_captured(data, path)
    if img is None or img.size == 0:
        why = f" (libpng: {'; '.join(codec_errors[:2])})" if codec_errors else ""
        raise ImageReadError(path, f"cannot decode image: not a valid image file ({len(data)} bytes){why}")
    return img, warnings
