"""CPU deployment runtimes behind the :class:`~fasterpose.pipeline.runner.Runner` interface.

Every runner takes normalised crops ``(B, 3, H, W)`` float32 (numpy) and returns the model's raw
outputs ``(B, K, h, w)`` float32 (logits for sigmoid-trained models). The sigmoid, flip test and
decoding live in :mod:`fasterpose.pipeline.topdown`, identical for every runtime. No torch here.

* ``torch``: :class:`fasterpose.pipeline.torch_runner.TorchRunner` (eager, or ``torch.compile``).
* ``onnxruntime``: an ONNX file or bytes on the CPU execution provider, intra-op spinning off.
* ``openvino``: an OpenVINO IR (``.xml``), an ONNX file, or an ``ov.Model`` on the CPU plugin, with
  the inference precision set explicitly (``INFERENCE_PRECISION_HINT`` = ``f32`` or ``bf16``).

Which of them is the default for CPU inference is measured by ``fasterpose bench latency`` and
recorded in ``docs/deployment.md`` (:data:`DEFAULT_CPU_RUNTIME`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.pipeline.runner import PRECISIONS, RUNTIMES, check_images, default_num_threads

__all__ = [
    "AUTO_BY_CPU_CLASS",
    "DEFAULT_CPU_RUNTIME",
    "PRECISIONS",
    "RUNTIMES",
    "ModelFileError",
    "OnnxRuntimeRunner",
    "OpenVinoRunner",
    "auto_cpu_runtime",
    "default_num_threads",
    "openvino_core",
]
# Fastest exact (f32) runtime on the CPUs we measured, decided by scripts/bench_runtime_choice.py on
# a trained checkpoint (fasterpose.bench.runtime_choice; see docs/deployment.md). bf16 has only one
# CPU runtime here, so ``auto`` at bf16 means OpenVINO (:func:`auto_cpu_runtime`).
DEFAULT_CPU_RUNTIME = "onnxruntime"
# The fp32 runtime ``auto`` runs per CPU instruction-set class (fasterpose.bench.provenance.cpu_class),
# each decided by scripts/bench_runtime_choice.py on a machine of that class (docs/bench/runtime_choice*.json,
# one per class); a class not measured yet gets DEFAULT_CPU_RUNTIME.
AUTO_BY_CPU_CLASS = {"avx2": "onnxruntime", "amx": "onnxruntime"}


class ModelFileError(ValueError):
    """An exported model file that cannot be read (truncated, corrupt, not a model)."""


def unreadable_model(path: str | os.PathLike[str], exc: BaseException) -> ModelFileError:
    """One line naming ``path``, instead of a protobuf DecodeError or a multi-line OpenVINO trace."""
    p = Path(path)
    if p.suffix == ".xml":
        what = f"OpenVINO IR (the .xml or its {p.with_suffix('.bin').name} is truncated, corrupt or missing)"
        detail = ""
    else:
        what = "ONNX model (the file is truncated or corrupt)"
        text = " ".join(str(exc).split())
        detail = f": {text.rsplit('failed:', 1)[-1].strip().rstrip('.')[:120]}" if text else ""
    return ModelFileError(f"{p}: not a readable {what}{detail}; re-export it with fasterpose export")


def installed(runtime: str) -> bool:
    """The runtime's Python package is importable (the runtime install may carry only one of them)."""
    import importlib.util

    return importlib.util.find_spec(runtime) is not None


def auto_cpu_runtime(precision: str | None) -> str:
    """What ``runtime="auto"`` runs on the CPU at this precision: OpenVINO for bf16 (the only runtime
    here with bf16 convolutions), else the measured choice for this CPU's class (:data:`AUTO_BY_CPU_CLASS`,
    :data:`DEFAULT_CPU_RUNTIME` for a class not measured), or the other one when only it is installed."""
    if precision == "bf16":
        return "openvino"
    from fasterpose.bench.provenance import cpu_class  # torch-free

    best = AUTO_BY_CPU_CLASS.get(cpu_class(), DEFAULT_CPU_RUNTIME)
    other = "openvino" if best == "onnxruntime" else "onnxruntime"
    if installed(best) or not installed(other):
        return best
    return other


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


def cpu_has_bf16() -> bool:
    """OpenVINO's CPU plugin reports bf16 support (AVX512-BF16 or AMX)."""
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OnnxRuntimeRunner:
    """An ONNX model on ONNX Runtime's CPU execution provider.

    Args:
        model: ``.onnx`` path or the serialized model bytes.
        num_threads: intra-op threads (default: :func:`default_num_threads`).
        precision: label only (``int8`` models carry their quantised ops).
    """

    runtime = "onnxruntime"

    def __init__(
        self, model: str | os.PathLike[str] | bytes, num_threads: int | None = None, precision: str = "fp32"
    ) -> None:
        from fasterpose.extras import import_runtime

        ort = import_runtime("onnxruntime")
        if precision == "bf16":
            raise ValueError("onnxruntime's CPU provider has no bf16 convolutions; use runtime=openvino for bf16")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or default_num_threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        source: bytes | str
        if isinstance(model, bytes):
            source = model
        else:
            source = str(model)
            if not Path(source).is_file():
                raise FileNotFoundError(f"ONNX model not found: {source}")
        try:
            self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types (InvalidProtobuf, Fail, ...)
            raise unreadable_model(source if isinstance(source, str) else "<ONNX bytes>.onnx", exc) from exc
        if isinstance(source, str):
            from fasterpose.integrity import verify_exported

            verify_exported(source)
        self.input_name = self.session.get_inputs()[0].name
        self.precision = precision
        self.source = source if isinstance(source, str) else "the model"
        self.input_shape = tuple(d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return in_fixed_batches(self._run, check_images(images), self.input_shape[0] if self.input_shape else None)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)


def in_fixed_batches(run: Any, x: np.ndarray, batch: int | None) -> np.ndarray:
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
        if precision == "bf16" and not cpu_has_bf16():
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
