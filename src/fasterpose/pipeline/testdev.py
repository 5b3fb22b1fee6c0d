"""``eval --split test-dev``: detector boxes on the image-info file's images -> the server's results file.

:func:`~fasterpose.pipeline.evaluate.evaluate_on_dataset` runs the same pipeline as validation (crop,
runner + flip test, decode, back-project, rescore) on the test-dev split and hands the predictions to
:func:`write_testdev` (OKS-NMS, then :mod:`fasterpose.evaluation.testdev` writes the entries); nothing
is scored (test-dev has no public ground truth). Torch-free, like the rest of :mod:`fasterpose.pipeline`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasterpose.data.coco import coco_image_table, load_json
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.testdev import results_file_name, server_entries, write_server_results
from fasterpose.experiment import Experiment, experiment_of, split_files
from fasterpose.pipeline.topdown import postprocess

if TYPE_CHECKING:
    from fasterpose.config import Config


def testdev_image_ids(cfg: Config) -> list[int]:
    """The image ids of ``data.test_ann`` (the image-info file), sorted."""
    info_file = split_files(cfg.data, "test-dev").annotations
    return sorted(coco_image_table(load_json(info_file), info_file))


def write_testdev(
    predictions: list[PosePrediction],
    experiment: Experiment | Config,
    out_dir: str | os.PathLike[str],
    method: str | None = None,
) -> dict[str, Any]:
    """Rescore + OKS-NMS ``predictions`` and write ``out_dir/person_keypoints_test-dev2017_<method>_results.json``
    (never over an existing file); returns counts and the path."""
    exp = experiment_of(experiment)
    cfg, spec = exp.cfg, exp.spec
    image_ids = testdev_image_ids(cfg)
    kept = postprocess(predictions, spec, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
    entries = server_entries(kept, spec.num_keypoints, image_ids)
    path = write_server_results(entries, Path(out_dir) / results_file_name(method or cfg.name))
    covered = {e["image_id"] for e in entries}
    return {
        "results_file": str(path),
        "people": len(predictions),
        "people_after_nms": len(kept),
        "images": len(image_ids),
        "images_with_people": len(covered),
    }
