"""``fasterpose study CONFIG_DIR --seeds 3 [--out docs] [key=value ...]``: the multi-seed study.

Generates the study's SynthPose (if absent), trains every (arm, seed) not already finished into
``--work-dir``, then writes ``<out>/results.md``, ``<out>/study_results.json`` and
``<out>/images/study_*.png``. ``--check REFERENCE.json`` compares the (re)run with a committed
results file and exits 1 when an arm's mean AP leaves the reference mean ± its spread.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run the multi-seed study of the paper's claims on SynthPose: generate the study's dataset if it is
missing, train every arm of CONFIG_DIR with each seed (runs already finished are skipped), then
write results.md, study_results.json and the study plots into --out. --check compares the result
with a committed study_results.json and exits 1 when an arm's mean AP leaves its spread."""
EXAMPLES = """\
examples:
  fasterpose study configs/study --seeds 3 --jobs 2
  fasterpose study configs/study --report-only
  fasterpose study configs/study --seeds 3 --check docs/study_results.json --out /tmp/study"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config_dir", help="study folder with study.yaml and one YAML per arm, e.g. configs/study")
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every arm, e.g. train.device=cuda")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (an arm may cap it with max_seeds)")
    parser.add_argument("--out", default="docs", help="folder for results.md, study_results.json and images/")
    parser.add_argument("--work-dir", default="runs/study", help="folder of the run folders (<arm>/seed<k>)")
    parser.add_argument("--dataset-dir", default=None, help="SynthPose folder (default: study.yaml's dataset.dir)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (0: torch's own choice)")
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep last.pth/best.pth of finished runs (deleted otherwise)"
    )
    parser.add_argument("--report-only", action="store_true", help="train nothing; report the finished runs")
    parser.add_argument(
        "--check",
        default=None,
        metavar="REFERENCE_JSON",
        help="compare with a committed study_results.json; exit 1 if an arm is outside its spread (default: no check)",
    )


def run(args: argparse.Namespace) -> int:
    from fasterpose.engine.checkpoint import git_commit
    from fasterpose.study import collect_results, ensure_dataset, load_study, oracle_ap, run_study
    from fasterpose.study_report import compare_results, identical_runs, write_report

    study = load_study(args.config_dir)
    overrides = list(args.overrides)
    dataset_dir = Path(args.dataset_dir or study.dataset.get("dir", "data/synthpose_study"))
    started, load_start = time.monotonic(), _load()
    dataset = ensure_dataset(study.dataset, dataset_dir, workers=max(1, args.jobs))
    counts = {"planned": 0, "skipped": 0, "trained": 0}
    if not args.report_only:
        counts = run_study(
            study,
            args.seeds,
            Path(args.work_dir),
            dataset_dir,
            overrides,
            jobs=args.jobs,
            threads=args.threads,
            keep_checkpoints=args.keep_checkpoints,
        )
    results = collect_results(study, args.seeds, Path(args.work_dir), dataset_dir, overrides)
    results["dataset"] = {**dataset, "dir": str(dataset_dir), "oracle_ap": oracle_ap(study, dataset_dir, overrides)}
    results["invocation"] = {
        "seconds": time.monotonic() - started,
        **counts,
        "jobs": args.jobs,
        "threads": args.threads,
        "load_average": [load_start, _load()],
        "command": _command_line(args),
        "git_commit": git_commit(),
    }
    out = Path(args.out)
    previous = out / "study_results.json"
    if args.report_only and previous.is_file():  # keep the facts of the invocation that trained the runs
        old = json.loads(previous.read_text())
        kept = old.get("invocation", {})
        kept.setdefault("command", _command_line(args))
        kept.setdefault("git_commit", old.get("git_commit"))
        results["invocation"] = {**kept, "report_only": True}
    md = write_report(results, study, out, config_dir=Path(args.config_dir), command=results["invocation"]["command"])
    print(
        f"wrote {md}, {out / 'study_results.json'} and {out / 'images'}/study_*.png "
        f"({counts['trained']} runs trained, {counts['skipped']} already finished)"
    )
    if args.check:
        reference = json.loads(Path(args.check).read_text())
        problems = compare_results(reference, results)
        same, total = identical_runs(reference, results)
        print(f"check against {args.check}: {same}/{total} runs identical epoch by epoch")
        for p in problems:
            print(f"  NOT REPRODUCED {p}")
        if problems:
            return 1
        print("  every arm's mean final AP is within the reference mean ± its spread")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    parts = ["fasterpose study", args.config_dir, f"--seeds {args.seeds}"]
    if args.jobs != 1:
        parts.append(f"--jobs {args.jobs}")
    parts += list(args.overrides)
    return " ".join(parts)


def _load() -> float | None:
    """1-minute load average (other jobs sharing the CPU slow every run down), None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
