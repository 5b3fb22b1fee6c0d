"""Distributed training on CPU: ``torchrun --nproc_per_node 2`` (gloo) trains and checkpoints, and
its gradient for a fixed global batch equals the single-process gradient.

BatchNorm choice for the gradient comparison: BN layers are put in eval mode (running statistics),
so a layer's output for a sample does not depend on which other samples share its process. With
train-mode BN each process would normalise with its own half-batch statistics and the gradients
differ by design (SyncBN removes that on CUDA; PyTorch has no CPU SyncBN).

Run as a script under torchrun (``test_train_ddp.py OUT CONFIG``), this file computes the gradients
and then runs ``fasterpose train CONFIG`` in the same two processes: one launch for both tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from fasterpose.config import Config, dump_config, load_config
from fasterpose.experiment import resolve

GLOBAL_BATCH = 8


def fixed_batch(cfg: Config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A deterministic global batch: images (8, 3, H, W), targets (8, K, h, w), weights (8, K)."""
    g = torch.Generator().manual_seed(123)
    (w, h), (hw, hh) = cfg.data.input_size, cfg.data.heatmap_size
    k = resolve(cfg).num_keypoints
    images = torch.randn(GLOBAL_BATCH, 3, h, w, generator=g)
    target = torch.rand(GLOBAL_BATCH, k, hh, hw, generator=g) ** 8  # mostly background, a few peaks
    weight = (torch.rand(GLOBAL_BATCH, k, generator=g) > 0.2).float()
    return images, target, weight


def gradients(cfg: Config, rank: int = 0, world_size: int = 1) -> dict[str, torch.Tensor]:
    """Gradients of the configured loss on this rank's share of :func:`fixed_batch` (DDP when world > 1)."""
    from fasterpose.engine.distributed import init_distributed
    from fasterpose.engine.train import wrap_model
    from fasterpose.losses import build_loss
    from fasterpose.models.pose_model import PoseModel

    torch.manual_seed(0)
    net = PoseModel.from_config(cfg, pretrained=False)
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()  # see the module docstring
    dist = init_distributed("cpu") if world_size > 1 else None
    model = wrap_model(net, dist) if dist is not None else net
    images, target, weight = fixed_batch(cfg)
    share = slice(rank * GLOBAL_BATCH // world_size, (rank + 1) * GLOBAL_BATCH // world_size)
    loss = build_loss(cfg.loss)(model(images[share]), target[share], weight[share])
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in net.named_parameters() if p.grad is not None}


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fasterpose.data.synthpose import generate
    from test_train import tiny_config

    root = tmp_path_factory.mktemp("ddp")
    generate(root / "data", 8, 4, seed=1, max_people=2)
    path = root / "tiny.yaml"
    dump_config(tiny_config(root / "data", root / "run", epochs=1, eval_every=1), path)
    return path


@pytest.fixture(scope="module")
def ddp_run(tiny_yaml: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One ``torchrun --nproc_per_node 2`` launch of this file: gradients, then ``fasterpose train``."""
    work = tmp_path_factory.mktemp("ddp_run")
    proc = _torchrun([str(Path(__file__).resolve()), str(work / "grads.pt"), str(tiny_yaml)], work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "grads.pt", json.loads(proc.stdout.strip().splitlines()[-1])  # only rank 0 prints


@pytest.mark.slow
def test_ddp_gradient_equals_single_process(tiny_yaml: Path, ddp_run: tuple[Path, dict[str, Any]]) -> None:
    ddp = torch.load(ddp_run[0], weights_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = gradients(load_config(tiny_yaml))
    finally:
        torch.set_num_threads(threads)
    assert ddp.keys() == single.keys() and len(single) > 10
    for name, g in single.items():
        torch.testing.assert_close(ddp[name], g, rtol=1e-4, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.slow
def test_torchrun_two_processes_train_and_checkpoint(tiny_yaml: Path, ddp_run: tuple[Path, dict[str, Any]]) -> None:
    from fasterpose.data import build_records
    from fasterpose.engine.checkpoint import load_checkpoint, load_model_from_checkpoint
    from fasterpose.engine.distributed import DistInfo
    from fasterpose.engine.train import epoch_batches

    result = ddp_run[1]
    assert result["status"] == "finished" and result["epoch"] == 1 and "AP" in result["metrics"]
    run = Path(result["out_dir"])
    ckpt = load_checkpoint(run / "last.pth")
    assert ckpt["sampler"]["world_size"] == 2 and ckpt["epoch"] == 1
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped
    load_model_from_checkpoint(run / "last.pth")
    kinds = [json.loads(line)["kind"] for line in (run / "metrics.jsonl").open()]
    assert kinds.count("end") == 1 and kinds.count("eval") == 1  # one writer
    # each rank took half of the samples: the steps are one shard's batches
    cfg = load_config(tiny_yaml)
    people = len(build_records(cfg.data, "train"))
    cpu = torch.device("cpu")
    shard = epoch_batches(people, cfg.train.batch_size, 0, 0, DistInfo(0, 2, 0, cpu))
    alone = epoch_batches(people, cfg.train.batch_size, 0, 0, DistInfo(0, 1, 0, cpu))
    assert result["global_step"] == len(shard) < len(alone)


if __name__ == "__main__":  # under torchrun: OUT CONFIG -> gradients to OUT, then `fasterpose train CONFIG`
    from fasterpose.cli import main

    out_path, config_path = sys.argv[1], sys.argv[2]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    grads = gradients(load_config(config_path), rank, world)
    if rank == 0:
        torch.save(grads, out_path)
    sys.exit(main(["train", config_path, "--no-progress", "--json"]))  # joins the same process group
