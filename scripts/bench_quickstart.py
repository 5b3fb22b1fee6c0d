"""The quickstart's AP, steps and wall time on this machine: ``fasterpose quickstart`` in fresh clones.

    python scripts/bench_quickstart.py --runs 1 --venv .venv          # -> docs/bench/quickstart_<class>.json

Each run clones HEAD of this checkout into a new temporary folder and runs README command 1 there
(``bash scripts/setup.sh && .venv/bin/fasterpose quickstart``). With ``--venv`` the clone links that
virtual environment instead of running ``scripts/setup.sh`` (the same packages, minutes saved); the
JSON says which. The quickstart trains a fixed schedule, so its AP should not depend on the machine's
speed or load (only bf16 vs float32 arithmetic may move it a little); its wall time does: every run
records the load average at its start and end, the steps done and planned, the precision and threads.

The JSON is named after the machine's class (``--out`` to choose): ``quickstart_avx512_bf16_amx.json``
(AVX-512 with BF16 and AMX: bf16 autocast), ``quickstart_avx512.json``, ``quickstart_avx2.json``
(float32), ... Earlier runs already in it are kept (``--fresh`` drops them), so the range grows over
sessions. ``--keep-into ROOT`` copies the last run's ``runs/quickstart`` and ``data/synthpose`` into
ROOT (never over existing ones), for ``scripts/remeasure_docs.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fasterpose.bench.provenance import emit, finish, load_average, provenance

ROOT = Path(__file__).resolve().parents[1]


def machine_class(flags: list[str]) -> str:
    """``avx512_bf16_amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``other``: what decides the quickstart's
    precision (bf16 autocast needs native bf16) and, roughly, its speed."""
    have = set(flags)
    if "avx512_bf16" in have:
        return "avx512_bf16_amx" if "amx_bf16" in have else "avx512_bf16"
    if "avx512f" in have:
        return "avx512"
    return "avx2" if "avx2" in have else "other"


def one_run(venv: Path | None, keep_into: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fp_quickstart_") as tmp:
        clone = Path(tmp) / "fasterpose"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
        ).stdout.strip()
        if venv is not None:
            (clone / ".venv").symlink_to(venv.resolve())
            cmd = ".venv/bin/fasterpose quickstart"
        else:
            cmd = "bash scripts/setup.sh && .venv/bin/fasterpose quickstart"
        load0, t0 = load_average(), time.monotonic()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if venv is not None:  # a linked venv's editable install points at its own checkout: the clone's code first
            env["PYTHONPATH"] = str(clone / "src")
        proc = subprocess.run(["bash", "-c", cmd], cwd=clone, capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"quickstart failed in {clone} (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        metrics = json.loads((clone / "runs" / "quickstart" / "metrics.json").read_text())
        eta = [line for line in proc.stdout.splitlines() if line.startswith("ETA: ")]
        if keep_into is not None:  # the run folder and its data, for benchmarks that need a trained checkpoint
            for part in ("runs/quickstart", "data/synthpose"):
                dest = keep_into / part
                if dest.exists():
                    raise SystemExit(f"{dest} exists: not replaced (move it away, or drop --keep-into)")
                shutil.copytree(clone / part, dest)
        return {
            "commit": commit,
            "command": cmd,
            "setup": "linked venv" if venv is not None else "scripts/setup.sh",
            "wall_s_command": round(wall, 1),
            "load_average": [load0, load_average()],
            "AP": metrics["AP"],
            "checkpoint": metrics.get("checkpoint"),
            "steps": metrics.get("steps"),
            "steps_planned": metrics.get("steps_planned"),
            "precision": metrics.get("precision"),
            "threads": metrics.get("threads"),
            "eta_line": eta[0] if eta else None,
            "metrics": metrics,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh-clone runs to add (default 1)")
    parser.add_argument("--venv", type=Path, default=None, help="link this venv instead of running setup.sh")
    parser.add_argument(
        "--out", type=Path, default=None, help="the JSON (default docs/bench/quickstart_<class>.json); runs kept"
    )
    parser.add_argument("--fresh", action="store_true", help="drop the runs already in --out")
    parser.add_argument("--note", default=None, help="a remark stored with each run (e.g. what else ran)")
    parser.add_argument(
        "--keep-into",
        type=Path,
        default=None,
        help="copy the last run's runs/quickstart and data/synthpose into this checkout",
    )
    args = parser.parse_args(argv)
    prov = provenance()
    klass = machine_class(prov["machine"]["flags"])
    out = args.out or ROOT / "docs" / "bench" / f"quickstart_{klass}.json"
    runs: list[dict[str, Any]] = []
    if out.is_file() and not args.fresh:
        runs = json.loads(out.read_text()).get("runs", [])
    for i in range(args.runs):
        run = one_run(args.venv, args.keep_into if i == args.runs - 1 else None)
        run["date"] = provenance()["date"]
        run["machine"] = {**provenance()["machine"], "class": klass}
        if args.note:
            run["note"] = args.note
        runs.append(run)
        print(
            f"run {i + 1}/{args.runs}: AP {run['AP']:.4f}, {run['steps']} steps, {run['wall_s_command']:.0f} s, "
            f"load {run['load_average']}",
            file=sys.stderr,
        )
    aps = [r["AP"] for r in runs]
    report = {
        "what": "`fasterpose quickstart` in fresh clones (README command 1): SynthPose val AP of last.pth "
        "after the fixed schedule, and the command's wall time",
        "machine_class": klass,
        "ap_min": min(aps),
        "ap_max": max(aps),
        "wall_s_max": max(r["wall_s_command"] for r in runs),
        "runs": runs,
        "provenance": finish(prov),
    }
    emit(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
