"""File sizes: a training checkpoint (model + Adam state + the rest) vs the weights file (model + config).

Builds the model of ``--config`` with random init, creates Adam's state exactly as training would
after its first step (a step on zero gradients: moments allocated, weights unchanged), writes the
checkpoint with the training loop's payload, then the weights file (float32 and float16), and
reports their sizes in bytes. Sizes are deterministic (no timing): any machine gives the same.

    python scripts/bench_weights_size.py [--config configs/fasterpose_r50_256x192.yaml] [--out sizes.json]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import config_to_dict, load_config
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.engine.train import build_optimizer, build_scheduler, rng_state
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import is_weights_file, save_weights

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fasterpose_r50_256x192.yaml"))
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args()
    cfg = load_config(args.config, ["model.pretrained=false"])
    model = PoseModel.from_config(cfg, pretrained=False)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, 1000, cfg.train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # allocates exp_avg / exp_avg_sq per parameter, as the first training step does
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "a zero-gradient step moved weights"
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(
            Path(tmp) / "last.pth",
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": {},
                "epoch": 0,
                "iteration": 1,
                "global_step": 1,
                "rng": rng_state(),
                "sampler": {"seed": 0, "world_size": 1},
                "config": config_to_dict(cfg),
                "git_commit": None,
                "metrics": {},
                "best": {},
                "history": {"steps": [], "evals": []},
            },
        )
        fp32 = save_weights(model, cfg, Path(tmp) / "last.safetensors")
        fp16 = save_weights(model, cfg, Path(tmp) / "last_fp16.safetensors", half=True)
        assert is_weights_file(fp32) and is_weights_file(fp16)
        sizes = {
            "checkpoint": ckpt.stat().st_size,
            "weights_fp32": fp32.stat().st_size,
            "weights_fp16": fp16.stat().st_size,
        }
    params = sum(p.numel() for p in model.parameters())
    report = {
        "config": str(Path(args.config).relative_to(ROOT) if Path(args.config).is_relative_to(ROOT) else args.config),
        "parameters": params,
        "bytes": sizes,
        "mib": {k: round(v / 2**20, 1) for k, v in sizes.items()},
        "checkpoint_over_weights_fp32": round(sizes["checkpoint"] / sizes["weights_fp32"], 2),
        "torch": torch.__version__,
        "provenance": finish(provenance()),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
