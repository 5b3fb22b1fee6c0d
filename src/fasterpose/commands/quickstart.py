"""``fasterpose quickstart``: generate SynthPose, train FasterPose for a fixed schedule, evaluate, draw.

On a fresh machine (CPU is enough)::

    fasterpose quickstart

1. writes SynthPose into ``data/synthpose`` (skipped when it is already there with the same
   parameters, as recorded in its annotation files; a different SynthPose there is an error);
2. trains ``configs/quickstart.yaml`` (ResNet-18 + LHR head, RCE loss, from scratch) for its fixed
   schedule (``train.epochs`` x the SynthPose train batches, learning-rate drop included: the same
   steps on every machine, so the same AP within noise), printing an ETA after its first steps,
   and evaluating on the SynthPose validation split with pycocotools every 2 epochs and at the end;
3. writes ``metrics.json`` (AP of ``last.pth`` and the other COCO numbers, steps, timings),
   ``training_curve.png``, ``predictions.png`` (``last.pth``'s skeletons on validation images),
   ``last.pth`` (the weights at the end of the schedule) and ``best.pth`` (the weights of the best
   of those evaluations).

It never deletes a run: without ``--out`` it writes ``runs/quickstart``, or ``runs/quickstart2``,
``runs/quickstart3``, ... when that exists; an ``--out`` that holds a run is refused unless
``--overwrite`` (which first deletes that run's checkpoints, their exports, metrics and drawings, so
an interrupted run cannot leave a half-trained ``last.pth`` beside an earlier run's files).
``--minutes`` (opt-in) stops training at a wall-clock budget; the schedule may then not finish, and
the metrics say so.

On a 2-core CPU it uses one or two threads, whichever runs a few training steps faster (two
threads lose badly when other work shares the cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.atomic import atomic_write_text
from fasterpose.commands.argtypes import count, number
from fasterpose.config import load_config, shipped_path
from fasterpose.experiment import Experiment, resolve
from fasterpose.runtimes.formats import EXPORTED_SUFFIXES, IR_WEIGHTS_SUFFIX, WEIGHTS_SUFFIX

log = logging.getLogger(__name__)

DESCRIPTION = """\
The first tour, on a CPU: generate SynthPose (a synthetic COCO-format dataset) unless it is already
there, train FasterPose (ResNet-18, configs/quickstart.yaml) from scratch for a fixed schedule (the
same steps on every machine), evaluate it with pycocotools, and write metrics.json (AP of last.pth),
training_curve.png, predictions.png, last.pth (end of the schedule) and best.pth (best evaluation).
Each run gets a new folder: runs/quickstart, then runs/quickstart2, ... (nothing is replaced unless
--overwrite)."""
EXAMPLES = """\
examples:
  fasterpose quickstart                          # -> runs/quickstart (or runs/quickstart2, ...)
  fasterpose quickstart --out runs/qs --overwrite  # replace the run in runs/qs
  fasterpose quickstart train.lr=2e-3 --no-progress"""

# The SynthPose the quickstart trains on: one person per image, no occluders, clutter, noise, blur or
# truncation, pose variation 0.25, and small images (192-320 px, cheap to decode). Every knob it
# relies on is pinned, so later changes to the generator's defaults do not change its data. With the
# generator's defaults (up to 4 people, occluders, clutter, more pose variation) 5 minutes of CPU
# training from scratch stayed near AP 0.05 (an early measurement of the time-budgeted quickstart);
# with these the fixed schedule reaches about 0.6 (README, docs/bench/quickstart_<class>.json).
DATA_PARAMS: dict[str, Any] = {
    "num_train": 6000,
    "num_val": 500,
    "seed": 0,
    "knobs": {
        "min_people": 1,
        "max_people": 1,
        "occluder_prob": 0.0,
        "clutter": 0.0,
        "noise": 0.0,
        "blur_prob": 0.0,
        "truncation_prob": 0.0,
        "pose_variation": 0.25,
        "difficulty": 1.0,
        "scale_range": [0.4, 0.95],
        "thickness_range": [0.75, 1.35],
        "image_size": [192, 320],
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="config changes as key=value, e.g. train.epochs=4")
    parser.add_argument("--config", help="experiment YAML (default: configs/quickstart.yaml of this checkout)")
    parser.add_argument("--data", default="data/synthpose", help="SynthPose folder (generated if missing)")
    parser.add_argument(
        "--out",
        default=None,
        help="run folder (default: runs/quickstart, or runs/quickstart2, ... when that exists); "
        "one that holds a run is refused unless --overwrite",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (default --out: runs/quickstart) instead of using a new folder",
    )
    parser.add_argument(
        "--minutes",
        type=number(0.0, low_open=True),
        default=None,
        help="opt-in safety stop: end training after this many minutes even if the schedule has not "
        "finished (the metrics then say so); default: no time limit, the full schedule",
    )
    parser.add_argument("--num-train", type=count(), default=DATA_PARAMS["num_train"], help="SynthPose train images")
    parser.add_argument("--num-val", type=count(), default=DATA_PARAMS["num_val"], help="SynthPose val images")
    parser.add_argument("--workers", type=count(), default=2, help="processes for SynthPose generation")
    parser.add_argument(
        "--threads",
        type=count(0),
        default=0,
        help="torch threads (default 0: time a few steps with 1 and with all threads, keep the faster)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def default_config_path() -> Path:
    """``configs/quickstart.yaml`` of the current folder or the source checkout."""
    path = shipped_path("configs/quickstart.yaml")
    if not path.is_file():
        raise FileNotFoundError(
            "configs/quickstart.yaml not found in the current folder or beside the package; pass --config PATH"
        )
    return path


def prepare_data(root: Path, num_train: int, num_val: int, workers: int = 1) -> bool:
    """SynthPose for the quickstart in ``root`` (:func:`fasterpose.data.synthpose.ensure`); True if generated.

    A folder that holds a SynthPose of other parameters is an error, not overwritten."""
    from fasterpose.data import synthpose

    seed, knobs = DATA_PARAMS["seed"], DATA_PARAMS["knobs"]
    if synthpose.holds(root, num_train, num_val, seed, knobs):
        print(f"SynthPose already in {root} (same parameters): not regenerating")
        return False
    print(f"generating SynthPose ({num_train} train + {num_val} val images) into {root} ...", flush=True)
    result = synthpose.ensure(root, num_train, num_val, seed, knobs, workers=workers)
    print(f"  done in {result.seconds:.0f} s")
    return True


def pick_threads(exp: Experiment, rounds: int = 3) -> int:
    """The faster of 1 thread and all threads for a few training steps of the experiment's model.

    On a machine shared with other work, two threads that wait on each other at every parallel
    region can run several times slower than one; on an idle machine all threads win.
    """
    import torch

    from fasterpose.engine.optim import autocast_settings
    from fasterpose.losses import build_loss
    from fasterpose.models.pose_model import PoseModel

    cfg = exp.cfg
    most = torch.get_num_threads()
    if most <= 1:
        return most
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = PoseModel.from_config(cfg, pretrained=False).to(memory_format=fmt).train()
    loss_fn = build_loss(cfg.loss)
    use_amp, dtype = autocast_settings(cfg.train, torch.device("cpu"))
    (w, h), (hw, hh), k = cfg.data.input_size, cfg.data.heatmap_size, exp.num_keypoints
    images = torch.randn(cfg.train.batch_size, 3, h, w).contiguous(memory_format=fmt)
    target, weight = torch.rand(cfg.train.batch_size, k, hh, hw) ** 8, torch.ones(cfg.train.batch_size, k)
    best: dict[int, float] = {1: float("inf"), most: float("inf")}
    for i in range(rounds + 1):
        for n in best:
            torch.set_num_threads(n)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=use_amp):
                loss = loss_fn(model(images), target, weight)
            loss.backward()
            if i:  # the first round warms up
                best[n] = min(best[n], time.perf_counter() - start)
    choice = min(best, key=lambda n: best[n])
    torch.set_num_threads(choice)
    return choice


def draw_predictions(exp: Experiment, results_file: Path, path: Path, num_images: int = 8, tile: int = 200) -> Path:
    """A grid PNG of the first ``num_images`` validation images with the predicted skeletons."""
    from fasterpose.data import build_records, read_image
    from fasterpose.visualize import draw_poses, make_grid, save_image

    spec = exp.spec
    results = json.loads(results_file.read_text())
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(r)
    paths: dict[int, str] = {}
    for rec in build_records(exp, "val"):
        paths.setdefault(int(rec.image_id), str(rec.image_path))
    tiles = []
    for image_id in sorted(paths)[:num_images]:
        image = read_image(paths[image_id])
        people = by_image.get(image_id, [])
        if people:
            kpts = np.array([p["keypoints"] for p in people], np.float64).reshape(len(people), -1, 3)
            image = draw_poses(image, kpts[..., :2], kpts[..., 2], spec, threshold=0.3)
        h, w = image.shape[:2]
        f = tile / max(h, w)
        canvas = np.full((tile, tile, 3), 24, np.uint8)
        small = _resize(image, f)
        canvas[: small.shape[0], : small.shape[1]] = small
        tiles.append(canvas)
    save_image(str(path), make_grid(tiles, cols=4))
    return path


def _resize(image: np.ndarray, f: float) -> np.ndarray:
    import cv2

    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


# What a run folder holds that says "a run is here", and what --overwrite deletes besides the
# training loop's own files (RunFolder): the quickstart's products and whatever was exported or
# evaluated from its checkpoints (last.onnx, best.safetensors, last_int8.xml, ...).
HOLDS_RUN = ("last.pth", "best.pth", "metrics.jsonl", "metrics.json")
EARLIER_RUN_GLOBS = ("last*", "best*", "metrics*.json", "results*.json", "predictions.png", "training_curve.png")
# only files of the kinds we write: a user's own ``last_week_notes.txt`` is never matched
# what a quickstart run writes: checkpoints, weights and exported models (the one suffix table), logs, pictures
EARLIER_RUN_SUFFIXES = {".pth", WEIGHTS_SUFFIX, *EXPORTED_SUFFIXES, IR_WEIGHTS_SUFFIX, ".json", ".jsonl", ".png"}
DEFAULT_OUT = Path("runs") / "quickstart"
CHECKPOINTS_NOTE = (
    "last.pth: the weights at the end of the schedule (scored in metrics.json, drawn in predictions.png); "
    "best.pth: the weights of the best validation AP among the evaluations (every 2 epochs and at the end)"
)


def choose_out_dir(out: str | None, overwrite: bool) -> Path:
    """The run folder: ``out``, else ``runs/quickstart`` (``--overwrite``) or the first free of
    ``runs/quickstart``, ``runs/quickstart2``, ...; an ``out`` holding a run needs ``overwrite``."""
    from fasterpose.deploy.outputs import numbered_dir

    if out is None:
        return DEFAULT_OUT if overwrite else numbered_dir(DEFAULT_OUT)
    path = Path(out)
    held = [name for name in HOLDS_RUN if (path / name).exists()]
    if held and not overwrite:
        raise ValueError(
            f"--out {path} already holds a run ({', '.join(held)}): pass --overwrite to replace it, "
            f"or leave out --out for a new numbered folder under runs/"
        )
    return path


def clear_earlier_run(path: Path) -> list[str]:
    """Delete the earlier run in ``path`` (--overwrite): checkpoints, their exports, metrics, drawings.

    Taken under the run folder's lock, so a run still writing there is refused, not deleted under."""
    from fasterpose.engine.run_folder import RunFolder

    removed: list[str] = []
    if not path.is_dir():
        return removed
    with RunFolder.claim(path, resume=False, overwrite=True, what="quickstart", elsewhere="pass another --out"):
        for pattern in EARLIER_RUN_GLOBS:
            for f in sorted(path.glob(pattern)):
                if f.is_file() and f.suffix.lower() in EARLIER_RUN_SUFFIXES:
                    f.unlink()
                    removed.append(f.name)
    return removed


class Eta:
    """``on_step`` of the training loop: after the first few steps, one line with the time per step
    and when training will end (the first steps, which warm up, are left out of the rate)."""

    def __init__(self) -> None:
        self.mark: tuple[int, float] | None = None
        self.printed = False

    def __call__(self, step: int, total: int) -> None:
        from tqdm import tqdm

        first = max(1, min(5, total // 4))
        if step == first:
            self.mark = (step, time.monotonic())
        elif self.mark is not None and not self.printed and step >= min(first + 25, total):
            per_step = (time.monotonic() - self.mark[1]) / (step - self.mark[0])
            left = per_step * (total - step)
            end = time.strftime("%H:%M", time.localtime(time.time() + left))
            tqdm.write(
                f"ETA: {per_step:.3f} s/step over steps {self.mark[0] + 1}-{step} of {total}: "
                f"training ends in ~{left / 60:.1f} min (about {end}), then the final evaluation"
            )
            self.printed = True


def run(args: argparse.Namespace) -> int:
    import torch

    from fasterpose.engine.distributed import resolve_device
    from fasterpose.engine.optim import autocast_settings
    from fasterpose.engine.train import train

    start = time.monotonic()
    data_dir, out_dir = Path(args.data), choose_out_dir(args.out, args.overwrite)
    budget = [f"train.max_minutes={args.minutes}"] if args.minutes is not None else []
    overrides = [f"data.root={data_dir}", f"train.out_dir={out_dir}", *budget, *args.overrides]
    cfg = load_config(args.config or default_config_path(), overrides)  # a bad override fails before any work
    prepare_data(data_dir, args.num_train, args.num_val, args.workers)
    exp = resolve(cfg)
    if args.overwrite and (removed := clear_earlier_run(out_dir)):
        print(f"--overwrite: deleted the earlier run's files in {out_dir}: {', '.join(removed)}")
    device = resolve_device(cfg.train.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads if args.threads > 0 else pick_threads(exp))
    use_amp, amp_dtype = autocast_settings(cfg.train, device)
    precision = f"{str(amp_dtype).removeprefix('torch.')} autocast" if use_amp else "float32"
    minutes = cfg.train.max_minutes
    limit = f", stopped at {minutes:g} min if not done (time budget)" if minutes is not None else ""
    print(f"run folder: {out_dir}")
    print(
        f"training {cfg.model.backbone} + {cfg.model.head} ({cfg.loss.name}) at "
        f"{cfg.data.input_size[1]}x{cfg.data.input_size[0]}, batch {cfg.train.batch_size}, "
        f"{cfg.train.epochs} epochs (lr x{cfg.train.lr_factor:g} after epoch(s) "
        f"{', '.join(map(str, cfg.train.lr_steps)) or '-'}), {precision}, {torch.get_num_threads()} "
        f"thread(s){limit} ...",
        flush=True,
    )
    result = train(exp, progress=not args.no_progress, on_step=Eta())
    planned = cfg.train.epochs * result.iters_per_epoch
    print(
        f"  {result.status}: {result.epoch} epochs, {result.global_step} of {planned} steps "
        f"in {result.wall_seconds:.0f} s"
    )
    if result.status == "interrupted":
        print(
            f"interrupted: {out_dir} holds a partial run (last.pth at step {result.global_step} of {planned}); "
            f"continue it with: fasterpose train {out_dir / 'config.yaml'} --resume"
        )
        return 130
    facts = {
        "steps_planned": planned,
        "precision": precision,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "time_budget_minutes": minutes,
        "started": start,
    }
    return report(args, exp, out_dir, result, facts)


def report(args: argparse.Namespace, exp: Experiment, out_dir: Path, result: Any, facts: dict[str, Any]) -> int:
    """Score ``last.pth`` (the loop's final evaluation when it ran one), draw, write metrics.json, print."""
    from fasterpose.engine.checkpoint import load_checkpoint, load_model_from_checkpoint
    from fasterpose.engine.distributed import resolve_device
    from fasterpose.pipeline.evaluate import build_eval_set, eval_file_names, evaluate_on_dataset
    from fasterpose.visualize import plot_training_curve

    cfg = exp.cfg
    checkpoint = out_dir / "last.pth"
    history = load_checkpoint(checkpoint)["history"]
    eval_start = time.monotonic()
    if result.last_metrics:
        metrics = result.last_metrics  # the training loop's final evaluation, of these very weights
    else:  # train.eval_every 0: no evaluation in the loop
        model, _ = load_model_from_checkpoint(checkpoint)
        eval_set = build_eval_set(exp, "val")
        device = resolve_device(cfg.train.device)
        metrics = evaluate_on_dataset(
            model, exp, eval_set, out_dir, progress=not args.no_progress, device=device
        ).metrics
        history["evals"].append([result.epoch + result.iteration / max(1, result.iters_per_epoch), metrics["AP"]])
    eval_seconds = time.monotonic() - eval_start
    plot_training_curve(
        history["steps"],
        history["evals"],
        "AP",
        out_dir / "training_curve.png",
        title=f"quickstart: {cfg.model.backbone} + LHR, {cfg.loss.name.upper()}, SynthPose "
        f"({result.global_step} steps, {result.wall_seconds / 60:.1f} min)",
    )
    results_name, _ = eval_file_names("val", "gt" if cfg.eval.use_gt_boxes else "det")
    grid = draw_predictions(exp, out_dir / results_name, out_dir / "predictions.png")
    complete = result.global_step == facts["steps_planned"]
    summary = {
        **metrics,
        "checkpoint": "last.pth",
        "checkpoints": CHECKPOINTS_NOTE,
        "best": {"checkpoint": "best.pth", "AP": result.best_metric, "epoch": result.best_epoch},
        "data": f"SynthPose val ({args.num_val} images, seed {DATA_PARAMS['seed']}) in {args.data}",
        "train_status": result.status,
        "schedule_complete": complete,
        "epochs": result.epoch,
        "steps": result.global_step,
        "steps_planned": facts["steps_planned"],
        "batch_size": cfg.train.batch_size,
        "precision": facts["precision"],
        "time_budget_minutes": facts["time_budget_minutes"],
        "train_seconds": round(result.wall_seconds, 1),
        "extra_eval_seconds": round(eval_seconds, 1),  # 0: the loop's final evaluation (in train_seconds)
        "total_seconds": round(time.monotonic() - facts["started"], 1),
        "device": facts["device"],
        "threads": facts["threads"],
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=1) + "\n", "metrics")
    print(
        f"\nSynthPose val AP = {metrics['AP']:.3f} (AP50 {metrics['AP50']:.3f}, AR {metrics['AR']:.3f}) "
        f"of last.pth, after {result.global_step} steps"
    )
    if not complete:
        print(
            f"  the schedule did not finish ({result.global_step} of {facts['steps_planned']} steps, "
            f"stopped by the time budget): this AP is not the quickstart's"
        )
    if result.best_metric is not None:
        print(f"  best.pth: AP {result.best_metric:.3f} at epoch {result.best_epoch} (the best evaluation)")
    print(f"  run folder:      {out_dir}")
    print(f"  metrics:         {out_dir / 'metrics.json'}")
    print(f"  training curve:  {out_dir / 'training_curve.png'}")
    print(f"  predictions:     {grid} (last.pth)")
    print(
        f"  checkpoints:     {checkpoint} (end of the schedule; the one scored above), "
        f"{out_dir / 'best.pth'} (best evaluation)"
    )
    print(f"  total time:      {summary['total_seconds']:.0f} s")
    return 0
