"""Time a few training steps of study arms (forward, backward, Adam) to estimate what a planned regime costs.

Compute only (random crops and targets of the arm's sizes, batch = the arm's, 1 torch thread): data loading
and the per-epoch evaluation are left out, so a run's cost is estimated as the committed CPU seconds of a
finished reference run (``--reference-arm`` of ``--reference-json``) times this machine's step-time ratio of
the arm to the reference arm. Writes JSON (machine class, date, command, per arm: ms/step, ratio, estimate).

    OMP_NUM_THREADS=1 python scripts/time_study_steps.py --steps 20 --out docs/bench/study_step_timing_amx.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from fasterpose.bench.provenance import cpu_facts
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel
from fasterpose.study import load_study, plan_runs

# (study folder, regime, arm): the arms whose new runs the plan in docs/results.md needs
ARMS = [
    ("configs/study", "scratch", "lr_mse"),
    ("configs/study", "scratch", "lr_rce"),
    ("configs/study", "scratch", "hr_mse"),
    ("configs/study", "scratch", "t5_1deconv"),
    ("configs/study_power", "scratch", "t5_lr_2conv"),
    ("configs/study_power", "scratch", "lr_ce_mask_area"),
    ("configs/study_geometry", "paper_geometry", "lr_rce"),
    ("configs/study_geometry", "paper_geometry", "lr_mse"),
    ("configs/study_geometry", "paper_geometry", "hr_mse_3deconv"),
]


def step_ms(folder: str, regime: str, arm: str, steps: int) -> tuple[float, int]:
    """Median ms per training step of ``arm`` in ``regime`` (after 3 warm-up steps), and its steps per run."""
    study = load_study(folder)
    cfg = next(
        p.cfg
        for p in plan_runs(study, 1, Path("/tmp/unused"), Path(study.dataset.dir))
        if p.arm == arm and p.regime == regime
    )
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg, pretrained=False).train()
    loss_fn, opt = build_loss(cfg.loss), torch.optim.Adam(model.parameters(), lr=1e-3)
    w, h = cfg.data.input_size
    hw, hh = cfg.data.heatmap_size
    b, k = cfg.train.batch_size, 17
    x, t, tw = torch.randn(b, 3, h, w), torch.rand(b, k, hh, hw), torch.ones(b, k)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), t, tw).backward()
        opt.step()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    per_run = cfg.train.epochs * (study.dataset.num_train // b)
    return sorted(times)[len(times) // 2], per_run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reference-json", default="docs/study_results.json")
    ap.add_argument("--reference-arm", default="lr_mse")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ref = json.loads(Path(args.reference_json).read_text())
    ref_runs = ref["regimes"]["scratch"]["arms"][args.reference_arm]["runs"]
    ref_cpu = [r["cpu_seconds"] for r in ref_runs if r["cpu_seconds"]]
    ref_s = sum(ref_cpu) / len(ref_cpu)
    rows = [dict(zip(("study", "regime", "arm"), a, strict=True)) for a in ARMS]
    for row in rows:
        row["ms_per_step"], row["steps_per_run"] = step_ms(row["study"], row["regime"], row["arm"], args.steps)
    base = next(r["ms_per_step"] for r in rows if r["arm"] == args.reference_arm and r["regime"] == "scratch")
    for row in rows:
        row["ratio_to_reference"] = row["ms_per_step"] / base
        row["estimated_cpu_seconds_per_run"] = row["ratio_to_reference"] * ref_s
    facts = cpu_facts()
    report = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "threads": 1,
        "reference": {
            "arm": args.reference_arm,
            "json": args.reference_json,
            "cpu_seconds_per_run": ref_s,
            "machine": ref.get("hardware"),
        },
        "arms": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=1))
    for row in rows:
        print(f"{row['regime']}/{row['arm']}: {row['ms_per_step']:.1f} ms/step, x{row['ratio_to_reference']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
