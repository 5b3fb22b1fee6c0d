"""One study invocation: datasets, training (unless report-only), results, codec ceiling, report, README block."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from fasterpose.bench.provenance import load_average
from fasterpose.study.collect import collect_results
from fasterpose.study.dataset import DatasetInfo, ensure_dataset
from fasterpose.study.manifest import Study, StudyError
from fasterpose.study.oracle import oracle_ap
from fasterpose.study.report import check_report_target, update_readme, write_report
from fasterpose.study.results import Invocation, StudyResults
from fasterpose.study.runs import run_config, run_study

log = logging.getLogger(__name__)

# the run folders; only their small records (metrics.jsonl, config.yaml, study_run.json) are committed
WORK_DIR = "docs/study_runs"


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line chooses; everything else comes from the manifest."""

    seeds: int = 3
    work_dir: Path = Path(WORK_DIR)
    dataset_dir: Path | None = None
    overrides: tuple[str, ...] = ()
    regimes: tuple[str, ...] = ()
    jobs: int = 1
    threads: int = 1
    keep_checkpoints: bool = False
    report_only: bool = False
    overwrite: bool = False  # replace report files in ``out`` that no study wrote
    out: Path = Path("docs")
    readme: Path | None = None
    command: str = "fasterpose study"


def _previous(path: Path) -> StudyResults | None:
    """The report a ``--report-only`` rewrites (None when absent or of an earlier format)."""
    if not path.is_file():
        return None
    try:
        return StudyResults.load(path)
    except StudyError as exc:  # a results file of an earlier format: nothing to keep
        log.warning("%s", exc)
        return None


def _recorded_datasets(
    study: Study, previous: StudyResults | None, dataset_dir: Path
) -> tuple[DatasetInfo, dict[str, DatasetInfo]]:
    """The study's and the pretrainings' datasets as ``previous`` recorded them (from the manifest when absent)."""
    spec = study.dataset
    dataset = (previous.dataset if previous is not None else None) or DatasetInfo(
        str(dataset_dir), spec.seed, spec.num_train, spec.num_val, dict(spec.knobs)
    )
    pretrain = {}
    for name, r in (previous.regimes if previous is not None else {}).items():
        if r.pretrain_dataset is not None:
            pretrain[name] = r.pretrain_dataset
    return dataset, pretrain


def execute(study: Study, opts: Options, config_dir: Path) -> tuple[StudyResults, Path]:
    """Run (or only report) the study; returns the results and the written ``results.md``."""
    from fasterpose.source import git_commit

    check_report_target(study, opts.out, opts.overwrite)  # before any training, not after hours of it
    dataset_dir = Path(opts.dataset_dir or study.dataset.dir)
    regimes = list(opts.regimes) or None
    started, load_start = time.monotonic(), load_average()
    workers = max(1, opts.jobs)
    previous = _previous(opts.out / "study_results.json") if opts.report_only else None
    if opts.report_only:  # generate nothing: the datasets as the runs' report recorded them
        dataset, pretrain_data = _recorded_datasets(study, previous, dataset_dir)
    else:
        dataset = ensure_dataset(study.dataset, dataset_dir, workers=workers)
        pretrain_data = {
            name: ensure_dataset(r.pretrain.dataset, workers=workers)
            for name, r in study.regimes.items()
            if r.pretrain is not None and name in (regimes or study.regimes)
        }
    counts = {"planned": 0, "skipped": 0, "trained": 0, "failed": 0}
    if not opts.report_only:
        counts = run_study(
            study,
            opts.seeds,
            opts.work_dir,
            dataset_dir,
            opts.overrides,
            jobs=opts.jobs,
            threads=opts.threads,
            keep_checkpoints=opts.keep_checkpoints,
            regimes=regimes,
        )
    results = collect_results(study, opts.seeds, opts.work_dir, dataset_dir, opts.overrides, regimes)
    for name, info in pretrain_data.items():
        if name in results.regimes:
            results.regimes[name].pretrain_dataset = info
    first_regime = next(iter(results.regimes))
    cfg = run_config(study, first_regime, next(iter(study.arms)), 0, opts.work_dir, dataset_dir, opts.overrides)
    if dataset.oracle_ap is None and (dataset_dir / "annotations").is_dir():
        dataset.oracle_ap = oracle_ap(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=None)))
    results.dataset = dataset
    if previous is not None:  # the machine that trained the runs, not the one that rewrote the report
        results.hardware = previous.hardware
    results.invocation = Invocation(
        seconds=time.monotonic() - started,
        **counts,
        jobs=opts.jobs,
        threads=opts.threads,
        load_average=[load_start, load_average()],
        command=opts.command,
        git_commit=git_commit(),
        report_only=opts.report_only,
    )
    old = previous.invocation if previous is not None else None  # keep the facts of the training invocation
    if old is not None and old.planned > 0:  # it trained (or found all done): report-only ones plan nothing
        results.invocation = dataclasses.replace(old, report_only=True)
    md = write_report(results, study, opts.out, config_dir=config_dir, command=opts.command)
    if opts.readme is not None:  # the main study (configs/study) has the unnamed block, any other its folder's name
        key = None if config_dir.name == "study" else config_dir.name
        link = os.path.relpath(md, opts.readme.parent)  # the block links to this study's results.md
        update_readme(opts.readme, results, Path(link).as_posix(), key)
    return results, md
