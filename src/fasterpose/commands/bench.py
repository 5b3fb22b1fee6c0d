"""``fasterpose bench params|latency``: argument parsing and printing; the measuring is in ``fasterpose.bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_CONFIGS = ("configs/fasterpose_r50_256x192.yaml", "configs/simplebaseline_r50_256x192.yaml")
DEFAULT_VARIANTS = "torch,torch-compile,onnxruntime,openvino,openvino-bf16"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    p = sub.add_parser("params", help="params, paper GFLOPs and true GMACs of every config")
    p.add_argument("--configs", type=Path, default=None, help="folder of YAML configs (default: configs/)")
    p.add_argument("--pattern", default="*.yaml", help="glob inside the folder")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    p.set_defaults(_bench_run=run_params)
    lat = sub.add_parser("latency", help="CPU latency of FasterPose vs SimpleBaseline across runtimes")
    lat.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), help="config YAMLs to compare")
    lat.add_argument("--checkpoint", help="time this trained checkpoint instead of random-weight configs")
    lat.add_argument("--runtimes", default=DEFAULT_VARIANTS, help="comma list (see fasterpose.bench.latency)")
    lat.add_argument("--batches", default="1,32", help="comma list of batch sizes (1,32)")
    lat.add_argument("--runs", type=int, default=20, help="timed interleaved rounds after warm-up (20)")
    lat.add_argument("--warmup", type=int, default=3, help="untimed calls per cell first (3)")
    lat.add_argument("--threads", type=int, help="CPU threads for every runtime (default: torch's, all cores)")
    lat.add_argument("--peak-size", type=int, default=2048, help="square matmul size for the peaks (2048)")
    lat.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every model")
    lat.add_argument("--json", action="store_true", help="print the report as JSON (else a table)")
    lat.add_argument("--out", help="also write the JSON report to this file")
    lat.set_defaults(_bench_run=run_latency)


def run_params(args: argparse.Namespace) -> int:
    from fasterpose.bench.params import bench_params, format_params_table
    from fasterpose.config import shipped_path

    folder = args.configs or shipped_path("configs")
    if not folder.is_dir():
        raise FileNotFoundError(f"config folder not found: {folder}")
    rows = bench_params(folder, args.pattern)
    print(json.dumps(rows) if args.json else format_params_table(rows))
    return 0


def run_latency(args: argparse.Namespace) -> int:
    import torch

    from fasterpose.bench.latency import format_latency_report, run_benchmark

    saved = torch.get_num_threads()
    try:
        report = run_benchmark(
            configs=list(args.configs),
            runtimes=[v.strip() for v in args.runtimes.split(",") if v.strip()],
            batches=[int(b) for b in args.batches.split(",")],
            runs=args.runs,
            warmup=args.warmup,
            threads=args.threads,
            peak_size=args.peak_size,
            overrides=list(args.set),
            checkpoint=args.checkpoint,
        )
    finally:
        torch.set_num_threads(saved)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text if args.json else format_latency_report(report))
    return 0


def run(args: argparse.Namespace) -> int:
    return int(args._bench_run(args) or 0)
