"""Annotations -> person records, and each record's evaluation crop. No torch here: the runtime
install evaluates exported models through these functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fasterpose.config import DataConfig
from fasterpose.data.coco import parse_coco_detections, parse_coco_keypoints
from fasterpose.data.mpii import parse_mpii
from fasterpose.data.records import PersonRecord
from fasterpose.geometry import box_to_center_scale
from fasterpose.layouts import resolve_layout


def build_records(data_cfg: DataConfig, split: str, use_gt_boxes: bool = True) -> list[PersonRecord]:
    """Parse the annotations of ``split`` ("train" | "val" | "test-dev") named by ``data_cfg`` into records.

    Paths are ``data_cfg.root / train_ann`` etc. ``split="val"`` with ``use_gt_boxes=False`` reads
    the detector boxes in ``data_cfg.det_file`` (score >= ``det_score_threshold``). The files are
    validated as they are parsed (the val annotations also as COCO evaluation ground truth), so
    calling this before training finds a malformed validation file before epoch 1. ``"test-dev"``
    reads the boxes in ``test_det_file`` for the images of the image-info file ``test_ann``.
    """
    if split not in ("train", "val", "test-dev"):
        raise ValueError(f"split must be 'train', 'val' or 'test-dev', got {split!r}")
    root = Path(data_cfg.root)
    if split == "test-dev":
        return _testdev_records(data_cfg, root)
    ann = root / (data_cfg.train_ann if split == "train" else data_cfg.val_ann)
    images = root / (data_cfg.train_images if split == "train" else data_cfg.val_images)
    num_keypoints = resolve_layout(data_cfg).num_keypoints
    if data_cfg.dataset in ("coco", "synthpose"):
        if split == "val" and not use_gt_boxes:
            if not data_cfg.det_file:
                raise ValueError("evaluation with detector boxes needs data.det_file (COCO results format)")
            records = parse_coco_detections(
                root / data_cfg.det_file, ann, images, num_keypoints, data_cfg.det_score_threshold
            )
            source = root / data_cfg.det_file
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


def _testdev_records(data_cfg: DataConfig, root: Path) -> list[PersonRecord]:
    """Detector boxes on the images of an image-info file (no ground truth): COCO test-dev."""
    if data_cfg.dataset not in ("coco", "synthpose") or not data_cfg.test_ann or not data_cfg.test_det_file:
        raise ValueError(
            "split test-dev needs a COCO-format dataset with data.test_ann (an image-info file such as "
            "annotations/image_info_test-dev2017.json) and data.test_det_file (person detections, COCO results format)"
        )
    records = parse_coco_detections(
        root / data_cfg.test_det_file,
        root / data_cfg.test_ann,
        root / data_cfg.test_images,
        resolve_layout(data_cfg).num_keypoints,
        data_cfg.det_score_threshold,
    )
    if not records:
        raise ValueError(f"{root / data_cfg.test_det_file}: no person detections for the images of {data_cfg.test_ann}")
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
