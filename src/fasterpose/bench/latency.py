"""``fasterpose bench latency``: CPU latency of pose models across runtimes, against the FLOP floor.

Every (config, runtime, precision, batch) cell is prepared first, warmed up, then timed in
``--runs`` interleaved rounds (each round visits every cell once, in a rotated order), so a noisy
neighbour or a frequency change hits all cells alike. Per cell: median, min and max milliseconds.

The floor is the time the model's true multiply-adds would take at this CPU's measured GEMM
peak: ``floor_ms = 2 * MACs * batch / peak``. The peak is the best of every installed runtime's own
GEMM-shaped kernels at the row's precision (:func:`peak_kernels`: torch, ONNX Runtime and OpenVINO
each running a large (n, n) 1x1 convolution, a MatMul, and a 3x3 convolution, where Winograd-capable
libraries beat true-MAC speed; bf16 rows are held against the best fp32 or bf16 kernel, int8 rows
against the best of all three, since a runtime may run part of a model at a higher precision). The
kernels are timed in the same interleaved rounds as the models, so load hits both, and the peak is
each kernel's best round (:meth:`PeakKernel.gflops`). ``ratio`` = measured median / floor
(``ratio_min``: the row's best round / floor, best against best); the report names the
kernel that set each peak, and lists any row below :data:`FLOOR_LIMIT` x its floor (a floor that
is not one). A ratio is printed only for a peak measured in the rows' own rounds
(:func:`ratios_comparable`).

Runtimes: ``torch`` (eager, channels-last), ``torch-compile`` (inductor, ``freezing=True``),
``onnxruntime`` (CPU provider, intra-op spinning off), ``openvino`` (f32 hint) and ``openvino-bf16``
(bf16 hint); on request ``torch-bf16`` (autocast) and ``onnxruntime-int8`` / ``openvino-int8``
(static QDQ quantisation calibrated on random crops: timing only).

With ``checkpoint`` the timed weights are a trained model's (random weights can hit denormals and
misrank runtimes); otherwise each config's network is built with random weights.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fasterpose.bench.provenance import cpu_name, finish, provenance
from fasterpose.config import Config, apply_overrides, load_config, shipped_path
from fasterpose.runtimes.device import has_bf16

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


@dataclass
class PeakKernel:
    """One GEMM-shaped kernel of one runtime, timed in the same rounds as the models.

    ``name``: ``"<runtime> <shape>"`` (e.g. ``openvino conv1x1``); ``gflop``: 2 x its true MACs / 1e9.
    """

    name: str
    precision: str
    gflop: float
    call: Callable[[], Any]
    times: list[float] = field(default_factory=list)

    def gflops(self) -> float:
        """GFLOP/s of the best timed round: the kernel's least disturbed speed, so that the floor stays
        a floor under load (a short model call slips between a neighbour's time slices more often
        than a long GEMM does: against the kernels' medians a loaded run read 0.93x)."""
        return self.gflop / float(np.min(self.times))


# a row of this precision is held against the best kernel of any of these precisions: a runtime
# may run part of a bf16 / int8 model in fp32, and the floor must stay below whatever it does
PEAK_PRECISIONS = {"fp32": ("fp32",), "bf16": ("fp32", "bf16"), "int8": ("fp32", "bf16", "int8")}
FLOOR_LIMIT = 0.95  # no row may read below this multiple of its floor


def _gemm_graphs(n: int) -> dict[str, tuple[torch.nn.Module, torch.Tensor, float]]:
    """The GEMM-shaped graphs: (module, input, GFLOP) for the (n, n) x (n, n) product as a 1x1
    convolution and as a MatMul, and a 3x3 convolution (n / 8 channels, 64 x 48: a ResNet stage at
    256x192; Winograd-capable libraries run it faster than its true MACs suggest)."""
    side = 32 if n % 32 == 0 else 1
    c = max(8, n // 8)

    class MatMul(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(n, n) / n**0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.weight

    return {
        "conv1x1": (torch.nn.Conv2d(n, n, 1, bias=False), torch.randn(1, n, side, n // side), 2.0 * n**3 / 1e9),
        "matmul": (MatMul(), torch.randn(n, n), 2.0 * n**3 / 1e9),
        "conv3x3": (
            torch.nn.Conv2d(c, c, 3, padding=1, bias=False),
            torch.randn(1, c, 64, 48),
            2.0 * 9 * c * c * 64 * 48 / 1e9,
        ),
    }


def _onnx(module: torch.nn.Module, x: torch.Tensor) -> bytes:
    import io

    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module.eval(), (x,), buf, dynamo=False, opset_version=17, input_names=["images"])  # type: ignore[arg-type]
    return buf.getvalue()


def _torch_kernels(precisions: list[str], n: int) -> list[PeakKernel]:
    out = []
    for precision in precisions:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(precision)
        for shape, (module, x, gflop) in _gemm_graphs(n).items() if dtype is not None else ():
            m: torch.nn.Module = module.to(dtype).eval()
            xx = x.to(dtype)
            if xx.ndim == 4:
                m, xx = m.to(memory_format=torch.channels_last), xx.contiguous(memory_format=torch.channels_last)
            w = m.weight.detach()  # type: ignore[operator]
            fn = functools.partial(torch.mm, xx, w) if shape == "matmul" else functools.partial(m, xx)
            out.append(
                PeakKernel(
                    f"torch {'mm' if shape == 'matmul' else shape}", precision, gflop, torch.inference_mode()(fn)
                )
            )
        if precision == "int8" and hasattr(torch, "_int_mm"):
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            try:
                torch._int_mm(a, b)
                call = functools.partial(torch._int_mm, a, b)
                out.append(PeakKernel("torch _int_mm", "int8", 2.0 * n**3 / 1e9, call))
            except RuntimeError:  # no CPU kernel in this build
                pass
    return out


def _runtime_kernels(precisions: list[str], n: int, threads: int) -> list[PeakKernel]:
    """ONNX Runtime and OpenVINO running the GEMM graphs (int8: the 1x1 conv quantised to QDQ, the
    path the INT8 rows take), with the runtime settings of the rows."""
    import importlib.util
    import io
    import tempfile

    from fasterpose.runtimes.onnxruntime_runner import OnnxRuntimeRunner
    from fasterpose.runtimes.openvino_runner import OpenVinoRunner

    have_ort, have_ov = (importlib.util.find_spec(m) is not None for m in ("onnxruntime", "openvino"))
    out: list[PeakKernel] = []
    for shape, (module, x, gflop) in _gemm_graphs(n).items():
        data = _onnx(module, x)
        xs = x.numpy()
        for precision in precisions:
            if precision == "int8":
                if shape != "conv1x1":
                    continue
                from fasterpose.deploy.quantize import quantize_int8

                with tempfile.TemporaryDirectory() as tmp:
                    (Path(tmp) / "fp32.onnx").write_bytes(data)
                    q = quantize_int8(Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx", xs, keep_head_fp32=False)
                    model = q.read_bytes()
            else:
                model = data
            if have_ort and precision != "bf16":
                ort_runner = OnnxRuntimeRunner(model, num_threads=threads, precision=precision)
                call = functools.partial(ort_runner.session.run, None, {ort_runner.input_name: xs})
                out.append(PeakKernel(f"onnxruntime {shape}", precision, gflop, call))
            if have_ov:
                import openvino as ov

                ov_model = ov.convert_model(io.BytesIO(model))
                ov_runner = OpenVinoRunner(ov_model, precision=precision, num_threads=threads)
                out.append(
                    PeakKernel(
                        f"openvino {shape}", precision, gflop, functools.partial(ov_runner._get(1).infer, {0: xs})
                    )
                )
    return out


def peak_kernels(n: int, precisions: list[str], threads: int = 1) -> list[PeakKernel]:
    """Every installed runtime's GEMM-shaped kernels at each of ``precisions`` (fp32, bf16, int8),
    each called once (warm-up); time them with the models (:func:`run_benchmark`)."""
    kernels = _torch_kernels(precisions, n) + _runtime_kernels(precisions, n, threads)
    for k in kernels:
        k.call()
    return kernels


def best_peaks(kernels: list[PeakKernel]) -> tuple[dict[str, float], dict[str, str], dict[str, dict[str, float]]]:
    """Per row precision: the best GFLOP/s of the kernels it is held against (:data:`PEAK_PRECISIONS`),
    the kernel that set it (``"openvino conv1x1 bf16"``), and each kernel's GFLOP/s by precision."""
    detail: dict[str, dict[str, float]] = {}
    for k in kernels:
        detail.setdefault(k.precision, {})[k.name] = round(k.gflops(), 1)
    peak: dict[str, float] = {}
    kernel: dict[str, str] = {}
    for precision, allowed in PEAK_PRECISIONS.items():
        if precision not in detail:
            continue
        best = max((k for k in kernels if k.precision in allowed), key=lambda k: k.gflops())
        peak[precision], kernel[precision] = best.gflops(), f"{best.name} {best.precision}"
    return peak, kernel, detail


def floor_violations(rows: list[dict[str, Any]], limit: float = FLOOR_LIMIT) -> list[str]:
    """Rows that read below ``limit`` x their floor: the peak kernels missed something this model uses."""
    return [f"{r['config']} {r['runtime']} b{r['batch']}: {r['ratio']:.3f}x" for r in rows if r["ratio"] < limit]


def make_runner(
    variant: str, model: torch.nn.Module, cfg: Config, onnx_model: Callable[[], bytes], threads: int
) -> Any:
    """A runner for one benchmark variant (see :data:`VARIANTS`), opened by
    :func:`fasterpose.deploy.models.open_model`; ``onnx_model()`` gives the ONNX bytes.

    INT8 variants are calibrated on random crops: right for timing, not for accuracy.
    """
    import tempfile

    from fasterpose.deploy.models import open_model
    from fasterpose.deploy.quantize import quantize_int8

    runtime, precision = VARIANTS[variant]
    if runtime == "torch":
        return open_model(model, "torch", precision, "cpu", cfg, compile=variant == "torch-compile")[0]
    data = onnx_model()
    if precision == "int8":
        w, h = cfg.data.input_size
        calib = np.random.default_rng(0).standard_normal((4, 3, h, w)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "fp32.onnx").write_bytes(data)
            data = quantize_int8(Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx", calib).read_bytes()
    return open_model(data, runtime, precision, "cpu", cfg, num_threads=threads)[0]


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
        from fasterpose.deploy.models import load_model_file

        model, cfg = load_model_file(checkpoint)
        return [(apply_overrides(cfg, list(overrides or [])), model)]
    from fasterpose.models.pose_model import PoseModel

    models: list[tuple[Config, torch.nn.Module]] = []
    for path in configs:
        cfg = apply_overrides(load_config(shipped_path(path)), ["model.pretrained=false", *(overrides or [])])
        torch.manual_seed(0)
        models.append((cfg, PoseModel.from_config(cfg, pretrained=False).eval()))
    return models


def _row(cell: Cell, peak: dict[str, float], kernel: dict[str, str]) -> dict[str, Any]:
    """One cell's timings against its floor: the peak of its precision (:func:`best_peaks`)."""
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
        "ratio_min": round(float(ms.min()) / floor, 3),
        "peak_gflops": round(peak[peak_key], 1),
        "peak_kernel": kernel[peak_key],
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
    bf16 = has_bf16("cpu")
    skipped = [v for v in runtimes if VARIANTS[v][1] == "bf16" and not bf16]
    variants = [v for v in runtimes if v not in skipped]
    precisions = ["fp32", *(["bf16"] if bf16 else [])]
    precisions += ["int8"] if any(VARIANTS[v][1] == "int8" for v in variants) else []
    kernels = peak_kernels(peak_size, precisions, threads)
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
    calls: list[tuple[Callable[[], Any], list[float]]] = [
        *((functools.partial(c.runner, c.images), c.times) for c in cells),
        *((k.call, k.times) for k in kernels),
    ]
    for r in range(runs):  # the peak kernels in the same rotated rounds: load hits models and peak alike
        for i in range(len(calls)):
            call, times = calls[(i + r) % len(calls)]
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return summarise(cells, kernels, prov, threads, runs, checkpoint, skipped)


SKIP_REASON = "no bf16 on this CPU"  # the one reason a variant is not timed (bf16 variants)


def summarise(
    cells: list[Cell],
    kernels: list[PeakKernel],
    prov: dict[str, Any],
    threads: int,
    runs: int,
    checkpoint: str | None = None,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """The report from timed cells and peak kernels (each ``.times`` filled by the same rounds)."""
    peak, kernel, peak_detail = best_peaks(kernels)
    rows = [_row(cell, peak, kernel) for cell in cells]
    return {
        "cpu": cpu_name(),
        "provenance": finish(prov),
        "threads": threads,
        "runs": runs,
        "weights": f"trained ({checkpoint})" if checkpoint else "random",
        "peak_gflops": {k: round(v, 1) for k, v in peak.items()},
        "peak_kernel": kernel,
        "peak_detail": peak_detail,
        # the peak kernels ran in the same interleaved rounds as the rows: the only condition under
        # which a ratio is printed (format_latency_report, scripts/bench_tables.py)
        "peak_conditions": {"interleaved_with_rows": True, "threads": threads, "runs": runs},
        "floor_limit": FLOOR_LIMIT,
        "floor_violations": floor_violations(rows),
        "skipped": skipped or [],
        "skipped_reason": SKIP_REASON if skipped else None,
        "fastest_fp32": fastest_exact(rows),
        "auto": auto_check(rows),
        "rows": rows,
        "comparisons": compare(rows),
    }


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median latency of the first config over each other config, per runtime and batch, beside the
    ratio of their true MACs (what the latency ratio would be if both ran at the same speed per MAC)."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    by_key = {(r["config"], r["runtime"], r["batch"]): r for r in rows}
    out = []
    for other in configs[1:]:
        for (c, rt, bs), r in by_key.items():
            o = by_key.get((other, rt, bs))
            if c == configs[0] and o is not None:
                out.append(
                    {
                        "config": c,
                        "versus": other,
                        "runtime": rt,
                        "batch": bs,
                        "latency_ratio": round(r["ms_median"] / o["ms_median"], 3),
                        "mac_ratio": round(r["gmacs"] / o["gmacs"], 3),
                    }
                )
    return out


def fastest_exact(rows: list[dict[str, Any]]) -> str | None:
    """The fp32 runtime with the lowest sum of measured/floor ratios over every config and batch."""
    totals: dict[str, float] = {}
    for r in rows:
        if r["precision"] == "fp32":
            totals[r["runtime"]] = totals.get(r["runtime"], 0.0) + r["ms_median"] / r["floor_ms"]
    return min(totals, key=lambda k: totals[k]) if totals else None


def auto_check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``runtime="auto"`` runs here at fp32 (by CPU class), and whether these rows agree:
    the decision rule of :mod:`fasterpose.bench.runtime_choice` applied to them (a tie agrees)."""
    from fasterpose.bench.provenance import cpu_class
    from fasterpose.bench.runtime_choice import choose_cpu_runtime
    from fasterpose.deploy.runtimes import auto_cpu_runtime

    out: dict[str, Any] = {"cpu_class": cpu_class(), "auto": auto_cpu_runtime("fp32")}
    try:
        d = choose_cpu_runtime(rows, current=out["auto"])
    except ValueError:
        return {**out, "measured": None, "agrees": None}
    return {**out, "measured": d["fastest"], "lead": d["lead"], "tie": d["tie"], "agrees": d["auto"] == out["auto"]}


def ratios_comparable(report: dict[str, Any]) -> bool:
    """A floor ratio means something only when the peak was timed in the rows' own rounds and threads."""
    cond = report.get("peak_conditions") or {}
    return bool(cond.get("interleaved_with_rows")) and cond.get("threads") == report.get("threads")


def _auto_line(report: dict[str, Any]) -> str:
    a = report.get("auto") or {}
    if not a:
        return "auto: not recorded"
    head = f"auto on this CPU (class {a['cpu_class']}) runs {a['auto']} at fp32"
    if a.get("agrees") is None:
        return head + "; not checked (needs onnxruntime and openvino fp32 rows)"
    lead = f"{a['measured']} fastest by {100 * a['lead']:.1f}%{' (a tie)' if a['tie'] else ''}"
    return head + f"; this run: {lead}: {'agrees' if a['agrees'] else 'DISAGREES'}"


def format_latency_report(report: dict[str, Any]) -> str:
    comparable = ratios_comparable(report)
    kernels = report.get("peak_kernel", {})
    peak = "; ".join(f"{k} {v:.0f} GFLOP/s (set by {kernels.get(k, '?')})" for k, v in report["peak_gflops"].items())
    lines = [
        f"{report['cpu']}, {report['threads']} threads, {report['runs']} runs, {report['weights']} weights; "
        f"peak {peak}",
        f"{'config':34s} {'runtime':17s} {'batch':>5s} {'median':>9s} {'min':>9s} {'max':>9s} "
        f"{'floor':>9s} {'ratio':>6s}",
    ]
    for r in report["rows"]:
        ratio = f"{r['ratio']:6.2f}" if comparable else f"{'-':>6s}"
        lines.append(
            f"{r['config']:34s} {r['runtime']:17s} {r['batch']:5d} {r['ms_median']:9.1f} "
            f"{r['ms_min']:9.1f} {r['ms_max']:9.1f} {r['floor_ms']:9.1f} {ratio}"
        )
    if not comparable:
        lines.append("ratios not printed: the peak was not measured in the same rounds and threads as the rows")
    elif report.get("floor_violations"):
        lines.append(f"FLOOR NOT A FLOOR: below {report['floor_limit']}x: {'; '.join(report['floor_violations'])}")
    for c in report["comparisons"]:
        mac = f" (true-MAC ratio {c['mac_ratio']:.3f})" if "mac_ratio" in c else ""
        lines.append(
            f"{c['config']} / {c['versus']}: {c['runtime']} batch {c['batch']}: {c['latency_ratio']:.3f}x{mac}"
        )
    if report["skipped"]:
        lines.append(f"skipped ({report.get('skipped_reason') or SKIP_REASON}): {', '.join(report['skipped'])}")
    lines.append(f"fastest exact (fp32) runtime, by summed measured/floor: {report['fastest_fp32']}")
    lines.append(_auto_line(report))
    return "\n".join(lines)
