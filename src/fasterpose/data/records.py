"""The record types that flow between parsing, the dataset and evaluation.

``PersonRecord``: one person instance as parsed from any annotation source (COCO JSON, COCO-format
detections, MPII JSON, SynthPose). ``SampleMeta``: the typed metadata a ``TopDownDataset`` item
carries next to the image tensors; a NamedTuple so that torch's default collate batches it field
by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class PersonRecord:
    """One person crop to train or evaluate on.

    Attributes:
        image_path: absolute or dataset-relative path of the image file.
        image_id: integer image id (COCO ``image_id``; MPII: index of the image).
        box: (4,) float32 ``xywh`` in image pixels.
        keypoints: (K, 3) float32 x, y, visibility in image pixels (visibility 0 = unlabelled,
            1 = labelled but occluded, 2 = visible). All zeros for detector boxes.
        box_score: detector score (1.0 for ground-truth boxes).
        annotation_id: COCO annotation id, or -1.
        center, scale: optional preset crop (MPII provides them); when None the dataset derives
            them from ``box``.
        head_size: MPII head-box size (diagonal-based normaliser) when known, else None.
        image_size: (width, height) of the image when known.
    """

    image_path: str
    image_id: int
    box: np.ndarray
    keypoints: np.ndarray
    box_score: float = 1.0
    annotation_id: int = -1
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    head_size: float | None = None
    image_size: tuple[int, int] | None = None
    extra: dict[str, object] = field(default_factory=dict)


class SampleMeta(NamedTuple):
    """Per-sample metadata (batched by default collate into tensors of leading size B).

    index: position of the record in the dataset; image_id; center (2,) and scale (2,) of the
    crop in image pixels; rotation in degrees (0 at evaluation); box_score; flipped (training);
    keypoints (K, 3) in image pixels (ground truth, zeros for detector boxes).
    """

    index: torch.Tensor | int  # type: ignore[assignment]  # shadows tuple.index on purpose (the field name)
    image_id: torch.Tensor | int
    center: torch.Tensor | np.ndarray
    scale: torch.Tensor | np.ndarray
    rotation: torch.Tensor | float
    box_score: torch.Tensor | float
    flipped: torch.Tensor | bool
    keypoints: torch.Tensor | np.ndarray
