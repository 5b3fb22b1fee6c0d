"""The quickstart's AP as a range: ``fasterpose quickstart`` in several fresh clones, one after another.

    python scripts/bench_quickstart.py --runs 3 --out docs/bench/quickstart_fresh_clone.json [--venv .venv]

Each run clones HEAD of this checkout into a new temporary folder and runs README command 1 there
(``bash scripts/setup.sh && .venv/bin/fasterpose quickstart``). With ``--venv`` the clone links that
virtual environment instead of running ``scripts/setup.sh`` (the same packages, minutes saved); the
JSON says which. The quickstart trains for a wall-clock budget, so its AP depends on the machine's
speed and load: every run records the load average at its start and end. Earlier runs already in the
``--out`` JSON are kept (``--fresh`` drops them), so the range grows over sessions. ``--keep-into ROOT``
copies the last run's ``runs/quickstart`` and ``data/synthpose`` into ROOT (never over existing ones),
for ``scripts/remeasure_docs.sh``.
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


def one_run(venv: Path | None, keep_into: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fp_quickstart_") as tmp:
        clone = Path(tmp) / "fasterpose"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
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
            "metrics": metrics,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-clone runs to add (default 3)")
    parser.add_argument("--venv", type=Path, default=None, help="link this venv instead of running setup.sh")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write (earlier runs in it are kept)")
    parser.add_argument("--fresh", action="store_true", help="drop the runs already in --out")
    parser.add_argument("--keep-into", type=Path, default=None,
                        help="copy the last run's runs/quickstart and data/synthpose into this checkout")  # fmt: skip
    args = parser.parse_args(argv)
    prov = provenance()
    runs: list[dict[str, Any]] = []
    if args.out.is_file() and not args.fresh:
        runs = json.loads(args.out.read_text()).get("runs", [])
    for i in range(args.runs):
        run = one_run(args.venv, args.keep_into if i == args.runs - 1 else None)
        run["date"] = provenance()["date"]
        runs.append(run)
        print(f"run {i + 1}/{args.runs}: AP {run['AP']:.4f} in {run['wall_s_command']:.0f} s", file=sys.stderr)
    aps = [r["AP"] for r in runs]
    report = {
        "what": "SynthPose val AP of `fasterpose quickstart` in fresh clones (README command 1)",
        "ap_min": min(aps),
        "ap_max": max(aps),
        "ap_mean": sum(aps) / len(aps),
        "runs": runs,
        "provenance": finish(prov),
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
