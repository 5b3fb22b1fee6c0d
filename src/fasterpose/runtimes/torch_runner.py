"""The torch runtime behind the :class:`~fasterpose.runtimes.base.Runner` interface."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fasterpose.runtimes.base import check_images


class TorchRunner:
    """Run an ``nn.Module`` under ``inference_mode``.

    Args:
        model: the pose network (put in eval mode here).
        device: torch device.
        compile: wrap with ``torch.compile`` (inductor, ``freezing=True``: weights folded as
            constants, conv weights pre-packed). The first call per batch size compiles.
        channels_last: run in NHWC memory format (faster oneDNN convolutions on CPU).
        precision: ``fp32`` or ``bf16`` (autocast).
    """

    runtime = "torch"
    source = "the model"  # the model file, when it came from one (set by ``open_model``)

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "cpu",
        compile: bool = False,
        channels_last: bool = True,
        precision: str = "fp32",
    ) -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"torch runtime supports precision fp32 or bf16, got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = channels_last
        model = model.eval().to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward: Any = torch.compile(model, dynamic=False, options={"freezing": True}) if compile else model
        self.compiled = compile

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(check_images(images)).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            out = self.forward(x)
        return out.float().cpu().numpy()
