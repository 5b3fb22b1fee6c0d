"""The ``Runner`` interface every runtime implements: ``raw_outputs = runner(crops)``.

A runner takes normalised crops ``(B, 3, H, W)`` float32 (numpy) and returns the model's raw
outputs ``(B, K, h, w)`` float32 (logits for sigmoid-trained models). The sigmoid, flip test and
decoding are the pipeline's (:mod:`fasterpose.pipeline.topdown`), identical for every runtime.
Implementations: :class:`~fasterpose.pipeline.torch_runner.TorchRunner` (torch eager / compiled,
fp32 or bf16 autocast) and, in :mod:`fasterpose.deploy.runtimes`, ONNX Runtime and OpenVINO.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")


class Runner(Protocol):
    """``(B, 3, H, W) float32 -> (B, K, h, w) float32`` raw model outputs."""

    runtime: str
    precision: str

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def check_images(images: np.ndarray) -> np.ndarray:
    """Contiguous float32 ``(B, 3, H, W)``; a clear error for anything else."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {images.shape}")
    return np.ascontiguousarray(images, dtype=np.float32)


def default_num_threads() -> int:
    """Threads for CPU runtimes: ``OMP_NUM_THREADS`` when set, else the usable CPU cores."""
    import os

    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
