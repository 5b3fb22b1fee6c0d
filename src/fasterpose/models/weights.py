"""Loading ImageNet state dicts into backbones (timm, torchvision or our own layouts), weights-only.

Below :mod:`fasterpose.models.backbones` and the LPN / Lite-HRNet modules, which all use it, so
that the registry in ``backbones`` can name those modules without an import cycle.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def load_imagenet_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load an ImageNet classification state dict into a features-only backbone.

    Accepts torchvision and timm ResNet layouts (they share parameter names) and checkpoints that
    wrap the state dict under ``state_dict`` or ``model``. Loaded with ``weights_only=True``.
    Classifier weights are dropped; any other missing or unexpected key is an error.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"ImageNet weights file not found: {p}")
    try:
        state: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{p}: cannot load as a weights-only state dict ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{p}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = module.state_dict()
    head_prefixes = ("fc.", "classifier.", "head.", "last_linear.")
    filtered = {k: v for k, v in state.items() if k in own}
    unexpected = [k for k in state if k not in own and not k.startswith(head_prefixes)]
    missing = [k for k in own if k not in filtered and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{p}: does not match the backbone: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    for k, v in filtered.items():
        if v.shape != own[k].shape:
            raise ValueError(f"{p}: shape mismatch for {k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
    module.load_state_dict(filtered, strict=False)
    log.info("loaded ImageNet weights from %s (%d tensors)", p, len(filtered))


def init_scratch_backbone(model: ModuleT, name: str, pretrained: bool, weights: str | None) -> ModuleT:
    """Initialise a backbone that its authors train from scratch (LPN, Lite-HRNet): load ``weights``
    (a local state dict, strictly) when given; ``pretrained`` without it warns once that no ImageNet
    weights exist offline and keeps the network's own random init."""
    if weights is not None:
        load_imagenet_weights(model, weights)
    elif pretrained:
        log.warning(
            "%s: no ImageNet weights are available offline (it trains from scratch in its paper); using its "
            "random init. Pass model.weights=/path/to/state_dict.pth to load a local file, or "
            "model.pretrained=false to silence this warning.",
            name,
        )
    return model


def load_backbone_only(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> tuple[int, list[str]]:
    """Copy the ``backbone.*`` tensors of ``state`` into ``model`` (strictly: every backbone tensor, same
    shapes) and keep the model's fresh head; for a file whose head is another architecture (a converted
    SimpleBaseline deconv head starting a FasterPose LHR model). Returns (tensors loaded, fresh head keys)."""
    own = model.state_dict()
    body = {k: v for k, v in state.items() if k.startswith("backbone.")}
    missing = [k for k in own if k.startswith("backbone.") and k not in body and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in body if k not in own]
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in body.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"{source}: its backbone does not match the model in the config: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(shapes)} of another "
            f"shape (e.g. {shapes[:2]}); use a file of the same model.backbone"
        )
    model.load_state_dict(body, strict=False)
    fresh = [k for k in own if k.startswith("head.")]
    return len(body), fresh
