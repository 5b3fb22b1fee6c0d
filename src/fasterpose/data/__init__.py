"""Annotations -> person records -> augmented, encoded top-down samples.

Public API: :func:`build_records`, :class:`TopDownDataset`, :func:`seed_worker`,
:func:`read_image`, :class:`ImageReadError`, :class:`AnnotationError` (both :class:`DataError`),
and the record types. Loaded on first use: the parsers and records need no torch, the dataset does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AnnotationError": ".errors",
    "DataError": ".errors",
    "parse_coco_detections": ".coco",
    "parse_coco_keypoints": ".coco",
    "build_records": ".build",
    "SampleError": ".dataset",
    "TopDownDataset": ".dataset",
    "seed_worker": ".dataset",
    "ImageReadError": ".image_io",
    "read_image": ".image_io",
    "parse_mpii": ".mpii",
    "PersonRecord": ".records",
    "SampleMeta": ".records",
}
__all__ = [
    "AnnotationError",
    "DataError",
    "ImageReadError",
    "PersonRecord",
    "SampleError",
    "SampleMeta",
    "TopDownDataset",
    "build_records",
    "parse_coco_detections",
    "parse_coco_keypoints",
    "parse_mpii",
    "read_image",
    "seed_worker",
]

if TYPE_CHECKING:
    from fasterpose.data.build import build_records
    from fasterpose.data.coco import parse_coco_detections, parse_coco_keypoints
    from fasterpose.data.dataset import SampleError, TopDownDataset, seed_worker
    from fasterpose.data.errors import AnnotationError, DataError
    from fasterpose.data.image_io import ImageReadError, read_image
    from fasterpose.data.mpii import parse_mpii
    from fasterpose.data.records import PersonRecord, SampleMeta


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
