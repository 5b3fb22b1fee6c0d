"""``Results``: what a ``Predictor`` call returns, one image's people with numpy access and drawing.

    results = predictor("photo.jpg", boxes)      # Results: a sequence of PosePrediction
    results.keypoints (P, K, 2), results.scores (P, K), results.person_scores (P,)
    results.boxes (P, 4) xywh, results.boxes_xyxy (P, 4) x1, y1, x2, y2
    results.speed: {"preprocess", "inference", "postprocess"} milliseconds for this image (+ "detect")
    results[0].keypoints (K, 3) x, y, score; results[0].xy (K, 2); results[0].scores (K,)
    results.plot() -> RGB image; results.save("drawn.jpg"); results.to_coco(); results.to_json()

The people are :class:`~fasterpose.evaluation.predictions.PosePrediction` objects, the one
prediction type the evaluators score too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import cv2
import numpy as np

from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.keypoints import KeypointSpec
from fasterpose.visualize import draw_poses, save_image


class Results(Sequence[PosePrediction]):
    """One image's people, in box order (after ``Predictor.suppress``: the kept ones).

    Args:
        people: the predictions.
        image: the RGB uint8 (H, W, 3) image they were predicted on (for :meth:`plot`).
        spec: keypoint layout (joint count, skeleton for drawing).
        path: the image file, when the image came from one.
        speed: milliseconds per stage for this image: ``preprocess`` (reading, colour, boxes, crops),
            ``inference`` (the runtime, with the flip pass) and ``postprocess`` (decoding, back-projection,
            rescoring), as ultralytics' ``Results.speed``; with a person detector, also ``detect`` (its
            run on the image, not counted in ``preprocess``).
    """

    def __init__(
        self,
        people: Sequence[PosePrediction],
        image: np.ndarray,
        spec: KeypointSpec,
        path: str | None = None,
        speed: dict[str, float] | None = None,
    ) -> None:
        self.people = list(people)
        self.image = image
        self.spec = spec
        self.path = path
        self.speed = dict(speed or {})

    def __len__(self) -> int:
        return len(self.people)

    @overload
    def __getitem__(self, index: int) -> PosePrediction: ...
    @overload
    def __getitem__(self, index: slice) -> Results: ...
    def __getitem__(self, index: int | slice) -> PosePrediction | Results:
        if isinstance(index, slice):
            return self.with_people(self.people[index])
        return self.people[index]

    def __iter__(self) -> Iterator[PosePrediction]:
        return iter(self.people)

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"Results({len(self)} people, {self.spec.num_keypoints} keypoints, image {w}x{h})"

    def with_people(self, people: Sequence[PosePrediction]) -> Results:
        """The same image with other people (e.g. the survivors of OKS-NMS)."""
        return Results(people, self.image, self.spec, self.path, self.speed)

    @property
    def keypoints(self) -> np.ndarray:
        """(P, K, 2) float32 joint positions in image pixels."""
        return self._stack(lambda p: p.xy, (self.spec.num_keypoints, 2))

    @property
    def scores(self) -> np.ndarray:
        """(P, K) float32 joint scores."""
        return self._stack(lambda p: p.scores, (self.spec.num_keypoints,))

    @property
    def boxes(self) -> np.ndarray:
        """(P, 4) float32 person boxes xywh (NaN for a person without a box)."""
        return self._stack(lambda p: np.full(4, np.nan) if p.box is None else np.asarray(p.box).reshape(4), (4,))

    @property
    def boxes_xyxy(self) -> np.ndarray:
        """(P, 4) float32 person boxes x1, y1, x2, y2 (NaN for a person without a box)."""
        xyxy = self.boxes.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        return xyxy

    @property
    def person_scores(self) -> np.ndarray:
        """(P,) float32 person scores (box score x mean confident joint score)."""
        return np.array([p.score for p in self.people], np.float32)

    def _stack(self, get: Any, shape: tuple[int, ...]) -> np.ndarray:
        if not self.people:
            return np.zeros((0, *shape), np.float32)
        return np.stack([np.asarray(get(p), np.float32) for p in self.people])

    def plot(self, threshold: float = 0.3, show_scores: bool = False, boxes: bool = True) -> np.ndarray:
        """The image with the people drawn (RGB uint8 copy); joints scoring <= ``threshold`` are not drawn.

        ``show_scores`` writes each person's score above its box and each drawn joint's score beside it.
        """
        if not self.people:
            return self.image.copy()
        box = self.boxes if boxes else None
        out = draw_poses(self.image, self.keypoints, self.scores, self.spec, threshold, box)
        if show_scores:
            _write_scores(out, self, threshold)
        return out

    def save(self, path: str | os.PathLike[str], threshold: float = 0.3, overwrite: bool = False, **plot: Any) -> Path:
        """Write :meth:`plot` to ``path`` (format from the extension); an existing file needs ``overwrite``."""
        p = Path(path)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
        save_image(str(p), self.plot(threshold, **plot))
        return p

    def to_coco(self, image_id: int | None = None, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results entries, one per person (see ``PosePrediction.to_coco``)."""
        return [p.to_coco(image_id, category_id) for p in self.people]

    def to_json(self, image_id: int | None = None, indent: int | None = None) -> str:
        """:meth:`to_coco` as a JSON string (a COCO results list, readable by ``fasterpose eval-results``)."""
        return json.dumps(self.to_coco(image_id), indent=indent)


def _write_scores(image: np.ndarray, results: Results, threshold: float) -> None:
    size = max(image.shape[:2])
    scale = max(0.3, size / 1500)
    thick = max(1, round(size / 500))
    for person, box in zip(results.people, results.boxes, strict=True):
        x, y = (box[:2] if np.isfinite(box).all() else person.xy.min(axis=0)).tolist()
        org = (round(x), max(10, round(y) - 4))
        cv2.putText(image, f"{person.score:.2f}", org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), thick)
        for (jx, jy), s in zip(person.xy, person.scores, strict=True):
            if s > threshold and np.isfinite([jx, jy]).all():
                at = (round(jx) + 3, round(jy) - 3)
                cv2.putText(image, f"{s:.2f}", at, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.7, (255, 255, 255), 1)
