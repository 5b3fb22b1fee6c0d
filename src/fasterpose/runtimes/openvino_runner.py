"""OpenVINO behind the :class:`~fasterpose.runtimes.base.Runner` interface: an IR (``.xml``), an ONNX file
or an ``ov.Model`` on the CPU plugin, the inference precision set explicitly (``INFERENCE_PRECISION_HINT``
= ``f32`` or ``bf16``). No torch."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.runtimes.base import PRECISIONS, check_images, default_num_threads, in_fixed_batches, unreadable_model
from fasterpose.runtimes.device import has_bf16

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 IRs carry their own int8 ops


_OV_CORE: Any = None
_OV_CORE_LOCK = threading.Lock()


def openvino_core() -> Any:
    """The one ``openvino.Core`` of this process, created on first use and never released.

    Not a fresh ``ov.Core()`` per runner, on purpose: each Core loads its own CPU plugin, and the
    plugin (``SigAltStackSetup`` in OpenVINO's CPU plugin) mmaps an alternate signal stack and
    installs it on the creating thread, restoring the previous one and unmapping its own when the
    plugin is destroyed. Two plugins released in creation order rather than LIFO (two runners
    garbage-collected in any order) leave the thread's ``sigaltstack`` pointing at unmapped memory.
    The next signal with a Python handler (CPython installs them with ``SA_ONSTACK``: SIGINT,
    torch DataLoader's SIGCHLD, ...) then cannot be delivered and the kernel kills the process
    with a SIGSEGV that faulthandler cannot report either. One long-lived Core means one plugin
    whose stack stays mapped for the life of the process.
    """
    global _OV_CORE
    with _OV_CORE_LOCK:
        if _OV_CORE is None:
            from fasterpose.extras import import_runtime

            _OV_CORE = import_runtime("openvino").Core()
        return _OV_CORE


class OpenVinoRunner:
    """An OpenVINO model on the CPU plugin, precision set explicitly.

    By default the model is compiled once with its dynamic batch axis. With ``static_batch`` one
    compiled model is kept per batch size seen (a new batch size costs one compile, ~0.3 s for
    ResNet-50); on the CPUs we measured that was no faster, see docs/deployment.md.

    Args:
        model: ``.xml`` IR path, ``.onnx`` path, or an ``openvino.Model``.
        precision: ``fp32`` (hint ``f32``), ``bf16`` (hint ``bf16``; needs AVX512-BF16 or AMX) or
            ``int8`` (a quantised IR; its non-quantised ops run in f32).
        num_threads: ``INFERENCE_NUM_THREADS`` (default: :func:`default_num_threads`).
        static_batch: compile per batch size instead of once.
        max_cached: compiled batch sizes kept before the oldest is dropped (``static_batch``).
    """

    runtime = "openvino"

    def __init__(
        self,
        model: Any,
        precision: str = "fp32",
        num_threads: int | None = None,
        static_batch: bool = False,
        max_cached: int = 4,
    ) -> None:
        if precision not in _OV_PRECISION:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.core = openvino_core()  # shared: see openvino_core() for why not ov.Core() here
        if precision == "bf16" and not has_bf16("cpu"):
            raise RuntimeError("this CPU has no bf16 support (OpenVINO reports no BF16 capability); use fp32")
        model_path = None
        if isinstance(model, str | os.PathLike):
            path = model_path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"OpenVINO model not found: {path}")
            try:
                model = self.core.read_model(str(path))
            except RuntimeError as exc:
                raise unreadable_model(path, exc) from exc
            from fasterpose.integrity import verify_exported

            verify_exported(path)
        self.model = model
        self.precision = precision
        self.source = str(model_path) if model_path is not None else "the model"
        shape = model.input(0).get_partial_shape()
        self.input_shape = (
            tuple(d.get_length() if d.is_static else None for d in shape) if shape.rank.is_static else None
        )
        self.output_names = [next(iter(o.get_names()), f"output {i}") for i, o in enumerate(model.outputs)]
        self.config = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(num_threads or default_num_threads()),
        }
        self.static_batch = static_batch
        self.max_cached = max_cached
        self._compiled: dict[int, Any] = {}
        if not static_batch:
            self._dynamic = self.core.compile_model(model, "CPU", self.config).create_infer_request()

    def _get(self, batch: int) -> Any:
        if not self.static_batch:
            return self._dynamic
        req = self._compiled.pop(batch, None)
        if req is None:
            model = self.model.clone()
            shape = model.input(0).get_partial_shape()
            shape[0] = batch
            model.reshape({model.input(0): shape})
            req = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            while len(self._compiled) >= self.max_cached:
                self._compiled.pop(next(iter(self._compiled)))
        self._compiled[batch] = req  # most recently used last
        return req

    def __call__(self, images: np.ndarray) -> np.ndarray:
        fixed = self.input_shape[0] if self.input_shape else None
        return in_fixed_batches(self._run, check_images(images), fixed)

    def _run(self, x: np.ndarray) -> np.ndarray:
        req = self._get(x.shape[0])
        req.infer({0: x})
        return np.array(req.get_output_tensor(0).data, dtype=np.float32)
