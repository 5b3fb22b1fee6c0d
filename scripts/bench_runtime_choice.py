"""Decide ``runtime="auto"`` for this CPU's class: ONNX Runtime fp32 vs OpenVINO fp32 (OpenVINO bf16 timed
beside them where the CPU has bf16) on a trained checkpoint, batch 1 and 32, interleaved in one run
(``fasterpose.bench.latency``), with the decision rule of ``fasterpose.bench.runtime_choice``. Writes one
JSON report per CPU class (``fasterpose.bench.provenance.cpu_class``):

    python scripts/bench_runtime_choice.py --checkpoint CKPT --out docs/bench/runtime_choice_CLASS.json

``CLASS`` in ``--out`` is replaced by the class of this CPU (amx, avx512_bf16_vnni, avx512, avx2).
``auto`` follows ``fasterpose.deploy.runtimes.AUTO_BY_CPU_CLASS``; tests/test_runtime_choice.py checks
that table against every committed JSON. bf16 is timed for information only: ``auto`` picks a runtime,
never a precision (bf16 changes the outputs; ``fasterpose export`` reports its parity).

Run it on a quiet machine: a timing taken while other jobs share the CPU ranks the noise.
"""

from __future__ import annotations

import argparse
import sys

from fasterpose.bench.provenance import emit, finish, provenance


def bf16_speedup(rows: list[dict[str, object]]) -> dict[str, float]:
    """Per batch: the fastest fp32 median over the OpenVINO bf16 median (information; auto stays fp32)."""
    out: dict[str, float] = {}
    for b in sorted({int(r["batch"]) for r in rows}):  # type: ignore[call-overload]
        fp32 = [float(r["ms_median"]) for r in rows if r["batch"] == b and r["precision"] == "fp32"]  # type: ignore[arg-type]
        bf16 = [float(r["ms_median"]) for r in rows if r["batch"] == b and r["precision"] == "bf16"]  # type: ignore[arg-type]
        if fp32 and bf16:
            out[str(b)] = round(min(fp32) / min(bf16), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a trained checkpoint (e.g. the quickstart's last.pth)")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--runs", type=int, default=30, help="interleaved timed rounds (30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="CPU threads for both runtimes (default: all cores)")
    parser.add_argument("--tolerance", type=float, default=0.03, help="a lead below this is a tie (0.03)")
    parser.add_argument("--peak-size", type=int, default=2048)
    parser.add_argument(
        "--runtimes",
        default="onnxruntime,openvino,openvino-bf16",
        help="timed runtimes (bf16 ones are skipped on a CPU without bf16)",
    )
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)

    from fasterpose.bench.latency import run_benchmark
    from fasterpose.bench.provenance import cpu_class
    from fasterpose.bench.runtime_choice import choose_cpu_runtime
    from fasterpose.deploy.runtimes import AUTO_BY_CPU_CLASS, DEFAULT_CPU_RUNTIME

    prov = provenance()
    report = run_benchmark(
        configs=[],
        runtimes=[v.strip() for v in args.runtimes.split(",") if v.strip()],
        batches=[int(b) for b in args.batches.split(",")],
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        peak_size=args.peak_size,
        checkpoint=args.checkpoint,
    )
    report["cpu_class"] = cls = cpu_class()
    report["decision"] = choose_cpu_runtime(report["rows"], DEFAULT_CPU_RUNTIME, args.tolerance)
    report["decision"]["auto_here_now"] = AUTO_BY_CPU_CLASS.get(cls, DEFAULT_CPU_RUNTIME)
    report["bf16_speedup"] = bf16_speedup(report["rows"])
    import onnxruntime
    import openvino

    report["versions"] = {"onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__}
    report["provenance"] = finish(prov)
    emit(report, args.out.replace("CLASS", cls) if args.out else None)
    d = report["decision"]
    print(
        f"fastest fp32 runtime: {d['fastest']} (lead {100 * d['lead']:.1f}%{', a tie' if d['tie'] else ''}); "
        f"auto should be {d['auto']} on class {cls} (now {d['auto_here_now']})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
