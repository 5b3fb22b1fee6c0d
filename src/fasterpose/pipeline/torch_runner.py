"""The torch runner: :class:`~fasterpose.runtimes.torch_runner.TorchRunner` (in :mod:`fasterpose.runtimes`,
beside the other runners), importable from here too."""

from __future__ import annotations

from fasterpose.runtimes.torch_runner import TorchRunner

__all__ = ["TorchRunner"]
