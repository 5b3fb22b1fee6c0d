"""The training loop's evaluation: a torch model through the one pipeline (:mod:`fasterpose.pipeline`).

``evaluate_model`` is what ``train`` and ``quickstart`` report; ``fasterpose eval`` runs the same
:func:`fasterpose.pipeline.evaluate.evaluate` on any model file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fasterpose.config import Config
from fasterpose.data.workers import capped_workers
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.pipeline.evaluate import EvalSet, build_eval_set, evaluate, predict_eval_set
from fasterpose.pipeline.topdown import TopDownPipeline
from fasterpose.pipeline.torch_runner import TorchRunner


def torch_pipeline(model: nn.Module, cfg: Config, device: str | torch.device = "cpu") -> TopDownPipeline:
    """``cfg``'s pipeline over ``model`` on ``device`` (the module is put in eval mode, memory format kept)."""
    return TopDownPipeline.from_config(cfg, TorchRunner(model, device=device, channels_last=False))


def predict_dataset(
    model: nn.Module,
    cfg: Config,
    device: str | torch.device = "cpu",
    split: str = "val",
    progress: bool = True,
    eval_set: EvalSet | None = None,
    num_workers: int | None = None,
) -> list[PosePrediction]:
    """Rescored per-person predictions of ``model`` on ``split`` (flip test per ``cfg.eval.flip_test``)."""
    es = build_eval_set(cfg, split) if eval_set is None else eval_set
    was_training = model.training
    try:
        workers = capped_workers(cfg.data.num_workers) if num_workers is None else num_workers
        return predict_eval_set(torch_pipeline(model, cfg, device), es, workers, progress)
    finally:
        model.train(was_training)


def evaluate_model(
    model: nn.Module,
    cfg: Config,
    device: str | torch.device = "cpu",
    split: str = "val",
    out_dir: str | Path | None = None,
    use_gt_boxes: bool | None = None,
    progress: bool = True,
    num_workers: int | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` on ``split``: COCO/SynthPose -> AP, AP50, ..., ARl; MPII -> PCKh table.

    Writes ``results_<split>_<boxes>.json`` and ``metrics_<split>_<boxes>.json`` (boxes: ``gt`` or
    ``det``) to ``out_dir`` when given. The
    model's train/eval mode is restored afterwards.
    """
    eval_set = build_eval_set(cfg, split, use_gt_boxes)
    was_training = model.training
    try:
        workers = capped_workers(cfg.data.num_workers) if num_workers is None else num_workers
        return evaluate(torch_pipeline(model, cfg, device), cfg, eval_set, out_dir, "", workers, progress)[0]
    finally:
        model.train(was_training)
