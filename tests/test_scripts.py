"""The benchmark scripts import what they use and parse their arguments (``--help`` exits 0)."""

from __future__ import annotations

import re
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


def _remeasure_commands() -> list[tuple[list[str], list[str]]]:
    """(the command that takes them, the --options given) for each call in scripts/remeasure_docs.sh."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "scripts" / "remeasure_docs.sh").read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        words = line.split()
        if '"$PY"' in words and words[words.index('"$PY"') + 1].startswith("scripts/"):
            cmd = [sys.executable, str(root / words[words.index('"$PY"') + 1])]
        elif '"$FP"' in words:
            i = words.index('"$FP"')
            cmd = [sys.executable, "-m", "fasterpose", *words[i + 1 : i + 3]]
        else:
            continue
        calls.append((cmd, [w.split("=")[0] for w in words if w.startswith("--")]))
    return calls


def test_remeasure_docs_passes_only_options_its_commands_take() -> None:
    calls = _remeasure_commands()
    assert len(calls) >= 10, calls  # every figure the docs quote
    for cmd, options in calls:
        out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (cmd, out.stderr[-2000:])
        takes = set(re.findall(r"--[A-Za-z][\w-]*", out.stdout))
        missing = [o for o in options if o not in takes]
        assert not missing, f"{' '.join(cmd[1:])} does not take {missing}"
