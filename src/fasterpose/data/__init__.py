"""Annotations -> person records -> augmented, encoded top-down samples.

Public API: :func:`build_records`, :class:`TopDownDataset`, :func:`seed_worker`,
:func:`read_image`, :class:`ImageReadError`, :class:`AnnotationError` (both :class:`DataError`),
and the record types.
"""

from .coco import parse_coco_detections, parse_coco_keypoints
from .dataset import SampleError, TopDownDataset, build_records, seed_worker
from .errors import AnnotationError, DataError
from .image_io import ImageReadError, read_image
from .mpii import parse_mpii
from .records import PersonRecord, SampleMeta

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
