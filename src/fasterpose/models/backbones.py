"""Backbones: any timm model through ``features_only``, plus our own LPN and Lite-HRNet.

Every backbone is an ``nn.Module`` whose ``forward(images (B, 3, H, W))`` returns one feature map
``(B, out_channels, H / stride, W / stride)`` and which publishes ``out_channels`` and ``stride``;
heads read those two numbers and derive their upscale factor from them.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fasterpose.models.weights import init_scratch_backbone, load_imagenet_weights

log = logging.getLogger(__name__)
__all__ = [
    "CUSTOM_BACKBONES",
    "TimmBackbone",
    "build_backbone",
    "init_scratch_backbone",
    "load_imagenet_weights",
]

# Our own backbones, built lazily by name. Each factory takes (pretrained, weights) keyword
# arguments and returns a module with `out_channels` and `stride` attributes.
CUSTOM_BACKBONES: dict[str, str] = {
    "lpn50": "fasterpose.models.lpn:build_lpn_backbone",
    "litehrnet18": "fasterpose.models.litehrnet:build_litehrnet_backbone",
}


class TimmBackbone(nn.Module):
    """A timm model cut to one feature stage (``features_only``).

    Args:
        name: timm model name (``resnet50``, ``convnext_tiny``, ...).
        feature_index: which of the model's feature stages to return (-1: the deepest).
        pretrained: start from ImageNet weights (see :func:`load_imagenet_weights`).
        weights: local ImageNet state-dict file (torchvision or timm layout); overrides download.
    """

    def __init__(
        self, name: str, feature_index: int = -1, pretrained: bool = False, weights: str | None = None
    ) -> None:
        super().__init__()
        import timm

        probe: Any = timm.create_model(name, pretrained=False, features_only=True)
        n_stages = len(probe.feature_info)
        if not -n_stages <= feature_index < n_stages:
            raise ValueError(
                f"model.feature_index={feature_index} is out of range for {name}, which has {n_stages} "
                f"feature stages: valid {-n_stages}..{n_stages - 1} (-1: the deepest)"
            )
        index = feature_index % n_stages
        del probe
        self.name = name
        self.body = _create_timm(name, pretrained and weights is None, out_indices=(index,))
        info: Any = self.body.feature_info
        self.out_channels: int = int(info.channels()[-1])
        self.stride: int = int(info.reduction()[-1])
        if weights is not None:
            load_imagenet_weights(self.body, weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, out_channels, H / stride, W / stride)."""
        return self.body(images)[-1]


def _network_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _create_timm(name: str, pretrained: bool, out_indices: tuple[int, ...]) -> nn.Module:
    import timm

    def make(pre: bool) -> nn.Module:
        return timm.create_model(name, pretrained=pre, features_only=True, out_indices=out_indices)

    if not pretrained:
        return make(False)
    if _network_reachable():
        try:
            return make(True)
        except Exception as exc:  # noqa: BLE001 - any hub/network failure falls back to random init
            log.warning(
                "could not download ImageNet weights for %s (%s); starting from random init. "
                "Pass model.weights=/path/to/state_dict.pth to use a local file.",
                name,
                exc,
            )
            return make(False)
    # Offline: the hub cache may still hold the weights. Force huggingface_hub offline for the call
    # so that it never retries a connection.
    hf_constants: Any
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        hf_constants = None
    saved = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    try:
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = True
        return make(True)
    except Exception:  # noqa: BLE001 - not cached
        pass
    finally:
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = saved
    log.warning(
        "no network and no cached ImageNet weights for %s: starting from random init. "
        "Pass model.weights=/path/to/state_dict.pth (torchvision or timm layout) to initialise "
        "from a local file, or model.pretrained=false to silence this warning.",
        name,
    )
    return make(False)


def build_backbone(
    name: str, feature_index: int = -1, pretrained: bool = False, weights: str | None = None
) -> nn.Module:
    """A backbone by name: one of :data:`CUSTOM_BACKBONES` or any timm model."""
    if name in CUSTOM_BACKBONES:
        import importlib

        module_name, attr = CUSTOM_BACKBONES[name].split(":")
        factory: Callable[..., nn.Module] = getattr(importlib.import_module(module_name), attr)
        return factory(pretrained=pretrained, weights=weights)
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown backbone {name!r}: not a timm model and not one of {sorted(CUSTOM_BACKBONES)}")
    return TimmBackbone(name, feature_index=feature_index, pretrained=pretrained, weights=weights)
