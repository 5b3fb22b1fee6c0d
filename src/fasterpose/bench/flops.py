"""Counting parameters, the paper's GFLOPs and true multiply-adds.

Paper GFLOPs (SimpleBaseline/HRNet counter): sum over every Conv2d and ConvTranspose2d of
``weight.numel() * out_H * out_W``, divided by 2**30. For a stride-2 transposed conv that is 4x its
real multiply-adds, so it is reported beside true GMACs and never instead of them.

True MACs: Conv2d ``out_elems * in/groups * kH * kW``; ConvTranspose2d ``in_elems * out/groups *
kH * kW`` (each input pixel is scattered once per kernel tap); Linear ``in * out`` per row.
Normalisation, activation and pixel-shuffle cost no multiply-adds here. GMACs use 1e9.

Torchstat MFLOPs (the counter behind Lite-HRNet's published "205.2M" for Lite-HRNet-18, which the
FasterPose paper quotes as 0.21 GFLOPs): conv and deconv ``weight.numel() * out_H * out_W`` plus one add per
output element when the conv has a bias, two operations per BatchNorm element, one per ReLU input
element and one per upsampled output element, in units of 2**20.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fasterpose.pipeline.torch_runner import inference_context


@dataclass(frozen=True)
class Complexity:
    params: int
    paper_gflops: float
    gmacs: float
    torchstat_mflops: float


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure_complexity(model: nn.Module, input_hw: tuple[int, int]) -> Complexity:
    """Run one forward pass on zeros of (1, 3, H, W) and count the three conventions."""
    paper = 0
    macs = 0
    stat = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal paper, macs, stat
        if isinstance(module, nn.BatchNorm2d):
            stat += 2 * inputs[0][0].numel()
            return
        if isinstance(module, nn.ReLU):
            stat += inputs[0][0].numel()
            return
        if isinstance(module, nn.Upsample):
            stat += output[0].numel()
            return
        out_h, out_w = output.shape[-2:]
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            stat += module.weight.numel() * out_h * out_w + (output[0].numel() if module.bias is not None else 0)
        if isinstance(module, nn.ConvTranspose2d):
            paper += module.weight.numel() * out_h * out_w
            kh, kw = module.kernel_size
            macs += inputs[0][0].numel() * module.out_channels // module.groups * kh * kw
        elif isinstance(module, nn.Conv2d):
            paper += module.weight.numel() * out_h * out_w
            kh, kw = module.kernel_size
            macs += output[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            macs += output[0].numel() * module.in_features

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, nn.Upsample)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    try:
        with inference_context(model), torch.no_grad():
            model(torch.zeros(1, 3, *input_hw))
    finally:
        for h in handles:
            h.remove()
    return Complexity(
        params=count_params(model), paper_gflops=paper / 2**30, gmacs=macs / 1e9, torchstat_mflops=stat / 2**20
    )


def paper_gflops(model: nn.Module, input_hw: tuple[int, int]) -> float:
    return measure_complexity(model, input_hw).paper_gflops


def true_gmacs(model: nn.Module, input_hw: tuple[int, int]) -> float:
    return measure_complexity(model, input_hw).gmacs
