"""The training loop, top to bottom: :func:`train` (the driver), :func:`train_one_epoch`, :func:`evaluate`.

``train(cfg)`` runs one experiment into ``cfg.train.out_dir``::

    config.yaml       the full config of the run
    metrics.jsonl     one JSON object per line: "step" (every log_every iterations), "epoch", "eval", "end";
                      a resumed run appends (steps after the last checkpoint of a crashed run repeat)
    training_curve.png  loss and learning rate per step, validation metric per evaluation
    last.pth          a TrainingState checkpoint (see :mod:`fasterpose.engine.checkpoint`)
    best.pth          the same at the best validation AP (PCKh "Mean" for MPII)
    results_val_gt.json / metrics_val_gt.json  the latest evaluation (``_det`` instead of ``_gt`` when
                      ``eval.use_gt_boxes`` is false: the boxes of ``data.det_file``)

The folder is claimed first (:class:`~fasterpose.engine.run_folder.RunFolder`): a folder that holds
another run is refused unless resumed or ``overwrite`` is set, and a lock keeps a second run out.

Exact resume: the sample order and every augmentation draw are pure functions of (seed, epoch,
index) (:mod:`fasterpose.engine.sampling`), so a run stopped after any iteration and resumed from
its checkpoint continues with exactly the batches, weights and optimizer state it would have had.
A time budget (``train.max_minutes``, per invocation, evaluation included) or SIGINT/SIGTERM stops
the run after the current iteration and writes ``last.pth`` (a second Ctrl-C aborts at once). A
non-finite loss stops the run before the bad step is applied and leaves the last checkpoint
untouched. At an epoch's end ``last.pth`` is written before the evaluation, so a failing
evaluation cannot lose the epoch; a resume runs an evaluation that is due but missing.

Distributed: under ``torchrun`` every process trains on its shard, gradients are averaged by DDP,
the logged loss is averaged across ranks, and only rank 0 evaluates and writes files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fasterpose.config import Config, dump_config
from fasterpose.data.dataset import TopDownDataset, build_records, seed_worker
from fasterpose.data.workers import capped_workers
from fasterpose.engine.checkpoint import (
    Best,
    TrainingState,
    restore_training_state,
    save_training_state,
)
from fasterpose.engine.distributed import (
    DistInfo,
    all_reduce,
    barrier,
    cleanup_distributed,
    init_distributed,
    unwrap,
    wrap_model,
)
from fasterpose.engine.optim import autocast_settings, build_optimizer, build_scheduler, lr_multiplier
from fasterpose.engine.rng import rng_state, seed_everything, set_rng_state
from fasterpose.engine.run_folder import RunFolder
from fasterpose.engine.sampling import EpochSamples, epoch_batches
from fasterpose.engine.signals import StopRequest, stop_on_signals
from fasterpose.experiment import Experiment, experiment_of
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset
from fasterpose.source import git_commit
from fasterpose.visualize import plot_training_curve

__all__ = [
    "TrainResult",
    "TrainingDiverged",
    "epoch_batches",
    "evaluate",
    "lr_multiplier",
    "rng_state",
    "set_rng_state",
    "train",
    "train_one_epoch",
    "wrap_model",
]

log = logging.getLogger(__name__)
LAST, BEST = "last.pth", "best.pth"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class TrainResult:
    """What a run produced. ``status``: "finished" | "time_budget" | "interrupted"."""

    out_dir: Path
    status: str
    epoch: int  # completed epochs
    iteration: int  # batches done in the unfinished epoch (0 at an epoch boundary)
    global_step: int
    iters_per_epoch: int
    best_metric: float | None
    best_epoch: int | None
    last_metrics: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0


@dataclass
class Run:
    """What stays fixed while a run trains: experiment, process, folder, data, loss, precision, clock."""

    exp: Experiment
    cfg: Config  # exp.cfg
    dist: DistInfo
    folder: RunFolder
    dataset: TopDownDataset
    loss_fn: nn.Module
    iters_per_epoch: int
    use_amp: bool
    amp_dtype: torch.dtype
    memory_format: torch.memory_format
    started: float
    progress: bool
    commit: str | None
    on_step: Callable[[int, int], None] | None = None  # (global step, planned steps) after each step

    def save(self, state: TrainingState, name: str) -> None:
        if self.dist.is_main:
            save_training_state(self.folder.path / name, state, self.cfg, self.commit)

    def out_of_time(self) -> bool:
        budget = self.cfg.train.max_minutes
        return budget is not None and time.monotonic() - self.started > budget * 60.0


def train_step(run: Run, model: nn.Module, state: TrainingState, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """One optimisation step on ``batch``; returns (loss averaged over ranks, learning rate used)."""
    t, device = run.cfg.train, run.dist.device
    images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=run.memory_format)
    target = batch["target"].to(device, non_blocking=True)
    target_weight = batch["target_weight"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=run.amp_dtype, enabled=run.use_amp):
        loss = run.loss_fn(model(images), target, target_weight)
    loss_value = float(all_reduce(loss.detach().float().clone(), op="mean"))
    if not math.isfinite(loss_value):
        raise TrainingDiverged(
            f"loss is {loss_value} at epoch {state.epoch + 1}, iteration {state.iteration + 1} "
            f"(global step {state.global_step + 1}); stopped before applying it. The last good "
            f"checkpoint is {run.folder.path / LAST} (left untouched). Lower train.lr, set "
            f"train.grad_clip, or check the data of this batch."
        )
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if t.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    lr = float(state.optimizer.param_groups[0]["lr"])
    state.scheduler.step()
    state.iteration += 1
    state.global_step += 1
    return loss_value, lr


def train_one_epoch(run: Run, model: nn.Module, state: TrainingState, stop: StopRequest) -> str:
    """Train from ``state.iteration`` to the end of ``state.epoch`` unless stopped.

    Returns "finished" (``state.epoch`` advanced), "interrupted" (a signal) or "time_budget".
    """
    t, dist = run.cfg.train, run.dist
    batches = epoch_batches(len(run.dataset), t.batch_size, state.epoch, t.seed, dist)[state.iteration :]
    loader = DataLoader(
        EpochSamples(run.dataset, state.epoch),
        batch_sampler=batches,
        num_workers=capped_workers(run.cfg.data.num_workers),
        worker_init_fn=seed_worker,
        pin_memory=dist.device.type == "cuda",
        generator=torch.Generator().manual_seed(t.seed * 100_003 + state.epoch),
    )
    bar = tqdm(
        total=run.iters_per_epoch,
        initial=state.iteration,
        desc=f"epoch {state.epoch + 1}/{t.epochs}",
        disable=not (run.progress and dist.is_main),
        unit="it",
        dynamic_ncols=True,
    )
    model.train()
    start, samples, loss_sum, steps, status = time.monotonic(), 0, 0.0, 0, "finished"
    for batch in loader:
        # Stop requests (signal: 2, time budget: 1) are agreed on by every rank before the forward
        # pass, which would already update BatchNorm statistics; a resume redoes this batch.
        request = 2.0 if stop.requested else 1.0 if run.out_of_time() else 0.0
        code = float(all_reduce(torch.tensor([request], device=dist.device), op="max")[0])
        if code > 0:
            status = "interrupted" if code == 2 else "time_budget"
            break
        loss_value, lr = train_step(run, model, state, batch)
        samples, loss_sum, steps = samples + len(batch["image"]) * dist.world_size, loss_sum + loss_value, steps + 1
        rate = samples / max(1e-9, time.monotonic() - start)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3g}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}", refresh=False)
        if run.on_step is not None and dist.is_main:
            run.on_step(state.global_step, t.epochs * run.iters_per_epoch)
        if state.global_step % max(1, t.log_every) == 0 or state.iteration == 1:
            state.history.steps.append([state.global_step, loss_value, lr])
            run.folder.log_metrics(
                {
                    "kind": "step",
                    "epoch": state.epoch,
                    "iteration": state.iteration,
                    "step": state.global_step,
                    "loss": loss_value,
                    "lr": lr,
                    "samples_per_s": rate,
                }
            )
    bar.close()
    if status == "finished":
        state.epoch, state.iteration = state.epoch + 1, 0
        seconds = time.monotonic() - start
        run.folder.log_metrics(
            {
                "kind": "epoch",
                "epoch": state.epoch,
                "step": state.global_step,
                "loss": loss_sum / max(1, steps),
                "lr": state.optimizer.param_groups[0]["lr"],
                "seconds": seconds,
                "samples_per_s": samples / max(1e-9, seconds),
            }
        )
    return status


def evaluate(run: Run, model: nn.Module, state: TrainingState) -> bool:
    """Evaluate the current weights on the val split (rank 0; the others wait); save ``best.pth`` on a
    new best. Returns False, doing nothing, when these very weights were evaluated already."""
    point = state.epoch + state.iteration / max(1, run.iters_per_epoch)
    if state.history.evals and state.history.evals[-1][0] == point:
        return False
    if run.dist.is_main:
        metric = state.best.metric
        eval_set = build_eval_set(run.exp, "val")
        state.metrics = evaluate_on_dataset(
            unwrap(model), run.exp, eval_set, run.folder.path, progress=run.progress, device=run.dist.device
        ).metrics
        value = float(state.metrics[metric])
        state.history.evals.append([point, value])
        run.folder.log_metrics({"kind": "eval", "epoch": state.epoch, "step": state.global_step, **state.metrics})
        log.info("epoch %d, step %d: %s %.4f", state.epoch, state.global_step, metric, value)
        if state.best.value is None or value > state.best.value:
            state.best = Best(metric, value, state.epoch)
            run.save(state, BEST)
    barrier()
    return True


def end_of_epoch(run: Run, model: nn.Module, state: TrainingState, final: bool) -> None:
    """Checkpoint (when due), then evaluate (when due), then checkpoint again with the evaluation."""
    t = run.cfg.train
    save_due = final or state.epoch % max(1, t.checkpoint_every) == 0
    if save_due:
        run.save(state, LAST)  # before evaluating: a failing evaluation cannot lose the epoch
    eval_due = t.eval_every > 0 and (final or state.iteration == 0 and state.epoch % t.eval_every == 0)
    if eval_due and evaluate(run, model, state) and save_due:
        run.save(state, LAST)


def build_run(
    exp: Experiment,
    dist: DistInfo,
    folder: RunFolder,
    progress: bool,
    started: float,
    on_step: Callable[[int, int], None] | None = None,
) -> Run:
    """The data (train split, ground-truth boxes), loss and precision settings of a run."""
    cfg = exp.cfg
    t = cfg.train
    dataset = TopDownDataset.from_config(exp, "train", train=True, use_gt_boxes=True)
    if t.eval_every > 0 and dist.is_main:
        build_records(exp, "val", cfg.eval.use_gt_boxes)  # a malformed val file fails now, not after epoch 1
    use_amp, amp_dtype = autocast_settings(t, dist.device)
    return Run(
        exp=exp,
        cfg=cfg,
        dist=dist,
        folder=folder,
        dataset=dataset,
        loss_fn=build_loss(cfg.loss).to(dist.device),
        iters_per_epoch=len(epoch_batches(len(dataset), t.batch_size, 0, t.seed, dist)),
        use_amp=use_amp,
        amp_dtype=amp_dtype,
        memory_format=torch.channels_last if t.channels_last else torch.contiguous_format,
        started=started,
        progress=progress,
        commit=git_commit(),
        on_step=on_step,
    )


def train(
    cfg: Config | Experiment,
    resume: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train an experiment (a config is resolved first; optionally resuming from checkpoint ``resume``);
    see the module docstring.

    ``overwrite``: replace a run already in ``cfg.train.out_dir`` (refused otherwise unless resuming).
    ``on_step(global_step, planned_steps)``: called on rank 0 after every optimisation step (e.g. an ETA).
    """
    started = time.monotonic()
    exp = experiment_of(cfg)
    cfg = exp.cfg  # the run's config (and checkpoints) carry the whole keypoint layout
    dist = init_distributed(cfg.train.device)
    try:
        with RunFolder.claim(
            cfg.train.out_dir,
            resume is not None,
            overwrite,
            writer=dist.is_main,
            inputs={"model.weights": cfg.model.weights},
        ) as folder:
            run = build_run(exp, dist, folder, progress, started, on_step)
            t = cfg.train
            seed_everything(t.seed)  # every rank builds the same initial weights
            net = PoseModel.from_config(cfg, pretrained=False if resume is not None else None)
            model = wrap_model(net.to(memory_format=run.memory_format), dist, t.sync_bn)
            optimizer = build_optimizer(model, t)
            state = TrainingState(
                model=unwrap(model),
                optimizer=optimizer,
                scheduler=build_scheduler(optimizer, run.iters_per_epoch, t),
                scaler=torch.amp.GradScaler(dist.device.type, enabled=run.use_amp and run.amp_dtype == torch.float16),
                best=Best(exp.primary_metric),
                seed=t.seed,
                world_size=dist.world_size,
            )
            if resume is not None:
                restore_training_state(resume, state, cfg, map_location=dist.device)
                if dist.is_main:
                    log.info(
                        "resumed from %s at epoch %d, iteration %d (step %d)",
                        resume,
                        state.epoch,
                        state.iteration,
                        state.global_step,
                    )
            folder.write_text("config.yaml", dump_config(cfg))
            status = loop(run, model, state, resumed=resume is not None)
            return finish(run, state, status)
    finally:
        cleanup_distributed()


def loop(run: Run, model: nn.Module, state: TrainingState, resumed: bool) -> str:
    """Epochs until done, stopped or out of time; returns the status."""
    t, status = run.cfg.train, "finished"
    with stop_on_signals() as stop:
        if resumed and state.iteration == 0 and state.epoch > 0:  # an evaluation a crash may have skipped
            final = state.epoch >= t.epochs
            if t.eval_every > 0 and (final or state.epoch % t.eval_every == 0) and evaluate(run, model, state):
                run.save(state, LAST)
        while state.epoch < t.epochs and status == "finished":
            status = train_one_epoch(run, model, state, stop)
            if status != "interrupted":
                end_of_epoch(run, model, state, final=state.epoch >= t.epochs or status != "finished")
        if status == "interrupted":
            run.save(state, LAST)
            if run.dist.is_main:
                log.warning(
                    "interrupted at epoch %d, iteration %d: resume with --resume %s",
                    state.epoch,
                    state.iteration,
                    run.folder.path / LAST,
                )
    return status


def finish(run: Run, state: TrainingState, status: str) -> TrainResult:
    """Log the end, draw the curves, and report."""
    wall = time.monotonic() - run.started
    if run.dist.is_main:
        best = {"metric": state.best.metric, "value": state.best.value, "epoch": state.best.epoch}
        run.folder.log_metrics(
            {
                "kind": "end",
                "status": status,
                "epoch": state.epoch,
                "iteration": state.iteration,
                "step": state.global_step,
                "seconds": wall,
                "best": best,
            }
        )
        plot_training_curve(
            state.history.steps, state.history.evals, state.best.metric, run.folder.path / "training_curve.png"
        )
    barrier()
    return TrainResult(
        out_dir=run.folder.path,
        status=status,
        epoch=state.epoch,
        iteration=state.iteration,
        global_step=state.global_step,
        iters_per_epoch=run.iters_per_epoch,
        best_metric=state.best.value,
        best_epoch=state.best.epoch,
        last_metrics=state.metrics,
        wall_seconds=wall,
    )
