"""Decide ``runtime="auto"``: ONNX Runtime fp32 vs OpenVINO fp32 on a trained checkpoint, batch 1 and 32,
interleaved in one run (``fasterpose.bench.latency``), with the decision rule of
``fasterpose.bench.runtime_choice``. Writes one JSON report.

    python scripts/bench_runtime_choice.py --checkpoint runs/quickstart/last.pth --out docs/bench/runtime_choice.json

Run it on a quiet machine: a timing taken while other jobs share the CPU ranks the noise.
"""

from __future__ import annotations

import argparse
import sys

from fasterpose.bench.provenance import emit, finish, provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a trained checkpoint (e.g. the quickstart's last.pth)")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--runs", type=int, default=30, help="interleaved timed rounds (30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="CPU threads for both runtimes (default: all cores)")
    parser.add_argument("--tolerance", type=float, default=0.03, help="a lead below this is a tie (0.03)")
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)

    from fasterpose.bench.latency import run_benchmark
    from fasterpose.bench.runtime_choice import choose_cpu_runtime
    from fasterpose.deploy.runtimes import DEFAULT_CPU_RUNTIME

    prov = provenance()
    report = run_benchmark(
        configs=[],
        runtimes=["onnxruntime", "openvino"],
        batches=[int(b) for b in args.batches.split(",")],
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        peak_size=args.peak_size,
        checkpoint=args.checkpoint,
    )
    report["decision"] = choose_cpu_runtime(report["rows"], DEFAULT_CPU_RUNTIME, args.tolerance)
    import onnxruntime
    import openvino

    report["versions"] = {"onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__}
    report["provenance"] = finish(prov)
    emit(report, args.out)
    d = report["decision"]
    print(
        f"fastest fp32 runtime: {d['fastest']} (lead {100 * d['lead']:.1f}%{', a tie' if d['tie'] else ''}); "
        f"auto should be {d['auto']} (now {DEFAULT_CPU_RUNTIME})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
