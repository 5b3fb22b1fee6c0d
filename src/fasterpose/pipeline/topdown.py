"""The top-down steps after the crops: run, sigmoid, flip average, decode, back-project, rescore, NMS.

:class:`TopDownPipeline` holds one :class:`~fasterpose.pipeline.runner.Runner` and the settings the
config fixes (codec, keypoint layout, "outputs are logits", thresholds). Evaluation
(:mod:`fasterpose.pipeline.evaluate`) and ``Predictor`` both call it, so a dataset's boxes and a
user's boxes go through the same code.

The post-processing follows SimpleBaseline/HRNet's COCO evaluation: keypoint score = heatmap
maximum; person score = box score x mean of the joint scores above ``eval.in_vis_threshold``
(0 when none is); OKS-NMS at ``eval.oks_nms_threshold`` per image over all joints, with the crop
area ``scale_w * scale_h`` as the person area.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from fasterpose.activation import outputs_logits, sigmoid
from fasterpose.codec import HeatmapCodec
from fasterpose.evaluation.oks_nms import oks_nms
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.experiment import Experiment, experiment_of
from fasterpose.geometry import input_to_image
from fasterpose.keypoints import KeypointSpec
from fasterpose.pipeline.crops import as_rgb_image, crop_people
from fasterpose.pipeline.runner import Runner, check_model_fits

if TYPE_CHECKING:
    import os

    from fasterpose.config import Config


def crop_padding(cfg: Config) -> float:
    """The box padding of the config's crops (the one place that reads it)."""
    return float(cfg.data.box_padding)


def decode_to_image(codec: HeatmapCodec, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Decode heatmaps (N, K, h, w) and map to image pixels: (N, K, 3) x, y, joint score (float32)."""
    coords, scores = codec.decode(heatmaps)
    xy = input_to_image(coords, np.asarray(centers, np.float64), np.asarray(scales, np.float64), codec.input_size)
    return np.concatenate([xy, scores[..., None]], axis=-1).astype(np.float32)


def rescore(keypoint_scores: np.ndarray, box_score: float, in_vis_threshold: float) -> float:
    """Box score x mean of the joint scores (K,) above the threshold (0 when none is)."""
    s = np.asarray(keypoint_scores, dtype=np.float64)
    confident = s[s > in_vis_threshold]
    return float(box_score) * (float(confident.mean()) if confident.size else 0.0)


def oks_nms_keep(people: list[PosePrediction], sigmas: np.ndarray, threshold: float) -> list[int]:
    """OKS-NMS over one image's people: the positions kept, in descending score order (the people
    themselves, in input order: :meth:`TopDownPipeline.suppress`)."""
    if len(people) < 2:
        return list(range(len(people)))
    keep = oks_nms(
        np.stack([p.keypoints for p in people]),
        np.array([p.score for p in people]),
        np.array([p.area for p in people]),
        sigmas,
        threshold,
    )
    return [int(i) for i in keep]


def postprocess(
    predictions: Iterable[PosePrediction],
    spec: KeypointSpec,
    in_vis_threshold: float = 0.2,
    oks_threshold: float = 0.9,
) -> list[PosePrediction]:
    """Rescore every person, then OKS-NMS per image; returns the kept people (new objects)."""
    by_image: dict[int, list[PosePrediction]] = {}
    for p in predictions:
        score = rescore(p.keypoints[:, 2], p.box_score, in_vis_threshold)
        q = PosePrediction(p.image_id, p.keypoints, score, p.box_score, p.center, p.scale, p.area, p.index, p.box)
        by_image.setdefault(int(p.image_id), []).append(q)
    kept: list[PosePrediction] = []
    sigmas = np.asarray(spec.sigmas)
    for image_id in sorted(by_image):
        people = by_image[image_id]
        kept.extend(people[i] for i in oks_nms_keep(people, sigmas, oks_threshold))
    return kept


class TopDownPipeline:
    """Crops -> runner (+ flip) -> heatmaps -> image-space keypoints and person scores.

    Args:
        runner: any :class:`Runner`.
        codec: heatmap codec (decode and flip-back).
        spec: keypoint layout (flip pairs, OKS sigmas).
        logits: the runner returns logits (apply a sigmoid before averaging and decoding).
        flip_test: also run the mirrored crops and average the flipped-back heatmaps.
        batch_size: crops per runner call.
        padding: box padding (``Predictor`` boxes).
        in_vis_threshold, oks_threshold: rescoring and OKS-NMS settings.
    """

    def __init__(
        self,
        runner: Runner,
        codec: HeatmapCodec,
        spec: KeypointSpec,
        logits: bool,
        flip_test: bool = True,
        batch_size: int = 32,
        padding: float = 1.25,
        in_vis_threshold: float = 0.2,
        oks_threshold: float = 0.9,
    ) -> None:
        self.runner = runner
        self.codec = codec
        self.spec = spec
        self.logits = logits
        self.flip_test = flip_test
        self.batch_size = max(1, int(batch_size))
        self.padding = padding
        self.in_vis_threshold = in_vis_threshold
        self.oks_threshold = oks_threshold

    @classmethod
    def from_config(
        cls,
        experiment: Experiment | Config,
        runner: Runner,
        flip_test: bool | None = None,
        batch_size: int | None = None,
    ) -> TopDownPipeline:
        """The pipeline of an experiment (its codec and layout; flip test and batch size default to
        ``cfg.eval``'s), once the model and the config agree (:func:`~fasterpose.pipeline.runner.check_model_fits`)."""
        exp = experiment_of(experiment)
        cfg = exp.cfg
        check_model_fits(runner, cfg, exp.spec)
        return cls(
            runner,
            exp.codec,
            exp.spec,
            outputs_logits(cfg),
            cfg.eval.flip_test if flip_test is None else flip_test,
            cfg.eval.batch_size if batch_size is None else batch_size,
            crop_padding(cfg),
            cfg.eval.in_vis_threshold,
            cfg.eval.oks_nms_threshold,
        )

    @property
    def input_size(self) -> tuple[int, int]:
        return self.codec.input_size

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, 3, H, W) -> heatmaps (N, K, h, w): probabilities for logit models, flip-averaged."""
        outs = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            hm = self.runner(chunk)
            if self.logits:
                hm = sigmoid(hm)
            if self.flip_test:
                flipped = self.runner(np.ascontiguousarray(chunk[..., ::-1]))
                if self.logits:
                    flipped = sigmoid(flipped)
                hm = 0.5 * (hm + self.codec.flip_back(flipped, self.spec.flip_index))
            outs.append(hm)
        w, h = self.codec.heatmap_size
        k = self.spec.num_keypoints
        hm_all = np.concatenate(outs) if outs else np.zeros((0, k, h, w), np.float32)
        if hm_all.shape[1:] != (k, h, w):
            raise ValueError(f"model outputs {hm_all.shape[1:]}, config expects ({k}, {h}, {w})")
        return hm_all

    def keypoints(self, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Decode heatmaps (N, K, h, w) and map to image pixels: (N, K, 3) x, y, joint score."""
        return decode_to_image(self.codec, heatmaps, centers, scales)

    def predict_crops(
        self,
        crops: np.ndarray,
        centers: np.ndarray,
        scales: np.ndarray,
        box_scores: np.ndarray,
        image_ids: np.ndarray,
        indices: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        speed: dict[str, float] | None = None,
    ) -> list[PosePrediction]:
        """One rescored (not yet NMS-ed) :class:`PosePrediction` per crop, in crop order; ``speed`` gains
        the milliseconds of ``inference`` (the runner, with flip) and ``postprocess`` (decode, back-project)."""
        start = time.perf_counter()
        heatmaps = self.heatmaps(crops)
        ran = time.perf_counter()
        kpts = self.keypoints(heatmaps, centers, scales)
        out = []
        for i in range(len(kpts)):
            c, s = np.asarray(centers[i], np.float64), np.asarray(scales[i], np.float64)
            out.append(
                PosePrediction(
                    image_id=int(image_ids[i]),
                    keypoints=kpts[i],
                    score=rescore(kpts[i, :, 2], float(box_scores[i]), self.in_vis_threshold),
                    box_score=float(box_scores[i]),
                    center=c,
                    scale=s,
                    area=float(s[0] * s[1]),
                    index=-1 if indices is None else int(indices[i]),
                    box=None if boxes is None else np.asarray(boxes[i], np.float32),
                )
            )
        if speed is not None:
            speed["inference"] = speed.get("inference", 0.0) + (ran - start) * 1e3
            speed["postprocess"] = speed.get("postprocess", 0.0) + (time.perf_counter() - ran) * 1e3
        return out

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike[str],
        boxes: object = None,
        image_id: int = 0,
        speed: dict[str, float] | None = None,
    ) -> list[PosePrediction]:
        """Every person of one image, in box order (rescored, no NMS); see :func:`crop_people`.

        ``speed`` (ms): ``preprocess`` (reading, cropping), ``inference`` and ``postprocess`` are added to it."""
        start = time.perf_counter()
        img = as_rgb_image(image)
        crops, centers, scales, xywh, box_scores = crop_people(img, boxes, self.input_size, self.padding)
        if speed is not None:
            speed["preprocess"] = speed.get("preprocess", 0.0) + (time.perf_counter() - start) * 1e3
            speed.setdefault("inference", 0.0)
            speed.setdefault("postprocess", 0.0)
        if len(crops) == 0:
            return []
        ids = np.full(len(crops), image_id)
        return self.predict_crops(crops, centers, scales, box_scores, ids, np.arange(len(crops)), xywh, speed)

    def suppress(self, people: list[PosePrediction]) -> list[PosePrediction]:
        """OKS-NMS over one image's people, keeping the survivors in their input order."""
        keep = oks_nms_keep(people, np.asarray(self.spec.sigmas), self.oks_threshold)
        return [people[i] for i in sorted(keep)]
