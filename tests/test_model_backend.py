"""The model-file backend: one classifier of a model path (fasterpose.runtimes.formats) and one opener
(fasterpose.deploy.models.open_model) that Predictor, eval, export validation, parity and bench use."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import tiny_model
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import models as backend
from fasterpose.engine.checkpoint import CheckpointError, save_checkpoint
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import save_weights
from fasterpose.runtimes.formats import (
    CHECKPOINT,
    LINEAGE,
    ONNX,
    OPENVINO,
    STATE_DICT,
    WEIGHTS,
    classify,
    exported_kind,
)

TINY = tiny_model()


@pytest.fixture(scope="module")
def tiny() -> tuple[PoseModel, Config]:
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(0)
    return PoseModel.from_config(cfg, pretrained=False).eval(), cfg


@pytest.fixture(scope="module")
def files(tiny: tuple[PoseModel, Config], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fasterpose.deploy.export import export_model

    model, cfg = tiny
    root = tmp_path_factory.mktemp("backend")
    torch.save(model.state_dict(), root / "bare.pth")
    torch.save(
        {"state_dict": {"module.conv1.weight": torch.zeros(2), "final_layer.weight": torch.zeros(1)}},
        root / "pose_resnet_50_256x192.pth",
    )
    return {
        CHECKPOINT: save_checkpoint(root / "last.pth", {"model": model.state_dict(), "config": cfg}),
        WEIGHTS: save_weights(model, cfg, root / "last.safetensors"),
        STATE_DICT: root / "bare.pth",
        LINEAGE: root / "pose_resnet_50_256x192.pth",
        ONNX: export_model(model, cfg, root / "last.onnx", "onnx"),
        OPENVINO: export_model(model, cfg, root / "last.xml", "openvino"),
    }


@pytest.mark.parametrize("kind", [CHECKPOINT, WEIGHTS, STATE_DICT, LINEAGE, ONNX, OPENVINO])
def test_every_kind_is_classified(files: dict[str, Path], kind: str) -> None:
    found = classify(files[kind])
    assert found.kind == kind and found.path == files[kind]
    assert found.exported == (kind in (ONNX, OPENVINO))
    if kind == STATE_DICT:
        assert set(found.payload) == set(torch.load(files[kind], weights_only=True))  # read once, carried


@pytest.mark.parametrize(
    ("name", "kind"), [("m.ONNX", ONNX), ("m.Onnx", ONNX), ("m.XML", OPENVINO), ("m.xMl", OPENVINO)]
)
def test_exported_suffixes_are_compared_case_insensitively(
    files: dict[str, Path], tmp_path: Path, name: str, kind: str
) -> None:
    assert exported_kind(name) == kind
    path = tmp_path / name
    path.write_bytes(files[kind].read_bytes())
    assert classify(path).kind == kind and backend.is_exported(path)


def test_an_unknown_suffix_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a model file") as info:
        classify(path)
    assert str(path) in str(info.value) and ".onnx" in str(info.value) and ".pth" in str(info.value)


def test_missing_file_and_non_model_torch_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.pth"):
        classify(tmp_path / "model.pth")
    torch.save({"epoch": 3}, tmp_path / "notes.pth")
    with pytest.raises(CheckpointError, match="nor a state dict of tensors"):
        classify(tmp_path / "notes.pth")


def test_open_model_runs_each_kind_with_its_config(files: dict[str, Path], tiny: tuple[PoseModel, Config]) -> None:
    model, cfg = tiny
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 32)).astype(np.float32)
    ref = model(torch.from_numpy(x)).detach().numpy()
    for kind in (CHECKPOINT, WEIGHTS, ONNX, OPENVINO):
        runner, own = backend.open_model(files[kind], "torch" if kind in (CHECKPOINT, WEIGHTS) else "auto")
        assert own.model == cfg.model, kind
        np.testing.assert_allclose(runner(x), ref, atol=1e-4, err_msg=kind)
    with pytest.raises(ValueError, match="bare weights file"):
        backend.open_model(files[STATE_DICT], "torch")
    runner, own = backend.open_model(files[STATE_DICT], "torch", cfg=cfg)
    assert own is cfg and runner.source == str(files[STATE_DICT])


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    real = backend.open_model

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    import fasterpose.deploy.predictor

    monkeypatch.setattr(backend, "open_model", fake)
    monkeypatch.setattr(fasterpose.deploy.predictor, "open_model", fake)
    return calls


def test_predictor_eval_export_parity_and_bench_open_through_open_model(
    files: dict[str, Path], tiny: tuple[PoseModel, Config], spy: list[tuple[Any, ...]]
) -> None:
    from fasterpose.bench.latency import make_runner
    from fasterpose.commands.evaluate import open_model as eval_open
    from fasterpose.deploy.parity import parity_report
    from fasterpose.deploy.predictor import Predictor

    model, cfg = tiny
    Predictor(files[ONNX])
    assert spy[-1][0] == files[ONNX]
    args = argparse.Namespace(model=str(files[CHECKPOINT]), runtime=None, precision=None)
    runner, eval_cfg = eval_open(args, cfg, "cpu")
    assert spy[-1][:2] == (str(files[CHECKPOINT]), "torch") and runner.runtime == "torch"
    n = len(spy)
    crops = np.zeros((1, 3, 64, 32), np.float32)
    parity_report(model, cfg, files[ONNX], "fp32", crops)
    assert len(spy) == n + 3  # the torch reference, then the file on ONNX Runtime and on OpenVINO
    make_runner("torch", model, cfg, lambda: b"", 1)
    assert spy[-1][0] is model and spy[-1][1] == "torch"
