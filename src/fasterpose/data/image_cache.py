"""Decoded training images kept on disk, so that each JPEG is decoded once instead of once per sample
per epoch (``data.image_cache: disk``, as ultralytics' ``cache="disk"``).

Training is bound by JPEG decoding (a COCO person sample spends about three quarters of its time
there, ``scripts/bench_data.py``); a decoded image read back from the page cache costs a memory map.
Each entry is the BGR uint8 array :func:`~fasterpose.data.image_io.read_image_bgr` returns (so the
damaged-image checks ran on it first: a file that fails them is never cached), stored as ``.npy``
under ``<folder>/<2 hex>/<key>.npy``. The key hashes the image's absolute path, size and modification
time (ns): an image replaced or edited gets a new entry, never a stale one. Entries are written
atomically (:mod:`fasterpose.atomic`), so DataLoader workers and DDP ranks that decode the same image
at once leave one whole entry; one that cannot be read back (damaged, cut short, another shape) is
decoded again and replaced. A cache that cannot be written (a full disk, no permission) is reported
once per process and training goes on decoding. The folder holds what is made again on demand:
delete it to reclaim the space (about width x height x 3 bytes per image: some 52 GB for COCO
train2017's images with people).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from fasterpose.atomic import atomic_write
from fasterpose.data.image_io import read_image_bgr

log = logging.getLogger(__name__)


def default_folder() -> Path:
    """``<user cache>/decoded`` (:func:`fasterpose.user_cache.user_cache_root`)."""
    from fasterpose.user_cache import user_cache_root

    return user_cache_root() / "decoded"


class DecodedImageCache:
    """``read_bgr(path)``: the image decoded, from the cache when an entry for this very file exists.

    Picklable (a folder name only), so each DataLoader worker opens entries itself.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder else default_folder()
        self.writable = True  # cleared for this process after the first failed write
        self.hits = 0
        self.misses = 0

    def entry(self, path: str | os.PathLike[str]) -> Path:
        """The cache file of the image at ``path`` as it is now (raises FileNotFoundError when absent)."""
        p = Path(path).absolute()
        st = p.stat()
        key = hashlib.sha1(f"{p}\0{st.st_size}\0{st.st_mtime_ns}".encode(), usedforsecurity=False).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"

    def read_bgr(self, path: str | os.PathLike[str]) -> np.ndarray:
        try:
            entry = self.entry(path)
        except OSError:
            return read_image_bgr(path)  # missing or unreadable: the reader names the problem
        cached = self._load(entry, path)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        image = read_image_bgr(path)  # raises ImageReadError for a bad image: nothing is cached for it
        if self.writable:
            self._store(entry, image)
        return image

    def _load(self, entry: Path, path: str | os.PathLike[str]) -> np.ndarray | None:
        try:
            arr = np.load(entry, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as exc:
            log.warning("decoded-image cache: %s (for %s) cannot be read (%s): decoding again", entry, path, exc)
            return None
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
            log.warning(
                "decoded-image cache: %s (for %s) holds a %s array of shape %s, not an image: decoding again",
                entry,
                path,
                arr.dtype,
                arr.shape,
            )
            return None
        return arr

    def _store(self, entry: Path, image: np.ndarray) -> None:
        try:
            atomic_write(entry, lambda fh: np.save(fh, np.ascontiguousarray(image)), "decoded-image cache entry")
        except OSError as exc:
            self.writable = False
            log.warning("%s; training goes on decoding every image (decoded-image cache off in this process)", exc)
