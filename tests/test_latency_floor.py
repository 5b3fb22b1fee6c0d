"""The latency floor on a stub timing table: the peak is the best kernel of every runtime, timed in the
rows' rounds, no row may read below 0.95x its floor, and a ratio from a peak measured apart is not printed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fasterpose.bench.latency import Cell, PeakKernel, format_latency_report, summarise

PROV: dict[str, Any] = {}


def cell(config: str, variant: str, ms: float, gmacs: float = 5.0) -> Cell:
    return Cell(config, variant, 1, None, np.zeros(1), gmacs, [ms / 1e3 * f for f in (0.98, 1.0, 1.05)])


def kernel(name: str, precision: str, gflops: float) -> PeakKernel:
    """A kernel of 10 GFLOP whose best round runs at ``gflops`` (a loaded round 1.3x slower)."""
    return PeakKernel(name, precision, 10.0, lambda: None, [10.0 / gflops * f for f in (1.3, 1.0, 1.02)])


def stub_report(kernels: list[PeakKernel], cells: list[Cell] | None = None) -> dict[str, Any]:
    cells = cells or [cell("fp", "openvino", 80.0), cell("fp", "onnxruntime", 100.0), cell("fp", "openvino-bf16", 40.0)]
    return summarise(cells, kernels, dict(PROV), threads=2, runs=3)


def test_peak_is_the_best_runtime_kernel_and_is_named() -> None:
    # 5 GMACs in 80 ms = 125 GFLOP/s: faster than torch's own GEMM, as OpenVINO fp32 FP-R50 was
    torch_only = [kernel("torch mm", "fp32", 110.0), kernel("torch conv1x1", "fp32", 100.0)]
    report = stub_report(torch_only)
    assert report["peak_kernel"]["fp32"] == "torch mm fp32"
    assert report["floor_violations"] == ["fp openvino b1: 0.880x", "fp openvino-bf16 b1: 0.440x"]
    assert "FLOOR NOT A FLOOR" in format_latency_report(report)
    runtimes = [
        *torch_only,
        kernel("openvino conv3x3", "fp32", 150.0),
        kernel("onnxruntime matmul", "fp32", 120.0),
        kernel("openvino conv1x1", "bf16", 300.0),
    ]
    report = stub_report(runtimes)
    assert report["peak_gflops"] == {"fp32": 150.0, "bf16": 300.0}
    assert report["peak_kernel"] == {"fp32": "openvino conv3x3 fp32", "bf16": "openvino conv1x1 bf16"}
    rows = {r["runtime"]: r for r in report["rows"]}
    assert rows["openvino"]["floor_ms"] == pytest.approx(2 * 5.0 / 150.0 * 1e3, abs=0.01)
    assert rows["openvino-bf16"]["peak_kernel"] == "openvino conv1x1 bf16"
    assert report["floor_violations"] == [] and min(r["ratio"] for r in report["rows"]) >= 0.95
    assert "FLOOR NOT A FLOOR" not in format_latency_report(report)
    assert "set by openvino conv3x3 fp32" in format_latency_report(report)


def test_bf16_rows_are_held_against_fp32_kernels_too() -> None:
    """A bf16 row may run partly in fp32: its peak is the best of both, so it cannot beat its floor."""
    report = stub_report([kernel("openvino conv1x1", "fp32", 150.0), kernel("torch mm", "bf16", 90.0)])
    assert report["peak_gflops"]["bf16"] == 150.0 and report["peak_kernel"]["bf16"] == "openvino conv1x1 fp32"


def test_ratio_not_printed_for_a_peak_measured_apart() -> None:
    report = stub_report([kernel("openvino conv1x1", "fp32", 150.0), kernel("openvino conv1x1", "bf16", 300.0)])
    assert "ratios not printed" not in format_latency_report(report)
    for stale in ({"peak_conditions": None}, {"threads": 1}):  # an old JSON; a peak at other threads
        text = format_latency_report({**report, **stale})
        assert "ratios not printed" in text
        line = next(x for x in text.splitlines() if x.startswith("fp ") and " openvino " in x)
        assert line.split()[-1] == "-" and f"{report['rows'][0]['ratio']:.2f}" not in line


def test_a_variant_not_timed_is_listed_with_its_reason() -> None:
    cells = [cell("fp", "onnxruntime", 100.0)]
    report = summarise(cells, [kernel("torch mm", "fp32", 150.0)], dict(PROV), 2, 3, skipped=["openvino-bf16"])
    assert report["skipped"] == ["openvino-bf16"] and report["skipped_reason"] == "no bf16 on this CPU"
    assert "skipped (no bf16 on this CPU): openvino-bf16" in format_latency_report(report)
    assert summarise(cells, [kernel("torch mm", "fp32", 150.0)], dict(PROV), 2, 3)["skipped_reason"] is None
