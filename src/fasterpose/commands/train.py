"""``fasterpose train CONFIG [key=value ...] [--resume [PATH] | --overwrite]``.

Trains into ``train.out_dir`` (see :mod:`fasterpose.engine.train`). A folder that already holds a
run is refused unless ``--resume`` (without a path: ``<train.out_dir>/last.pth``) continues it or
``--overwrite`` replaces it. Under ``torchrun --nproc_per_node N -m fasterpose
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

DESCRIPTION = """\
Train a pose model from a YAML config. The run folder (train.out_dir) receives config.yaml,
metrics.jsonl, training_curve.png, last.pth (latest epoch), best.pth (best validation score) and
the latest evaluation's results/metrics files. A folder that already holds a run is refused unless
you continue it (--resume) or replace it (--overwrite); two runs cannot share one folder.
Ctrl-C stops after the current step and saves last.pth; --resume continues exactly from there.
Any config value can be changed on the command line as key=value."""
EXAMPLES = """\
examples:
  fasterpose train configs/quickstart.yaml
  fasterpose train configs/fasterpose_r50_256x192.yaml data.root=/data/coco train.out_dir=runs/r50
  fasterpose train configs/quickstart.yaml --resume                  # continue <train.out_dir>/last.pth
  fasterpose train configs/quickstart.yaml train.epochs=2 --overwrite # replace the earlier run
  torchrun --nproc_per_node 2 -m fasterpose train configs/fasterpose_r50_256x192.yaml  # 2 GPUs (DDP)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML, e.g. configs/quickstart.yaml")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=5e-4 data.root=/data/coco")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="continue a stopped run from a checkpoint (PATH defaults to <train.out_dir>/last.pth)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a run already in train.out_dir (refused without this flag)"
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")


def run(args: argparse.Namespace) -> int:
    from fasterpose.engine.train import train
    from fasterpose.experiment import resolve

    cfg = load_config(args.config, list(args.overrides))
    resume: Path | None = None
    if args.resume is not None:
        resume = Path(args.resume) if args.resume else Path(cfg.train.out_dir) / "last.pth"
        if not resume.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {resume}")
        if args.overwrite:
            raise ValueError("--resume continues the run in train.out_dir and --overwrite replaces it: pass one")
    result = train(resolve(cfg), resume=resume, progress=not args.no_progress, overwrite=args.overwrite)
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
