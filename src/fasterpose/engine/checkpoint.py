"""Checkpoints: written atomically, read weights-only.

A checkpoint is a dict of tensors and plain Python values only:
``{"format": "fasterpose-checkpoint", "version": 1, "model": state_dict, "config": <nested dict>,
"epoch": int, "optimizer": ..., "scheduler": ..., "rng": ..., "git_commit": str | None,
"metrics": dict}``. Anything else (a pickled object) is refused on load by ``weights_only=True``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from fasterpose.config import Config, config_from_dict, config_to_dict

FORMAT = "fasterpose-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, corrupt, unsafe, or not ours)."""


def git_commit() -> str | None:
    """The current git commit of the source tree, if any."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format marker) to ``path`` atomically: temp file, fsync, rename.

    A crash while writing leaves any previous file at ``path`` intact.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": 1, **payload}
    if isinstance(data.get("config"), Config):
        data["config"] = config_to_dict(data["config"])
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; clear errors for every way it can be wrong."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types here
        msg = str(exc)
        if "weights_only" in msg or "Unsupported global" in msg or "GLOBAL" in msg:
            raise CheckpointError(
                f"{p}: refused: the file carries pickled Python objects, which could run code on "
                f"load. Only tensors and plain values are accepted."
            ) from exc
        raise CheckpointError(f"{p}: not a readable checkpoint ({exc.__class__.__name__}: {msg[:200]})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a FasterPose checkpoint (no '{FORMAT}' marker)")
    if "model" not in data or "config" not in data:
        raise CheckpointError(f"{p}: checkpoint lacks 'model' or 'config'")
    return data


def load_model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config]:
    """Rebuild the model from the checkpoint's config and load its weights (eval mode)."""
    from fasterpose.models.pose_model import PoseModel

    data = load_checkpoint(path, map_location=map_location)
    cfg = config_from_dict(data["config"])
    model = PoseModel.from_config(cfg, pretrained=False)
    state = {k.removeprefix("module."): v for k, v in data["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model in its config: {exc}") from exc
    model.eval()
    return model, cfg
