"""Backbones: any timm model through ``features_only``, plus our own LPN and Lite-HRNet.

Every backbone is an ``nn.Module`` whose ``forward(images (B, 3, H, W))`` returns one feature map
``(B, out_channels, H / stride, W / stride)`` and which publishes ``out_channels`` and ``stride``;
heads read those two numbers and derive their upscale factor from them.
"""

from __future__ import annotations

import logging
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
        self.name = name
        self.body = _create_timm(name, pretrained and weights is None, feature_index)
        info: Any = self.body.feature_info
        self.out_channels: int = int(info.channels()[-1])
        self.stride: int = int(info.reduction()[-1])
        if weights is not None:
            load_imagenet_weights(self.body, weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, out_channels, H / stride, W / stride)."""
        return self.body(images)[-1]


class _FeatureIndexError(ValueError):
    """``model.feature_index`` outside the backbone's feature stages."""


def _create_timm(name: str, pretrained: bool, feature_index: int) -> nn.Module:
    """One ``features_only`` build of ``name`` returning stage ``feature_index`` (timm takes negative
    indices). ``pretrained`` asks timm's hub for the ImageNet weights (the network or the hub cache, as
    huggingface_hub's ``HF_HUB_OFFLINE`` allows); without them: one warning and random init."""
    import timm

    def make(pre: bool) -> nn.Module:
        try:
            return timm.create_model(name, pretrained=pre, features_only=True, out_indices=(feature_index,))
        except (IndexError, AssertionError):
            probe: Any = timm.create_model(name, pretrained=False, features_only=True)
            n_stages = len(probe.feature_info)
            if -n_stages <= feature_index < n_stages:
                raise
            raise _FeatureIndexError(
                f"model.feature_index={feature_index} is out of range for {name}, which has {n_stages} "
                f"feature stages: valid {-n_stages}..{n_stages - 1} (-1: the deepest)"
            ) from None

    if not pretrained:
        return make(False)
    try:
        return make(True)
    except _FeatureIndexError:
        raise
    except Exception as exc:  # noqa: BLE001 - any hub/network failure, or not cached offline
        log.warning(
            "no ImageNet weights for %s from timm's hub or its cache (%s): starting from random init. "
            "Pass model.weights=/path/to/state_dict.pth (torchvision or timm layout) to initialise "
            "from a local file, or model.pretrained=false to silence this warning.",
            name,
            exc,
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
