"""``eval --split test-dev``: detector boxes on the image-info file's images -> the server's results file.

The same pipeline as validation (crop, runner + flip test, decode, back-project, rescore, OKS-NMS)
on any model file, then :mod:`fasterpose.evaluation.testdev` writes the entries; nothing is scored
(test-dev has no public ground truth). Torch-free, like the rest of :mod:`fasterpose.pipeline`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasterpose.data.coco import coco_image_table, load_json
from fasterpose.data.workers import capped_workers
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.testdev import results_file_name, server_entries, write_server_results
from fasterpose.layouts import resolve_layout
from fasterpose.pipeline.evaluate import EvalSet, build_eval_set, predict_eval_set
from fasterpose.pipeline.topdown import TopDownPipeline, postprocess

if TYPE_CHECKING:
    from fasterpose.config import Config


def testdev_image_ids(cfg: Config) -> list[int]:
    """The image ids of ``data.test_ann`` (the image-info file), sorted."""
    if not cfg.data.test_ann:
        raise ValueError("data.test_ann is not set: the image-info file of the test split")
    info_file = Path(cfg.data.root) / cfg.data.test_ann
    return sorted(coco_image_table(load_json(info_file), info_file))


def write_testdev(
    predictions: list[PosePrediction], cfg: Config, out_dir: str | os.PathLike[str], method: str | None = None
) -> dict[str, Any]:
    """Rescore + OKS-NMS ``predictions`` and write ``out_dir/person_keypoints_test-dev2017_<method>_results.json``
    (never over an existing file); returns counts and the path."""
    image_ids = testdev_image_ids(cfg)
    spec = resolve_layout(cfg.data)
    kept = postprocess(predictions, spec, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
    entries = server_entries(kept, spec.num_keypoints, image_ids)
    path = write_server_results(entries, Path(out_dir) / results_file_name(method or cfg.name))
    covered = {e["image_id"] for e in entries}
    return {"results_file": str(path), "people": len(predictions), "people_after_nms": len(kept),
            "images": len(image_ids), "images_with_people": len(covered)}  # fmt: skip


def predict_testdev(
    pipeline: TopDownPipeline,
    cfg: Config,
    out_dir: str | os.PathLike[str],
    method: str | None = None,
    progress: bool = True,
    num_workers: int | None = None,
    eval_set: EvalSet | None = None,
) -> dict[str, Any]:
    """Predict every test-dev box with ``pipeline`` in one process and write the results file."""
    testdev_image_ids(cfg)  # a missing image-info file is named before any image is read
    es = build_eval_set(cfg, "test-dev", use_gt_boxes=False) if eval_set is None else eval_set
    workers = capped_workers(cfg.data.num_workers) if num_workers is None else num_workers
    preds = predict_eval_set(pipeline, es, workers, progress)
    return write_testdev(preds, cfg, out_dir, method)
