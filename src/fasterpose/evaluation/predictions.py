"""The one prediction type: what ``Predictor`` returns to users and what the evaluators score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PosePrediction:
    """One predicted person.

    Attributes:
        image_id: image id (COCO ``image_id``; MPII: the record's image index; 0 for a bare image
            given to ``Predictor``).
        keypoints: (K, 3) float32 x, y (image pixels, 0-based) and joint score (the heatmap
            maximum: a probability for sigmoid-trained models). See :attr:`xy` and :attr:`scores`.
        score: person score = box score x mean of the joint scores above ``eval.in_vis_threshold``
            (0 when none is).
        box_score: the detector's (or ground truth's, 1.0) box score.
        center, scale: (2,) crop centre and size in image pixels.
        area: person area used by OKS-NMS (the crop area, scale_w * scale_h, as in the lineage).
        index: position of the source record in the evaluated set (-1 when unknown).
        box: (4,) person box xywh in image pixels, when the prediction came from a box.
    """

    image_id: int
    keypoints: np.ndarray
    score: float
    box_score: float = 1.0
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    area: float = 0.0
    index: int = -1
    box: np.ndarray | None = None

    @property
    def xy(self) -> np.ndarray:
        """(K, 2) joint positions in image pixels."""
        return self.keypoints[:, :2]

    @property
    def scores(self) -> np.ndarray:
        """(K,) joint scores."""
        return self.keypoints[:, 2]

    def to_coco(self, image_id: int | None = None, category_id: int = 1) -> dict[str, Any]:
        """COCO keypoint results entry: ``{image_id, category_id, keypoints: [x, y, s] * K, score}``.

        ``image_id`` overrides the prediction's own. ``bbox`` (xywh) is added when the box is known,
        ``center`` / ``scale`` when the crop is.
        """
        kpts = np.asarray(self.keypoints, dtype=np.float64)
        if kpts.ndim != 2 or kpts.shape[1] != 3:
            raise ValueError(f"keypoints must have shape (K, 3), got {kpts.shape}")
        entry: dict[str, Any] = {
            "image_id": int(self.image_id if image_id is None else image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in kpts.reshape(-1)],
            "score": float(self.score),
        }
        if self.box is not None:
            entry["bbox"] = [float(v) for v in np.asarray(self.box).reshape(-1)]
        if self.center is not None and self.scale is not None:
            entry["center"] = [float(v) for v in np.asarray(self.center).reshape(-1)]
            entry["scale"] = [float(v) for v in np.asarray(self.scale).reshape(-1)]
        return entry
