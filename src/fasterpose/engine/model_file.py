"""One loader for a model file: a training checkpoint (``.pth``), a weights file (``.safetensors``) or a
published SimpleBaseline checkpoint of the lineage (converted in memory, :mod:`fasterpose.models.lineage`).

``eval``, ``export``, ``predict`` and ``Predictor`` call :func:`load_model_file`; which kind a file
is comes from its content (the safetensors header's ``fasterpose-weights`` marker), not its name.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from fasterpose.config import Config
from fasterpose.engine.checkpoint import CheckpointError, load_model_from_checkpoint
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import is_weights_file, load_into, read_weights


def load_model_file(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The model (eval mode) and its config from a checkpoint or a weights file."""
    if is_weights_file(path):
        return load_weights_model(path, map_location=map_location)
    try:
        return load_model_from_checkpoint(path, map_location=map_location)
    except CheckpointError as exc:
        lineage = _lineage_model(path, exc)
        if lineage is None:
            raise
    return lineage[0].to(map_location), lineage[1]


def _lineage_model(path: str | os.PathLike[str], exc: CheckpointError) -> tuple[nn.Module, Config] | None:
    """A published SimpleBaseline checkpoint (not ours) converted in memory, as ``fasterpose convert`` would;
    None when the file is no lineage checkpoint (the caller keeps its own error)."""
    if "not a FasterPose checkpoint" not in str(exc) and "pickled Python objects" not in str(exc):
        return None
    from fasterpose.models.lineage import LineageError, convert, detect_layout, load_state

    try:
        if detect_layout(load_state(path)) is None:
            return None
    except LineageError:
        return None
    model, cfg, _ = convert(path)
    return model, cfg


def load_weights_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, Config]:
    """Rebuild the model from a weights file's config and load its tensors (eval mode, float32).

    Here rather than in :mod:`fasterpose.models.weights_file`, which ``PoseModel`` itself imports
    (``model.weights=FILE``): no import cycle.
    """
    state, cfg = read_weights(path)
    model = PoseModel.from_config(cfg, pretrained=False)
    load_into(model, state, str(path))
    return model.float().to(map_location).eval(), cfg
