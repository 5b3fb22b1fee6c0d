"""The codec ceiling of a study setting: ground truth encoded to heatmaps, decoded and scored.

The only place the study reaches into inference (one call), so it can follow the inference code
when that moves.
"""

from __future__ import annotations

from fasterpose.config import Config


def oracle_ap(cfg: Config) -> float:
    """COCO AP on ``cfg``'s val split of the ground truth passed through the heatmap codec (encode ->
    decode): the ceiling any arm can reach at this heatmap size, encoding and decoder."""
    from fasterpose.engine.inference import build_eval_dataset, predict_oracle, score_predictions

    dataset = build_eval_dataset(cfg, "val", use_gt_boxes=True)
    preds = predict_oracle(cfg, "val", progress=False, dataset=dataset, num_workers=0)
    return float(score_predictions(preds, cfg, dataset, "val")[0]["AP"])
