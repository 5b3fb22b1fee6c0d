"""``inference_context`` for torch models; :class:`~fasterpose.runtimes.torch_runner.TorchRunner` (in
:mod:`fasterpose.runtimes`, beside the other runners) is importable from here too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from fasterpose.runtimes.torch_runner import TorchRunner

__all__ = ["TorchRunner", "inference_context"]


@contextmanager
def inference_context(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; on leaving, also by an exception, every submodule's
    train/eval mode is back to what it was on entry (detectron2's ``inference_context``)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
