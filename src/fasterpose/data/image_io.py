"""Image decoding with clear errors: every failure names the file and what is wrong with it.

``read_image`` returns RGB uint8 (H, W, 3) for any input OpenCV can decode: grayscale is replicated
to three channels, an alpha channel is dropped, 16-bit images are scaled to 8 bit. A missing file,
an empty file, bytes that do not decode, a JPEG cut short (no end-of-image marker) and a JPEG that
libjpeg decodes only in part (damaged in the middle: "Corrupt JPEG data") raise
:class:`ImageReadError`, naming the file; libjpeg's and libpng's own lines never reach ``stderr``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fasterpose.data.errors import DataError

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_EOI_SEARCH_BYTES = 4096  # trailing bytes in which a JPEG's end-of-image marker must appear
# what libjpeg prints (through OpenCV) for a JPEG it decodes only in part
_LIBJPEG_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid JPEG file structure")


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


def decode_image(data: bytes, path: str | os.PathLike[str], rgb: bool = True, upright: bool = True) -> np.ndarray:
    """Decode encoded image bytes to uint8 (H, W, 3), RGB (or BGR with ``rgb=False``).

    ``upright``: turn the image by its EXIF orientation tag, as a photo viewer does (OpenCV's default);
    False keeps the pixels as the file stores them.

    ``IMREAD_COLOR`` makes OpenCV replicate grayscale, drop alpha and scale 16-bit to 8-bit. A JPEG
    that libjpeg decodes only in part (its "Corrupt JPEG data" / "Premature end of JPEG file"
    warnings, which OpenCV prints and then returns an image anyway) raises :class:`ImageReadError`
    naming the file and libjpeg's words; so does a PNG that libpng refuses (its words too).
    """
    flags = cv2.IMREAD_COLOR if upright else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    img, warnings, codec_errors = _decode_captured(data, path, flags)
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
    """One per process: fd 2 pointed at a temporary file while decodes run, so that what libjpeg and
    libpng print there can be read back (see :func:`_decode_captured`).

    Decodes run concurrently (OpenCV releases the GIL): the first one in points fd 2 at the file, the
    last one out points it back and empties the file. Each decode reads what was written to the file
    while it ran (its window): none of a decoder's lines can fall outside its own window. A window
    without a codec line is clean; one with a codec line (its own or a neighbour's), or a failed decode,
    is decoded again :meth:`alone`, which says whose the lines are. Other lines written to fd 2
    meanwhile (a progress bar, a log line) are passed on to the real ``stderr`` as each decode ends.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the process)
        self.fd = self.file.fileno()
        self.cond = threading.Condition()
        self.active = 0  # concurrent decodes in flight
        self.exclusive = False  # a decode alone in flight
        self.waiting = 0  # decodes waiting to run alone (they go first)
        self.saved = -1  # the real fd 2 while it points at the file
        self.passed = 0  # bytes of the file already passed on (or withheld as codec lines)

    def _point_at_file(self) -> None:
        self.saved = os.dup(2)  # set before fd 2 moves: a child forked in between restores it (_reset_after_fork)
        try:
            os.dup2(self.fd, 2)
        except BaseException:
            os.close(self.saved)
            self.saved = -1
            raise

    def _point_back(self) -> bytes:
        """fd 2 back to the real stderr; returns what was written to the file and not yet passed on."""
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.saved = -1
        size = os.fstat(self.fd).st_size
        if size == 0:  # the usual case: nothing was printed
            return b""
        rest = os.pread(self.fd, size - self.passed, self.passed) if size > self.passed else b""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.passed = 0
        return rest

    def _pass_on_lines(self, size: int) -> None:
        """Pass the complete lines written up to ``size`` on to the real stderr (codec lines withheld)."""
        pending = os.pread(self.fd, size - self.passed, self.passed) if size > self.passed else b""
        cut = pending.rfind(b"\n") + 1
        if cut:
            self.passed += cut
            _write_all(self.saved, _others(pending[:cut].decode("utf-8", errors="replace")))

    def concurrent(self, decode: Callable[[], np.ndarray | None]) -> tuple[np.ndarray | None, str]:
        """``decode()`` beside other decodes; returns its result and the text written while it ran."""
        with self.cond:
            while self.exclusive or self.waiting:
                self.cond.wait()
            start = os.fstat(self.fd).st_size if self.active else 0  # emptied when the last one left
            if self.active == 0:
                self._point_at_file()
            self.active += 1
        img = None
        try:
            img = decode()
        finally:
            with self.cond:
                end = os.fstat(self.fd).st_size
                window = os.pread(self.fd, end - start, start) if end > start else b""
                self.active -= 1
                if self.active:
                    self._pass_on_lines(end)
                else:
                    rest = self._point_back()
                    if rest:
                        _write_all(2, _others(rest.decode("utf-8", errors="replace")))
                    self.cond.notify_all()
        return img, window.decode("utf-8", errors="replace")

    def alone(self, decode: Callable[[], np.ndarray | None]) -> tuple[np.ndarray | None, str]:
        """``decode()`` with no other decode in flight; returns its result and everything written meanwhile."""
        with self.cond:
            self.waiting += 1
            while self.exclusive or self.active:
                self.cond.wait()
            self.waiting -= 1
            try:
                self._point_at_file()  # first: a failure here (no file descriptor left) must not leave
            except BaseException:  # the capture marked busy, or every later decode would wait forever
                self.cond.notify_all()
                raise
            self.exclusive = True
        text = ""
        try:
            img = decode()
        finally:
            with self.cond:
                text = self._point_back().decode("utf-8", errors="replace")
                self.exclusive = False
                self.cond.notify_all()
        return img, text


_capture: _Capture | None = None
_CAPTURE_LOCK = threading.Lock()  # guards the creation of this process's _Capture


def _reset_after_fork() -> None:
    global _CAPTURE_LOCK, _capture
    _CAPTURE_LOCK = threading.Lock()  # a lock a parent's thread held at fork would never be released
    if _capture is not None and _capture.saved >= 0:  # forked while the parent's decodes held fd 2
        os.dup2(_capture.saved, 2)  # the child's stderr is the real one, not the parent's capture file
        os.close(_capture.saved)
    _capture = None  # the parent's file and condition are not this process's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _this_process_capture() -> _Capture:
    global _capture
    with _CAPTURE_LOCK:
        if _capture is None or _capture.pid != os.getpid():
            _capture = _Capture()
        return _capture


def _is_codec_line(line: str) -> bool:
    """A line libjpeg (a damage warning) or libpng (an error) printed: theirs begin with these words, so a
    log line that quotes them (ours, naming a skipped file) is passed on, not withheld."""
    return line.lstrip().startswith(_LIBJPEG_WARNINGS) or line.startswith("libpng error")


def _others(text: str) -> str:
    """The lines of ``text`` that are not libjpeg's damage warnings or libpng's errors."""
    return "".join(line for line in text.splitlines(keepends=True) if line.strip() and not _is_codec_line(line))


def _write_all(fd: int, text: str) -> None:
    data = text.encode("utf-8", errors="replace")
    while data:
        data = data[os.write(fd, data) :]


def _decode_captured(
    data: bytes, path: str | os.PathLike[str], flags: int = cv2.IMREAD_COLOR
) -> tuple[np.ndarray | None, list[str], list[str]]:
    """OpenCV's decode (BGR) with what libjpeg / libpng print on C ``stderr`` meanwhile caught.

    Returns (image or None, libjpeg's damage warnings, libpng's error lines). File descriptor 2 points at
    a per-process temporary file while decodes run (a few system calls, see
    ``scripts/bench_image_integrity.py``); decodes in several threads run at once (:class:`_Capture`), and
    one that saw a codec line or failed is decoded again alone, so each file gets its own lines.
    """
    check_jpeg_complete(data, path)
    buf = np.frombuffer(data, dtype=np.uint8)
    cap = _this_process_capture()
    try:
        img, window = cap.concurrent(lambda: cv2.imdecode(buf, flags))
        if img is not None and img.size and not any(_is_codec_line(x) for x in window.splitlines()):
            return img, [], []
    except cv2.error:
        pass  # decoded again alone below, which names the error
    try:
        img, text = cap.alone(lambda: cv2.imdecode(buf, flags))
    except cv2.error as exc:
        raise ImageReadError(path, f"cannot decode image ({exc.err or exc})") from None
    lines = text.splitlines()
    warnings = [line.strip() for line in lines if line.lstrip().startswith(_LIBJPEG_WARNINGS)]
    png = [line.strip().removeprefix("libpng error: ") for line in lines if line.startswith("libpng error")]
    _write_all(2, _others(text))  # whatever else was printed meanwhile is not ours to swallow
    return img, warnings, png


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB uint8 of shape (H, W, 3).

    Raises:
        ImageReadError: the file is missing, empty, not an image, or a truncated JPEG.
    """
    return decode_image(read_image_bytes(path), path, rgb=True)


def read_image_bgr(path: str | os.PathLike[str], upright: bool = True) -> np.ndarray:
    """Like :func:`read_image` but BGR (OpenCV order), saving a colour conversion on large images."""
    return decode_image(read_image_bytes(path), path, rgb=False, upright=upright)


def in_annotated_frame(
    image: np.ndarray, path: str | os.PathLike[str], size: tuple[int, int] | None, rgb: bool = False
) -> np.ndarray:
    """``image`` (decoded upright; BGR, or RGB with ``rgb``) in the frame its annotation was drawn on, told by
    the annotated size.

    A photo stored sideways with an EXIF orientation tag decodes upright (as a viewer shows it). An
    annotation whose ``(width, height)`` is the stored one was drawn on the stored pixels (tools differ),
    so those are returned instead. A size that matches neither raises :class:`ImageReadError`: the
    keypoints would land on the wrong pixels. ``size`` None or 0 (not annotated): ``image`` as it is.
    A 180-degree tag keeps the size, so it cannot be told apart this way: such a file is read upright.
    """
    if not size or min(size) <= 0 or (image.shape[1], image.shape[0]) == tuple(size):
        return image
    stored = decode_image(read_image_bytes(path), path, rgb=rgb, upright=False)
    if (stored.shape[1], stored.shape[0]) == tuple(size):
        return stored
    raise ImageReadError(
        path,
        f"image is {image.shape[1]}x{image.shape[0]} but its annotation says {size[0]}x{size[1]} (a different "
        "image under this name, or wrong width/height in the annotation file): its keypoints would be misplaced",
    )


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
