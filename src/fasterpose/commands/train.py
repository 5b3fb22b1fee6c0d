"""``fasterpose train CONFIG [key=value ...] [--resume [PATH]]``.

Trains into ``train.out_dir`` (see :mod:`fasterpose.engine.train`). ``--resume`` without a path
continues from ``<train.out_dir>/last.pth``. Under ``torchrun --nproc_per_node N -m fasterpose
train CONFIG`` every process runs this command and joins one DDP job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from fasterpose.config import load_config

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML, e.g. configs/quickstart.yaml")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=5e-4 data.root=/data/coco")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="continue from a checkpoint (default PATH: <train.out_dir>/last.pth)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, list(args.overrides))
    resume: Path | None = None
    if args.resume is not None:
        resume = Path(args.resume) if args.resume else Path(cfg.train.out_dir) / "last.pth"
        if not resume.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {resume}")
    from fasterpose.engine.train import train  # torch: only when training

    result = train(cfg, resume=resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    best = f"{result.best_metric:.4f} at epoch {result.best_epoch}" if result.best_metric is not None else "n/a"
    print(
        f"{result.status}: {result.epoch} epochs ({result.global_step} steps) in {result.wall_seconds:.0f} s; "
        f"best {best}; run folder {result.out_dir}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "status": result.status,
                    "epoch": result.epoch,
                    "iteration": result.iteration,
                    "global_step": result.global_step,
                    "best_metric": result.best_metric,
                    "best_epoch": result.best_epoch,
                    "metrics": result.last_metrics,
                    "seconds": result.wall_seconds,
                    "out_dir": str(result.out_dir),
                }
            )
        )
    return 130 if result.status == "interrupted" else 0
