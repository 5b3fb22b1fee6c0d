"""``fasterpose eval CONFIG (--model FILE | --oracle) [key=value ...] [--json]``.

``--model`` takes a training checkpoint, a bare weights file, an exported ``.onnx`` or an OpenVINO
``.xml`` (``--checkpoint`` is the same option) and scores it with the pipeline that serves users.
A checkpoint or an exported file brings its own network and loss; data and evaluation settings come
from CONFIG and the overrides. Results and metrics (with runtime and precision) are written beside
the model (``<stem>[_<runtime>_<precision>]_results_<split>_<gt|det>.json`` and ``..._metrics_...``,
see :func:`model_file_prefix`) unless ``--out`` says otherwise, so ``--det`` keeps the GT-box files.
Under ``torchrun`` every rank predicts a shard and rank 0 scores. ``--oracle`` scores the
ground truth pushed through encode -> decode -> back-projection: the ceiling a codec allows.
``--split test-dev`` runs the same pipeline on ``data.test_det_file``'s boxes and writes the COCO
server's results file (:mod:`fasterpose.pipeline.testdev`) instead of scoring.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasterpose.commands.argtypes import count
from fasterpose.config import Config, apply_overrides, load_config
from fasterpose.evaluation.report import format_table
from fasterpose.pipeline.runner import RUNTIMES

if TYPE_CHECKING:
    from fasterpose.pipeline.evaluate import EvalResult

log = logging.getLogger(__name__)

DESCRIPTION = """\
Evaluate a model on a dataset: COCO OKS AP (pycocotools) or MPII PCKh. --model takes a training
checkpoint (.pth), a weights file (.safetensors), an exported .onnx or an OpenVINO .xml; CONFIG
gives the dataset and evaluation settings. People are cropped from the ground-truth boxes, or from
data.det_file's detections with --det. Results and metrics go beside the model (or into --out),
named by split and box source so a --det run keeps the ground-truth-box files:
  <model>_results_<split>_gt.json, <model>_metrics_<split>_gt.json   (--det: ..._det.json)
with _<runtime>_<precision> after <model> unless it ran in torch at fp32 (_safetensors for a weights
file). Files holding another model's or dataset's evaluation are not replaced without --overwrite.
A set with a damaged or unreadable image is not scored unless --skip-bad-images (which lists them).
--oracle scores the ground truth itself through encode -> decode (the ceiling of the heatmap codec).
--split test-dev writes the results file the COCO server expects instead of scoring."""
EXAMPLES = """\
examples:
  fasterpose eval configs/quickstart.yaml --model runs/quickstart/last.pth
  fasterpose eval configs/quickstart.yaml --model runs/quickstart/last.onnx --json
  fasterpose eval configs/fasterpose_r50_256x192.yaml --model best.pth --det data.root=/data/coco
  fasterpose eval configs/quickstart.yaml --oracle --out runs/oracle
  torchrun --nproc_per_node 2 -m fasterpose eval configs/fasterpose_r50_256x192.yaml --model best.pth"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML whose data and evaluation settings are used")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--model",
        "--checkpoint",
        dest="model",
        help="the model to score: checkpoint (.pth), weights file (.safetensors), .onnx or OpenVINO .xml",
    )
    what.add_argument(
        "--oracle",
        action="store_true",
        help="score the ground truth pushed through encode -> decode -> back-projection (no model)",
    )
    parser.add_argument("overrides", nargs="*", help="config changes as key=value, e.g. eval.flip_test=false")
    parser.add_argument(
        "--split",
        default="val",
        choices=("val", "train", "test-dev"),
        help="which images to score; test-dev writes the COCO server's results file and scores nothing",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", *RUNTIMES),
        help="what runs the network (default: torch for .pth/.safetensors, else auto: the file's own runtime)",
    )
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), help="number format (default: fp32, or the exported file's own)"
    )
    parser.add_argument(
        "--device", default="auto", help="torch device: auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--det", action="store_true", help="crop people from data.det_file's detections instead of ground-truth boxes"
    )
    parser.add_argument("--out", help="folder for the results and metrics files (default: the model's folder)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results / metrics files that hold another model's or another dataset's evaluation",
    )
    parser.add_argument(
        "--workers", type=count(0), help="image-reading threads (default: data.num_workers, at most the CPU cores)"
    )
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="score without the people of damaged or unreadable images (listed in the metrics file and the "
        "summary) instead of refusing to score",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    parser.add_argument("--json", action="store_true", help="also print the metrics as one JSON object (last line)")


def with_model_of(cfg: Config, model_cfg: Config) -> Config:
    """CONFIG's data/eval settings with the model file's network and loss; warn on codec changes."""
    for key in ("input_size", "heatmap_size", "encoding", "sigma", "keypoints"):
        mine, theirs = getattr(cfg.data, key), getattr(model_cfg.data, key)
        if mine != theirs:
            log.warning("data.%s is %s here but %s in the model's config", key, mine, theirs)
    return dataclasses.replace(cfg, model=model_cfg.model, loss=model_cfg.loss)


def model_file_prefix(model: Path, runtime: str, precision: str) -> str:
    """``last_`` for a model run in torch at fp32, else ``last_<runtime>_<precision>_``: evaluations
    of one model file in different runtimes or precisions keep apart files (``last.pth`` and an
    ``last.onnx`` beside it too, as an exported file never runs in torch)."""
    tag = "" if (runtime, precision) == ("torch", "fp32") else f"{runtime}_{precision}_"
    if model.suffix.lower() == ".safetensors":
        tag = f"safetensors_{tag}"  # ``last.safetensors`` beside ``last.pth`` keeps apart files
    return f"{model.stem}_{tag}"


def _device(name: str) -> str:
    """``--device`` for one process: auto -> CUDA when available; a clear error for missing CUDA."""
    from fasterpose.runtimes.device import resolve_device

    try:
        return str(resolve_device(name, key="--device"))
    except ImportError:  # the torch-free runtime install: exported files run on the CPU
        return "cpu" if name == "auto" else name


def open_model(args: argparse.Namespace, cfg: Config, device: str) -> tuple[Any, Config]:
    """(pipeline runner, config to evaluate with) for ``--model``: the file opened once
    (:func:`fasterpose.deploy.models.open_model`), its network and loss with CONFIG's data and evaluation."""
    from fasterpose.deploy.models import is_exported
    from fasterpose.deploy.models import open_model as open_model_file

    exported = is_exported(args.model)
    runtime = args.runtime or ("auto" if exported else "torch")
    runner, model_cfg = open_model_file(args.model, runtime, args.precision, "cpu" if exported else device, cfg)
    return runner, with_model_of(cfg, model_cfg)


def run(args: argparse.Namespace) -> int:
    from fasterpose.experiment import resolve
    from fasterpose.pipeline.evaluate import CodecOracle, build_eval_set, evaluate_on_dataset

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
        exp = resolve(apply_overrides(cfg, ["eval.use_gt_boxes=true"]))  # the oracle always crops GT boxes
        cfg = exp.cfg
        eval_set = build_eval_set(exp, args.split, use_gt_boxes=True, skip_bad_images=args.skip_bad_images)
        out_dir, prefix = (Path(args.out) if args.out else None), "oracle_"
        if out_dir is not None:
            _check_outputs(args, cfg, out_dir, prefix, None)
        result = evaluate_on_dataset(CodecOracle(), exp, eval_set, out_dir, prefix, progress=progress)
        title = (
            f"oracle {cfg.data.encoding} {cfg.data.heatmap_size[0]}x{cfg.data.heatmap_size[1]} "
            f"dark={cfg.eval.dark} on {cfg.data.dataset} {args.split} (GT boxes)"
        )
    else:
        evaluated = _evaluate(args, cfg, progress)
        if evaluated is None:
            return 0  # a rank other than 0: rank 0 scores
        result, cfg, out_dir = evaluated
        if args.split == "test-dev":
            return _test_dev(result.info, args.json)
        runtime, precision = result.info["runtime"], result.info["precision"]
        boxes = "GT" if cfg.eval.use_gt_boxes else "detector"
        title = f"{Path(args.model)} ({runtime} {precision}) on {cfg.data.dataset} {args.split} ({boxes} boxes)"
    metrics, info = result.metrics, result.info
    shown: dict[str, object] = dict(metrics)
    for key in ("head_size_source", "mean_oks_to_gt", "runtime", "precision"):
        if key in info:
            shown[key] = info[key]
    people = len(result.predictions)
    print(format_table(shown, title=f"{title}: {people} people, {time.perf_counter() - start:.1f} s"))
    for key, note in info.get("notes", {}).items():
        print(f"{key}: {note}")
    _print_bad_images(info)
    if out_dir is not None:
        print(f"results: {info['results_file']}\nmetrics: {info['metrics_file']}")
    if args.json:
        print(json.dumps(shown))
    return 0


def _check_outputs(args: argparse.Namespace, cfg: Config, out_dir: Path, prefix: str, model: Path | None) -> None:
    """The results / metrics files: no input, a writable folder, no other evaluation replaced unasked."""
    from fasterpose.atomic import model_input_files
    from fasterpose.pipeline.evaluate import check_eval_outputs, eval_file_names, eval_identity, split_annotations

    boxes = "gt" if cfg.eval.use_gt_boxes else "det"
    names = eval_file_names(args.split, boxes, prefix)
    identity = eval_identity(cfg, args.split, boxes, model)
    inputs = {
        "model": model_input_files(model),
        "annotation file": split_annotations(cfg, args.split),
        "detection file": identity["det_file"],
        "config": args.config,
    }
    check_eval_outputs(out_dir, names, identity, inputs, args.overwrite)


def _print_bad_images(info: dict[str, Any]) -> None:
    """Say which images --skip-bad-images left out (their people are not in the score)."""
    bad = info.get("bad_images", [])
    if bad:
        print(f"NOT SCORED: {len(bad)} damaged or unreadable images ({info['people_not_scored']} people), left out:")
        for b in bad:
            print(f"  {b['file']}: {b['error']}")


def _evaluate(args: argparse.Namespace, cfg: Config, progress: bool) -> tuple[EvalResult, Config, Path] | None:
    """``--model`` on ``--split`` (under ``torchrun`` every rank predicts a shard, rank 0 scores):
    (evaluation result, config, output folder); None on the other ranks."""
    from fasterpose.experiment import resolve
    from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset
    from fasterpose.pipeline.topdown import TopDownPipeline

    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from fasterpose.engine.distributed import init_distributed

        dist = init_distributed(args.device)
        rank, world, device = dist.rank, dist.world_size, str(dist.device)
    else:
        device = _device(args.device)
    runner, cfg = open_model(args, cfg, device)
    model = Path(args.model)
    out_dir = Path(args.out) if args.out else model.parent
    prefix = model_file_prefix(model, runner.runtime, runner.precision)
    if rank == 0 and args.split != "test-dev":  # before any work: nothing found wrong after the evaluation
        _check_outputs(args, cfg, out_dir, prefix, model)
    if args.split == "test-dev":
        from fasterpose.pipeline.testdev import testdev_image_ids

        testdev_image_ids(cfg)  # a missing image-info file is named before any image is read
    exp = resolve(cfg)  # the model's config on this dataset, resolved once
    pipeline = TopDownPipeline.from_config(exp, runner)
    eval_set = build_eval_set(exp, args.split, skip_bad_images=args.skip_bad_images)
    try:
        result = evaluate_on_dataset(
            pipeline,
            exp,
            eval_set,
            out_dir,
            prefix,
            args.workers,
            progress,
            {"model": str(model)},
            rank=rank,
            world_size=world,
        )
    finally:
        if world > 1:
            from fasterpose.engine.distributed import cleanup_distributed

            cleanup_distributed()
    return (result, cfg, out_dir) if rank == 0 else None


def _test_dev(info: dict[str, Any], as_json: bool) -> int:
    """Say what the test-dev results file (beside the model unless --out) holds."""
    bad = info.get("bad_images", [])
    if bad:
        print(f"NOT PREDICTED: {len(bad)} damaged or unreadable images, left out:")
        for b in bad:
            print(f"  {b['file']}: {b['error']}")
    print(
        f"wrote {info['results_file']}: {info['people_after_nms']} people (of {info['people']} boxes) on "
        f"{info['images_with_people']} of {info['images']} images; not scored (zip it and submit it to the COCO server)"
    )
    if as_json:
        print(json.dumps(info))
    return 0
