"""The quickstart's training epoch with its data made in the training process or in one worker process.

    python scripts/bench_quickstart_workers.py --rounds 2 --out docs/bench/quickstart_workers_<class>.json

Each variant trains one real epoch of configs/quickstart.yaml (375 steps of 16 SynthPose crops, the
data of ``fasterpose quickstart`` in ``--data``) with ``fasterpose train`` in a fresh process and
reports the epoch's wall seconds from its ``metrics.jsonl``. The variants are data.num_workers 0 and
1 crossed with bfloat16 autocast (train.cpu_amp=true, what a CPU with native bf16 runs) and float32
(cpu_amp=false, what an AVX2-only CPU runs); every round runs every variant in turn, so load drift hits
all alike, and the JSON keeps each round's figure, the medians and the ratios. The samples are the same
in both loaders (one generator per sample, fasterpose.data.dataset), so the variants do the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fasterpose.bench.provenance import emit, finish, provenance

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "bf16, data inline (num_workers 0)": ["train.cpu_amp=true", "data.num_workers=0"],
    "bf16, data in 1 worker": ["train.cpu_amp=true", "data.num_workers=1"],
    "float32, data inline (num_workers 0)": ["train.cpu_amp=false", "data.num_workers=0"],
    "float32, data in 1 worker": ["train.cpu_amp=false", "data.num_workers=1"],
}


def epoch_seconds(data: Path, overrides: list[str], threads: int) -> float:
    """Wall seconds of one quickstart training epoch with ``overrides`` (the epoch line of metrics.jsonl)."""
    with tempfile.TemporaryDirectory(prefix="qs_workers_") as tmp:
        out = Path(tmp) / "run"
        cmd = [
            *(sys.executable, "-m", "fasterpose", "train", str(ROOT / "configs" / "quickstart.yaml")),
            *(f"data.root={data}", f"train.out_dir={out}", "train.epochs=1", "eval.max_images=5", "--no-progress"),
            *overrides,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
        return float(next(x["seconds"] for x in lines if x["kind"] == "epoch"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synthpose", help="the quickstart's SynthPose")
    parser.add_argument("--rounds", type=int, default=2, help="every variant once per round")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if not (args.data / "annotations" / "person_keypoints_train.json").is_file():
        sys.exit(f"{args.data}: no SynthPose here; run `fasterpose quickstart` (or pass --data) first")
    prov = provenance()
    rounds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds):
        for name, overrides in VARIANTS.items():
            rounds[name].append(round(epoch_seconds(args.data, overrides, args.threads), 2))
            print(f"round {r + 1}: {name}: {rounds[name][-1]} s", file=sys.stderr, flush=True)
    med = {name: statistics.median(v) for name, v in rounds.items()}
    names = list(VARIANTS)
    report: dict[str, Any] = {
        "what": "one quickstart training epoch (375 steps of 16 crops), data inline or in one worker process",
        "threads": args.threads,
        "rounds": args.rounds,
        "variants": {name: {"epoch_seconds": rounds[name], "median_s": med[name]} for name in names},
        "worker_over_inline": {
            "bf16": round(med[names[1]] / med[names[0]], 3),
            "float32": round(med[names[3]] / med[names[2]], 3),
        },
        "worker_over_inline_per_round": {
            "bf16": [round(b / a, 3) for a, b in zip(rounds[names[0]], rounds[names[1]], strict=True)],
            "float32": [round(b / a, 3) for a, b in zip(rounds[names[2]], rounds[names[3]], strict=True)],
        },
        "provenance": finish(prov),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
