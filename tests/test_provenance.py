"""Every benchmark JSON says where and when it was measured (fasterpose.bench.provenance)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from fasterpose.bench.provenance import CPU_FLAGS, cpu_facts, emit, finish, provenance

ROOT = Path(__file__).resolve().parents[1]


def test_provenance_names_date_machine_and_load(tmp_path: Path) -> None:
    block = finish(provenance("python scripts/x.py --fast"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", block["date"])
    assert block["command"] == "python scripts/x.py --fast"
    facts = block["machine"]
    assert facts == cpu_facts()
    assert facts["cores"] >= 1 and set(facts["flags"]) <= set(CPU_FLAGS)
    if Path("/proc/cpuinfo").is_file():
        text = Path("/proc/cpuinfo").read_text()
        assert facts["cpu"] in text
        # a flag is listed exactly when this CPU has it
        has = set(next(ln for ln in text.splitlines() if ln.startswith("flags")).split(":", 1)[1].split())
        assert set(facts["flags"]) == {f for f in CPU_FLAGS if f in has}
    assert "load_average_start" in block and "load_average_end" in block
    out = tmp_path / "sub" / "r.json"
    emit({"a": 1, "provenance": block}, out)
    assert json.loads(out.read_text())["provenance"]["date"] == block["date"]


def test_a_bench_script_writes_its_provenance(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    script = str(ROOT / "scripts" / "bench_eval.py")
    cmd = [sys.executable, script, "--people", "10", "--repeats", "2", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    report = json.loads(out.read_text())
    assert report["oks_nms_ms"]["10"] > 0
    assert "bench_eval.py" in report["provenance"]["command"]
    assert report["provenance"]["machine"]["cpu"]
