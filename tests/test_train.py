"""Training engine: exact resume, NaN stop, crash-safe checkpoints, schedule, RNG round trip, CLI.

All runs use one thread, a tiny SynthPose set (8 train / 4 val images) and ResNet-18 cut at stride 16 with a
64x64 input (16x16 heatmaps), on CPU with the main process loading data.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fasterpose.config import Config, apply_overrides, config_from_dict, dump_config
from fasterpose.engine import train as train_mod
from fasterpose.engine.checkpoint import load_checkpoint, save_checkpoint
from fasterpose.engine.distributed import DistInfo
from fasterpose.engine.train import (
    TrainingDiverged,
    epoch_batches,
    lr_multiplier,
    rng_state,
    set_rng_state,
    train,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_config(data_root: Path, out_dir: Path, **train_overrides: Any) -> Config:
    """ResNet-18 to stride 16 (L = 4), 64x64 input, batch 4, no workers, no evaluation."""
    train_cfg = {
        "epochs": 2,
        "batch_size": 4,
        "eval_every": 0,
        "out_dir": str(out_dir),
        "log_every": 1,
        "device": "cpu",
        "lr": 1e-3,
        **train_overrides,
    }
    return config_from_dict(
        {
            "name": "tiny",
            "model": {"backbone": "resnet18", "pretrained": False, "feature_index": -2},
            "data": {
                "dataset": "synthpose",
                "root": str(data_root),
                "train_ann": "annotations/person_keypoints_train.json",
                "train_images": "train",
                "val_ann": "annotations/person_keypoints_val.json",
                "val_images": "val",
                "input_size": [64, 64],
                "heatmap_size": [16, 16],
                "sigma": 1.0,
                "num_workers": 0,
            },
            "train": train_cfg,
            "eval": {"batch_size": 16},
        }
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fasterpose.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(root, 14, 4, seed=1, min_people=1, max_people=2)  # >= 14 people: >= 3 batches of 4
    return root


@pytest.fixture(scope="module")
def one_epoch_run(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after one finished epoch (last.pth at epoch 1)."""
    out = tmp_path_factory.mktemp("one_epoch")
    result = train(tiny_config(synth_root, out, epochs=1), progress=False)
    assert (result.status, result.epoch, result.iteration) == ("finished", 1, 0)
    return out


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wrap_loss(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[int, torch.Tensor], torch.Tensor]) -> None:
    """Make the trainer's loss pass each (1-based call number, loss value) through ``on_call``."""
    real = train_mod.build_loss
    calls = {"n": 0}

    def build_loss(cfg: Any) -> torch.nn.Module:
        inner = real(cfg)

        class Wrapped(torch.nn.Module):
            def forward(self, *args: torch.Tensor) -> torch.Tensor:
                calls["n"] += 1
                return on_call(calls["n"], inner(*args))

        return Wrapped()

    monkeypatch.setattr(train_mod, "build_loss", build_loss)


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Send SIGINT to this process during the ``call``-th loss evaluation (1-based)."""

    def interrupt(n: int, loss: torch.Tensor) -> torch.Tensor:
        if n == call:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    _wrap_loss(monkeypatch, interrupt)


def test_resume_after_interruption_is_exact(synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job
    straight = train(tiny_config(synth_root, tmp_path / "straight"), progress=False)
    assert straight.status == "finished" and straight.epoch == 2
    per_epoch = straight.global_step // 2
    assert per_epoch >= 3, "the tiny set should give a few batches per epoch"

    # Same run, Ctrl-C during the second step of epoch 2: that step completes, the loop stops
    # before the next one, writes last.pth mid-epoch, and a resume finishes the run.
    _interrupt_at(monkeypatch, per_epoch + 2)
    cut = train(tiny_config(synth_root, tmp_path / "cut"), progress=False)
    assert (cut.status, cut.epoch, cut.iteration) == ("interrupted", 1, 2)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) == handler_before  # handlers restored
    resumed = train(tiny_config(synth_root, tmp_path / "cut"), resume=tmp_path / "cut" / "last.pth", progress=False)
    assert (resumed.status, resumed.epoch, resumed.global_step) == ("finished", 2, straight.global_step)

    a = load_checkpoint(tmp_path / "straight" / "last.pth")
    b = load_checkpoint(tmp_path / "cut" / "last.pth")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == straight.global_step
    # the loss curve of the resumed run continues the straight one step for step
    steps_a = [r for r in map(json.loads, (tmp_path / "straight" / "metrics.jsonl").open()) if r["kind"] == "step"]
    steps_b = [r for r in map(json.loads, (tmp_path / "cut" / "metrics.jsonl").open()) if r["kind"] == "step"]
    assert [r["loss"] for r in steps_a] == [r["loss"] for r in steps_b]


def test_checkpoint_contents_load_weights_only(one_epoch_run: Path) -> None:
    ckpt = load_checkpoint(one_epoch_run / "last.pth")  # weights_only=True inside
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 0 and ckpt["global_step"] > 0
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["sampler"] == {"seed": 0, "world_size": 1}
    assert ckpt["config"]["model"]["feature_index"] == -2
    assert ckpt["git_commit"] is None or len(ckpt["git_commit"]) == 40
    assert {"optimizer", "scheduler", "history", "best"} <= set(ckpt)
    assert (one_epoch_run / "config.yaml").is_file() and (one_epoch_run / "training_curve.png").is_file()


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint(
    synth_root: Path, one_epoch_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _copy_run(one_epoch_run, tmp_path / "run")
    before = _digest(run / "last.pth")
    steps_done = load_checkpoint(run / "last.pth")["global_step"]
    _wrap_loss(monkeypatch, lambda n, loss: loss * float("nan") if n == 2 else loss)
    with pytest.raises(TrainingDiverged) as info:
        train(tiny_config(synth_root, run), resume=run / "last.pth", progress=False)
    message = str(info.value)
    assert f"epoch 2, iteration 2 (global step {steps_done + 2})" in message
    assert "nan" in message and str(run / "last.pth") in message
    assert _digest(run / "last.pth") == before


def test_run_killed_while_saving_keeps_previous_checkpoint(
    synth_root: Path, one_epoch_run: Path, tmp_path: Path
) -> None:
    """A process SIGKILLed halfway through writing last.pth leaves the old last.pth loadable."""
    run = _copy_run(one_epoch_run, tmp_path / "run")
    before = _digest(run / "last.pth")
    cfg_path = tmp_path / "tiny.yaml"
    dump_config(tiny_config(synth_root, run), cfg_path)
    script = textwrap.dedent(f"""
        import os, signal, torch
        from fasterpose.config import load_config
        from fasterpose.engine.train import train
        def dying_save(obj, f, *args, **kwargs):
            f.write(b"partial checkpoint bytes" * 1000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        train(load_config({str(cfg_path)!r}), resume={str(run / "last.pth")!r}, progress=False)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _digest(run / "last.pth") == before
    assert load_checkpoint(run / "last.pth")["epoch"] == 1
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1, "the killed writer leaves only its temporary file behind"


def test_failed_save_leaves_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "last.pth", {"model": {"w": torch.ones(3)}, "config": {}, "epoch": 1})
    before = _digest(path)

    def broken_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "config": {}, "epoch": 2})
    assert _digest(path) == before and load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_lr_schedule_warmup_and_steps() -> None:
    t = config_from_dict({"train": {"lr_steps": [2, 4], "lr_factor": 0.1, "warmup_iters": 4}}).train
    ipe = 10
    assert lr_multiplier(0, ipe, t) == pytest.approx(0.25)
    assert lr_multiplier(3, ipe, t) == pytest.approx(1.0)
    assert lr_multiplier(19, ipe, t) == pytest.approx(1.0)
    assert lr_multiplier(20, ipe, t) == pytest.approx(0.1)
    assert lr_multiplier(40, ipe, t) == pytest.approx(0.01)


def test_rng_state_round_trip_through_weights_only_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    save_checkpoint(tmp_path / "c.pth", {"model": {}, "config": {}, "rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    set_rng_state(load_checkpoint(tmp_path / "c.pth")["rng"])
    got = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2:] == got[2:]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_epoch_batches_shard_the_data(world_size: int) -> None:
    def batches(rank: int, epoch: int, n: int = 24) -> list[list[int]]:
        return epoch_batches(n, 4, epoch, 0, DistInfo(rank, world_size, rank, torch.device("cpu")))

    shards = [batches(r, 5) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps
    assert sorted(i for s in shards for b in s for i in b) == list(range(24))  # disjoint, complete
    assert shards[0] == batches(0, 5) and shards[0] != batches(0, 6)  # a pure function of the epoch
    assert [len(b) for b in epoch_batches(9, 4, 0, 0, DistInfo(0, 1, 0, torch.device("cpu")))] == [4, 4]


def test_train_command_writes_run_folder(synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fasterpose.cli import main

    cfg_path = tmp_path / "tiny.yaml"
    dump_config(apply_overrides(tiny_config(synth_root, tmp_path / "run"), ["train.epochs=1"]), cfg_path)
    rc = main(["train", str(cfg_path), "--no-progress", "--json", "train.eval_every=1", "eval.flip_test=false"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epoch"] == 1 and "AP" in result["metrics"]
    run = tmp_path / "run"
    kinds = [json.loads(line)["kind"] for line in (run / "metrics.jsonl").open()]
    assert kinds[0] == "step" and kinds[-3:] == ["epoch", "eval", "end"]
    for name in ("last.pth", "best.pth", "config.yaml", "training_curve.png", "metrics_val_gt.json"):
        assert (run / name).is_file(), name
    assert load_checkpoint(run / "best.pth")["best"]["metric"] == "AP"
    assert main(["train", str(cfg_path), "--resume", str(tmp_path / "missing.pth")]) == 1
