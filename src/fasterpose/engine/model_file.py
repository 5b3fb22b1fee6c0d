"""One loader for a model file: a training checkpoint (``.pth``) or a weights file (``.safetensors``).

``eval``, ``export``, ``predict`` and ``Predictor`` call :func:`load_model_file`; which kind a file
is comes from its content (the safetensors header's ``fasterpose-weights`` marker), not its name.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from fasterpose.config import Config
from fasterpose.engine.checkpoint import load_model_from_checkpoint
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import is_weights_file, load_into, read_weights


def load_model_file(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The model (eval mode) and its config from a checkpoint or a weights file."""
    if is_weights_file(path):
        return load_weights_model(path, map_location=map_location)
    return load_model_from_checkpoint(path, map_location=map_location)


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
