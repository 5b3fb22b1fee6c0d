"""Which CPU runtime ``runtime="auto"`` runs (:func:`auto_cpu_runtime`), measured by ``fasterpose bench
latency`` and recorded in ``docs/deployment.md`` (:data:`DEFAULT_CPU_RUNTIME`).

The runners themselves live in :mod:`fasterpose.runtimes` (torch, ONNX Runtime and OpenVINO side by
side); their names are importable from here too. No torch here.
"""

from __future__ import annotations

from fasterpose.runtimes.base import (
    PRECISIONS,
    RUNTIMES,
    ModelFileError,
    default_num_threads,
    in_fixed_batches,
    unreadable_model,
)
from fasterpose.runtimes.onnxruntime_runner import OnnxRuntimeRunner
from fasterpose.runtimes.openvino_runner import OpenVinoRunner, openvino_core

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
    "in_fixed_batches",
    "installed",
    "openvino_core",
    "unreadable_model",
]
# Fastest exact (f32) runtime on the CPUs we measured, decided by scripts/bench_runtime_choice.py on
# a trained checkpoint (fasterpose.bench.runtime_choice; see docs/deployment.md). bf16 has only one
# CPU runtime here, so ``auto`` at bf16 means OpenVINO (:func:`auto_cpu_runtime`).
DEFAULT_CPU_RUNTIME = "onnxruntime"
# The fp32 runtime ``auto`` runs per CPU instruction-set class (fasterpose.bench.provenance.cpu_class),
# each decided by scripts/bench_runtime_choice.py on a machine of that class (docs/bench/runtime_choice*.json,
# one per class); a class not measured yet gets DEFAULT_CPU_RUNTIME.
AUTO_BY_CPU_CLASS = {"avx2": "onnxruntime", "amx": "onnxruntime"}


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
