"""LPN: the lightweight pose network of Zhang et al. 2019, "Simple and Lightweight Human Pose Estimation".

Backbone (lpn-50): a ResNet-50 layout (3, 4, 6, 3 blocks) whose bottlenecks are replaced by a
*lightweight bottleneck*: 1x1 conv -> depthwise 3x3 conv -> 1x1 conv, each with BN, with a
global-context (GC) attention block before the residual add, and no channel expansion (widths
64, 128, 256, 512). The stem is ResNet's (7x7 conv stride 2, max-pool). The last stage keeps
stride 1, so the feature is 512 channels at stride 16 (16x12 for a 256x192 input).

Head: ``k`` x (group deconv 4x4 stride 2 with ``groups = gcd(in, filters)``, BN, ReLU, 1x1 conv,
BN, ReLU), then a 1x1 conv to the keypoints; k = 2 deconvs of 256 filters take stride 16 to 4.

FasterPose lpn-50 swaps that head for the LHR on the stride-16 feature (see
``configs/fasterpose_lpn50_256x192.yaml`` for why stride 16 and L = 4).

Weights: LPN is trained from scratch in its paper; no ImageNet checkpoint exists offline, so the
init is the original one (every conv ~ N(0, 0.001), BN weight 1, bias 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fasterpose.models.heads import prior_bias
from fasterpose.models.weights import init_scratch_backbone

BN_MOMENTUM = 0.1


class GlobalContext(nn.Module):
    """GCNet block with attention pooling and channel-add fusion.

    context = sum_p softmax(conv_mask(x))_p * x_p  (B, C, 1, 1);
    out = x + conv(ReLU(LayerNorm(conv(context)))), bottleneck width ``hidden``.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        weights = torch.softmax(self.conv_mask(x).reshape(b, 1, h * w), dim=2)  # (B, 1, HW)
        context = torch.matmul(x.reshape(b, c, h * w), weights.transpose(1, 2))  # (B, C, 1)
        return x + self.transform(context.reshape(b, c, 1, 1))


class LightweightBottleneck(nn.Module):
    """1x1 -> depthwise 3x3 (stride) -> 1x1, BN after each, GC attention, residual, ReLU."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, planes, 1, bias=False),
            nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False),
            nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 1, bias=False),
            nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
        )
        self.attention = GlobalContext(planes, max(planes // 16, 16))
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, planes, H / stride, W / stride)."""
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.attention(self.body(x)) + residual)


class LPNBackbone(nn.Module):
    """LPN backbone: ResNet stem + four stages of lightweight bottlenecks.

    Args:
        blocks: bottlenecks per stage ((3, 4, 6, 3) for lpn-50, (3, 4, 23, 3) lpn-101, (3, 8, 36, 3) lpn-152).
        widths: channels per stage (no expansion).
        strides: stride of each stage's first block (LPN: 1, 2, 2, 1 -> total stride 16).
    """

    def __init__(
        self,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        strides: Sequence[int] = (1, 2, 2, 1),
    ) -> None:
        super().__init__()
        if not len(blocks) == len(widths) == len(strides):
            raise ValueError(f"blocks, widths and strides must have equal lengths, got {blocks}, {widths}, {strides}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        ch = 64
        for n, width, stride in zip(blocks, widths, strides, strict=True):
            layers = [LightweightBottleneck(ch, width, stride)]
            layers += [LightweightBottleneck(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            ch = width
        self.stages = nn.Sequential(*stages)
        self.out_channels: int = ch
        self.stride: int = 4 * math.prod(strides)
        init_lpn_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, out_channels, H / stride, W / stride)."""
        return self.stages(self.stem(images))


class LPNHead(nn.Module):
    """LPN head: ``num_deconv`` x (group deconv, BN, ReLU, 1x1 conv, BN, ReLU), then a 1x1 conv.

    Each deconv is 4x4 stride 2 with ``groups = gcd(in_channels, filters)`` (depthwise-like).
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        num_deconv: int = 2,
        filters: int = 256,
        bias_prior: float | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(ch, filters, 4, stride=2, padding=1, groups=math.gcd(ch, filters), bias=False),
                nn.BatchNorm2d(filters, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
                nn.Conv2d(filters, filters, 1, bias=False),
                nn.BatchNorm2d(filters, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
            ch = filters
        self.deconvs = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, num_keypoints, kernel_size=1)
        init_lpn_weights(self)
        nn.init.constant_(self.final.bias, prior_bias(bias_prior))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, K, h * 2^num_deconv, w * 2^num_deconv)."""
        return self.final(self.deconvs(x))


def init_lpn_weights(module: nn.Module) -> None:
    """LPN's from-scratch init: conv/deconv weights ~ N(0, 0.001), biases 0, norms weight 1 bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_lpn_backbone(pretrained: bool = False, weights: str | None = None) -> LPNBackbone:
    """lpn-50 backbone (512 channels, stride 16); ``weights``: a local state dict to load strictly."""
    return init_scratch_backbone(LPNBackbone(), "lpn50", pretrained, weights)


def build_lpn_head(
    in_channels: int,
    backbone_stride: int,
    num_keypoints: int,
    heatmap_stride: int = 4,
    bias_prior: float | None = None,
) -> LPNHead:
    """LPN's head with as many 2x group deconvs as take ``backbone_stride`` to ``heatmap_stride``."""
    if backbone_stride % heatmap_stride:
        raise ValueError(f"backbone stride {backbone_stride} is not a multiple of heatmap stride {heatmap_stride}")
    total = backbone_stride // heatmap_stride
    num_deconv = total.bit_length() - 1
    if 2**num_deconv != total:
        raise ValueError(
            f"LPN head upsamples by powers of 2; got {total}x (stride {backbone_stride} -> {heatmap_stride})"
        )
    return LPNHead(in_channels, num_keypoints, num_deconv=num_deconv, bias_prior=bias_prior)
