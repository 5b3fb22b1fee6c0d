"""The benchmark scripts import what they use and parse their arguments (``--help`` exits 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted(p for p in (Path(__file__).resolve().parents[1] / "scripts").glob("bench_*.py"))


def test_every_bench_script_is_listed() -> None:
    assert {p.stem for p in SCRIPTS} >= {"bench_data", "bench_eval", "bench_train", "bench_predict_overhead"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_help(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
