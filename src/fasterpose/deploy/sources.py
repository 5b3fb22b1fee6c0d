"""Frame sources for ``predict``: an image, a folder of images, a video file or a webcam. No torch.

Image ids (the ``image_id`` of each results entry): a file whose name is a number keeps that number
(``000000000785.jpg`` -> 785, as COCO names its images); every other file, and a second file with
the same number (``1.jpg`` beside ``001.png``), is numbered after the largest such number, in name
order (from 0 when no file has a numeric name), so no two files of one run share an id. Video
frames are numbered from 0.

A folder run survives one bad image: it is reported, listed in :attr:`Source.skipped`, and the rest
are read. A video that stops decoding before the frame count its header announced says so
(:meth:`Source.end_note`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from fasterpose.pipeline.crops import as_rgb_image

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class Frame(NamedTuple):
    name: str  # file name, or the video's stem
    image_id: int
    image: np.ndarray  # RGB uint8 (H, W, 3)
    time: float  # seconds since the start (video), 0.0 for images
    named_id: bool  # the id comes from the file name or the frame index (boxes files may key on it)


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_ids(paths: list[Path]) -> list[tuple[int, bool]]:
    """(image id, id taken from the name) per path, by the rule in the module docstring."""
    numeric = [int(p.stem) if p.stem.isdigit() else None for p in paths]
    taken: set[int] = set()
    out: list[tuple[int, bool] | None] = []
    for n in numeric:
        if n is not None and n not in taken:
            taken.add(n)
            out.append((n, True))
        else:
            out.append(None)
    nxt = max(taken) + 1 if taken else 0
    ids = []
    for item in out:
        if item is None:
            item = (nxt, False)
            nxt += 1
        ids.append(item)
    return ids


def _log_skip(skip: dict[str, str]) -> None:
    log.warning("skipped %s", skip["error"])


class Source:
    """Frames of one source; ``kind`` is ``images`` or ``video``; iterate once."""

    def __init__(self, kind: str, name: str, fps: float = 0.0) -> None:
        self.kind = kind
        self.name = name
        self.fps = fps
        self.paths: list[Path] = []
        self.skipped: list[dict[str, str]] = []  # {"file", "error"} per unreadable image
        self.frames_read = 0
        self.frames_announced: int | None = None
        self.max_frames: int | None = None
        self.capture: cv2.VideoCapture | None = None
        self.on_skip: Callable[[dict[str, str]], None] = _log_skip  # told of each unreadable image

    def __iter__(self) -> Iterator[Frame]:
        return self._images() if self.kind == "images" else self._video()

    def _images(self) -> Iterator[Frame]:
        progress = len(self.paths) > 1
        pairs = list(zip(self.paths, image_ids(self.paths), strict=True))
        for p, (image_id, named) in tqdm(pairs, desc="images", unit="img", disable=not progress):
            try:
                image = as_rgb_image(p)
            except ValueError as exc:  # ImageReadError: missing, empty, undecodable, truncated
                if len(self.paths) == 1:
                    raise
                self.skipped.append({"file": p.name, "error": str(exc)})
                self.on_skip(self.skipped[-1])
                continue
            self.frames_read += 1
            yield Frame(p.name, image_id, image, 0.0, named)

    def _video(self) -> Iterator[Frame]:
        capture = self.capture
        assert capture is not None
        fps = self.fps or 30.0
        total = self.frames_announced
        if self.max_frames is not None:
            total = min(total or self.max_frames, self.max_frames)
        bar = tqdm(total=total, desc=self.name, unit="frame")
        try:
            while self.max_frames is None or self.frames_read < self.max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                index = self.frames_read
                self.frames_read += 1
                bar.update()
                yield Frame(self.name, index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index / fps, True)
        finally:
            bar.close()
            capture.release()

    def end_note(self) -> str | None:
        """A warning when a video stopped before its announced frame count (not cut by ``max_frames``)."""
        announced = self.frames_announced
        if self.kind != "video" or not announced or self.frames_read >= announced:
            return None
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            return None
        return (
            f"{self.name}: the video stopped decoding after {self.frames_read} of the {announced} frames its "
            "header announces (a truncated or damaged file?); the frames read were processed"
        )


def _video_source(capture: cv2.VideoCapture, name: str, max_frames: int | None, live: bool) -> Source:
    src = Source("video", name, capture.get(cv2.CAP_PROP_FPS) or 30.0)
    src.capture = capture
    src.max_frames = max_frames
    src.frames_announced = None if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    return src


def open_source(source: str, max_frames: int | None = None) -> Source:
    """The frames of an image, folder, video file or webcam index."""
    if source.isdigit() and not Path(source).exists():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise RuntimeError(f"cannot open webcam {source}")
        return _video_source(cap, f"webcam{source}", max_frames, live=True)
    path = Path(source)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        src = Source("images", path.name)
        src.paths = files
        return src
    if not path.is_file():
        raise FileNotFoundError(f"source not found: {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video")
        return _video_source(cap, path.stem, max_frames, live=False)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        src = Source("images", path.name)
        src.paths = [path]
        return src
    raise ValueError(f"{path}: unknown source type (images: {IMAGE_SUFFIXES}, videos: {VIDEO_SUFFIXES})")
