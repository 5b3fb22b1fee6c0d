"""``fasterpose bench latency``: CPU latency of pose models across runtimes, against the FLOP floor.

Every (config, runtime, precision, batch) cell is prepared first, warmed up, then timed in
``--runs`` interleaved rounds (each round visits every cell once, in a rotated order), so a noisy
neighbour or a frequency change hits all cells alike. Per cell: median, min and max milliseconds.

The floor is the time the model's true multiply-adds would take at this CPU's measured matmul
peak: ``floor_ms = 2 * MACs * batch / peak``, with ``peak`` the best of several large square
``torch.mm`` calls in the row's precision (fp32, or bf16 where the CPU has it), or of the same
GEMM run as a 1x1 convolution through oneDNN when that is faster (MKL and oneDNN can differ; a
floor must use the faster). ``ratio`` =
measured median / floor (1.0 would be a network running at matmul speed throughout).

Runtimes: ``torch`` (eager, channels-last), ``torch-compile`` (inductor, ``freezing=True``),
``onnxruntime`` (CPU provider, intra-op spinning off), ``openvino`` (f32 hint) and ``openvino-bf16``
(bf16 hint); on request ``torch-bf16`` (autocast) and ``onnxruntime-int8`` / ``openvino-int8``
(static QDQ quantisation calibrated on random crops: timing only). INT8 rows are held against an
INT8 floor: the int8 peak measured like the others, the best of the same (n, n) GEMM run as an
INT8 1x1 convolution (QDQ) through ONNX Runtime and OpenVINO, and ``torch._int_mm`` where the CPU
build has it.

With ``checkpoint`` the timed weights are a trained model's (random weights can hit denormals and
misrank runtimes); otherwise each config's network is built with random weights.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fasterpose.bench.provenance import cpu_name, finish, provenance
from fasterpose.config import Config, apply_overrides, load_config, shipped_path

VARIANTS = {  # name: (runtime, precision)
    "torch": ("torch", "fp32"),
    "torch-compile": ("torch", "fp32"),
    "torch-bf16": ("torch", "bf16"),
    "onnxruntime": ("onnxruntime", "fp32"),
    "openvino": ("openvino", "fp32"),
    "openvino-bf16": ("openvino", "bf16"),
    "onnxruntime-int8": ("onnxruntime", "int8"),
    "openvino-int8": ("openvino", "int8"),
}


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of ``torch.mm`` on (n, n) matrices of ``dtype``."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def conv_gemm_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """The same (n, n) x (n, n) product as a 1x1 convolution (oneDNN, channels-last): GFLOP/s.

    On some CPUs torch.mm (MKL) and the convolution library the runtimes use (oneDNN) reach
    different speeds; the floor uses the faster of the two so that it is a floor.
    """
    side = 32 if n % 32 == 0 else 1
    x = torch.randn(1, n, side, n // side).to(dtype).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(n, n, 1, bias=False).to(dtype).to(memory_format=torch.channels_last).eval()
    best = float("inf")
    with torch.inference_mode():
        conv(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def int8_gemm_peaks(n: int = 2048, repeats: int = 5, threads: int = 1) -> dict[str, float]:
    """The (n, n) x (n, n) product in INT8, GFLOP/s (int8 ops counted like fp32 ones), per engine.

    ``conv1x1-ort`` / ``conv1x1-openvino``: one 1x1 convolution quantised to QDQ (u8 activations,
    per-channel s8 weights) by :func:`fasterpose.deploy.quantize.quantize_int8`, the path the INT8
    rows take. ``torch._int_mm``: s8 x s8 -> s32 GEMM, where this torch build supports it on CPU.
    """
    import tempfile

    from fasterpose.deploy.quantize import quantize_int8
    from fasterpose.deploy.runtimes import OnnxRuntimeRunner, OpenVinoRunner

    out: dict[str, float] = {}
    side = 32 if n % 32 == 0 else 1
    x = np.random.default_rng(0).standard_normal((1, n, side, n // side)).astype(np.float32)
    conv = torch.nn.Conv2d(n, n, 1, bias=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "conv.onnx"
        with torch.no_grad():
            torch.onnx.export(
                conv, (torch.from_numpy(x),), str(fp32), dynamo=False, opset_version=17, input_names=["images"]
            )
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", x, keep_head_fp32=False)
        import openvino as ov

        ort_runner = OnnxRuntimeRunner(int8, num_threads=threads, precision="int8")  # runtime settings as the rows
        ov_runner = OpenVinoRunner(ov.convert_model(str(int8)), precision="int8", num_threads=threads)
        calls: dict[str, Callable[[], Any]] = {  # the session / request directly: the input is not a crop
            "conv1x1-ort": lambda: ort_runner.session.run(None, {ort_runner.input_name: x}),
            "conv1x1-openvino": lambda: ov_runner._get(1).infer({0: x}),
        }
        for name, call in calls.items():
            call()
            best = min(_timed(call) for _ in range(repeats))
            out[name] = round(2.0 * n**3 / best / 1e9, 1)
    if hasattr(torch, "_int_mm"):
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        try:
            torch._int_mm(a, b)
            best = min(_timed(lambda: torch._int_mm(a, b)) for _ in range(repeats))
            out["torch._int_mm"] = round(2.0 * n**3 / best / 1e9, 1)
        except RuntimeError:  # no CPU kernel in this build
            pass
    return out


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_peaks(
    n: int, bf16: bool, int8: bool = False, threads: int = 1
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Peak GFLOP/s per precision (best of torch.mm and the 1x1-conv GEMM; int8: see
    :func:`int8_gemm_peaks`), and each measurement."""
    detail: dict[str, dict[str, float]] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if name == "bf16" and not bf16:
            continue
        detail[name] = {
            "torch.mm": round(matmul_peak_gflops(dtype, n), 1),
            "conv1x1": round(conv_gemm_peak_gflops(dtype, n), 1),
        }
    if int8:
        detail["int8"] = int8_gemm_peaks(n, threads=threads)
    return {k: max(v.values()) for k, v in detail.items()}, detail


def cpu_has_bf16() -> bool:
    try:
        from fasterpose.deploy.runtimes import openvino_core  # loads the CPU plugin once per process

        return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - no OpenVINO: fall back to torch's view
        return bool(torch.backends.mkldnn.is_available()) and "bf16" in str(torch.backends.cpu.get_cpu_capability())


def make_runner(
    variant: str, model: torch.nn.Module, cfg: Config, onnx_model: Callable[[], bytes], threads: int
) -> Any:
    """A runner for one benchmark variant (see :data:`VARIANTS`); ``onnx_model()`` gives the ONNX bytes.

    INT8 variants are calibrated on random crops: right for timing, not for accuracy.
    """
    import io
    import tempfile

    from fasterpose.deploy.quantize import quantize_int8
    from fasterpose.deploy.runtimes import OnnxRuntimeRunner, OpenVinoRunner
    from fasterpose.pipeline.torch_runner import TorchRunner

    runtime, precision = VARIANTS[variant]
    if runtime == "torch":
        return TorchRunner(model, compile=variant == "torch-compile", precision=precision)
    data = onnx_model()
    if precision == "int8":
        w, h = cfg.data.input_size
        calib = np.random.default_rng(0).standard_normal((4, 3, h, w)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "fp32.onnx").write_bytes(data)
            data = quantize_int8(Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx", calib).read_bytes()
    if runtime == "onnxruntime":
        return OnnxRuntimeRunner(data, num_threads=threads, precision=precision)
    import openvino as ov

    return OpenVinoRunner(ov.convert_model(io.BytesIO(data)), precision=precision, num_threads=threads)


@dataclass
class Cell:
    config: str
    variant: str
    batch: int
    runner: Any
    images: np.ndarray
    gmacs: float
    times: list[float]


def _bench_models(
    configs: list[str], overrides: list[str] | None, checkpoint: str | None
) -> list[tuple[Config, torch.nn.Module]]:
    """The timed models: a checkpoint's (or weights file's) trained model, else each config's at seed 0."""
    if checkpoint is not None:
        from fasterpose.engine.model_file import load_model_file

        model, cfg = load_model_file(checkpoint)
        return [(apply_overrides(cfg, list(overrides or [])), model)]
    from fasterpose.models.pose_model import PoseModel

    models: list[tuple[Config, torch.nn.Module]] = []
    for path in configs:
        cfg = apply_overrides(load_config(shipped_path(path)), ["model.pretrained=false", *(overrides or [])])
        torch.manual_seed(0)
        models.append((cfg, PoseModel.from_config(cfg, pretrained=False).eval()))
    return models


def _row(cell: Cell, peak: dict[str, float]) -> dict[str, Any]:
    """One cell's timings against its floor (int8 rows: the int8 peak, the INT8 floor)."""
    precision = VARIANTS[cell.variant][1]
    ms = np.asarray(cell.times) * 1e3
    peak_key = precision if precision in peak else "fp32"
    floor = 2.0 * cell.gmacs * cell.batch / peak[peak_key] * 1e3
    fp32_floor = 2.0 * cell.gmacs * cell.batch / peak["fp32"] * 1e3
    return {
        "config": cell.config,
        "runtime": cell.variant,
        "precision": precision,
        "batch": cell.batch,
        "ms_median": round(float(np.median(ms)), 2),
        "ms_min": round(float(ms.min()), 2),
        "ms_max": round(float(ms.max()), 2),
        "floor_ms": round(floor, 2),
        "ratio": round(float(np.median(ms)) / floor, 3),
        "peak_gflops": round(peak[peak_key], 1),
        "gmacs": round(cell.gmacs, 3),
        **({"fp32_floor_ms": round(fp32_floor, 2)} if precision == "int8" else {}),
    }


def run_benchmark(
    configs: list[str],
    runtimes: list[str],
    batches: list[int],
    runs: int = 20,
    warmup: int = 3,
    threads: int | None = None,
    peak_size: int = 2048,
    overrides: list[str] | None = None,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Time every (config, runtime, batch) cell in interleaved rounds; see the module docstring.

    Args:
        configs: config YAMLs (shipped names resolve to this checkout's ``configs/``); ignored
            with ``checkpoint``, whose own config and weights are timed.
        runtimes: variants, see :data:`VARIANTS`.
        batches: batch sizes.
        runs, warmup: timed rounds, and untimed calls per cell first.
        threads: CPU threads for every runtime (default: torch's).
        peak_size: square GEMM size of the peak measurements.
        overrides: config overrides for every model.
    """
    from fasterpose.bench.flops import true_gmacs
    from fasterpose.deploy.onnx_export import onnx_bytes

    prov = provenance()

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    unknown = [v for v in runtimes if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown runtimes {unknown}; valid: {', '.join(VARIANTS)}")
    bf16 = cpu_has_bf16()
    skipped = [v for v in runtimes if VARIANTS[v][1] == "bf16" and not bf16]
    variants = [v for v in runtimes if v not in skipped]
    int8 = any(VARIANTS[v][1] == "int8" for v in variants)
    peak, peak_detail = measure_peaks(peak_size, bf16, int8, threads)
    models = _bench_models(configs, overrides, checkpoint)
    cells: list[Cell] = []
    rng = np.random.default_rng(0)
    for cfg, model in models:
        w, h = cfg.data.input_size
        gmacs = true_gmacs(model, (h, w))
        onnx_model = functools.cache(functools.partial(onnx_bytes, model, cfg.data.input_size))
        for variant in variants:
            t0 = time.perf_counter()
            runner = make_runner(variant, model, cfg, onnx_model, threads)
            for b in batches:
                images = rng.standard_normal((b, 3, h, w)).astype(np.float32)
                for _ in range(warmup):
                    runner(images)
                cells.append(Cell(cfg.name, variant, b, runner, images, gmacs, []))
            print(f"prepared {cfg.name} {variant} in {time.perf_counter() - t0:.1f} s", flush=True)
    for r in range(runs):
        for i in range(len(cells)):
            cell = cells[(i + r) % len(cells)]
            t0 = time.perf_counter()
            cell.runner(cell.images)
            cell.times.append(time.perf_counter() - t0)
    rows = [_row(cell, peak) for cell in cells]
    return {
        "cpu": cpu_name(),
        "provenance": finish(prov),
        "threads": threads,
        "runs": runs,
        "weights": f"trained ({checkpoint})" if checkpoint else "random",
        "peak_gflops": peak,
        "peak_detail": peak_detail,
        "skipped": skipped,
        "fastest_fp32": fastest_exact(rows),
        "rows": rows,
        "comparisons": compare(rows),
    }


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median latency of the first config over each other config, per runtime and batch."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    by_key = {(r["config"], r["runtime"], r["batch"]): r["ms_median"] for r in rows}
    out = []
    for other in configs[1:]:
        for (c, rt, bs), ms in by_key.items():
            if c == configs[0] and (other, rt, bs) in by_key:
                ratio = round(ms / by_key[(other, rt, bs)], 3)
                out.append({"config": c, "versus": other, "runtime": rt, "batch": bs, "latency_ratio": ratio})
    return out


def fastest_exact(rows: list[dict[str, Any]]) -> str | None:
    """The fp32 runtime with the lowest sum of measured/floor ratios over every config and batch."""
    totals: dict[str, float] = {}
    for r in rows:
        if r["precision"] == "fp32":
            totals[r["runtime"]] = totals.get(r["runtime"], 0.0) + r["ms_median"] / r["floor_ms"]
    return min(totals, key=lambda k: totals[k]) if totals else None


def format_latency_report(report: dict[str, Any]) -> str:
    peak = ", ".join(
        f"{k} {v:.0f} GFLOP/s ({', '.join(f'{e} {g:.0f}' for e, g in report['peak_detail'][k].items())})"
        for k, v in report["peak_gflops"].items()
    )
    lines = [
        f"{report['cpu']}, {report['threads']} threads, {report['runs']} runs, {report['weights']} weights; "
        f"peak {peak}",
        f"{'config':34s} {'runtime':17s} {'batch':>5s} {'median':>9s} {'min':>9s} {'max':>9s} "
        f"{'floor':>9s} {'ratio':>6s}",
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['config']:34s} {r['runtime']:17s} {r['batch']:5d} {r['ms_median']:9.1f} "
            f"{r['ms_min']:9.1f} {r['ms_max']:9.1f} {r['floor_ms']:9.1f} {r['ratio']:6.2f}"
        )
    for c in report["comparisons"]:
        lines.append(f"{c['config']} / {c['versus']}: {c['runtime']} batch {c['batch']}: {c['latency_ratio']:.3f}x")
    if report["skipped"]:
        lines.append(f"skipped (no bf16 on this CPU): {', '.join(report['skipped'])}")
    lines.append(f"fastest exact (fp32) runtime, by summed measured/floor: {report['fastest_fp32']}")
    return "\n".join(lines)
