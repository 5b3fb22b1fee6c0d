"""Checkpoint and run-folder safety: umask, disk full, wrong files, bit flips, resume mismatches, locks.

Each error is asserted to name the file or key it is about. Nothing here trains a model.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from fasterpose.config import config_from_dict, dump_config
from fasterpose.engine.checkpoint import (
    Best,
    CheckpointError,
    TrainingState,
    load_checkpoint,
    load_model_from_checkpoint,
    restore_training_state,
    save_checkpoint,
    save_training_state,
)
from fasterpose.engine.run_folder import RunFolder, RunFolderError


def _state(optimizer: str = "adam") -> TrainingState:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters()) if optimizer == "adam" else torch.optim.SGD(model.parameters(), 0.1)
    return TrainingState(
        model=model,
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        best=Best("AP"),
        seed=0,
        world_size=1,
    )


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_checkpoint_keeps_the_users_umask(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "last.pth", {"model": {}, "config": {}})
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_disk_full_during_save_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "last.pth", {"model": {"w": torch.ones(2)}, "config": {}, "epoch": 1})

    def full_disk(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"some bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as info:
        save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "config": {}, "epoch": 2})
    assert str(path) in str(info.value) and "disk is full" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_folder_passed_as_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "last.pth", {"model": {}, "config": {}})
    with pytest.raises(CheckpointError, match="is a folder") as info:
        load_checkpoint(tmp_path)
    assert str(tmp_path / "last.pth") in str(info.value)


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("model.onnx", b"\x08\x08\x12\x07pytorch", "ONNX"),
        ("model.xml", b"<?xml version", "OpenVINO"),
        ("model.pth", b"<?xml version", "XML"),
    ],
)
def test_exported_model_passed_as_checkpoint(tmp_path: Path, name: str, head: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(head + b"\0" * 64)
    with pytest.raises(CheckpointError, match=kind) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "not a training checkpoint" in str(info.value)


def test_flipped_bit_in_weights_is_refused(tmp_path: Path) -> None:
    weights = torch.arange(1000, dtype=torch.float32) * 1.2345
    path = save_checkpoint(tmp_path / "last.pth", {"model": {"w": weights}, "config": {}})
    data = bytearray(path.read_bytes())
    at = bytes(data).find(weights.numpy().tobytes())
    assert at > 0, "the tensor's bytes are stored as they are"
    data[at + 401] ^= 0x10  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="content hash") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_resume_with_another_optimizer_or_without_optimizer_state(tmp_path: Path) -> None:
    adam = config_from_dict({"train": {"optimizer": "adam"}})
    sgd = config_from_dict({"train": {"optimizer": "sgd"}})
    path = save_training_state(tmp_path / "last.pth", _state("adam"), adam, None)
    with pytest.raises(CheckpointError) as info:
        restore_training_state(path, _state("sgd"), sgd)
    assert str(path) in str(info.value) and "train.optimizer=adam" in str(info.value)
    assert "train.optimizer=sgd" in str(info.value)
    restore_training_state(path, _state("adam"), adam)  # the same optimizer resumes

    bare = save_checkpoint(tmp_path / "weights.pth", {"model": _state().model.state_dict(), "config": {}})
    with pytest.raises(CheckpointError, match="cannot resume") as info:
        restore_training_state(bare, _state(), adam)
    assert str(bare) in str(info.value) and "optimizer" in str(info.value)


def test_checkpoint_does_not_need_the_imagenet_weights_file(tmp_path: Path) -> None:
    """Trained with model.weights=FILE, the checkpoint loads after FILE is gone (it holds every weight)."""
    from fasterpose.models.pose_model import PoseModel

    cfg = config_from_dict(
        {
            "model": {
                "backbone": "resnet18",
                "pretrained": True,
                "feature_index": -2,
                "weights": str(tmp_path / "moved_away.pth"),
            }
        }
    )
    model = PoseModel.from_config(cfg, pretrained=False)
    path = save_checkpoint(tmp_path / "last.pth", {"model": model.state_dict(), "config": cfg})
    loaded, loaded_cfg = load_model_from_checkpoint(path)
    assert loaded_cfg.model.weights == str(tmp_path / "moved_away.pth")
    first = next(iter(model.state_dict()))
    assert torch.equal(loaded.state_dict()[first], model.state_dict()[first])


# ---------------------------------------------------------------- run folder


def test_folder_with_a_run_is_refused_unless_resumed_or_overwritten(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"kind": "end"}\n')
    (tmp_path / "last.pth").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError) as info, RunFolder.claim(tmp_path, resume=False):
        pass
    assert str(tmp_path) in str(info.value) and "--resume" in str(info.value) and "--overwrite" in str(info.value)
    assert (tmp_path / "last.pth").read_bytes() == b"old"
    with RunFolder.claim(tmp_path, resume=True):
        assert (tmp_path / "last.pth").is_file()
    with RunFolder.claim(tmp_path, resume=False, overwrite=True):
        assert not (tmp_path / "last.pth").exists() and not (tmp_path / "metrics.jsonl").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the run's own files go


def test_lock_keeps_a_second_run_out_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    with RunFolder.claim(tmp_path, resume=False):
        assert (tmp_path / ".lock").is_file()
        with pytest.raises(RunFolderError, match=f"pid {os.getpid()}") as info, RunFolder.claim(tmp_path, True):
            pass
        assert str(tmp_path) in str(info.value)
    assert not (tmp_path / ".lock").exists()  # released

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with RunFolder.claim(tmp_path, resume=False):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_claim_cleans_temp_files_and_a_cut_metrics_line(tmp_path: Path) -> None:
    (tmp_path / ".last.pth.0123456789ab.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".my_own.tmp").write_bytes(b"not ours")
    (tmp_path / "metrics.jsonl").write_text('{"kind": "step", "step": 1}\n{"kind": "st')
    with RunFolder.claim(tmp_path, resume=True):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".my_own.tmp", "metrics.jsonl"]
    assert (tmp_path / "metrics.jsonl").read_text() == '{"kind": "step", "step": 1}\n'


def test_train_command_refuses_a_folder_holding_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fasterpose.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pth").write_bytes(b"an earlier run")
    cfg = tmp_path / "c.yaml"
    dump_config(config_from_dict({"train": {"out_dir": str(run), "device": "cpu"}}), cfg)
    assert main(["train", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert str(run) in err and "already holds a run" in err and len(err.strip().splitlines()) == 1
    assert (run / "last.pth").read_bytes() == b"an earlier run"


def test_unwritable_run_folder_is_refused_before_work(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match="cannot create") as info, RunFolder.claim(parent / "run", False):
            pass
        assert str(parent / "run") in str(info.value)
    finally:
        parent.chmod(0o700)
