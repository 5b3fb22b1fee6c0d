"""Per-step cost of the quickstart's training step under variants, interleaved in one process.

    python scripts/bench_quickstart_step.py --threads 1 --out docs/bench/quickstart_step_options.json

Random data (the step only: forward, RCE loss, backward, Adam), configs/quickstart.yaml's model at
batch 16 unless a variant says otherwise. Each round times ``--steps`` steps of every variant in turn,
so a machine shared with other work slows all variants alike; the JSON keeps every round's figure, the
medians, each variant's ratio to the first, and the load average at the start and end.
``torch.compile`` variants also record their compile time (first steps).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import load_config
from fasterpose.engine.optim import build_optimizer
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data.input_size=[48,64]", "data.heatmap_size=[12,16]"]
VARIANTS: dict[str, dict[str, Any]] = {
    "bf16 channels-last b16 (the quickstart)": {"bf16": True, "cl": True, "bs": 16},
    "float32 channels-last b16": {"bf16": False, "cl": True, "bs": 16},
    "bf16 NCHW b16": {"bf16": True, "cl": False, "bs": 16},
    "float32 NCHW b16": {"bf16": False, "cl": False, "bs": 16},
    "bf16 channels-last b32": {"bf16": True, "cl": True, "bs": 32},
    "float32 channels-last b32": {"bf16": False, "cl": True, "bs": 32},
    "float32 channels-last b16, 64x48 input": {"bf16": False, "cl": True, "bs": 16, "over": SMALL},
    "bf16 channels-last b16, torch.compile": {"bf16": True, "cl": True, "bs": 16, "compile": True},
    "float32 channels-last b16, torch.compile": {"bf16": False, "cl": True, "bs": 16, "compile": True},
}


def make_step(v: dict[str, Any]) -> Callable[[], None]:
    cfg = load_config(ROOT / "configs" / "quickstart.yaml", list(v.get("over", [])))
    torch.manual_seed(0)
    fmt = torch.channels_last if v["cl"] else torch.contiguous_format
    model = PoseModel.from_config(cfg, pretrained=False).to(memory_format=fmt).train()
    opt, loss_fn = build_optimizer(model, cfg.train), build_loss(cfg.loss)
    (w, h), (hw, hh), bs = cfg.data.input_size, cfg.data.heatmap_size, v["bs"]
    x = torch.randn(bs, 3, h, w).contiguous(memory_format=fmt)
    target, weight = torch.rand(bs, 17, hh, hw) ** 8, torch.ones(bs, 17)
    forward = torch.compile(model) if v.get("compile") else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=v["bf16"]):
            loss = loss_fn(forward(x), target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variants")
    parser.add_argument("--out", type=Path, default=None, help="JSON to write")
    args = parser.parse_args(argv)
    prov = provenance()
    torch.set_num_threads(args.threads)
    chosen = {k: v for k, v in VARIANTS.items() if not (args.no_compile and v.get("compile"))}
    steps, warm = {}, {}
    for name, v in chosen.items():
        t0 = time.perf_counter()
        steps[name] = make_step(v)
        for _ in range(3):
            steps[name]()
        warm[name] = round(time.perf_counter() - t0, 2)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times[next(iter(times))])
    rows = {}
    for name, t in times.items():
        med = statistics.median(t)
        rows[name] = {
            "median_ms_per_step": round(med * 1000, 1),
            "ms_per_sample": round(med * 1000 / chosen[name]["bs"], 2),
            "ratio_to_first": round(med / base, 3),
            "first_3_steps_s": warm[name],
            "rounds_ms": [round(x * 1000, 1) for x in t],
        }
        print(f"{name:42s} {med * 1000:7.1f} ms/step  ratio {med / base:.2f}", file=sys.stderr)
    report = {
        "what": "quickstart training step (random data) per variant, interleaved rounds",
        "threads": args.threads,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "variants": rows,
        "provenance": finish(prov),
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
