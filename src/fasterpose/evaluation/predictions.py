"""The per-person prediction record that flows from inference to the evaluators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PosePrediction:
    """One predicted person.

    Attributes:
        image_id: image id (COCO ``image_id``; MPII: the record's image index).
        keypoints: (K, 3) float32 x, y (image pixels, 0-based) and joint score (heatmap maximum).
        score: person score (box score x mean of the confident joint scores, after rescoring).
        box_score: the detector's (or ground truth's, 1.0) box score.
        center, scale: (2,) crop centre and size in image pixels.
        area: person area used by OKS-NMS (the crop area, scale_w * scale_h, as in the lineage).
        index: position of the source record in the dataset (-1 when unknown).
    """

    image_id: int
    keypoints: np.ndarray
    score: float
    box_score: float = 1.0
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    area: float = 0.0
    index: int = -1

    def to_coco(self, category_id: int = 1) -> dict[str, Any]:
        """COCO keypoint results entry: ``{image_id, category_id, keypoints: [x, y, s] * K, score}``."""
        kpts = np.asarray(self.keypoints, dtype=np.float64)
        if kpts.ndim != 2 or kpts.shape[1] != 3:
            raise ValueError(f"keypoints must have shape (K, 3), got {kpts.shape}")
        entry: dict[str, Any] = {
            "image_id": int(self.image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in kpts.reshape(-1)],
            "score": float(self.score),
        }
        if self.center is not None and self.scale is not None:
            entry["center"] = [float(v) for v in np.asarray(self.center).reshape(-1)]
            entry["scale"] = [float(v) for v in np.asarray(self.scale).reshape(-1)]
        return entry
