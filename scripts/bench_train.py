"""Training throughput on CPU: FasterPose R50 (LHR head, RCE) vs SimpleBaseline R50 (3 deconvs, MSE).

One training iteration = forward + loss + backward + Adam step on a batch of random crops, each
model with its own config's loss. The two models run interleaved (FP, SB, FP, SB, ...) after a
warm-up, so both see the same machine load; the median iteration time gives samples per second.
The claim checked: the LHR head makes FasterPose at least 1.3x faster to train.

Memory format and precision follow the configs (``train.channels_last``: NHWC, the engine's
default; fp32 unless ``--bf16``); ``--contiguous`` measures NCHW instead.

    python scripts/bench_train.py [--batch 8] [--iters 5] [--threads N] [--contiguous] [--bf16]
        [--out bench_train.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import Config, load_config
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"FP-R50": "fasterpose_r50_256x192.yaml", "SB-R50": "simplebaseline_r50_256x192.yaml"}


class Trainer:
    """One model, its loss and an Adam optimizer; ``step()`` times one training iteration."""

    def __init__(self, cfg: Config, batch: int, channels_last: bool = False, bf16: bool = False) -> None:
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.bf16 = bf16
        self.model = PoseModel.from_config(cfg, pretrained=False).to(memory_format=fmt).train()
        self.loss = build_loss(cfg.loss)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        (w, h), (hw, hh) = cfg.data.input_size, cfg.data.heatmap_size
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(batch, 3, h, w, generator=g).contiguous(memory_format=fmt)
        self.target = torch.rand(batch, cfg.model.num_keypoints, hh, hw, generator=g) ** 8
        self.weight = torch.ones(batch, cfg.model.num_keypoints)
        self.params = sum(p.numel() for p in self.model.parameters())

    def step(self) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss(self.model(self.images), self.target, self.weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=9, help="timed iterations per model (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--contiguous", action="store_true", help="NCHW memory format (default: the configs' train.channels_last, NHWC)"
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast on CPUs with native bf16)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    prov = provenance()
    if args.threads:
        torch.set_num_threads(args.threads)

    configs = {name: load_config(ROOT / "configs" / f) for name, f in MODELS.items()}
    channels_last = not args.contiguous and all(c.train.channels_last for c in configs.values())
    trainers = {name: Trainer(cfg, args.batch, channels_last, args.bf16) for name, cfg in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for t in trainers.values():
        t.step()  # warm-up: allocator, oneDNN primitive caches
    for _ in range(args.iters):
        for name, t in trainers.items():
            times[name].append(t.step())

    result: dict[str, object] = {
        "benchmark": "training iteration (forward + loss + backward + Adam step), random 256x192 crops",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "channels_last": channels_last,
        "bf16_autocast": args.bf16,
        "batch": args.batch,
        "iters": args.iters,
        "torch": torch.__version__,
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {
            "config": f"configs/{MODELS[name]}",
            "loss": trainers[name].loss.__class__.__name__,
            "params_M": round(trainers[name].params / 1e6, 2),
            "median_s_per_iter": round(med, 4),
            "samples_per_s": round(args.batch / med, 2),
            "iter_s": [round(v, 4) for v in ts],
        }
    ratio = statistics.median(times["SB-R50"]) / statistics.median(times["FP-R50"])
    result["speedup_FP_over_SB"] = round(ratio, 3)
    # Each round times FP then SB back to back: the per-round ratios show how much load moved it.
    rounds = sorted(sb / fp for fp, sb in zip(times["FP-R50"], times["SB-R50"], strict=True))
    result["speedup_per_round"] = {
        "median": round(statistics.median(rounds), 3),
        "min": round(rounds[0], 3),
        "max": round(rounds[-1], 3),
    }
    result["claim_at_least_1.3x"] = bool(ratio >= 1.3)
    result["provenance"] = finish(prov)
    emit(result, args.out, indent=1)


if __name__ == "__main__":
    main()
