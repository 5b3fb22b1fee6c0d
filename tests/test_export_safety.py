"""Export outputs never destroy inputs or earlier files; writes are atomic; a corrupt model file is one line."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from conftest import tiny_model
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import export as export_module
from fasterpose.deploy.models import open_runner
from fasterpose.deploy.runtimes import ModelFileError
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.evaluation.coco import CocoEvaluator
from fasterpose.models.pose_model import PoseModel

TINY = tiny_model()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with last.pth, last.onnx and last.xml/.bin exported from it."""
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("export_safety")
    ckpt = save_checkpoint(root / "last.pth", {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg})
    export_module.export_model(PoseModel.from_config(cfg), cfg, root / "last.onnx", "onnx")
    export_module.export_model(PoseModel.from_config(cfg), cfg, root / "last.xml", "openvino")
    return ckpt.parent


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_export_refuses_its_own_input_and_existing_files(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, before = run / "last.pth", _bytes(run)
    for extra in ([], ["--overwrite"]):  # the input is refused even with --overwrite
        assert main(["export", "--checkpoint", str(ckpt), "--format", "weights", "--out", str(ckpt), *extra]) == 1
        err = capsys.readouterr().err
        assert "would overwrite the input" in err and str(ckpt) in err and len(err.strip().splitlines()) == 1
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx"]) == 1  # last.onnx exists
    err = capsys.readouterr().err
    assert str(run / "last.onnx") in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(["export", "--checkpoint", str(ckpt), "--format", "openvino"]) == 1  # last.xml / .bin exist
    assert str(run / "last.xml") in capsys.readouterr().err
    assert _bytes(run) == before  # nothing was touched
    out = tmp_path / "m.onnx"
    out.write_bytes(b"earlier")
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out), "--json"]) == 1
    assert out.read_bytes() == b"earlier"
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"earlier" and "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_failed_export_keeps_the_earlier_file(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The export is staged in a hidden folder and renamed at the end: a failure half-way (here the
    disk filling up after part of the file is written) leaves the earlier output and no temp file."""
    cfg = apply_overrides(Config(), TINY)
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.xml")
    earlier = {out: b"earlier model"} | ({out.with_suffix(".bin"): b"earlier weights"} if fmt == "openvino" else {})
    for path, data in earlier.items():
        path.write_bytes(data)
    real = export_module.export_onnx

    def fail_half_way(model: object, path: Path, *args: object, **kwargs: object) -> Path:
        real(model, path, *args, **kwargs)  # type: ignore[arg-type]
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "export_onnx", fail_half_way)
    with pytest.raises(OSError, match="disk is full") as info:
        export_module.export_model(PoseModel.from_config(cfg), cfg, out, fmt)
    assert str(out) in str(info.value)
    assert {p: p.read_bytes() for p in earlier} == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in earlier)  # no temp left


def test_results_and_metrics_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A results file whose write fails (disk full at fsync) leaves the earlier file, and says so."""
    from fasterpose.pipeline import evaluate as pipeline_evaluate

    results, metrics = tmp_path / "results_val_gt.json", tmp_path / "metrics_val_gt.json"
    results.write_text("[]")
    metrics.write_text("{}")
    evaluator = CocoEvaluator.__new__(CocoEvaluator)
    evaluator._results = [{"image_id": 1, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="disk is full") as info:
        evaluator.write_results(results)
    assert str(results) in str(info.value) and "intact" in str(info.value)
    with pytest.raises(OSError, match="disk is full"):
        pipeline_evaluate._write_json(metrics, {"metrics": {"AP": 0.5}})
    assert results.read_text() == "[]" and metrics.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics_val_gt.json", "results_val_gt.json"]
    monkeypatch.undo()
    evaluator.write_results(results)
    assert json.loads(results.read_text()) == evaluator._results


@pytest.mark.parametrize("damage", ["truncated onnx", "garbage onnx", "truncated xml", "truncated bin"])
def test_corrupt_model_file_is_one_line_naming_it(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    kind = damage.split()[1]
    stem = tmp_path / "broken"
    if kind == "onnx":
        data = (run / "last.onnx").read_bytes()
        model = stem.with_suffix(".onnx")
        model.write_bytes(data[: len(data) // 2] if damage.startswith("truncated") else b"\x00garbage\xff" * 10)
    else:
        model = stem.with_suffix(".xml")
        xml, binary = (run / "last.xml").read_bytes(), (run / "last.bin").read_bytes()
        model.write_bytes(xml[: len(xml) // 2] if kind == "xml" else xml)
        stem.with_suffix(".bin").write_bytes(binary if kind == "xml" else binary[: len(binary) // 2])
    with pytest.raises(ModelFileError) as info:
        runner, _ = open_runner(model)
        runner(torch.zeros(1, 3, 64, 32).numpy())  # a truncated .bin may surface only when compiled
    assert str(model) in str(info.value) and "re-export" in str(info.value)
    config = tmp_path / "cfg.yaml"
    config.write_text("name: x\n")
    assert main(["eval", str(config), "--model", str(model), "--no-progress"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and str(model) in err[0] and "DecodeError" not in err[0]
