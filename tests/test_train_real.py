"""Real images end to end: FasterPose (LHR + RCE) fits the 35 people of ../shared/data/coco_mini train.

The model is trained from scratch (no ImageNet weights offline) without augmentation and scored on
the same split with ground-truth boxes through ``evaluate_on_dataset`` on the train split (pycocotools
OKS AP). The point is the whole real-data path, COCO JSON and JPEGs to COCOeval, learning on real
photos; generalisation is out of reach with 35 people.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import coco_mini_fit
from fasterpose.engine.checkpoint import load_model_from_checkpoint
from fasterpose.engine.train import train
from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset

EPOCHS = 40


@pytest.mark.slow
@pytest.mark.real_data
def test_fasterpose_fits_coco_mini_train(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "coco_mini"
    cfg = coco_mini_fit(
        root,
        tmp_path / "run",
        EPOCHS,
        train={"lr_steps": [EPOCHS - 8], "log_every": 10, "cpu_amp": True, "channels_last": True},
        eval={"batch_size": 35, "flip_test": False, "dark": True},
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads contend badly on a shared 2-core machine
    start = time.monotonic()
    try:
        result = train(cfg, progress=False)
        model, _ = load_model_from_checkpoint(tmp_path / "run" / "last.pth")
        eval_set = build_eval_set(cfg, "train", use_gt_boxes=True)
        metrics: dict[str, Any] = evaluate_on_dataset(model, cfg, eval_set, progress=False, device="cpu").metrics
    finally:
        torch.set_num_threads(threads)
    seconds = time.monotonic() - start
    print(f"coco_mini train AP {metrics['AP']:.3f} after {result.epoch} epochs in {seconds:.0f} s")
    assert result.status == "finished"
    assert metrics["AP"] >= 0.8, metrics
