"""Annotations -> person records -> augmented, encoded top-down samples.

Public API: :func:`build_records`, :class:`TopDownDataset`, :func:`seed_worker`,
:func:`read_image`, :class:`ImageReadError`, :class:`AnnotationError` (both :class:`DataError`),
and the record types.
"""

from fasterpose.data.coco import parse_coco_detections, parse_coco_keypoints
from fasterpose.data.dataset import SampleError, TopDownDataset, build_records, seed_worker
from fasterpose.data.errors import AnnotationError, DataError
from fasterpose.data.image_io import ImageReadError, read_image
from fasterpose.data.mpii import parse_mpii
from fasterpose.data.records import PersonRecord, SampleMeta

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
