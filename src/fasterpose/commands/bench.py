"""``fasterpose bench params|latency``: argument parsing and printing; the measuring is in ``fasterpose.bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fasterpose.commands.argtypes import count

DEFAULT_CONFIGS = ("configs/fasterpose_r50_256x192.yaml", "configs/simplebaseline_r50_256x192.yaml")
DEFAULT_VARIANTS = "torch,torch-compile,onnxruntime,openvino,openvino-bf16"


DESCRIPTION = """\
Measure models: `params` counts parameters, the paper's GFLOPs and the true multiply-accumulates of
every config; `latency` times FasterPose against SimpleBaseline on this CPU in several runtimes
(torch, torch.compile, ONNX Runtime, OpenVINO), interleaved so a busy machine slows all alike."""
EXAMPLES = """\
examples:
  fasterpose bench params
  fasterpose bench latency --runtimes torch,onnxruntime --batches 1 --json --out latency.json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    sub.required = True
    p = sub.add_parser(
        "params",
        help="params, paper GFLOPs and true GMACs of every config",
        description="Count parameters, the paper's GFLOPs and the true GMACs (multiply-accumulates) of every "
        "config in a folder, with random weights (nothing is trained or downloaded).",
        epilog="example:\n  fasterpose bench params --pattern 'fasterpose_*.yaml' --json",
    )
    p.add_argument("--configs", type=Path, default=None, help="folder of YAML configs (default: the shipped configs/)")
    p.add_argument("--pattern", default="*.yaml", help="which files of the folder (a glob)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    p.set_defaults(_bench_run=run_params)
    lat = sub.add_parser(
        "latency",
        help="CPU latency of FasterPose vs SimpleBaseline across runtimes",
        description="Time the forward pass of each config (or a trained checkpoint) on this CPU in each runtime "
        "and batch size, in interleaved rounds after a warm-up, and report medians with the CPU's matmul peak. "
        "Timings are only comparable on an otherwise idle machine.",
        epilog="example:\n  fasterpose bench latency --runtimes torch,onnxruntime --batches 1,32 --out lat.json",
    )
    lat.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), help="config YAMLs to compare")
    lat.add_argument("--checkpoint", help="time this trained checkpoint instead (default: random-weight configs)")
    lat.add_argument(
        "--runtimes",
        default=DEFAULT_VARIANTS,
        help="comma-separated runtimes: torch, torch-compile, onnxruntime, openvino, openvino-bf16",
    )
    lat.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
    lat.add_argument("--runs", type=count(), default=20, help="timed interleaved rounds after the warm-up")
    lat.add_argument("--warmup", type=count(0), default=3, help="untimed calls per model, runtime and batch first")
    lat.add_argument("--threads", type=count(), help="CPU threads for every runtime (default: torch's, all cores)")
    lat.add_argument("--peak-size", type=count(), default=2048, help="square matrix size for the matmul peak")
    lat.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="config changes for every model (default: none)"
    )
    lat.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    lat.add_argument("--out", help="also write the JSON report to this file (default: not written)")
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

    from fasterpose.atomic import atomic_write_text, model_input_files, refuse_inputs
    from fasterpose.bench.latency import format_latency_report, run_benchmark

    if args.out:  # before any timing
        refuse_inputs(
            [Path(args.out)],
            {"config": [Path(c) for c in args.configs], "checkpoint": model_input_files(args.checkpoint)},
        )
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
        atomic_write_text(Path(args.out), text + "\n", what="report")
    print(text if args.json else format_latency_report(report))
    return 0


def run(args: argparse.Namespace) -> int:
    return int(args._bench_run(args) or 0)
