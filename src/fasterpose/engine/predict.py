"""Top-down inference: image + person boxes -> keypoints in image coordinates.

    image (H, W, 3) RGB uint8 or a path, boxes (P, 4|5) xywh [score]
      -> crops (P, 3, H_in, W_in)        affine warp of each padded box (cv2.warpAffine), normalised
      -> runner(crops) (P, K, h, w)      torch / ONNX Runtime / OpenVINO, batched (+ flipped crops)
      -> sigmoid (sigmoid-trained models), flip-back average
      -> codec.decode -> input px -> geometry.input_to_image -> PersonPose per person

``Predictor(model_or_path, ...)`` accepts a ``PoseModel`` (with its config), a training checkpoint,
or an exported ``.onnx`` / ``.xml`` file (which carry their config).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch import nn

from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config
from fasterpose.data.image_io import read_image as data_read_image
from fasterpose.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fasterpose.engine.runtimes import (
    RUNTIMES,
    OnnxRuntimeRunner,
    OpenVinoRunner,
    Runner,
    TorchRunner,
    auto_cpu_runtime,
)
from fasterpose.geometry import box_to_center_scale, get_affine_transform, input_to_image
from fasterpose.layouts import resolve_layout
from fasterpose.models.pose_model import SIGMOID_LOSSES


@dataclass
class PersonPose:
    """One person.

    Attributes:
        keypoints: (K, 2) x, y in image pixels.
        scores: (K,) per-joint confidence (a probability for sigmoid-trained models).
        box: (4,) the person box, xywh in image pixels.
        score: person score = box score x mean of the joint scores above the visibility threshold.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    box: np.ndarray
    score: float

    def to_coco(self, image_id: int, category_id: int = 1) -> dict[str, Any]:
        """One entry of a COCO keypoint results file."""
        kpts = np.concatenate([self.keypoints, self.scores[:, None]], axis=1)
        return {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
            "score": round(float(self.score), 5),
            "bbox": [round(float(v), 2) for v in self.box],
        }


def read_image(source: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a path (:func:`fasterpose.data.read_image`) or an array."""
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ValueError(f"image array must be RGB uint8 of shape (H, W, 3), got {source.dtype} {source.shape}")
        return source
    return data_read_image(source)


def as_boxes(boxes: Any, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (P, 4) xywh or (P, 5) xywh+score, or None for the whole image -> (P, 4), (P,) scores."""
    if boxes is None:
        h, w = image_hw
        return np.array([[0.0, 0.0, w, h]], dtype=np.float32), np.ones(1, dtype=np.float32)
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f"boxes must have shape (P, 4) xywh or (P, 5) xywh+score, got {arr.shape}")
    scores = arr[:, 4].copy() if arr.shape[1] == 5 else np.ones(len(arr), np.float32)
    return arr[:, :4].copy(), scores


def crop_people(
    image: np.ndarray,
    boxes: Any,
    input_size: tuple[int, int],
    padding: float = 1.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Warp each padded box to the network input and normalise.

    Args:
        image: (H, W, 3) RGB uint8.
        boxes: see :func:`as_boxes`; None means one box over the whole image.
        input_size: (W, H) of the network input.

    Returns:
        crops (P, 3, H, W) float32, centers (P, 2), scales (P, 2), boxes (P, 4), box scores (P,).
    """
    w, h = int(input_size[0]), int(input_size[1])
    xywh, box_scores = as_boxes(boxes, image.shape[:2])
    n = len(xywh)
    raw = np.empty((n, h, w, 3), dtype=np.uint8)
    centers = np.empty((n, 2), np.float32)
    scales = np.empty((n, 2), np.float32)
    for i, box in enumerate(xywh):
        centers[i], scales[i] = box_to_center_scale(box, w / h, padding)
        mat = get_affine_transform(centers[i], scales[i], 0.0, (w, h))
        cv2.warpAffine(image, mat, (w, h), dst=raw[i], flags=cv2.INTER_LINEAR)
    crops = raw.astype(np.float32).transpose(0, 3, 1, 2)  # (P, 3, H, W), strided view
    scale = (1.0 / (255.0 * IMAGENET_STD)).reshape(1, 3, 1, 1)
    shift = (IMAGENET_MEAN / IMAGENET_STD).reshape(1, 3, 1, 1)
    out = np.empty((n, 3, h, w), np.float32)
    np.multiply(crops, scale, out=out)
    out -= shift
    return out, centers, scales, xywh, box_scores


def open_runner(
    model_or_path: nn.Module | str | os.PathLike[str],
    cfg: Config | None = None,
    runtime: str = "auto",
    device: str = "cpu",
    precision: str | None = None,
) -> tuple[Runner, Config]:
    """Resolve a model (module, checkpoint, .onnx or .xml) and a runtime name into a runner + config."""
    from fasterpose.export import read_metadata

    if runtime not in ("auto", *RUNTIMES):
        raise ValueError(f"runtime must be 'auto' or one of {RUNTIMES}, got {runtime!r}")
    model: nn.Module | None = None
    if isinstance(model_or_path, nn.Module):
        model = model_or_path
        if cfg is None:
            raise ValueError("a torch module needs its config: Predictor(model, cfg=cfg)")
    else:
        path = Path(model_or_path)
        if path.suffix in (".onnx", ".xml"):
            file_cfg, file_precision = read_metadata(path)
            cfg = cfg or file_cfg
            if cfg is None:
                raise ValueError(f"{path}: carries no fasterpose config; pass cfg= (or re-export it)")
            precision = precision or file_precision
            if runtime == "auto":
                runtime = "openvino" if path.suffix == ".xml" else auto_cpu_runtime(precision)
            if runtime == "torch" or (runtime == "onnxruntime" and path.suffix == ".xml"):
                raise ValueError(f"{path}: runtime {runtime!r} cannot run a {path.suffix} file")
            if runtime == "onnxruntime":
                return OnnxRuntimeRunner(path, precision=precision), cfg
            return OpenVinoRunner(path, precision=precision), cfg
        from fasterpose.engine.model_file import load_model_file

        model, ck_cfg = load_model_file(path)  # a training checkpoint or a weights file
        cfg = cfg or ck_cfg
    precision = precision or "fp32"
    if runtime == "auto":
        runtime = auto_cpu_runtime(precision) if str(device).startswith("cpu") else "torch"
    if runtime != "torch" and not str(device).startswith("cpu"):
        raise ValueError(f"runtime {runtime!r} runs on the CPU only; use runtime='torch' for device {device!r}")
    if runtime == "torch":
        return TorchRunner(model, device=device, precision=precision), cfg
    if precision == "int8":
        raise ValueError("int8 needs a quantised export: `fasterpose export --precision int8 --calib DIR`")
    import io

    from fasterpose.export import onnx_bytes

    data = onnx_bytes(model, cfg.data.input_size)
    if runtime == "onnxruntime":
        return OnnxRuntimeRunner(data, precision=precision), cfg
    import openvino as ov

    return OpenVinoRunner(ov.convert_model(io.BytesIO(data)), precision=precision), cfg


class Predictor:
    """Pose estimation for the people in an image.

    Args:
        model_or_path: a ``PoseModel`` (then ``cfg`` is required), a training checkpoint, or an
            exported ``.onnx`` / ``.xml`` file.
        cfg: experiment config (input size, codec, loss, keypoint layout); read from the file when
            omitted.
        runtime: ``auto`` (the fastest exact CPU runtime measured, see docs/deployment.md; torch
            on a GPU), ``torch``, ``onnxruntime`` or ``openvino``.
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
        self.runner, self.cfg = open_runner(model_or_path, cfg, runtime, device, precision)
        d = self.cfg.data
        self.input_size = (int(d.input_size[0]), int(d.input_size[1]))
        self.codec = HeatmapCodec(
            d.input_size,
            d.heatmap_size,
            d.sigma,
            d.encoding,  # type: ignore[arg-type]
            dark=self.cfg.eval.dark,
        )
        self.spec = resolve_layout(d)
        self.sigmoid = self.cfg.loss.name in SIGMOID_LOSSES
        self.flip_test = flip_test
        self.batch_size = max(1, int(batch_size))
        self.padding = d.box_padding
        self.vis_threshold = self.cfg.eval.in_vis_threshold

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """Crops (N, 3, H, W) -> heatmaps (N, K, h, w): probabilities for sigmoid models, with flip test."""
        from fasterpose.export import sigmoid

        outs = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            hm = self.runner(chunk)
            if self.sigmoid:
                hm = sigmoid(hm)
            if self.flip_test:
                flipped = self.runner(np.ascontiguousarray(chunk[..., ::-1]))
                if self.sigmoid:
                    flipped = sigmoid(flipped)
                hm = 0.5 * (hm + self.codec.flip_back(flipped, self.spec.flip_index))
            outs.append(hm)
        hm_all = np.concatenate(outs) if outs else np.zeros((0, self.spec.num_keypoints, 1, 1), np.float32)
        w, h = self.codec.heatmap_size
        if len(hm_all) and hm_all.shape[1:] != (self.spec.num_keypoints, h, w):
            raise ValueError(f"model outputs {hm_all.shape[1:]}, config expects ({self.spec.num_keypoints}, {h}, {w})")
        return hm_all

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike[str],
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> list[PersonPose]:
        """Predict every person.

        Args:
            image: RGB uint8 (H, W, 3) array or an image path.
            boxes: person boxes (P, 4) xywh or (P, 5) xywh+score in image pixels; None = one
                person filling the whole image.

        Returns:
            one :class:`PersonPose` per box, in box order.
        """
        img = read_image(image)
        crops, centers, scales, xywh, box_scores = crop_people(img, boxes, self.input_size, self.padding)
        if len(crops) == 0:
            return []
        kpts_in, scores = self.codec.decode(self.heatmaps(crops))
        kpts = input_to_image(kpts_in, centers, scales, self.input_size)
        visible = scores > self.vis_threshold
        mean_vis = np.where(visible.any(1), (scores * visible).sum(1) / np.maximum(visible.sum(1), 1), 0.0)
        return [
            PersonPose(kpts[i], scores[i].astype(np.float32), xywh[i], float(box_scores[i] * mean_vis[i]))
            for i in range(len(crops))
        ]
