"""``eval --split test-dev``: detector boxes on the image-info file's images -> the server's results file.

Same steps as validation (crop, model + flip test, decode, back-project, rescore, OKS-NMS), then
:mod:`fasterpose.evaluation.testdev` writes the entries; nothing is scored (test-dev has no public
ground truth).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fasterpose.config import Config
from fasterpose.data.coco import coco_image_table, load_json
from fasterpose.engine.inference import build_eval_dataset, postprocess, predict_dataset
from fasterpose.evaluation.testdev import results_file_name, server_entries, write_server_results
from fasterpose.layouts import resolve_layout


def predict_testdev(
    model: nn.Module,
    cfg: Config,
    out_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    method: str | None = None,
    progress: bool = True,
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/person_keypoints_test-dev2017_<method>_results.json``; returns counts and the path."""
    d = cfg.data
    if not d.test_ann:
        raise ValueError("data.test_ann is not set: the image-info file of the test split")
    info_file = Path(d.root) / d.test_ann
    image_ids = sorted(coco_image_table(load_json(info_file), info_file))
    dataset = build_eval_dataset(cfg, "test-dev", use_gt_boxes=False)
    preds = predict_dataset(model, cfg, device, "test-dev", progress=progress, dataset=dataset, num_workers=num_workers)
    spec = resolve_layout(d)
    kept = postprocess(preds, spec, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
    entries = server_entries(kept, spec.num_keypoints, image_ids)
    path = write_server_results(entries, Path(out_dir) / results_file_name(method or cfg.name))
    covered = {e["image_id"] for e in entries}
    return {"results_file": str(path), "people": len(preds), "people_after_nms": len(kept),
            "images": len(image_ids), "images_with_people": len(covered)}  # fmt: skip
