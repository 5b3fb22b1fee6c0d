"""Lite-HRNet (Yu et al., CVPR 2021): a high-resolution network built from shuffle blocks whose 1x1
convs are replaced by *conditional channel weighting*.

Lite-HRNet-18: a stem (3x3 conv stride 2 to 32 channels, then a shuffle block to stride 4), three
stages of (2, 4, 2) modules with (2, 3, 4) branches of (40, 80, 160, 320) channels, two weighting
blocks per branch and module (cross-resolution reduce ratio 8), every module fusing all branches
into all branches, and the iterative head that folds the branches back onto the stride-4 branch
(40 channels). The pose head proper is then a 1x1 conv, i.e. our LHR with L = 1.

Fusion is the HRNet sum ``y_i = x_i + sum_{j != i} f_ij(x_j)``, then ReLU. (The public Lite-HRNet
code adds the ``j = 0`` term twice, in place; that changes no parameter, and we build the plain
sum that the paper describes.)

Weights: Lite-HRNet trains from scratch in its paper; the init is the original one (every conv
~ N(0, 0.001), biases 0, BN weight 1, bias 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fasterpose.models.weights import init_scratch_backbone


def conv_bn(
    cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = False
) -> nn.Sequential:
    """Conv (no bias) + BN (+ ReLU); padding keeps the size at stride 1."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def dw_conv_bn(channels: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 conv + BN, no activation."""
    return conv_bn(channels, channels, 3, stride, groups=channels)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) with channels interleaved across ``groups``."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class Stem(nn.Module):
    """3x3 conv stride 2, then a ShuffleNet-v2 downsampling unit: (B, 3, H, W) -> (B, C, H/4, W/4)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = conv_bn(3, channels, 3, stride=2, relu=True)
        self.branch1 = nn.Sequential(dw_conv_bn(half, 2), conv_bn(half, channels - half, relu=True))
        self.branch2 = nn.Sequential(
            conv_bn(half, channels, relu=True), dw_conv_bn(channels, 2), conv_bn(channels, half, relu=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        return channel_shuffle(torch.cat([self.branch1(x1), self.branch2(x2)], dim=1), 2)


class ConditionalChannelWeighting(nn.Module):
    """Half the channels of every branch pass unchanged; the other half get cross-resolution
    weighting (all branches pooled to the smallest size, 1x1 conv-BN-ReLU, 1x1 conv-BN-sigmoid),
    a depthwise 3x3 conv-BN and spatial (SE-like, ratio 4) weighting; then concat and shuffle."""

    def __init__(self, channels: Sequence[int], reduce_ratio: int) -> None:
        super().__init__()
        self.halves = [c // 2 for c in channels]
        total = sum(self.halves)
        self.cross = nn.Sequential(
            conv_bn(total, total // reduce_ratio, relu=True),
            conv_bn(total // reduce_ratio, total),
            nn.Sigmoid(),
        )
        self.dw = nn.ModuleList(dw_conv_bn(c) for c in self.halves)
        self.spatial = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(c, c // 4, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c // 4, c, 1),
                nn.Sigmoid(),
            )
            for c in self.halves
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Branches (B, C_i, H_i, W_i) -> same shapes."""
        kept = [x.chunk(2, dim=1)[0] for x in xs]
        moved = [x.chunk(2, dim=1)[1] for x in xs]
        # Branch i is 2^(n-1-i) times the smallest (LiteHRNet.forward checks the input size), so
        # the adaptive pooling to the smallest size is a fixed-kernel average pool: constant
        # factors keep the ONNX graph free of shape-dependent kernels (dynamic batch exports).
        factors = [2 ** (len(xs) - 1 - i) for i in range(len(xs))]
        pooled = [F.avg_pool2d(m, f) if f > 1 else m for m, f in zip(moved, factors, strict=True)]
        gates = torch.split(self.cross(torch.cat(pooled, dim=1)), self.halves, dim=1)
        out = []
        for k, m, g, f, dw, sw in zip(kept, moved, gates, factors, self.dw, self.spatial, strict=True):
            m = dw(m * (F.interpolate(g, scale_factor=f, mode="nearest") if f > 1 else g))
            out.append(channel_shuffle(torch.cat([k, m * sw(m)], dim=1), 2))
        return out


def fuse_path(channels: Sequence[int], j: int, i: int) -> nn.Module:
    """Branch j -> branch i: 1x1 conv-BN + nearest upsample (j > i), or (i - j) depthwise
    stride-2 steps (dw 3x3-BN, 1x1-BN, ReLU between steps) (j < i)."""
    if j > i:
        return nn.Sequential(conv_bn(channels[j], channels[i]), nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
    steps: list[nn.Module] = []
    for k in range(i - j):
        last = k == i - j - 1
        steps.append(
            nn.Sequential(
                dw_conv_bn(channels[j], 2), conv_bn(channels[j], channels[i] if last else channels[j], relu=not last)
            )
        )
    return nn.Sequential(*steps)


class LiteHRModule(nn.Module):
    """``num_blocks`` conditional channel weighting blocks, then fusion of every branch into every branch."""

    def __init__(self, channels: Sequence[int], num_blocks: int, reduce_ratio: int) -> None:
        super().__init__()
        n = len(channels)
        self.blocks = nn.Sequential(*(ConditionalChannelWeighting(channels, reduce_ratio) for _ in range(num_blocks)))
        self.fuse = nn.ModuleList(
            nn.ModuleList(nn.Identity() if i == j else fuse_path(channels, j, i) for j in range(n)) for i in range(n)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = self.blocks(xs)
        out = []
        for paths in self.fuse:
            assert isinstance(paths, nn.ModuleList)
            y = paths[0](xs[0])
            for j in range(1, len(xs)):
                y = y + paths[j](xs[j])
            out.append(self.relu(y))
        return out


class LiteHRNet(nn.Module):
    """Lite-HRNet backbone with its iterative head: (B, 3, H, W) -> (B, channels[0], H/4, W/4).

    Args:
        stem_channels: stem output channels.
        num_modules: modules per stage.
        channels: branch widths; stage s uses the first s + 2.
        num_blocks: weighting blocks per module.
        reduce_ratio: cross-resolution weighting reduction.
    """

    def __init__(
        self,
        stem_channels: int = 32,
        num_modules: Sequence[int] = (2, 4, 2),
        channels: Sequence[int] = (40, 80, 160, 320),
        num_blocks: int = 2,
        reduce_ratio: int = 8,
    ) -> None:
        super().__init__()
        if len(channels) != len(num_modules) + 1:
            raise ValueError(f"need {len(num_modules) + 1} branch widths for {len(num_modules)} stages, got {channels}")
        self.stem = Stem(stem_channels)
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = [stem_channels]
        for s, modules in enumerate(num_modules):
            cur = list(channels[: s + 2])
            self.transitions.append(nn.ModuleList(_transition(prev, cur, i) for i in range(len(cur))))
            self.stages.append(nn.Sequential(*(LiteHRModule(cur, num_blocks, reduce_ratio) for _ in range(modules))))
            prev = cur
        # Iterative head: from the lowest branch up, upsample, add, depthwise-separable conv.
        rev = list(prev[::-1])
        self.iterative_head = nn.ModuleList(
            nn.Sequential(dw_conv_bn(c), conv_bn(c, rev[min(k + 1, len(rev) - 1)], relu=True))
            for k, c in enumerate(rev)
        )
        self.out_channels: int = int(prev[0])
        self.stride: int = 4
        init_litehrnet_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, out_channels, H / 4, W / 4); H and W must be multiples of 4 * 2^stages."""
        unit = 4 * 2 ** len(self.stages)
        if images.shape[-2] % unit or images.shape[-1] % unit:
            raise ValueError(f"Lite-HRNet needs H and W divisible by {unit}, got {tuple(images.shape[-2:])}")
        xs = [self.stem(images)]
        for transition, stage in zip(self.transitions, self.stages, strict=True):
            assert isinstance(transition, nn.ModuleList)
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = stage(xs)
        y: torch.Tensor | None = None
        for x, project in zip(xs[::-1], self.iterative_head, strict=True):
            if y is not None:
                x = x + F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)
            y = project(x)
        assert y is not None
        return y


def _transition(prev: Sequence[int], cur: Sequence[int], i: int) -> nn.Module:
    """Into new branch i: identity, a dw-separable width change, or a stride-2 step from the lowest branch."""
    if i < len(prev):
        if prev[i] == cur[i]:
            return nn.Identity()
        return nn.Sequential(dw_conv_bn(prev[i]), conv_bn(prev[i], cur[i], relu=True))
    if i != len(prev):
        raise ValueError("a stage may add only one branch")
    return nn.Sequential(dw_conv_bn(prev[-1], 2), conv_bn(prev[-1], cur[i], relu=True))


def init_litehrnet_weights(module: nn.Module) -> None:
    """Lite-HRNet's from-scratch init: conv weights ~ N(0, 0.001), biases 0, BN weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_litehrnet_backbone(pretrained: bool = False, weights: str | None = None) -> LiteHRNet:
    """Lite-HRNet-18 (40 channels at stride 4); ``weights``: a local state dict to load strictly."""
    return init_scratch_backbone(LiteHRNet(), "litehrnet18", pretrained, weights)
