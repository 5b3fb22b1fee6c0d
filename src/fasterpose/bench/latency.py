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
(static QDQ quantisation calibrated on random crops: timing only; their floor uses the fp32 peak).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fasterpose.config import Config, apply_overrides, load_config, shipped_path

DEFAULT_CONFIGS = ("configs/fasterpose_r50_256x192.yaml", "configs/simplebaseline_r50_256x192.yaml")
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
DEFAULT_VARIANTS = "torch,torch-compile,onnxruntime,openvino,openvino-bf16"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), help="config YAMLs to compare")
    parser.add_argument("--runtimes", default=DEFAULT_VARIANTS, help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--batches", default="1,32", help="comma list of batch sizes (1,32)")
    parser.add_argument("--runs", type=int, default=20, help="timed interleaved rounds after warm-up (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per cell first (3)")
    parser.add_argument("--threads", type=int, help="CPU threads for every runtime (default: torch's, all cores)")
    parser.add_argument("--peak-size", type=int, default=2048, help="square matmul size for the peak (2048)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every model")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (else a table)")
    parser.add_argument("--out", help="also write the JSON report to this file")


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


def measure_peaks(n: int, bf16: bool) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Peak GFLOP/s per precision (best of torch.mm and the 1x1-conv GEMM), and each measurement."""
    detail: dict[str, dict[str, float]] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if name == "bf16" and not bf16:
            continue
        detail[name] = {
            "torch.mm": round(matmul_peak_gflops(dtype, n), 1),
            "conv1x1": round(conv_gemm_peak_gflops(dtype, n), 1),
        }
    return {k: max(v.values()) for k, v in detail.items()}, detail


def cpu_has_bf16() -> bool:
    try:
        from fasterpose.deploy.runtimes import openvino_core  # loads the CPU plugin once per process

        return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - no OpenVINO: fall back to torch's view
        return bool(torch.backends.mkldnn.is_available()) and "bf16" in str(torch.backends.cpu.get_cpu_capability())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from fasterpose.bench.flops import true_gmacs
    from fasterpose.deploy.onnx_export import onnx_bytes
    from fasterpose.models.pose_model import PoseModel

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    variants = [v.strip() for v in args.runtimes.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown runtimes {unknown}; valid: {', '.join(VARIANTS)}")
    bf16 = cpu_has_bf16()
    skipped = [v for v in variants if VARIANTS[v][1] == "bf16" and not bf16]
    variants = [v for v in variants if v not in skipped]
    batches = [int(b) for b in args.batches.split(",")]
    peak, peak_detail = measure_peaks(args.peak_size, bf16)
    cells: list[Cell] = []
    rng = np.random.default_rng(0)
    for path in args.configs:
        cfg = apply_overrides(load_config(shipped_path(path)), ["model.pretrained=false", *args.set])
        torch.manual_seed(0)
        model = PoseModel.from_config(cfg, pretrained=False).eval()
        w, h = cfg.data.input_size
        gmacs = true_gmacs(model, (h, w))
        onnx_model = functools.cache(functools.partial(onnx_bytes, model, cfg.data.input_size))
        for variant in variants:
            t0 = time.perf_counter()
            runner = make_runner(variant, model, cfg, onnx_model, threads)
            for b in batches:
                images = rng.standard_normal((b, 3, h, w)).astype(np.float32)
                for _ in range(args.warmup):
                    runner(images)
                cells.append(Cell(cfg.name, variant, b, runner, images, gmacs, []))
            print(f"prepared {cfg.name} {variant} in {time.perf_counter() - t0:.1f} s", flush=True)
    for r in range(args.runs):
        for i in range(len(cells)):
            cell = cells[(i + r) % len(cells)]
            t0 = time.perf_counter()
            cell.runner(cell.images)
            cell.times.append(time.perf_counter() - t0)
    rows = []
    for cell in cells:
        precision = VARIANTS[cell.variant][1]
        ms = np.asarray(cell.times) * 1e3
        peak_key = precision if precision in peak else "fp32"  # int8 rows: against the fp32 peak
        floor = 2.0 * cell.gmacs * cell.batch / peak[peak_key] * 1e3
        rows.append(
            {
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
            }
        )
    return {
        "cpu": cpu_name(),
        "threads": threads,
        "runs": args.runs,
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


def format_table(report: dict[str, Any]) -> str:
    peak = ", ".join(
        f"{k} {v:.0f} GFLOP/s (torch.mm {report['peak_detail'][k]['torch.mm']:.0f}, "
        f"1x1 conv {report['peak_detail'][k]['conv1x1']:.0f})"
        for k, v in report["peak_gflops"].items()
    )
    lines = [
        f"{report['cpu']}, {report['threads']} threads, {report['runs']} runs; matmul peak {peak}",
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


def run(args: argparse.Namespace) -> int:
    saved = torch.get_num_threads()
    try:
        report = run_benchmark(args)
    finally:
        torch.set_num_threads(saved)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text if args.json else format_table(report))
    return 0
