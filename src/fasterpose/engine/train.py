"""The training loop, top to bottom: data, model, optimizer, epochs, evaluation, checkpoints.

``train(cfg)`` runs one experiment into ``cfg.train.out_dir``::

    config.yaml       the full config of the run
    metrics.jsonl     one JSON object per line: "step" (every log_every iterations), "epoch", "eval", "end";
                      a resumed run appends (steps after the last checkpoint of a crashed run repeat)
    training_curve.png  loss and learning rate per step, validation metric per evaluation
    last.pth          model, optimizer, scheduler, scaler, epoch/iteration, RNG states, config, git commit
    best.pth          the same at the best validation AP (PCKh "Mean" for MPII)
    results_val.json / metrics_val.json  the latest evaluation

Exact resume: the order of samples is a pure function of (seed, epoch) and each sample's
augmentation draws from a generator seeded by (seed, epoch, index), so a run stopped after any
iteration and resumed from its checkpoint continues with exactly the batches, augmentations,
weights and optimizer state it would have had. A time budget (``train.max_minutes``, counted per
invocation, evaluation included) or SIGINT/SIGTERM stops the run after the current iteration and
writes ``last.pth`` (a second Ctrl-C aborts at once). A non-finite loss stops the run before the
bad step is applied and leaves the last checkpoint untouched.

Distributed: under ``torchrun`` every process trains on its shard (DistributedSampler, same
per-process batch), gradients are averaged by DDP, the logged loss is averaged across ranks, and
only rank 0 evaluates and writes files.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from fasterpose.config import Config, TrainConfig, config_to_dict, dump_config
from fasterpose.data.dataset import TopDownDataset, seed_worker
from fasterpose.engine.checkpoint import git_commit, load_checkpoint, save_checkpoint
from fasterpose.engine.distributed import DistInfo, all_reduce, barrier, cleanup_distributed, init_distributed
from fasterpose.engine.inference import evaluate_model
from fasterpose.layouts import resolve_config_layout
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel

log = logging.getLogger(__name__)


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


def primary_metric(cfg: Config) -> str:
    """The metric that picks the best checkpoint: PCKh ``Mean`` for MPII, ``AP`` otherwise."""
    return "Mean" if cfg.data.dataset == "mpii" else "AP"


# ---------------------------------------------------------------- building blocks (also used by tests)


class EpochSamples(Dataset[dict[str, torch.Tensor]]):
    """Training view of a dataset for one epoch: sample ``i`` is augmented with a generator seeded
    by ``(dataset.seed, epoch, i)``, whichever worker (or process) loads it. Drops ``meta``."""

    def __init__(self, dataset: TopDownDataset, epoch: int) -> None:
        self.dataset = dataset
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        self.dataset.reseed(self.epoch * len(self.dataset) + index)
        item = self.dataset[index]
        return {"image": item["image"], "target": item["target"], "target_weight": item["target_weight"]}


def epoch_batches(num_samples: int, batch_size: int, epoch: int, seed: int, dist: DistInfo) -> list[list[int]]:
    """This rank's batches of sample indices for ``epoch`` (shuffled by (seed, epoch)).

    Every rank gets the same number of batches; a final batch of one sample is dropped (BatchNorm
    cannot train on it).
    """
    sampler: DistributedSampler[int] = DistributedSampler(
        range(num_samples),  # type: ignore[arg-type]  # only its length is used
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=seed,
        drop_last=False,
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)
    batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def wrap_model(model: nn.Module, dist: DistInfo, sync_bn: bool = False) -> nn.Module:
    """Move to the device; under ``torchrun`` convert to SyncBN if asked and wrap in DDP."""
    if sync_bn and dist.distributed:
        if dist.device.type == "cpu":
            raise ValueError(
                "train.sync_bn=true needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel; "
                "set train.sync_bn=false for CPU runs"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(dist.device)
    if dist.distributed:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def build_optimizer(model: nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay, nesterov=True)
    raise ValueError(f"unknown train.optimizer {t.optimizer!r}; valid: adam, adamw, sgd")


def lr_multiplier(step: int, iters_per_epoch: int, t: TrainConfig) -> float:
    """Step decay by epoch (x lr_factor at each of lr_steps) times a linear warmup over warmup_iters."""
    epoch = step // max(1, iters_per_epoch)
    m = t.lr_factor ** sum(epoch >= s for s in t.lr_steps)
    if t.warmup_iters > 0 and step < t.warmup_iters:
        m *= (step + 1) / t.warmup_iters
    return float(m)


def build_scheduler(optimizer: torch.optim.Optimizer, iters_per_epoch: int, t: TrainConfig) -> Any:
    """Per-iteration LambdaLR of :func:`lr_multiplier` (its state_dict is plain values)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, iters_per_epoch, t))


def autocast_settings(t: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """(enabled, dtype) of autocast: ``train.amp`` on CUDA (bfloat16 falls back to float16 on GPUs
    without it; float16 gets a GradScaler), ``train.cpu_amp`` on CPUs with native bfloat16."""
    if t.amp_dtype not in ("bfloat16", "float16"):
        raise ValueError(f"train.amp_dtype must be 'bfloat16' or 'float16', got {t.amp_dtype!r}")
    dtype = getattr(torch, t.amp_dtype)
    if device.type == "cuda" and t.amp:
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            log.warning("this GPU has no bfloat16: autocast in float16 with a GradScaler")
            dtype = torch.float16
        return True, dtype
    if device.type == "cpu" and t.cpu_amp:
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True, torch.bfloat16
        log.warning("train.cpu_amp: this CPU has no native bfloat16 (it would be slower); training in float32")
    return False, dtype


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain values (loadable with weights_only=True)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    version, state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


@contextmanager
def stop_on_signals() -> Iterator[dict[str, bool]]:
    """SIGINT/SIGTERM set ``flag["stop"]`` (finish the iteration, checkpoint, exit); a second SIGINT aborts."""
    flag = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True
        log.warning("%s received: stopping after this iteration (Ctrl-C again to abort)", signal.Signals(signum).name)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: no signal handling
        yield flag
        return
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def plot_curves(history: dict[str, list[list[float]]], metric: str, path: Path, title: str | None = None) -> None:
    """Training loss and lr per step (left), validation ``metric`` per epoch (right) -> PNG.

    ``history``: ``{"steps": [[step, loss, lr], ...], "evals": [[epoch, value], ...]}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.asarray(history["steps"], np.float64).reshape(-1, 3)
    if len(steps):
        ax_loss.plot(steps[:, 0], steps[:, 1], color="tab:blue", lw=1)
        ax_lr = ax_loss.twinx()
        ax_lr.plot(steps[:, 0], steps[:, 2], color="tab:gray", lw=1, ls="--")
        ax_lr.set_ylabel("learning rate (dashed)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    evals = np.asarray(history["evals"], np.float64).reshape(-1, 2)
    if len(evals):
        ax_val.plot(evals[:, 0], evals[:, 1], "o-", color="tab:green")
        ax_val.annotate(f"{evals[-1, 1]:.3f}", (evals[-1, 0], evals[-1, 1]), textcoords="offset points",
                        xytext=(-10, 8), ha="right")  # fmt: skip
        ax_val.set_xlim(0, max(1.0, float(evals[:, 0].max())) * 1.05)
        ax_val.set_ylim(0, min(1.0, max(0.1, float(evals[:, 1].max()) * 1.15)))
    else:
        ax_val.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_val.transAxes)
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel(f"validation {metric}")
    ax_val.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------- the loop


def train(cfg: Config, resume: str | Path | None = None, progress: bool = True) -> TrainResult:
    """Train ``cfg`` (optionally resuming from checkpoint ``resume``); see the module docstring."""
    started = time.monotonic()
    cfg = resolve_config_layout(cfg)  # the run's config (and checkpoints) carry the whole keypoint layout
    dist = init_distributed(cfg.train.device)
    try:
        return _train(cfg, dist, resume, progress, started)
    finally:
        cleanup_distributed()


def _train(cfg: Config, dist: DistInfo, resume: str | Path | None, progress: bool, started: float) -> TrainResult:
    t = cfg.train
    device = dist.device
    out_dir = Path(t.out_dir)
    metric_name = primary_metric(cfg)
    budget_s = t.max_minutes * 60.0 if t.max_minutes is not None else math.inf

    # Data: the train split with ground-truth boxes; evaluation builds its own (val) dataset.
    dataset = TopDownDataset.from_config(cfg, "train", train=True, use_gt_boxes=True)
    iters_per_epoch = len(epoch_batches(len(dataset), t.batch_size, 0, t.seed, dist))

    # Model, loss, optimizer, schedule, AMP. Every rank builds the same initial weights.
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    model = wrap_model(PoseModel.from_config(cfg).to(memory_format=memory_format), dist, t.sync_bn)
    loss_fn = build_loss(cfg.loss).to(device)
    optimizer = build_optimizer(model, t)
    scheduler = build_scheduler(optimizer, iters_per_epoch, t)
    use_amp, amp_dtype = autocast_settings(t, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)

    epoch, iteration, global_step = 0, 0, 0
    best: dict[str, Any] = {"metric": metric_name, "value": None, "epoch": None}
    history: dict[str, list[list[float]]] = {"steps": [], "evals": []}
    last_metrics: dict[str, float] = {}
    if resume is not None:
        ckpt = load_checkpoint(resume, map_location=device)
        unwrap(model).load_state_dict({k.removeprefix("module."): v for k, v in ckpt["model"].items()})
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        epoch, iteration, global_step = int(ckpt["epoch"]), int(ckpt["iteration"]), int(ckpt["global_step"])
        best, history, last_metrics = ckpt["best"], ckpt["history"], dict(ckpt.get("metrics") or {})
        sampler = ckpt["sampler"]
        if (sampler["seed"], sampler["world_size"]) != (t.seed, dist.world_size):
            log.warning(
                "resuming with seed/world size %s/%s, the run used %s/%s: the sample order changes",
                t.seed,
                dist.world_size,
                sampler["seed"],
                sampler["world_size"],
            )
        set_rng_state(ckpt["rng"])
        if dist.is_main:
            log.info("resumed from %s at epoch %d, iteration %d (step %d)", resume, epoch, iteration, global_step)

    commit = git_commit()
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out_dir / "config.yaml")
    metrics_log = out_dir / "metrics.jsonl"

    def write_log(record: dict[str, Any]) -> None:
        if dist.is_main:
            with metrics_log.open("a") as fh:
                fh.write(json.dumps(record) + "\n")

    def checkpoint(path: Path) -> None:
        if not dist.is_main:
            return
        save_checkpoint(
            path,
            {
                "model": unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "epoch": epoch,
                "iteration": iteration,
                "global_step": global_step,
                "rng": rng_state(),
                "sampler": {"seed": t.seed, "world_size": dist.world_size},
                "config": config_to_dict(cfg),
                "git_commit": commit,
                "metrics": last_metrics,
                "best": best,
                "history": history,
            },
        )

    def evaluate() -> None:
        nonlocal last_metrics
        if history["evals"] and history["evals"][-1][0] == epoch + iteration / max(1, iters_per_epoch):
            return  # these weights were just evaluated
        if dist.is_main:
            last_metrics = evaluate_model(unwrap(model), cfg, device, "val", out_dir, progress=progress)
            value = float(last_metrics[metric_name])
            history["evals"].append([epoch + iteration / max(1, iters_per_epoch), value])
            write_log({"kind": "eval", "epoch": epoch, "step": global_step, **last_metrics})
            log.info("epoch %d: %s %.4f", epoch, metric_name, value)
            if best["value"] is None or value > best["value"]:
                best.update(value=value, epoch=epoch)
                checkpoint(out_dir / "best.pth")
        barrier()

    status = "finished"
    with stop_on_signals() as signals:
        while epoch < t.epochs and status == "finished":
            batches = epoch_batches(len(dataset), t.batch_size, epoch, t.seed, dist)[iteration:]
            loader = DataLoader(
                EpochSamples(dataset, epoch),
                batch_sampler=batches,
                num_workers=cfg.data.num_workers,
                worker_init_fn=seed_worker,
                pin_memory=device.type == "cuda",
                generator=torch.Generator().manual_seed(t.seed * 100_003 + epoch),
            )
            model.train()
            epoch_start, samples, loss_sum, loss_count = time.monotonic(), 0, 0.0, 0
            bar = tqdm(
                total=iters_per_epoch,
                initial=iteration,
                desc=f"epoch {epoch + 1}/{t.epochs}",
                disable=not (progress and dist.is_main),
                unit="it",
                dynamic_ncols=True,
            )
            for batch in loader:
                images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
                target = batch["target"].to(device, non_blocking=True)
                target_weight = batch["target_weight"].to(device, non_blocking=True)
                # Stop requests (signal: 2, time budget: 1) are agreed on by every rank before the
                # forward pass, which would already update BatchNorm statistics; a resume redoes this batch.
                request = 2.0 if signals["stop"] else 1.0 if time.monotonic() - started > budget_s else 0.0
                stop = float(all_reduce(torch.tensor([request], device=device), op="max")[0])
                if stop > 0:
                    status = "interrupted" if stop == 2 else "time_budget"
                    break
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    loss = loss_fn(model(images), target, target_weight)
                loss_value = float(all_reduce(loss.detach().float().clone(), op="mean"))
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"loss is {loss_value} at epoch {epoch + 1}, iteration {iteration + 1} "
                        f"(global step {global_step + 1}); stopped before applying it. The last good "
                        f"checkpoint is {out_dir / 'last.pth'} (left untouched). Lower train.lr, set "
                        f"train.grad_clip, or check the data of this batch."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if t.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                iteration += 1
                global_step += 1
                samples += len(images) * dist.world_size
                loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                rate = samples / max(1e-9, time.monotonic() - epoch_start)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3g}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}", refresh=False)
                if global_step % max(1, t.log_every) == 0 or iteration == 1:
                    history["steps"].append([global_step, loss_value, lr])
                    write_log(
                        {
                            "kind": "step",
                            "epoch": epoch,
                            "iteration": iteration,
                            "step": global_step,
                            "loss": loss_value,
                            "lr": lr,
                            "samples_per_s": rate,
                        }
                    )
            bar.close()
            del loader
            if status == "interrupted":
                break
            mean_loss = loss_sum / max(1, loss_count)
            if status == "finished":
                epoch, iteration = epoch + 1, 0
                write_log(
                    {
                        "kind": "epoch",
                        "epoch": epoch,
                        "step": global_step,
                        "loss": mean_loss,
                        "lr": optimizer.param_groups[0]["lr"],
                        "seconds": time.monotonic() - epoch_start,
                        "samples_per_s": samples / max(1e-9, time.monotonic() - epoch_start),
                    }
                )
            last_epoch = epoch >= t.epochs or status != "finished"
            if t.eval_every > 0 and (epoch % t.eval_every == 0 and iteration == 0 or last_epoch):
                evaluate()
            if last_epoch or epoch % max(1, t.checkpoint_every) == 0:
                checkpoint(out_dir / "last.pth")
        if status == "interrupted":
            checkpoint(out_dir / "last.pth")
            if dist.is_main:
                log.warning(
                    "interrupted at epoch %d, iteration %d: resume with --resume %s",
                    epoch,
                    iteration,
                    out_dir / "last.pth",
                )

    wall = time.monotonic() - started
    if dist.is_main:
        write_log(
            {
                "kind": "end",
                "status": status,
                "epoch": epoch,
                "iteration": iteration,
                "step": global_step,
                "seconds": wall,
                "best": best,
            }
        )
        plot_curves(history, metric_name, out_dir / "training_curve.png")
    barrier()
    return TrainResult(
        out_dir=out_dir,
        status=status,
        epoch=epoch,
        iteration=iteration,
        global_step=global_step,
        iters_per_epoch=iters_per_epoch,
        best_metric=best["value"],
        best_epoch=best["epoch"],
        last_metrics=last_metrics,
        wall_seconds=wall,
    )
