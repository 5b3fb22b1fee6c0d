"""The one evaluation entry point, ``evaluate_on_dataset``: the model's train/eval mode comes back as it
went in (also when the evaluation raises), every stage is timed, and two gloo processes that each
predict a shard and gather on rank 0 score exactly what one process scores."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from fasterpose.config import Config
from fasterpose.evaluation.coco import STAT_NAMES
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.evaluate import EvalSet, build_eval_set, evaluate_on_dataset
from test_train import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, EvalSet]:
    from fasterpose.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(root, 0, 4, seed=3, min_people=1, max_people=3)
    cfg = tiny_config(root, root / "run")
    return cfg, build_eval_set(cfg, "val")


def tiny_model(cfg: Config) -> PoseModel:
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg)
    nn.init.normal_(model.head.conv.weight, std=0.05)  # structured heatmaps: metrics that are not all 0
    return model


def test_train_mode_in_train_mode_out_and_eval_mode_inside(synth: tuple[Config, EvalSet]) -> None:
    cfg, eval_set = synth
    model = tiny_model(cfg).train()
    frozen = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    frozen.eval()  # a mixed model: every submodule's own mode comes back
    seen: list[bool] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(any(x.training for x in m.modules())))
    result = evaluate_on_dataset(model, cfg, eval_set, progress=False, device="cpu")
    assert seen and not any(seen)  # every forward ran in eval mode
    assert model.training and not frozen.training
    assert sum(m.training for m in model.modules()) == sum(1 for _ in model.modules()) - 1
    assert list(result.metrics) == list(STAT_NAMES)

    model.eval()
    evaluate_on_dataset(model, cfg, eval_set, progress=False, device="cpu")
    assert not any(m.training for m in model.modules())  # eval mode in, eval mode out


def test_mode_restored_when_the_evaluation_raises(synth: tuple[Config, EvalSet]) -> None:
    cfg, eval_set = synth
    model = tiny_model(cfg).train()

    def fail(module: nn.Module, args: Any) -> None:
        raise RuntimeError("the forward pass failed")

    model.register_forward_pre_hook(fail)
    with pytest.raises(RuntimeError, match="forward pass failed"):
        evaluate_on_dataset(model, cfg, eval_set, progress=False, device="cpu")
    assert all(m.training for m in model.modules())


def test_every_stage_is_timed(synth: tuple[Config, EvalSet], tmp_path: Path) -> None:
    cfg, eval_set = synth
    result = evaluate_on_dataset(tiny_model(cfg), cfg, eval_set, tmp_path, progress=False, device="cpu")
    t = result.timings
    assert set(t) == {"data", "forward", "decode", "metric", "total"}
    assert all(v > 0 for v in t.values()), t
    assert t["data"] + t["forward"] + t["decode"] + t["metric"] <= t["total"]
    assert result.info["people"] == len(result.predictions) == len(eval_set)
    assert "timings" not in result.metrics and "data" not in result.metrics  # metrics are only metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, port: int, cfg: Config, model: nn.Module, out: Path, results: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        eval_set = build_eval_set(cfg, "val")
        result = evaluate_on_dataset(model, cfg, eval_set, out, progress=False, device="cpu", rank=rank, world_size=2)
        kpts = [p.keypoints for p in result.predictions]
        results.put((rank, result.metrics, [p.index for p in result.predictions], result.info, kpts))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_score_what_one_scores(synth: tuple[Config, EvalSet], tmp_path: Path) -> None:
    cfg, eval_set = synth
    model = tiny_model(cfg).eval()
    one = evaluate_on_dataset(model, cfg, eval_set, tmp_path / "one", progress=False, device="cpu")
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.start_processes(_rank, (_free_port(), cfg, model, tmp_path / "two", results), nprocs=2, start_method="spawn")
    got = {r[0]: r[1:] for r in (results.get(), results.get())}
    metrics, indices, info, kpts = got[0]
    assert [metrics[k] for k in STAT_NAMES] == [one.metrics[k] for k in STAT_NAMES]
    # a random model scores AP 0: the mean OKS of every person to its own annotation is the number that moves
    assert one.info["mean_oks_to_gt"] > 0.01
    assert info["mean_oks_to_gt"] == pytest.approx(one.info["mean_oks_to_gt"], rel=1e-6)
    assert indices == list(range(len(eval_set))) and info["processes"] == 2 and info["people"] == len(eval_set)
    np.testing.assert_allclose(np.stack(kpts), np.stack([p.keypoints for p in one.predictions]), atol=1e-4)
    assert got[1][:3] == ({}, [], {})  # rank 1 predicted its shard; rank 0 holds everything
