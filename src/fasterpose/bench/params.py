"""``fasterpose bench params``: params, paper GFLOPs, true GMACs and torchstat MFLOPs of every shipped config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fasterpose.bench.flops import measure_complexity
from fasterpose.config import load_config

# The paper's printed (params in millions, GFLOPs) per config stem: Tables 2, 3, 4 (GFLOPs only) and 5.
# Table 6 rows share FasterPose R50's architecture (Table 2 values).
PAPER_VALUES: dict[str, tuple[float | None, float]] = {
    "simplebaseline_r50_256x192": (34.0, 9.0),
    "simplebaseline_r101_256x192": (53.0, 12.4),
    "simplebaseline_r152_256x192": (68.6, 15.8),
    "fasterpose_r50_256x192": (25.7, 3.8),
    "fasterpose_r101_256x192": (44.7, 7.2),
    "fasterpose_r152_256x192": (60.4, 10.6),
    "simplebaseline_r50_384x288": (34.0, 20.2),
    "simplebaseline_r101_384x288": (53.0, 27.9),
    "simplebaseline_r152_384x288": (68.6, 35.5),
    "fasterpose_r50_384x288": (25.7, 8.6),
    "fasterpose_r101_384x288": (44.7, 16.2),
    "fasterpose_r152_384x288": (60.4, 23.9),
    "table5_feature_8x6": (25.6, 3.8),
    "table5_feature_16x12": (31.9, 5.2),
    "table5_feature_32x24": (33.0, 6.0),
    "table5_feature_64x48": (34.0, 9.0),
    "lpn50_256x192": (2.91, 1.0),
    "fasterpose_lpn50_256x192": (2.90, 0.8),
    "litehrnet18_256x192": (1.13, 0.21),
    "fasterpose_litehrnet18_256x192": (1.13, 0.21),
    "table6_mse": (25.7, 3.8),
    "table6_ce_onehot": (25.7, 3.8),
    "table6_ce_mask": (25.7, 3.8),
    "table6_rce": (25.7, 3.8),
    "mpii_simplebaseline_r50_256x256": (None, 12.0),
    "mpii_simplebaseline_r101_256x256": (None, 16.5),
    "mpii_simplebaseline_r152_256x256": (None, 21.0),
    "mpii_fasterpose_r50_256x256": (None, 5.1),
    "mpii_fasterpose_r101_256x256": (None, 9.6),
    "mpii_fasterpose_r152_256x256": (None, 14.1),
}


def bench_params(config_dir: Path, pattern: str = "*.yaml") -> list[dict[str, Any]]:
    """One row per config: params, paper GFLOPs and true GMACs at the config's input size."""
    from fasterpose.models.pose_model import PoseModel

    rows: list[dict[str, Any]] = []
    for path in sorted(config_dir.glob(pattern)):
        cfg = load_config(path)
        model = PoseModel.from_config(cfg, pretrained=False)
        w, h = cfg.data.input_size
        c = measure_complexity(model, (h, w))
        paper = PAPER_VALUES.get(path.stem)
        rows.append(
            {
                "config": path.stem,
                "input": f"{h}x{w}",
                "params": c.params,
                "gflops_paper": round(c.paper_gflops, 4),
                "gmacs": round(c.gmacs, 4),
                "mflops_torchstat": round(c.torchstat_mflops, 1),
                "paper_params": paper[0] if paper else None,
                "paper_gflops": paper[1] if paper else None,
            }
        )
        del model
    return rows


def format_params_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`bench_params` as a text table with the counters explained."""
    head = (
        f"{'config':36s} {'input':8s} {'params':>12s} {'paper M':>8s} {'GFLOPs*':>8s} {'paper':>6s} "
        f"{'GMACs':>7s} {'tstat M**':>9s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        pp = f"{r['paper_params']:.2f}" if r["paper_params"] is not None else "-"
        pg = f"{r['paper_gflops']:.2f}" if r["paper_gflops"] is not None else "-"
        lines.append(
            f"{r['config']:36s} {r['input']:8s} {r['params']:>12,d} {pp:>8s} {r['gflops_paper']:>8.2f} "
            f"{pg:>6s} {r['gmacs']:>7.2f} {r['mflops_torchstat']:>9.1f}"
        )
    lines.append(
        "* paper GFLOPs: the SimpleBaseline/HRNet counter (weight.numel() x output H x W / 2^30); "
        "GMACs: true multiply-adds / 1e9."
    )
    lines.append(
        "** torchstat MFLOPs (2^20): the counter behind Lite-HRNet's published 205.2M, which the paper prints "
        "as 0.21 GFLOPs; it adds bias, BatchNorm, ReLU and upsampling operations."
    )
    return "\n".join(lines)
