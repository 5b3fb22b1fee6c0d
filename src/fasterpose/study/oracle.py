"""The codec ceiling of a study setting: ground truth encoded to heatmaps, decoded and scored.

The only place the study reaches into inference (one call), so it can follow the inference code
when that moves.
"""

from __future__ import annotations

from fasterpose.config import Config


def oracle_ap(cfg: Config) -> float:
    """COCO AP on ``cfg``'s val split of the ground truth passed through the heatmap codec (encode ->
    decode): the ceiling any arm can reach at this heatmap size, encoding and decoder."""
    from fasterpose.pipeline.evaluate import CodecOracle, build_eval_set, evaluate_on_dataset

    eval_set = build_eval_set(cfg, "val", use_gt_boxes=True)
    return float(evaluate_on_dataset(CodecOracle(), cfg, eval_set, progress=False).metrics["AP"])
