"""``runtime="auto"``: the decision rule, the script that measures it, and the shipped default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fasterpose import cpuinfo
from fasterpose.bench.provenance import cpu_class
from fasterpose.bench.runtime_choice import choose_cpu_runtime
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import runtimes
from fasterpose.deploy.runtimes import AUTO_BY_CPU_CLASS, DEFAULT_CPU_RUNTIME, auto_cpu_runtime
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
    best = AUTO_BY_CPU_CLASS.get(cpu_class(), DEFAULT_CPU_RUNTIME)  # this CPU's measured choice
    monkeypatch.setattr(runtimes, "installed", lambda name: name != best)
    assert auto_cpu_runtime("fp32") != best  # only the other one installed
    monkeypatch.setattr(runtimes, "installed", lambda name: True)
    assert auto_cpu_runtime("fp32") == best


def test_script_smoke(tmp_path: Path) -> None:
    """The measuring script runs on a checkpoint and writes its decision (timing here is meaningless)."""
    cfg = apply_overrides(
        Config(),
        ["model.backbone=resnet18", "model.pretrained=false", "data.input_size=[32,64]", "data.heatmap_size=[8,16]"],
    )
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
    fp32 = [r for r in report["rows"] if r["precision"] == "fp32"]
    assert report["weights"].startswith("trained") and {r["runtime"] for r in fp32} == {"onnxruntime", "openvino"}
    assert len(fp32) == 4 and report["decision"]["auto"] in ("onnxruntime", "openvino")
    assert report["cpu_class"] == cpu_class() and report["decision"]["auto_here_now"] == auto_cpu_runtime("fp32")
    assert bool(report["bf16_speedup"]) == ("openvino-bf16" not in report["skipped"])  # bf16 timed where it runs
    assert set(report["decision"]["per_batch"]) == {"1", "2"}


def test_class_table_matches_the_committed_measurements() -> None:
    """One committed JSON per measured CPU class; auto's table says what each of them decided."""
    committed = sorted((ROOT / "docs" / "bench").glob("runtime_choice_*.json"))
    classes = {}
    for path in committed:
        report = json.loads(path.read_text())
        cls = cpu_class(report["provenance"]["machine"]["flags"])
        assert path.name == f"runtime_choice_{cls}.json", f"{path.name} was measured on class {cls}"
        classes[cls] = report["decision"]["auto"]
    assert {"avx2", "amx"} <= set(classes)  # both classes among this project's machines
    assert classes == AUTO_BY_CPU_CLASS


@pytest.mark.parametrize(
    ("flags", "cls"),
    [
        ("fpu sse2 avx avx2 fma", "avx2"),
        ("avx2 fma avx512f avx512bw", "avx512"),
        ("avx2 avx512f avx512_vnni", "avx512_bf16_vnni"),
        ("avx2 avx512f avx512_bf16 avx512_vnni", "avx512_bf16_vnni"),
        ("avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8", "amx"),
        ("fp asimd sve", "unknown"),
        ("", "unknown"),
    ],
)
def test_auto_follows_the_class_table(monkeypatch: pytest.MonkeyPatch, flags: str, cls: str) -> None:
    """Stub /proc/cpuinfo flags: the class detected at run time picks auto's fp32 runtime from the table."""
    monkeypatch.setattr(cpuinfo, "read_cpuinfo", lambda: {"flags": flags})
    monkeypatch.setattr(runtimes, "installed", lambda name: True)
    assert cpu_class() == cls
    table = {"avx2": "onnxruntime", "avx512": "openvino", "avx512_bf16_vnni": "openvino", "amx": "onnxruntime"}
    monkeypatch.setattr(runtimes, "AUTO_BY_CPU_CLASS", table)
    assert auto_cpu_runtime("fp32") == table.get(cls, DEFAULT_CPU_RUNTIME)
    monkeypatch.setattr(runtimes, "AUTO_BY_CPU_CLASS", {c: "openvino" for c in table})
    assert auto_cpu_runtime("fp32") == ("openvino" if cls != "unknown" else DEFAULT_CPU_RUNTIME)
    assert auto_cpu_runtime("bf16") == "openvino"


@pytest.mark.parametrize(
    ("flags", "bf16"),
    [("avx2 avx512f avx512_bf16", True), ("avx2 amx_bf16 amx_tile", True), ("avx2 avx512f avx512_vnni", False)],
)
def test_bf16_check_reads_the_one_cpuinfo_reader(monkeypatch: pytest.MonkeyPatch, flags: str, bf16: bool) -> None:
    """The bf16 check and the CPU class read the same /proc/cpuinfo flags (fasterpose.cpuinfo)."""
    from fasterpose.runtimes.device import has_bf16

    monkeypatch.setattr(cpuinfo, "read_cpuinfo", lambda: {"flags": flags})
    has_bf16.cache_clear()  # it is asked once per process; forget this machine's answer, and the stub's after
    try:
        assert has_bf16("cpu") is bf16
    finally:
        has_bf16.cache_clear()
    assert (cpu_class() in ("amx", "avx512_bf16_vnni")) or not bf16
