"""``fasterpose study CONFIG_DIR --seeds 3 [--out docs] [key=value ...]``: the multi-seed study.

Generates the study's SynthPose copies (if absent), trains every (regime, arm, seed) not already
finished into ``--work-dir`` (pretraining first where a regime asks for it), then writes
``<out>/results.md``, ``<out>/study_results.json`` and ``<out>/images/study_*.png``; ``--readme``
also rewrites the README's study-summary block. ``--report-only`` trains nothing and reports the
finished runs (partial studies included). ``--check REFERENCE.json`` compares the (re)run with a
committed results file and exits 1 when an arm's mean AP leaves the reference mean ± its spread.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fasterpose.commands.argtypes import count

WORK_DIR = "docs/study_runs"  # = fasterpose.study.driver.WORK_DIR (not imported here: help stays fast)

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
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every run, e.g. train.device=cuda")
    parser.add_argument("--seeds", type=count(), default=3, help="seeds per arm (arms may cap it with max_seeds)")
    parser.add_argument("--out", default="docs", help="where results.md, study_results.json and images/ go")
    parser.add_argument(
        "--work-dir", default=WORK_DIR, help=f"run folders <regime>/<arm>/seed<k> (default {WORK_DIR}, committed)"
    )
    parser.add_argument("--dataset-dir", default=None, help="SynthPose folder (default: the manifest's dataset.dir)")
    parser.add_argument("--regimes", nargs="+", default=None, help="only these regimes (default: all)")
    parser.add_argument("--jobs", type=count(), default=1, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=count(0), default=1, help="torch threads per run (0: torch's default)")
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep last.pth/best.pth of finished runs (deleted otherwise)"
    )
    parser.add_argument("--report-only", action="store_true", help="train nothing; report the finished runs")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in --out that no study report wrote (default: refuse before any training)",
    )
    parser.add_argument(
        "--readme", default=None, help="also rewrite the study-summary block of this README (default: none)"
    )
    parser.add_argument(
        "--check",
        default=None,
        metavar="REFERENCE_JSON",
        help="compare with a committed study_results.json; exit 1 if an arm is outside its spread (default: no check)",
    )


def run(args: argparse.Namespace) -> int:
    from fasterpose.study import Options, StudyResults, compare_results, execute, identical_runs, load_study

    study = load_study(args.config_dir)
    opts = Options(
        seeds=args.seeds,
        work_dir=Path(args.work_dir),
        dataset_dir=Path(args.dataset_dir) if args.dataset_dir else None,
        overrides=tuple(args.overrides),
        regimes=tuple(args.regimes or ()),
        jobs=args.jobs,
        threads=args.threads,
        keep_checkpoints=args.keep_checkpoints,
        report_only=args.report_only,
        overwrite=args.overwrite,
        out=Path(args.out),
        readme=Path(args.readme) if args.readme else None,
        command=_command_line(args),
    )
    results, md = execute(study, opts, Path(args.config_dir))
    inv = results.invocation
    trained = 0 if inv is None or args.report_only else inv.trained
    print(
        f"wrote {md}, {opts.out / 'study_results.json'} and {opts.out / 'images'}/study_*.png "
        f"({trained} runs trained this time)"
    )
    if inv is not None and inv.failed and not args.report_only:
        print(f"  {inv.failed} run(s) FAILED (see the log); their arms are reported with fewer seeds")
    if args.check:
        reference = StudyResults.load(Path(args.check))
        problems = compare_results(reference, results)
        same, total = identical_runs(reference, results)
        print(f"check against {args.check}: {same}/{total} runs identical epoch by epoch")
        for p in problems:
            print(f"  NOT REPRODUCED {p}")
        if problems:
            return 1
        print("  every arm's mean final AP is within the reference mean ± its spread")
    return 1 if inv is not None and inv.failed and not args.report_only else 0  # a failed run is a failure


def _command_line(args: argparse.Namespace) -> str:
    parts = ["fasterpose study", args.config_dir, f"--seeds {args.seeds}"]
    if args.jobs != 1:
        parts.append(f"--jobs {args.jobs}")
    if args.regimes:
        parts.append("--regimes " + " ".join(args.regimes))
    if args.work_dir != WORK_DIR:
        parts.append(f"--work-dir {args.work_dir}")
    parts += list(args.overrides)
    return " ".join(parts)
