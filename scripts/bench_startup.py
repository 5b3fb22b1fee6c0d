"""Start-up overhead of the ``fasterpose`` CLI: wall time and what gets imported.

For each case, runs ``python -X importtime -m fasterpose ...`` in a fresh process ``--repeats``
times (interleaved, case after case) and records the median wall time, the summed self import
time, whether torch was imported, and the ten slowest top-level imports (cumulative).

Cases: ``fasterpose --help``, ``fasterpose eval-results --help``, ``fasterpose predict --help`` and,
with ``--onnx FILE --image IMG``, ``fasterpose predict --checkpoint FILE IMG --whole-image --no-save``
(the flags the current CLI has; the command line is printed in the JSON).

    python scripts/bench_startup.py [--onnx model.onnx --image photo.jpg] [--repeats 5] [--out startup.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def parse_importtime(stderr: str) -> dict[str, Any]:
    """Summed self time, torch presence and the slowest top-level modules of ``-X importtime`` output."""
    self_us = 0
    top: list[tuple[int, str]] = []
    modules = set()
    for line in stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if not m:
            continue
        self_t, cumulative, indent, name = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        self_us += self_t
        modules.add(name)
        if len(indent) <= 1:
            top.append((cumulative, name))
    top.sort(reverse=True)
    return {
        "import_self_s": self_us / 1e6,
        "imports_torch": "torch" in modules,
        "imports_onnxruntime": "onnxruntime" in modules,
        "num_modules": len(modules),
        "slowest_top_level": [{"module": n, "cumulative_s": c / 1e6} for c, n in top[:10]],
    }


def run_case(args: list[str]) -> tuple[float, dict[str, Any], int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fasterpose", *args], capture_output=True, text=True, timeout=300
    )
    return time.perf_counter() - start, parse_importtime(proc.stderr), proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, help="an exported .onnx model for the predict case")
    parser.add_argument("--image", type=Path, help="an image for the predict case")
    parser.add_argument("--predict-args", default="--whole-image --no-save", help="extra predict flags")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (median reported)")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    cases: dict[str, list[str]] = {
        "help": ["--help"],
        "eval-results --help": ["eval-results", "--help"],
        "predict --help": ["predict", "--help"],
    }
    if args.onnx and args.image:
        cases["predict onnx"] = ["predict", "--checkpoint", str(args.onnx), str(args.image), *args.predict_args.split()]
    walls: dict[str, list[float]] = {k: [] for k in cases}
    info: dict[str, dict[str, Any]] = {}
    codes: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, case in cases.items():
            wall, parsed, rc = run_case(case)
            walls[name].append(wall)
            info[name], codes[name] = parsed, rc
    baseline = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - start)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": sys.version.split()[0],
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "repeats": args.repeats,
        "python_startup_s": statistics.median(baseline),
        "cases": {
            name: {
                "argv": ["fasterpose", *cases[name]],
                "returncode": codes[name],
                "wall_s_median": statistics.median(walls[name]),
                "wall_s_all": walls[name],
                "overhead_s": statistics.median(walls[name]) - statistics.median(baseline),
                **info[name],
            }
            for name in cases
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
