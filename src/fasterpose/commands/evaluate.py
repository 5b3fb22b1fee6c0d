"""``fasterpose eval CONFIG (--checkpoint P | --oracle) [key=value ...] [--json]``.

With ``--checkpoint`` the network (architecture and loss, hence sigmoid or not) comes from the
checkpoint; data and evaluation settings come from CONFIG and the overrides. Results and metrics
are written beside the checkpoint (``<stem>_results_<split>.json``, ``<stem>_metrics_<split>.json``)
unless ``--out`` says otherwise. ``--oracle`` scores the ground truth pushed through
encode -> decode -> back-projection: the ceiling a codec and heatmap size allow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fasterpose.config import Config, apply_overrides, load_config
from fasterpose.engine.distributed import resolve_device
from fasterpose.engine.inference import build_eval_dataset, predict_dataset, predict_oracle, score_predictions
from fasterpose.engine.model_file import load_model_file
from fasterpose.evaluation.report import format_table

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (data and eval settings)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="checkpoint or weights file (.safetensors) to evaluate")
    what.add_argument(
        "--oracle",
        action="store_true",
        help="score ground truth through encode -> decode -> back-projection (no model)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.flip_test=false")
    parser.add_argument(
        "--split",
        default="val",
        choices=("val", "train", "test-dev"),
        help="test-dev: detections on data.test_ann's images -> the COCO server's results file, not scored",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--det", action="store_true", help="use data.det_file boxes (eval.use_gt_boxes=false)")
    parser.add_argument("--out", help="folder for results/metrics files (default: beside the checkpoint)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: data.num_workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object (last line)")


def _with_checkpoint_model(cfg: Config, ckpt_cfg: Config) -> Config:
    """CONFIG's data/eval settings with the checkpoint's network and loss; warn on codec changes."""
    for key in ("input_size", "heatmap_size", "encoding", "sigma", "keypoints"):
        mine, theirs = getattr(cfg.data, key), getattr(ckpt_cfg.data, key)
        if mine != theirs:
            log.warning("data.%s is %s here but %s in the checkpoint's config", key, mine, theirs)
    return dataclasses.replace(cfg, model=ckpt_cfg.model, loss=ckpt_cfg.loss)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.det:
        overrides.append("eval.use_gt_boxes=false")
    cfg = load_config(args.config, overrides)
    progress = not args.no_progress
    start = time.perf_counter()
    if args.oracle:
        if args.split == "test-dev":
            raise ValueError("--oracle needs ground truth; test-dev has none")
        if args.det:
            raise ValueError("--oracle scores ground-truth keypoints in ground-truth boxes; it cannot use --det")
        cfg = apply_overrides(cfg, ["eval.use_gt_boxes=true"])  # the oracle always crops GT boxes
        dataset = build_eval_dataset(cfg, args.split, use_gt_boxes=True)
        preds = predict_oracle(cfg, args.split, progress, dataset, args.workers)
        out_dir, prefix = (Path(args.out) if args.out else None), "oracle_"
        title = (
            f"oracle {cfg.data.encoding} {cfg.data.heatmap_size[0]}x{cfg.data.heatmap_size[1]} "
            f"dark={cfg.eval.dark} on {cfg.data.dataset} {args.split} (GT boxes)"
        )
    else:
        device = resolve_device(args.device, key="--device")
        model, ckpt_cfg = load_model_file(args.checkpoint, map_location=device)
        cfg = _with_checkpoint_model(cfg, ckpt_cfg)
        if args.split == "test-dev":
            return _test_dev(model, cfg, device, args, progress)
        dataset = build_eval_dataset(cfg, args.split)
        preds = predict_dataset(
            model, cfg, device, args.split, progress=progress, dataset=dataset, num_workers=args.workers
        )
        ckpt = Path(args.checkpoint)
        out_dir, prefix = (Path(args.out) if args.out else ckpt.parent), f"{ckpt.stem}_"
        title = f"{ckpt} on {cfg.data.dataset} {args.split} ({'GT' if cfg.eval.use_gt_boxes else 'detector'} boxes)"
    metrics, info = score_predictions(preds, cfg, dataset, args.split, out_dir, prefix)
    shown: dict[str, object] = dict(metrics)
    for key in ("head_size_source", "mean_oks_to_gt"):
        if key in info:
            shown[key] = info[key]
    print(format_table(shown, title=f"{title}: {len(preds)} people, {time.perf_counter() - start:.1f} s"))
    if out_dir is not None:
        print(f"results: {info['results_file']}\nmetrics: {info['metrics_file']}")
    if args.json:
        print(json.dumps(shown))
    return 0


def _test_dev(
    model: torch.nn.Module, cfg: Config, device: torch.device, args: argparse.Namespace, progress: bool
) -> int:
    """Write the test-dev results file (beside the checkpoint unless --out) and say what it holds."""
    from fasterpose.engine.testdev import predict_testdev

    out_dir = Path(args.out) if args.out else Path(args.checkpoint).parent
    info = predict_testdev(model, cfg, out_dir, device, progress=progress, num_workers=args.workers)
    print(
        f"wrote {info['results_file']}: {info['people_after_nms']} people (of {info['people']} boxes) on "
        f"{info['images_with_people']} of {info['images']} images; not scored (zip it and submit it to the COCO server)"
    )
    if args.json:
        print(json.dumps(info))
    return 0
