"""Frame sources for ``predict``: an image, a folder of images, a video file or a webcam. No torch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fasterpose.pipeline.crops import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
Frame = tuple[str, int, np.ndarray, float]  # name, image id, RGB image, time (s)


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def image_id_of(path: Path, index: int) -> int:
    """The numeric file stem (``000000000785.jpg`` -> 785), else the position in the folder."""
    return int(path.stem) if path.stem.isdigit() else index


def _images(paths: list[Path], progress: bool) -> Iterator[Frame]:
    for i, p in enumerate(tqdm(paths, desc="images", unit="img", disable=not progress)):
        yield p.name, image_id_of(p, i), read_image(p), 0.0


def _video(capture: cv2.VideoCapture, name: str, max_frames: int | None) -> Iterator[Frame]:
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    bar = tqdm(total=total, desc=name, unit="frame")
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield name, index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index / fps
            index += 1
            bar.update()
    finally:
        bar.close()
        capture.release()


def open_source(source: str, max_frames: int | None = None) -> tuple[str, Iterator[Frame], float]:
    """(kind, frames, fps) for an image, folder, video file or webcam index; kind is images or video."""
    if source.isdigit() and not Path(source).exists():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise RuntimeError(f"cannot open webcam {source}")
        return "video", _video(cap, f"webcam{source}", max_frames), cap.get(cv2.CAP_PROP_FPS) or 30.0
    path = Path(source)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return "images", _images(files, progress=True), 0.0
    if not path.is_file():
        raise FileNotFoundError(f"source not found: {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video")
        return "video", _video(cap, path.stem, max_frames), cap.get(cv2.CAP_PROP_FPS) or 30.0
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "images", _images([path], progress=False), 0.0
    raise ValueError(f"{path}: unknown source type (images: {IMAGE_SUFFIXES}, videos: {VIDEO_SUFFIXES})")
