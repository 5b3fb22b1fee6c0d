"""ONNX exports of torch model files, made once and kept in a user cache folder.

Running a ``.pth`` / ``.safetensors`` file on ONNX Runtime or OpenVINO needs its ONNX graph; exporting
costs seconds, so the export is written once to ``<cache>/onnx/<key>.onnx`` and reused. The key is the
SHA-256 of the model file's bytes (with the fasterpose version and, when a config is given, its model
and input size): a retrained, edited or corrupted file has another key and is exported afresh (and
checked on load) instead of reusing a stale graph. A hit imports no torch.

The cache folder is ``$FASTERPOSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/fasterpose``, else
``~/.cache/fasterpose``; never beside the user's files. The newest :data:`MAX_ENTRIES` exports are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fasterpose import __version__
from fasterpose.atomic import atomic_write_bytes
from fasterpose.config import Config
from fasterpose.user_cache import user_cache_root

log = logging.getLogger(__name__)
MAX_ENTRIES = 16
Loader = Callable[[Any, Any], tuple[Any, Config]]


def cache_dir() -> Path:
    """The folder of cached exports (``<cache>/onnx``, :func:`fasterpose.user_cache.user_cache_root`)."""
    return user_cache_root() / "onnx"


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(path: str | os.PathLike[str], cfg: Config | None) -> str:
    """SHA-256 of the file's content hash, the fasterpose version and the given config's model and input size."""
    parts: dict[str, object] = {"file": file_sha256(path), "fasterpose": __version__, "sealed": True}
    if cfg is not None:
        parts["model"] = dataclasses.asdict(cfg.model)
        parts["input_size"] = list(cfg.data.input_size)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cached_onnx(path: str | os.PathLike[str], cfg: Config | None, load: Loader) -> Path:
    """The cached ONNX export of the torch model file ``path``, exported now if it is not cached yet
    (``load(path, cfg)`` gives the torch model and its config; called on a miss only)."""
    target = cache_dir() / f"{cache_key(path, cfg)}.onnx"
    if target.is_file() and _intact(target):
        log.debug("%s: using the cached ONNX export %s", path, target)
        os.utime(target)  # most recently used
        return target
    model, file_cfg = load(path, cfg)  # first: a missing torch is the error to report
    from fasterpose.extras import require

    require("onnx", f"{path}: running a torch model file on ONNX Runtime / OpenVINO exports it to ONNX once, which")
    import onnx

    from fasterpose.deploy.metadata import set_onnx_metadata
    from fasterpose.deploy.onnx_export import onnx_bytes

    used = cfg or file_cfg
    proto = onnx.load_from_string(onnx_bytes(model, used.data.input_size))
    set_onnx_metadata(proto, used, "fp32")
    from fasterpose.integrity import seal_onnx

    atomic_write_bytes(target, seal_onnx(proto.SerializeToString()), what="cached ONNX export")
    log.info("%s: exported to ONNX once for this runtime, cached as %s (keyed by the file's SHA-256)", path, target)
    _trim(target.parent)
    return target


def _intact(target: Path) -> bool:
    """A cached export whose content hash still matches; a damaged one is deleted (and made afresh)."""
    from fasterpose.integrity import IntegrityError, verify_exported

    try:
        return verify_exported(target)
    except IntegrityError as exc:
        log.warning("%s; deleted, exporting it again", exc)
        target.unlink(missing_ok=True)
        return False


def _trim(folder: Path, keep: int = MAX_ENTRIES) -> None:
    entries = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
