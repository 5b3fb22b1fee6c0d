"""The ``Runner`` interface every runtime implements: ``raw_outputs = runner(crops)``.

A runner takes normalised crops ``(B, 3, H, W)`` float32 (numpy) and returns the model's raw
outputs ``(B, K, h, w)`` float32 (logits for sigmoid-trained models). The sigmoid, flip test and
decoding are the pipeline's (:mod:`fasterpose.pipeline.topdown`), identical for every runtime. No torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")


class Runner(Protocol):
    """``(B, 3, H, W) float32 -> (B, K, h, w) float32`` raw model outputs."""

    runtime: str
    precision: str

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class ModelFileError(ValueError):
    """An exported model file that cannot be read (truncated, corrupt, not a model)."""


def check_images(images: np.ndarray) -> np.ndarray:
    """Contiguous float32 ``(B, 3, H, W)``; a clear error for anything else."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {images.shape}")
    return np.ascontiguousarray(images, dtype=np.float32)


def default_num_threads() -> int:
    """Threads for CPU runtimes: ``OMP_NUM_THREADS`` when set, else the usable CPU cores."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def in_fixed_batches(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int | None) -> np.ndarray:
    """``run(x)``, or for a model exported with a fixed batch size, ``run`` on chunks of exactly that
    many crops (the last one padded with zeros, its padding dropped from the output)."""
    if batch is None or len(x) == batch:
        return np.asarray(run(x))
    outs = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
        outs.append(np.asarray(run(chunk))[:n])
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def unreadable_model(path: str | os.PathLike[str], exc: BaseException) -> ModelFileError:
    """One line naming ``path``, instead of a protobuf DecodeError or a multi-line OpenVINO trace."""
    from fasterpose.runtimes.formats import OPENVINO, exported_kind

    p = Path(path)
    if exported_kind(p) == OPENVINO:
        what = f"OpenVINO IR (the .xml or its {p.with_suffix('.bin').name} is truncated, corrupt or missing)"
        detail = ""
    else:
        what = "ONNX model (the file is truncated or corrupt)"
        text = " ".join(str(exc).split())
        detail = f": {text.rsplit('failed:', 1)[-1].strip().rstrip('.')[:120]}" if text else ""
    return ModelFileError(f"{p}: not a readable {what}{detail}; re-export it with fasterpose export")
