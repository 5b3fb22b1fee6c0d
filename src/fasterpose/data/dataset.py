"""``TopDownDataset``: one person record -> (normalised crop, target heatmaps, weights, meta).

One class serves COCO, MPII and SynthPose; the parsers (``build_records``) are the only
dataset-specific code. Item layout::

    {"image": float32 (3, H, W), "target": float32 (K, h, w), "target_weight": float32 (K,),
     "meta": SampleMeta}

Randomness, one policy: sample ``i`` of epoch ``e`` is augmented with a generator seeded by
``(seed, e * len(dataset) + i)`` (:meth:`TopDownDataset.sample_rng`), whichever worker or process
loads it and in whatever order, so a resumed or re-sharded run sees the same crops. With
``augment=None`` (evaluation) nothing is random.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fasterpose.codec import HeatmapCodec
from fasterpose.config import AugmentConfig, Config
from fasterpose.data.build import build_records, initial_crop
from fasterpose.data.image_cache import DecodedImageCache
from fasterpose.data.image_io import ImageReadError, in_annotated_frame, read_image_bgr
from fasterpose.data.records import PersonRecord, SampleMeta
from fasterpose.data.transforms import (
    CropParams,
    crop_matrix,
    normalize_image,
    sample_crop,
    transform_keypoints,
    warp_image,
)
from fasterpose.data.workers import keep_freed_memory
from fasterpose.experiment import Experiment, experiment_of
from fasterpose.keypoints import KeypointSpec, check_annotation_layout

log = logging.getLogger(__name__)
MAX_REPLACEMENTS = 50  # consecutive bad images tolerated with skip_bad_images before giving up


class SampleError(RuntimeError):
    """A sample that failed for a reason other than an unreadable image; names record and file."""


@dataclass
class PreparedSample:
    """A warped crop before encoding: crop uint8 RGB (H, W, 3), keypoints (K, 3) in input pixels."""

    crop: np.ndarray
    keypoints: np.ndarray
    params: CropParams
    record: PersonRecord


class TopDownDataset(Dataset[dict[str, Any]]):
    """Top-down pose samples from person records.

    Args:
        records: parsed people (see :func:`build_records`).
        spec: keypoint layout (flip pairs, upper body, joint weights).
        codec: heatmap encoder; its ``input_size`` is the crop size.
        augment: training augmentation, or None for evaluation (deterministic, rotation 0).
        padding: box padding when a record has no preset centre/scale.
        use_joint_weights: multiply target weights by ``spec.weights``.
        skip_bad_images: replace samples whose image cannot be read by random other samples,
            counting them in ``bad_images`` (per process) and logging a warning naming the file.
        seed: seed of the per-sample augmentation generators (:meth:`sample_rng`).
        image_cache: where decoded images are kept between samples and epochs (``data.image_cache``), or
            None to decode every time.
    """

    def __init__(
        self,
        records: list[PersonRecord],
        spec: KeypointSpec,
        codec: HeatmapCodec,
        augment: AugmentConfig | None = None,
        padding: float = 1.25,
        use_joint_weights: bool = False,
        skip_bad_images: bool = False,
        seed: int = 0,
        image_cache: DecodedImageCache | None = None,
    ) -> None:
        self.records = list(records)
        self.image_cache = image_cache
        self.spec = spec
        self.codec = codec
        self.augment = augment
        self.padding = padding
        self.use_joint_weights = use_joint_weights
        self.skip_bad_images = skip_bad_images
        self.seed = seed
        self.bad_images = 0
        self.bad_image_paths: set[str] = set()
        self.epoch = 0  # the epoch that __getitem__ augments for (EpochSamples passes its own)
        self._flip_index = spec.flip_index
        self._joint_weights = spec.weights if use_joint_weights else None
        w, h = codec.input_size
        self.aspect_ratio = w / h
        self._crops = [self._initial_crop(r) for r in self.records]

    @classmethod
    def from_config(
        cls, experiment: Experiment | Config, split: str, train: bool, use_gt_boxes: bool = True
    ) -> TopDownDataset:
        """Records of ``split`` with the experiment's layout and codec; augmentation only when ``train``."""
        exp = experiment_of(experiment)
        cfg, d, codec, spec = exp.cfg, exp.cfg.data, exp.codec, exp.spec
        if d.use_joint_weights and not spec.joint_weights:
            raise ValueError(
                f"data.use_joint_weights=true, but layout {spec.name} gives no joint_weights (every joint would "
                "weigh 1: the option would do nothing): add joint_weights to the layout, or drop the option"
            )
        if exp.coco_format and split in exp.splits:
            check_annotation_layout(spec, exp.split(split).annotations)
        augment = d.augment if train else None
        if augment is not None and augment.half_body_prob > 0 and not spec.upper_body:
            log.warning("layout %s names no upper_body joints: half-body augmentation is off", spec.name)
            augment = dataclasses.replace(augment, half_body_prob=0.0)
        return cls(
            build_records(exp, split, use_gt_boxes),
            spec,
            codec,
            augment=augment,
            padding=d.box_padding,
            use_joint_weights=d.use_joint_weights,
            skip_bad_images=d.skip_bad_images and train,
            seed=cfg.train.seed,
            image_cache=DecodedImageCache(d.image_cache_dir) if d.image_cache == "disk" and train else None,
        )

    def _initial_crop(self, record: PersonRecord) -> tuple[np.ndarray, np.ndarray]:
        return initial_crop(record, self.spec.num_keypoints, self.aspect_ratio, self.padding, self.spec.name)

    def sample_rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The augmentation generator of sample ``index`` in ``epoch`` (default :attr:`epoch`): seeded by
        ``(seed, epoch * len(self) + index)``, the same in every worker and process."""
        e = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, (e * len(self.records) + int(index)) % (1 << 63)])

    def __len__(self) -> int:
        return len(self.records)

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> PreparedSample:
        """Read, (augment) and warp one record; raises :class:`ImageReadError` for a bad image."""
        record = self.records[index]
        path = record.image_path
        image = self.image_cache.read_bgr(path) if self.image_cache is not None else read_image_bgr(path)
        image = in_annotated_frame(image, path, record.image_size)  # an EXIF-turned photo, annotated as stored
        center, scale = self._crops[index]
        if self.augment is None:
            params = CropParams(center=center, scale=scale)
        else:
            params = sample_crop(
                center,
                scale,
                record.keypoints,
                self.augment,
                self.spec.upper_body,
                self.aspect_ratio,
                rng if rng is not None else self.sample_rng(index),
            )
        matrix = crop_matrix(params, self.codec.input_size, image.shape[1])
        crop = cv2.cvtColor(warp_image(image, matrix, self.codec.input_size), cv2.COLOR_BGR2RGB)
        keypoints = transform_keypoints(record.keypoints, matrix, self._flip_index if params.flip else None)
        return PreparedSample(crop=crop, keypoints=keypoints, params=params, record=record)

    def _item(self, index: int, epoch: int) -> dict[str, Any]:
        sample = self.prepare(index, self.sample_rng(index, epoch))
        target, target_weight = self.codec.encode(sample.keypoints, self._joint_weights)
        record, params = sample.record, sample.params
        meta = SampleMeta(
            index=index,
            image_id=record.image_id,
            center=params.center.astype(np.float32),
            scale=params.scale.astype(np.float32),
            rotation=float(params.rotation),
            box_score=float(record.box_score),
            flipped=bool(params.flip),
            keypoints=record.keypoints.astype(np.float32),
        )
        return {
            "image": torch.from_numpy(normalize_image(sample.crop)),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(target_weight),
            "meta": meta,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item(index, self.epoch)

    def item(self, index: int, epoch: int) -> dict[str, Any]:
        """Sample ``index`` augmented as in ``epoch``; an unreadable image (``skip_bad_images``) is
        replaced by a sample drawn from the failed sample's generator."""
        replacements = np.random.default_rng([self.seed, epoch, int(index), 1])  # apart from any augmentation
        for _ in range(MAX_REPLACEMENTS):
            record = self.records[index]
            try:
                if record.image_path in self.bad_image_paths:
                    raise ImageReadError(record.image_path, "already found unreadable")
                return self._item(index, epoch)
            except ImageReadError as exc:
                if not self.skip_bad_images:
                    raise
                if exc.path not in self.bad_image_paths:
                    self.bad_image_paths.add(exc.path)
                    log.warning("skipping unreadable image %s (%s)", exc.path, exc.problem)
                self.bad_images += 1
                index = int(replacements.integers(len(self.records)))
            except Exception as exc:
                raise SampleError(
                    f"sample {index}: {record.image_path} (annotation {record.annotation_id}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        raise SampleError(
            f"{MAX_REPLACEMENTS} unreadable images in a row (last: {record.image_path}); "
            f"{len(self.bad_image_paths)} distinct bad files so far"
        )


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: let the worker reuse freed memory
    (:func:`fasterpose.data.workers.keep_freed_memory`). Its randomness needs nothing: every sample
    seeds its own generator (:meth:`TopDownDataset.sample_rng`).

    It deliberately leaves OpenCV's thread count alone: ``cv2.setNumThreads`` in a forked worker
    deadlocks once the parent has started OpenCV's thread pool. Call ``cv2.setNumThreads(1)`` in the
    main process before creating the DataLoader instead.
    """
    if torch.utils.data.get_worker_info() is not None:
        keep_freed_memory()
