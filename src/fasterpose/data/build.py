"""Annotations -> person records, and each record's evaluation crop. No torch here: the runtime
install evaluates exported models through these functions."""

from __future__ import annotations

import numpy as np

from fasterpose.config import Config, DataConfig
from fasterpose.data.coco import parse_coco_detections, parse_coco_keypoints
from fasterpose.data.mpii import parse_mpii
from fasterpose.data.records import PersonRecord
from fasterpose.experiment import Experiment, experiment_of
from fasterpose.geometry import box_to_center_scale


def build_records(
    experiment: Experiment | Config | DataConfig, split: str, use_gt_boxes: bool = True
) -> list[PersonRecord]:
    """Parse the annotations of ``split`` ("train" | "val" | "test-dev") of an experiment into records.

    The files are the experiment's :class:`~fasterpose.experiment.SplitFiles`. ``split="val"`` with
    ``use_gt_boxes=False`` reads the detector boxes in ``data.det_file`` (score >= ``det_score_threshold``).
    The files are validated as they are parsed (the val annotations also as COCO evaluation ground
    truth), so calling this before training finds a malformed validation file before epoch 1.
    ``"test-dev"`` reads the boxes in ``test_det_file`` for the images of the image-info file ``test_ann``.
    """
    if split not in ("train", "val", "test-dev"):
        raise ValueError(f"split must be 'train', 'val' or 'test-dev', got {split!r}")
    exp = experiment_of(experiment)
    data_cfg = exp.cfg.data
    if split == "test-dev":
        return _testdev_records(exp)
    files = exp.split(split)
    ann, images, num_keypoints = files.annotations, files.images, exp.num_keypoints
    if exp.coco_format:
        if split == "val" and not use_gt_boxes:
            if files.detections is None:
                raise ValueError("evaluation with detector boxes needs data.det_file (COCO results format)")
            records = parse_coco_detections(files.detections, ann, images, num_keypoints, data_cfg.det_score_threshold)
            source = files.detections
        else:
            records = parse_coco_keypoints(ann, images, num_keypoints, for_eval=split == "val")
            source = ann
    elif data_cfg.dataset == "mpii":
        if not use_gt_boxes:
            raise ValueError("MPII has no person detections: evaluate it with use_gt_boxes=True")
        head_boxes = ann.parent / "gt_valid.mat" if split == "val" else None
        records = parse_mpii(ann, images, head_boxes if head_boxes and head_boxes.is_file() else None)
        source = ann
    else:
        raise ValueError(f"unknown dataset {data_cfg.dataset!r}; valid: coco, mpii, synthpose")
    if not records:
        raise ValueError(f"{source}: no usable person annotations for split {split!r}")
    return records


def _testdev_records(exp: Experiment) -> list[PersonRecord]:
    """Detector boxes on the images of an image-info file (no ground truth): COCO test-dev."""
    files = exp.splits.get("test-dev")
    if not exp.coco_format or files is None or files.detections is None:
        raise ValueError(
            "split test-dev needs a COCO-format dataset with data.test_ann (an image-info file such as "
            "annotations/image_info_test-dev2017.json) and data.test_det_file (person detections, COCO results format)"
        )
    d = exp.cfg.data
    records = parse_coco_detections(
        files.detections, files.annotations, files.images, exp.num_keypoints, d.det_score_threshold
    )
    if not records:
        raise ValueError(f"{files.detections}: no person detections for the images of {d.test_ann}")
    return records


def initial_crop(
    record: PersonRecord, num_keypoints: int, aspect_ratio: float, padding: float, layout: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and scale (2,) of a record's un-augmented crop: its preset crop (MPII) or its
    box padded to ``aspect_ratio`` (w / h). Errors name the image and annotation."""
    if record.keypoints.shape != (num_keypoints, 3):
        raise ValueError(
            f"{record.image_path} (annotation {record.annotation_id}): keypoints have shape "
            f"{record.keypoints.shape}, layout {layout or num_keypoints} needs ({num_keypoints}, 3)"
        )
    if record.center is not None and record.scale is not None:
        return np.asarray(record.center, np.float32), np.asarray(record.scale, np.float32)
    try:
        return box_to_center_scale(record.box, aspect_ratio, padding)
    except ValueError as exc:
        raise ValueError(f"{record.image_path} (annotation {record.annotation_id}): {exc}") from None
