"""``Predictor``: pose estimation for the people in an image, on any runtime.

    image (H, W, 3) RGB uint8 or a path, boxes (P, 4|5) xywh [score]
      -> the top-down pipeline (:class:`~fasterpose.pipeline.topdown.TopDownPipeline`)
      -> list[PosePrediction], in box order

The same pipeline scores datasets (``fasterpose eval``), so a model's AP and its served
keypoints come from one code path. No torch is imported for ``.onnx`` / ``.xml`` files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fasterpose.config import Config
from fasterpose.deploy.models import open_runner
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.pipeline.topdown import TopDownPipeline

if TYPE_CHECKING:
    from torch import nn


class Predictor:
    """Pose estimation for the people in an image.

    Args:
        model_or_path: a ``PoseModel`` (then ``cfg`` is required), a training checkpoint, a weights
            file (``.safetensors``), or an exported ``.onnx`` / ``.xml`` file.
        cfg: experiment config (input size, codec, loss, keypoint layout); read from the file when
            omitted.
        runtime: ``auto`` (the CPU runtime measured fastest, see docs/deployment.md; torch on a
            GPU), ``torch``, ``onnxruntime`` or ``openvino``.
        flip_test: also run the mirrored crops and average the flipped-back heatmaps.
        device: torch device (other runtimes are CPU only).
        precision: ``fp32`` / ``bf16`` (torch autocast or OpenVINO hint); exported files default to
            the precision they were exported at.
        batch_size: crops per runtime call.
    """

    def __init__(
        self,
        model_or_path: nn.Module | str | os.PathLike[str],
        cfg: Config | None = None,
        runtime: str = "auto",
        flip_test: bool = False,
        device: str = "cpu",
        precision: str | None = None,
        batch_size: int = 32,
    ) -> None:
        runner, self.cfg = open_runner(model_or_path, cfg, runtime, device, precision)
        self.pipeline = TopDownPipeline.from_config(self.cfg, runner, flip_test=flip_test, batch_size=batch_size)
        self.runner = runner
        self.spec = self.pipeline.spec
        self.codec = self.pipeline.codec
        self.input_size = self.pipeline.input_size
        self.padding = self.pipeline.padding
        self.flip_test = flip_test

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, 3, H, W) -> heatmaps (N, K, h, w): probabilities for logit models, with flip test."""
        return self.pipeline.heatmaps(crops)

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike[str],
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
        image_id: int = 0,
    ) -> list[PosePrediction]:
        """Predict every person.

        Args:
            image: RGB uint8 (H, W, 3) array or an image path.
            boxes: person boxes (P, 4) xywh or (P, 5) xywh+score in image pixels; None = one
                person filling the whole image.
            image_id: recorded in each prediction (and its ``to_coco`` entry).

        Returns:
            one :class:`PosePrediction` per box, in box order: ``keypoints`` (K, 3) x, y, score in
            image pixels (``xy``, ``scores``), ``box``, and ``score`` = box score x mean of the joint
            scores above ``eval.in_vis_threshold``. No OKS-NMS (see :meth:`suppress`).
        """
        return self.pipeline(image, boxes, image_id)

    def suppress(self, people: list[PosePrediction]) -> list[PosePrediction]:
        """OKS-NMS over one image's people (``eval.oks_nms_threshold``), survivors in input order."""
        return self.pipeline.suppress(people)
