"""Checkpoints: the one module that writes and reads them (atomically, weights-only, hash-checked).

A checkpoint is a dict of tensors and plain Python values only::

    format, version      "fasterpose-checkpoint", 1
    model, model_sha256  the unwrapped state dict and a SHA-256 over its tensors (checked on load)
    config, git_commit   the run's full config (nested dict) and source commit
    optimizer, scheduler, scaler, epoch, iteration, global_step, rng, sampler, best, history, metrics
                         the rest of a :class:`TrainingState` (training checkpoints only)

Anything else (a pickled object) is refused on load by ``weights_only=True``. The training loop
never touches these keys: it saves and restores a :class:`TrainingState` through
:func:`save_training_state` and :func:`restore_training_state`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fasterpose.atomic import atomic_write
from fasterpose.config import Config, config_from_dict, config_to_dict
from fasterpose.engine.rng import rng_state, set_rng_state
from fasterpose.integrity import mismatch, tensors_sha256, unverified
from fasterpose.runtimes.formats import CHECKPOINT_FORMAT, CheckpointError, read_torch, refuse_non_checkpoint

__all__ = [
    "CheckpointError",
    "TrainingState",
    "check_checkpoint",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "model_from_checkpoint",
    "restore_training_state",
    "save_checkpoint",
    "save_training_state",
]

log = logging.getLogger(__name__)

FORMAT = CHECKPOINT_FORMAT
RESUME_KEYS = ("optimizer", "scheduler", "epoch", "iteration", "global_step", "rng", "sampler")


@dataclass
class Best:
    """The best validation value so far (``metric``: "AP", or "Mean" for PCKh) and its epoch."""

    metric: str
    value: float | None = None
    epoch: int | None = None


@dataclass
class History:
    """Curves of the run: ``steps`` rows ``[step, loss, lr]``, ``evals`` rows ``[epoch, value]``."""

    steps: list[list[float]] = field(default_factory=list)
    evals: list[list[float]] = field(default_factory=list)


@dataclass
class TrainingState:
    """Everything a resume needs besides the config: the objects being trained and where the run is.

    ``model`` is the unwrapped module (not the DDP wrapper). ``seed`` and ``world_size`` fix the
    sample order (see :mod:`fasterpose.engine.sampling`); the global RNG states are captured on save.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    best: Best
    seed: int
    world_size: int
    epoch: int = 0  # completed epochs
    iteration: int = 0  # batches done in the unfinished epoch
    global_step: int = 0
    history: History = field(default_factory=History)
    metrics: dict[str, float] = field(default_factory=dict)  # the latest evaluation


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format marker and model hash) to ``path`` atomically: temp file, fsync,
    rename. A crash or a full disk while writing leaves any previous file at ``path`` intact."""
    data = {"format": FORMAT, "version": 1, **payload}
    if isinstance(data.get("config"), Config):
        data["config"] = config_to_dict(data["config"])
    if isinstance(data.get("model"), Mapping):
        data["model_sha256"] = tensors_sha256(data["model"])
    return atomic_write(path, lambda fh: torch.save(data, fh), "checkpoint")


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; clear errors for every way it can be wrong."""
    p = Path(path)
    refuse_non_checkpoint(p)
    return check_checkpoint(p, read_torch(p, map_location))


def check_checkpoint(p: Path, data: Any) -> dict[str, Any]:
    """``data`` read from ``p`` is a FasterPose checkpoint whose weights match their content hash."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a FasterPose checkpoint (no '{FORMAT}' marker)")
    if "model" not in data or "config" not in data:
        raise CheckpointError(f"{p}: checkpoint lacks 'model' or 'config'")
    expected = data.get("model_sha256")
    if expected is None:
        unverified(p, "the checkpoint carries no content hash of its weights (written by an older FasterPose)")
    elif (got := tensors_sha256(data["model"])) != expected:
        raise CheckpointError(str(mismatch(p, "weights", expected, got, "use another copy of the checkpoint")))
    return data


def save_training_state(path: str | os.PathLike[str], state: TrainingState, cfg: Config, commit: str | None) -> Path:
    """Write ``state`` (plus ``cfg``, ``commit`` and the global RNG states) as a checkpoint."""
    return save_checkpoint(
        path,
        {
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "scaler": state.scaler.state_dict() if state.scaler.is_enabled() else {},
            "epoch": state.epoch,
            "iteration": state.iteration,
            "global_step": state.global_step,
            "rng": rng_state(),
            "sampler": {"seed": state.seed, "world_size": state.world_size},
            "config": config_to_dict(cfg),
            "git_commit": commit,
            "metrics": state.metrics,
            "best": {"metric": state.best.metric, "value": state.best.value, "epoch": state.best.epoch},
            "history": {"steps": state.history.steps, "evals": state.history.evals},
        },
    )


def _check_resumable(p: Path, data: dict[str, Any], cfg: Config) -> None:
    missing = [k for k in RESUME_KEYS if k not in data or (k == "optimizer" and not data[k])]
    if missing:
        raise CheckpointError(
            f"{p}: cannot resume from it: it holds no {', '.join(missing)} (a weights-only checkpoint); "
            f"start a new run instead of --resume"
        )
    saved = (data["config"].get("train") or {}).get("optimizer")
    if saved is not None and saved != cfg.train.optimizer:
        raise CheckpointError(
            f"{p}: saved with train.optimizer={saved}, this run has train.optimizer={cfg.train.optimizer}; "
            f"resume with train.optimizer={saved} or start a new run"
        )


def restore_training_state(
    path: str | os.PathLike[str], state: TrainingState, cfg: Config, map_location: str | torch.device = "cpu"
) -> None:
    """Load a training checkpoint into ``state`` in place (and restore the global RNG states)."""
    p = Path(path)
    data = load_checkpoint(p, map_location=map_location)
    _check_resumable(p, data, cfg)
    try:
        state.model.load_state_dict({k.removeprefix("module."): v for k, v in data["model"].items()})
        state.optimizer.load_state_dict(data["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{p}: its weights or optimizer state do not fit this run's model: {exc}") from exc
    state.scheduler.load_state_dict(data["scheduler"])
    if data.get("scaler"):
        state.scaler.load_state_dict(data["scaler"])
    state.epoch, state.iteration = int(data["epoch"]), int(data["iteration"])
    state.global_step = int(data["global_step"])
    best = data.get("best") or {}
    state.best = Best(best.get("metric", state.best.metric), best.get("value"), best.get("epoch"))
    history = data.get("history") or {}
    state.history = History(list(history.get("steps", [])), list(history.get("evals", [])))
    state.metrics = dict(data.get("metrics") or {})
    sampler = data["sampler"]
    if (sampler["seed"], sampler["world_size"]) != (state.seed, state.world_size):
        log.warning(
            "resuming with seed/world size %s/%s, the run used %s/%s: the sample order changes",
            state.seed,
            state.world_size,
            sampler["seed"],
            sampler["world_size"],
        )
    set_rng_state(data["rng"])


def load_model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config]:
    """Rebuild the model from the checkpoint's config and load its weights (eval mode).

    The rebuild reads no ImageNet file (``model.weights`` may be gone): the checkpoint has every weight.
    """
    return model_from_checkpoint(path, load_checkpoint(path, map_location=map_location))


def model_from_checkpoint(path: str | os.PathLike[str], data: dict[str, Any]) -> tuple[torch.nn.Module, Config]:
    """The model (eval mode) and config of a checkpoint already read and checked (:func:`check_checkpoint`)."""
    from fasterpose.models.pose_model import PoseModel

    cfg = config_from_dict(data["config"])
    model = PoseModel.for_loading(cfg)
    state = {k.removeprefix("module."): v for k, v in data["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model in its config: {exc}") from exc
    model.eval()
    return model, cfg
