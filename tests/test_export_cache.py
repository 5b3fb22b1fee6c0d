"""A torch model file run on ONNX Runtime / OpenVINO is exported once, cached by its content hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fasterpose.deploy.onnx_export as onnx_export
from conftest import tiny_model
from fasterpose import user_cache
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import export_cache
from fasterpose.deploy.models import open_runner
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.models.pose_model import PoseModel

TINY = tiny_model()


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(user_cache.CACHE_ENV, str(tmp_path / "cache"))
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    return save_checkpoint(tmp_path / "run" / "last.pth", {"model": model.state_dict(), "config": cfg})


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the ONNX export (one entry per export)."""
    calls: list[int] = []
    real = onnx_export.onnx_bytes

    def counting(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx_export, "onnx_bytes", counting)
    return calls


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_second_load_does_not_export(checkpoint: Path, exports: list[int], runtime: str, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 32)).astype(np.float32)
    first, cfg = open_runner(checkpoint, runtime=runtime)
    assert len(exports) == 1 and first.runtime == runtime and cfg.model.backbone == "resnet18"
    second, _ = open_runner(checkpoint, runtime=runtime)
    assert len(exports) == 1, "the second load exported again"
    np.testing.assert_allclose(second(x), first(x), atol=1e-6)
    cached = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and cached[0].stem == export_cache.cache_key(checkpoint, None)
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.pth"]  # nothing beside the user's file


def test_changed_file_is_exported_again(checkpoint: Path, exports: list[int]) -> None:
    open_runner(checkpoint, runtime="onnxruntime")
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(1)
    save_checkpoint(checkpoint, {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg})
    open_runner(checkpoint, runtime="onnxruntime")
    assert len(exports) == 2  # new content, new key: never the stale graph


def test_torch_runtime_does_not_export(checkpoint: Path, exports: list[int]) -> None:
    runner, _ = open_runner(checkpoint, runtime="torch")
    assert runner.runtime == "torch" and exports == []
