"""Weights files: a model's tensors plus its config, nothing else (no optimizer, RNG or history).

One ``.safetensors`` file: the ``state_dict`` tensors (float32, or float16 with ``half=True``) and,
in the header's metadata, ``{"format": "fasterpose-weights", "version": "1", "config": <JSON>}``.
safetensors holds raw tensors only, so loading one can never run code. Written by
``fasterpose export --format weights``; read by ``Predictor``, ``eval`` and ``train``
(``model.weights=FILE`` starts fine-tuning from it).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fasterpose.atomic import atomic_write_bytes
from fasterpose.config import Config, config_from_dict, config_to_dict
from fasterpose.integrity import mismatch, tensors_sha256, unverified

log = logging.getLogger(__name__)
FORMAT = "fasterpose-weights"
VERSION = "1"
SUFFIX = ".safetensors"
HASH_KEY = "tensors_sha256"
_MAX_HEADER = 100_000_000


class WeightsFileError(ValueError):
    """A weights file that is missing, corrupt, or not a FasterPose weights file."""


def _header(path: Path) -> dict[str, Any] | None:
    """The safetensors JSON header, or None when the file is not safetensors."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (size,) = struct.unpack("<Q", raw)
            if not 2 <= size <= _MAX_HEADER:
                return None
            header = json.loads(fh.read(size))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None


def is_weights_file(path: str | os.PathLike[str]) -> bool:
    """True for a FasterPose weights file (read from its header, not its name)."""
    p = Path(path)
    header = _header(p) if p.is_file() else None
    return bool(header) and (header.get("__metadata__") or {}).get("format") == FORMAT  # type: ignore[union-attr]


def save_weights(model: nn.Module, cfg: Config, path: str | os.PathLike[str], half: bool = False) -> Path:
    """Write ``model``'s state dict and ``cfg`` to ``path`` atomically; ``half`` stores floats as float16."""
    from safetensors.torch import save

    state = {k.removeprefix("module."): v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state = {k: v.contiguous() for k, v in state.items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config_to_dict(cfg)),
        "dtype": "float16" if half else "float32",
    }
    meta[HASH_KEY] = tensors_sha256(state)  # checked by read_weights (fasterpose.integrity)
    # one atomic writer for every output: temp file with the umask's permissions, fsync, rename;
    # a failed write (disk full) names the file and leaves no temporary file
    return atomic_write_bytes(path, save(state, metadata=meta), "weights file")


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], Config]:
    """The tensors and the config of a weights file; clear errors for every way it can be wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise WeightsFileError(f"weights file not found: {p}")
    header = _header(p)
    if header is None:
        raise WeightsFileError(f"{p}: not a safetensors file")
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise WeightsFileError(f"{p}: a safetensors file, but not a FasterPose weights file (no '{FORMAT}' marker)")
    if meta.get("version") != VERSION:
        raise WeightsFileError(f"{p}: weights file version {meta.get('version')!r}; this build reads {VERSION!r}")
    try:
        cfg = config_from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError) as exc:
        raise WeightsFileError(f"{p}: its embedded config is unreadable: {exc}") from None
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{p}: cannot read its tensors ({exc})") from None
    _check_hash(p, meta, state)
    return state, cfg


def _check_hash(p: Path, meta: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """The tensors against the ``tensors_sha256`` the writer stored (a zeroed or edited tensor fails)."""
    expected = meta.get(HASH_KEY)
    if expected is None:
        unverified(p, "the weights file carries no content hash (written by an older FasterPose)")
    elif (got := tensors_sha256(state)) != expected:
        raise WeightsFileError(str(mismatch(p, "weights", expected, got, "export it again from its checkpoint")))


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, allow_new_head: bool = False) -> None:
    """Copy ``state`` into ``model`` strictly; with ``allow_new_head`` head tensors whose shapes differ
    (another keypoint count) keep their fresh init, with a warning. Anything else that differs is an error."""
    own = model.state_dict()
    skipped = [
        k for k, v in state.items() if allow_new_head and k.startswith("head.") and k in own and own[k].shape != v.shape
    ]
    state = {k: v for k, v in state.items() if k not in skipped}
    try:
        model.load_state_dict(state, strict=not skipped)
    except RuntimeError as exc:
        raise WeightsFileError(f"{source}: weights do not match the model in the config: {exc}") from None
    if skipped:
        missing = [k for k in own if k not in state and not k.startswith("head.")]
        if missing:
            raise WeightsFileError(f"{source}: weights lack {missing[:5]} of the model in the config")
        log.warning(
            "%s: %d head tensors have another shape (another keypoint count) and start from scratch: %s",
            source,
            len(skipped),
            skipped,
        )
