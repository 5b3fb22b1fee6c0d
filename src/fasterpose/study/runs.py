"""Plan and train the study's runs: every (regime, arm, seed), plus one pretraining per seed where a regime asks.

Run folders: ``work_dir/<regime>/<arm>/seed<k>``; pretraining: ``work_dir/<regime>/_pretrain/seed<k>``,
which keeps ``backbone.pth`` (the backbone's state dict alone, loaded by the fine-tuning runs through
``model.weights``, so their head starts fresh). A run that already finished with the same config is
skipped, so a stopped study resumes; an interrupted run continues from its ``last.pth``. Each trained
run also records its process CPU time in ``study_run.json`` (comparable across machine load, unlike wall
time) and whether it was resumed: a resumed run's CPU and wall time cover only its last piece, since the
interrupted process could not record its own.

A finished pretraining whose ``backbone.pth`` is gone (a fresh clone holds only the records) is trained
again only when a fine-tuning that starts from it is still to run. One invocation trains into a work dir
at a time (a ``.lock`` in it); pool workers stop their run, resumably, if the study process is killed.

Runs are deterministic per seed: ``train.seed = k`` fixes the initial weights, the sample order
and every augmentation draw (see :mod:`fasterpose.engine.train`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from fasterpose.atomic import atomic_write
from fasterpose.config import Config, load_config
from fasterpose.engine.run_folder import RunFolder, RunFolderError
from fasterpose.study.manifest import Study, StudyError

log = logging.getLogger(__name__)

TrainFn = Callable[[Config, int], None]
PRETRAIN_DIR = "_pretrain"
BACKBONE_FILE = "backbone.pth"
RUN_RECORD = "study_run.json"


@dataclass(frozen=True)
class PlannedRun:
    """One training of the plan. ``arm`` is None for a pretraining; ``needs`` is the backbone file it starts from."""

    regime: str
    arm: str | None
    seed: int
    cfg: Config
    needs: Path | None = None

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.train.out_dir)

    @property
    def name(self) -> str:
        return f"{self.regime}/{self.arm or PRETRAIN_DIR}/seed{self.seed}"


def pretrain_dir(work_dir: Path, regime: str, seed: int) -> Path:
    return Path(work_dir) / regime / PRETRAIN_DIR / f"seed{seed}"


def backbone_file(work_dir: Path, regime: str, seed: int) -> Path:
    return pretrain_dir(work_dir, regime, seed) / BACKBONE_FILE


def run_config(
    study: Study,
    regime: str,
    arm: str,
    seed: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """The exact config of one run: arm YAML + regime overrides + dataset root, seed, out_dir (+ the
    pretrained backbone) + ``overrides``."""
    reg = study.regimes[regime]
    fixed = [
        f"data.root={dataset_dir}",
        f"train.seed={seed}",
        f"train.out_dir={Path(work_dir) / regime / arm / f'seed{seed}'}",
    ]
    if reg.pretrain is not None:
        fixed.append(f"model.weights={backbone_file(work_dir, regime, seed)}")
    return load_config(study.arms[arm].config_path, [*reg.overrides, *fixed, *overrides])


def pretrain_config(
    study: Study, regime: str, seed: int, work_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """The config of one pretraining run (the regime's pretrain YAML on its own SynthPose)."""
    pre = study.regimes[regime].pretrain
    if pre is None:
        raise StudyError(f"regime {regime!r} has no pretraining")
    fixed = [
        f"data.root={pre.dataset.dir}",
        f"train.seed={seed}",
        f"train.out_dir={pretrain_dir(work_dir, regime, seed)}",
    ]
    return load_config(pre.config_path, [*fixed, *overrides])


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` (a torn last line from a killed run is ignored)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def same_config(saved: Path, cfg: Config) -> bool:
    """Whether the run config saved at ``saved`` is ``cfg``. Fields added to the config classes after the
    run was made count as their defaults (so new options do not invalidate finished runs); a saved key
    that no longer exists makes it a different config."""
    from fasterpose.config import ConfigError, config_from_dict

    if not saved.is_file():
        return False
    try:
        return config_from_dict(yaml.safe_load(saved.read_text()) or {}) == cfg
    except (ConfigError, TypeError, yaml.YAMLError):
        return False


def run_finished(cfg: Config) -> bool:
    """Whether ``cfg``'s run folder holds a finished run of exactly this config."""
    out = Path(cfg.train.out_dir)
    metrics, saved = out / "metrics.jsonl", out / "config.yaml"
    if not metrics.is_file() or not same_config(saved, cfg):
        return False
    ends = [r for r in read_metrics(metrics) if r.get("kind") == "end"]
    return bool(ends) and ends[-1].get("status") == "finished" and int(ends[-1]["epoch"]) >= cfg.train.epochs


def resume_checkpoint(cfg: Config) -> Path | None:
    """The ``last.pth`` an interrupted run of exactly ``cfg`` continues from, or None (a fresh start)."""
    out = Path(cfg.train.out_dir)
    last = out / "last.pth"
    return last if last.is_file() and same_config(out / "config.yaml", cfg) else None


def save_backbone(model: Any, path: Path) -> None:
    """Write the backbone's weights alone, in the layout ``model.weights`` loads (atomic)."""
    import torch

    body = getattr(model.backbone, "body", model.backbone)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in body.state_dict().items()}
    atomic_write(path, lambda fh: torch.save(state, fh), "pretrained backbone")


def export_backbone(checkpoint: Path, path: Path) -> None:
    """The backbone of a training checkpoint (``last.pth``) as a weights-only file for ``model.weights``."""
    from fasterpose.engine.checkpoint import load_model_from_checkpoint

    if not checkpoint.is_file():
        raise StudyError(f"{checkpoint}: no checkpoint to export the pretrained backbone from")
    save_backbone(load_model_from_checkpoint(checkpoint)[0], path)


def train_runner(cfg: Config, threads: int) -> None:
    """Default runner: the training engine, in this process, with ``threads`` torch threads."""
    import torch

    from fasterpose.engine.train import train

    if threads > 0:
        torch.set_num_threads(threads)
    out = Path(cfg.train.out_dir)
    resume = resume_checkpoint(cfg)
    # not resumable: a stale or foreign run's files go (the engine's lock first keeps a live run safe),
    # so that metrics.jsonl holds one run
    result = train(cfg, resume=resume, progress=False, overwrite=resume is None)
    if result.status != "finished":
        raise RuntimeError(f"run {out} stopped early ({result.status}) at epoch {result.epoch}")


def _stop_with_parent(parent: int) -> None:
    """Pool-worker initializer: when the study process is gone (killed, so it could not stop its workers),
    stop the run as SIGTERM does (after the current iteration, ``last.pth`` saved, so it resumes) instead of
    training on unseen, then exit."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(120.0)  # time for the run to save its checkpoint; then leave for good
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def _run_one(runner: TrainFn, run: PlannedRun, threads: int, keep_checkpoints: bool) -> float:
    resumed = resume_checkpoint(run.cfg) is not None
    start, cpu = time.monotonic(), time.process_time()
    runner(run.cfg, threads)
    if run.arm is None:
        export_backbone(run.out_dir / "last.pth", run.out_dir / BACKBONE_FILE)
    record = {
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.monotonic() - start,
        "threads": threads,
        "resumed": resumed,  # True: the times above cover only the last piece of the run
    }
    (run.out_dir / RUN_RECORD).write_text(json.dumps(record) + "\n")
    if not keep_checkpoints:
        for p in run.out_dir.glob("*.pth"):
            if p.name != BACKBONE_FILE:
                p.unlink()
    return record["wall_seconds"]


def plan_runs(
    study: Study,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
    regimes: list[str] | None = None,
) -> list[PlannedRun]:
    """Every run of the study, seed-major (all arms of seed 0 first, a seed's pretrainings before its arms),
    arms capped by ``max_seeds`` last, so that a study stopped early has the main arms on the most seeds."""
    names = regimes or list(study.regimes)
    unknown = [r for r in names if r not in study.regimes]
    if unknown:
        raise StudyError(f"{study.root}: unknown regime(s) {unknown}; valid: {', '.join(study.regimes)}")
    plan: list[PlannedRun] = []
    pretrained: set[tuple[str, int]] = set()
    for capped in (False, True):
        for seed in range(seeds):
            block = {
                regime: [
                    a
                    for a in study.arms
                    if bool(study.arms[a].max_seeds) == capped and seed in study.seeds_for(a, seeds)
                ]
                for regime in names
            }
            for regime, arms in block.items():  # a seed's pretrainings first: its fine-tunings wait on them
                if study.regimes[regime].pretrain is not None and arms and (regime, seed) not in pretrained:
                    pretrained.add((regime, seed))
                    plan.append(
                        PlannedRun(regime, None, seed, pretrain_config(study, regime, seed, work_dir, overrides))
                    )
            for regime, arms in block.items():
                needs = backbone_file(work_dir, regime, seed) if study.regimes[regime].pretrain is not None else None
                for arm in arms:
                    cfg = run_config(study, regime, arm, seed, work_dir, dataset_dir, overrides)
                    plan.append(PlannedRun(regime, arm, seed, cfg, needs))
    return plan


@contextmanager
def _study_lock(work_dir: Path) -> Iterator[None]:
    """``work_dir`` held by this study invocation: a second one training into it at once could restart a run
    the first is training (a lock left by a dead process is taken over)."""
    stack = ExitStack()
    try:
        stack.enter_context(
            RunFolder.claim(work_dir, resume=True, what="study invocation", elsewhere="give another --work-dir")
        )
    except RunFolderError as exc:
        raise StudyError(str(exc)) from exc
    with stack:
        yield


def run_study(
    study: Study,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
    runner: TrainFn = train_runner,
    jobs: int = 1,
    threads: int = 1,
    keep_checkpoints: bool = False,
    regimes: list[str] | None = None,
) -> dict[str, int]:
    """Train every unfinished run of the plan; returns counts {"planned", "skipped", "trained", "failed"}.

    ``jobs > 1`` trains that many runs at once in spawned processes (``runner`` must then be a
    module-level function), always starting the first ready run of the plan; a fine-tuning run is
    ready once its pretrained backbone exists. Each run uses ``threads`` torch threads. A failed run
    is logged and the others go on; the counts report it.
    """
    with _study_lock(Path(work_dir)):
        return _train_plan(
            study, seeds, work_dir, dataset_dir, overrides, runner, jobs, threads, keep_checkpoints, regimes
        )


def _train_plan(
    study: Study,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...],
    runner: TrainFn,
    jobs: int,
    threads: int,
    keep_checkpoints: bool,
    regimes: list[str] | None,
) -> dict[str, int]:
    plan = plan_runs(study, seeds, work_dir, dataset_dir, overrides, regimes)
    complete = [run_finished(r.cfg) for r in plan]
    # A finished pretraining whose backbone.pth is gone (only its records are committed) trains again only
    # when a fine-tuning that starts from it is still to run; otherwise its records stand as they are.
    wanted = {r.needs for r, f in zip(plan, complete, strict=True) if not f and r.needs and not r.needs.is_file()}
    again = [r for r, f in zip(plan, complete, strict=True) if f and r.out_dir / BACKBONE_FILE in wanted]
    for run in again:
        log.warning("%s: finished, but its %s is gone; training it again", run.name, BACKBONE_FILE)
    todo = [r for r, f in zip(plan, complete, strict=True) if not f or r in again]
    log.info("study %s: %d runs planned, %d already finished", study.title, len(plan), len(plan) - len(todo))
    failed: list[str] = []
    done = 0

    def finish(run: PlannedRun, secs: float | None, error: BaseException | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            failed.append(run.name)
            log.error("[%d/%d] %s FAILED: %s", done, len(todo), run.name, error)
        else:
            log.info("[%d/%d] %s done in %.0f s", done, len(todo), run.name, secs)

    def ready(run: PlannedRun) -> bool:
        return run.needs is None or run.needs.is_file()

    if jobs <= 1:
        for run in todo:
            if not ready(run):
                finish(run, None, StudyError(f"its pretrained backbone {run.needs} is missing"))
                continue
            log.info("training %s", run.name)
            try:
                finish(run, _run_one(runner, run, threads, keep_checkpoints), None)
            except Exception as exc:  # noqa: BLE001 - one failed run must not stop the study
                finish(run, None, exc)
    else:
        waiting = list(todo)
        running: dict[Future[float], PlannedRun] = {}
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_stop_with_parent, initargs=(os.getpid(),)
        ) as pool:
            while waiting or running:
                for run in [r for r in waiting if ready(r)][: jobs - len(running)]:
                    waiting.remove(run)
                    log.info("training %s", run.name)
                    running[pool.submit(_run_one, runner, run, threads, keep_checkpoints)] = run
                if not running:  # what is left waits on a backbone that never came
                    for run in waiting:
                        finish(run, None, StudyError(f"its pretrained backbone {run.needs} is missing"))
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    run = running.pop(fut)
                    error = fut.exception()
                    finish(run, None if error else fut.result(), error)
    return {
        "planned": len(plan),
        "skipped": len(plan) - len(todo),
        "trained": len(todo) - len(failed),
        "failed": len(failed),
    }
