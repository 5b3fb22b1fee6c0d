"""Distributed evaluation: under ``torchrun`` each rank predicts a shard of the images, rank 0 gathers
and scores; 2 gloo processes give exactly the single process's ten COCO stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import coco_mini_fit
from fasterpose.config import dump_config
from fasterpose.evaluation.coco import STAT_NAMES

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCHS = 20


@pytest.fixture(scope="module")
def fitted(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A ResNet-18 FasterPose fitted to coco_mini train (so the stats are not all 0): config, checkpoint."""
    from fasterpose.engine.train import train

    root = shared_data / "coco_mini"
    work = tmp_path_factory.mktemp("eval_ddp")
    # small eval batches: the shards batch differently
    cfg = coco_mini_fit(root, work / "run", EPOCHS, eval={"batch_size": 4, "flip_test": True})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    config = work / "cfg.yaml"
    dump_config(cfg, config)
    return config, work / "run" / "last.pth"


def _eval(launcher: list[str], config: Path, ckpt: Path, out: Path) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    args = ["eval", str(config), "--model", str(ckpt), "--split", "train", "--device", "cpu"]
    cmd = [*launcher, *args, "--out", str(out), "--json", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # only rank 0 prints


@pytest.mark.slow
@pytest.mark.real_data
def test_two_gloo_processes_equal_one(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    config, ckpt = fitted
    one = _eval([sys.executable, "-m", "fasterpose"], config, ckpt, tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = _eval([*torchrun, "-m", "fasterpose"], config, ckpt, tmp_path / "two")
    assert one["AP"] > 0.3, one  # a fitted model: the comparison is not between zeros
    assert [two[k] for k in STAT_NAMES] == [one[k] for k in STAT_NAMES]
    info = json.loads((tmp_path / "two" / "last_metrics_train_gt.json").read_text())
    assert info["processes"] == 2 and info["people"] == 35
    assert json.loads((tmp_path / "one" / "last_metrics_train_gt.json").read_text())["processes"] == 1
    res_one = json.loads((tmp_path / "one" / "last_results_train_gt.json").read_text())
    res_two = json.loads((tmp_path / "two" / "last_results_train_gt.json").read_text())
    # the same people in the same order; keypoints and scores equal up to float noise (the shards'
    # batches hold different crops, and a convolution's rounding depends on its batch)
    assert [(r["image_id"], r["category_id"]) for r in res_one] == [(r["image_id"], r["category_id"]) for r in res_two]
    np.testing.assert_allclose(
        [r["keypoints"] for r in res_one], [r["keypoints"] for r in res_two], rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose([r["score"] for r in res_one], [r["score"] for r in res_two], rtol=1e-5)
