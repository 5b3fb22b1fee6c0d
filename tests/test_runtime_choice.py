"""``runtime="auto"``: the decision rule, the script that measures it, and the shipped default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fasterpose.bench.runtime_choice import choose_cpu_runtime
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import runtimes
from fasterpose.deploy.runtimes import DEFAULT_CPU_RUNTIME, auto_cpu_runtime
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.models.pose_model import PoseModel

ROOT = Path(__file__).resolve().parents[1]


def rows(ort: tuple[float, float], ov: tuple[float, float]) -> list[dict[str, object]]:
    out = []
    for runtime, ms in (("onnxruntime", ort), ("openvino", ov)):
        for batch, m in zip((1, 32), ms, strict=True):
            out.append({"runtime": runtime, "precision": "fp32", "batch": batch, "ms_median": m})
    return out


def test_decision_rule() -> None:
    clear = choose_cpu_runtime(rows((23.2, 700.0), (20.3, 640.0)), current="onnxruntime")
    assert clear["auto"] == "openvino" and not clear["tie"] and clear["per_batch"][1]["faster"] == "openvino"
    tie = choose_cpu_runtime(rows((20.0, 640.0), (20.2, 636.0)), current="onnxruntime")
    assert tie["tie"] and tie["auto"] == "onnxruntime" and tie["lead"] < 0.03  # noise keeps the default
    split = choose_cpu_runtime(rows((20.0, 700.0), (22.0, 600.0)), current="openvino")
    assert split["fastest"] == "openvino"  # geometric mean: 10% behind at 1, 14% ahead at 32
    with pytest.raises(ValueError, match="both"):
        choose_cpu_runtime(rows((1.0, 1.0), (1.0, 1.0))[:2], current="onnxruntime")


def test_auto_follows_what_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto_cpu_runtime("bf16") == "openvino"
    monkeypatch.setattr(runtimes, "installed", lambda name: name != DEFAULT_CPU_RUNTIME)
    assert auto_cpu_runtime("fp32") != DEFAULT_CPU_RUNTIME  # only the other one installed
    monkeypatch.setattr(runtimes, "installed", lambda name: True)
    assert auto_cpu_runtime("fp32") == DEFAULT_CPU_RUNTIME


def test_script_smoke(tmp_path: Path) -> None:
    """The measuring script runs on a checkpoint and writes its decision (timing here is meaningless)."""
    cfg = apply_overrides(Config(), ["model.backbone=resnet18", "model.pretrained=false", "data.input_size=[32,64]",
                                     "data.heatmap_size=[8,16]"])  # fmt: skip
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "c.pth", {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg})
    out = tmp_path / "choice.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_runtime_choice.py"), "--checkpoint", str(ckpt)]
    cmd += [
        "--runs",
        "2",
        "--warmup",
        "1",
        "--batches",
        "1,2",
        "--threads",
        "1",
        "--peak-size",
        "128",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["weights"].startswith("trained") and {r["runtime"] for r in report["rows"]} == {
        "onnxruntime",
        "openvino",
    }
    assert len(report["rows"]) == 4 and report["decision"]["auto"] in ("onnxruntime", "openvino")
    assert set(report["decision"]["per_batch"]) == {"1", "2"}


def test_shipped_default_matches_the_committed_measurement() -> None:
    committed = ROOT / "docs" / "bench" / "runtime_choice.json"
    if not committed.is_file():
        pytest.skip("no committed runtime-choice measurement yet (scripts/bench_runtime_choice.py, quiet machine)")
    assert json.loads(committed.read_text())["decision"]["auto"] == DEFAULT_CPU_RUNTIME
