"""Dataset inference and evaluation: crops -> model (+ flip test) -> decode -> image coordinates
-> person rescoring -> OKS-NMS -> COCO results / PCKh.

The post-processing follows SimpleBaseline/HRNet's COCO evaluation: keypoint score = heatmap
maximum; person score = box score x mean of the joint scores above ``eval.in_vis_threshold``
(0 when none is); OKS-NMS at ``eval.oks_nms_threshold`` per image over all joints, with the crop
area ``scale_w * scale_h`` as the person area. MPII is scored per record (no NMS).

Entry points: :func:`predict_dataset` (raw per-person predictions) and :func:`evaluate_model`
(the metrics dict the training loop and ``fasterpose eval`` report).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config
from fasterpose.data.dataset import TopDownDataset, seed_worker
from fasterpose.evaluation.coco import CocoEvaluator, oks_to_ground_truth
from fasterpose.evaluation.oks_nms import oks_nms
from fasterpose.evaluation.pckh import PckhEvaluator
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.geometry import input_to_image
from fasterpose.keypoints import KeypointSpec
from fasterpose.layouts import resolve_layout
from fasterpose.models.pose_model import SIGMOID_LOSSES

log = logging.getLogger(__name__)
HeatmapFn = Callable[[dict[str, Any]], np.ndarray]


@torch.no_grad()
def model_heatmaps(
    model: nn.Module,
    images: torch.Tensor,
    codec: HeatmapCodec,
    flip_index: np.ndarray | None = None,
    sigmoid: bool = False,
) -> np.ndarray:
    """Heatmaps (B, K, h, w) for a batch of crops (B, 3, H, W), averaged with the flipped pass.

    ``sigmoid`` turns logits into probabilities before averaging (sigmoid-trained models). With
    ``flip_index`` the mirrored crops are run too and their maps are flipped back by
    :meth:`HeatmapCodec.flip_back` (mirror, swap joints, 1-pixel shift under MSRA only).
    """
    out = model(images).float()
    if sigmoid:
        out = torch.sigmoid(out)
    heatmaps = out.cpu().numpy()
    if flip_index is not None:
        flipped = model(torch.flip(images, dims=[3])).float()
        if sigmoid:
            flipped = torch.sigmoid(flipped)
        heatmaps = 0.5 * (heatmaps + codec.flip_back(flipped.cpu().numpy(), flip_index))
    return heatmaps


def rescore(keypoint_scores: np.ndarray, box_score: float, in_vis_threshold: float) -> float:
    """Box score x mean of the joint scores (K,) above the threshold (0 when none is)."""
    s = np.asarray(keypoint_scores, dtype=np.float64)
    confident = s[s > in_vis_threshold]
    return float(box_score) * (float(confident.mean()) if confident.size else 0.0)


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
        q = PosePrediction(p.image_id, p.keypoints, score, p.box_score, p.center, p.scale, p.area, p.index)
        by_image.setdefault(int(p.image_id), []).append(q)
    kept: list[PosePrediction] = []
    sigmas = np.asarray(spec.sigmas)
    for image_id in sorted(by_image):
        people = by_image[image_id]
        keep = oks_nms(
            np.stack([p.keypoints for p in people]),
            np.array([p.score for p in people]),
            np.array([p.area for p in people]),
            sigmas,
            oks_threshold,
        )
        kept.extend(people[i] for i in keep)
    return kept


def build_eval_dataset(
    cfg: Config, split: str = "val", use_gt_boxes: bool | None = None
) -> TopDownDataset | Subset[dict[str, Any]]:
    """The evaluation dataset (no augmentation); limited to ``eval.max_images`` images if set."""
    gt_boxes = cfg.eval.use_gt_boxes if use_gt_boxes is None else use_gt_boxes
    dataset = TopDownDataset.from_config(cfg, split, train=False, use_gt_boxes=gt_boxes)
    if cfg.eval.max_images is None:
        return dataset
    images = list(dict.fromkeys(r.image_id for r in dataset.records))  # first-seen order
    chosen = set(images[: cfg.eval.max_images])
    return Subset(dataset, [i for i, r in enumerate(dataset.records) if r.image_id in chosen])


def base_dataset(dataset: Dataset[Any]) -> TopDownDataset:
    """The TopDownDataset under any Subset wrappers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if not isinstance(dataset, TopDownDataset):
        raise TypeError(f"expected a TopDownDataset (or a Subset of one), got {type(dataset).__name__}")
    return dataset


def run_predictions(
    dataset: TopDownDataset | Subset[dict[str, Any]],
    heatmap_fn: HeatmapFn,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "eval",
) -> list[PosePrediction]:
    """Decode ``heatmap_fn(batch)`` (B, K, h, w) for every crop into raw image-space predictions.

    ``score`` of each prediction is its box score (no rescoring, no NMS yet).
    """
    base = base_dataset(dataset)
    codec = base.codec
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=seed_worker if num_workers else None,
    )
    preds: list[PosePrediction] = []
    for batch in tqdm(loader, desc=desc, disable=not progress, unit="batch", leave=False):
        heatmaps = heatmap_fn(batch)
        meta = batch["meta"]
        coords, scores = codec.decode(heatmaps)
        center = meta.center.numpy().astype(np.float64)
        scale = meta.scale.numpy().astype(np.float64)
        xy = input_to_image(coords, center, scale, codec.input_size)
        for b in range(len(coords)):
            kpts = np.concatenate([xy[b], scores[b][:, None]], axis=1).astype(np.float32)
            preds.append(
                PosePrediction(
                    image_id=int(meta.image_id[b]),
                    keypoints=kpts,
                    score=float(meta.box_score[b]),
                    box_score=float(meta.box_score[b]),
                    center=center[b],
                    scale=scale[b],
                    area=float(scale[b, 0] * scale[b, 1]),
                    index=int(meta.index[b]),
                )
            )
    return preds


def predict_dataset(
    model: nn.Module,
    cfg: Config,
    device: str | torch.device = "cpu",
    split: str = "val",
    use_gt_boxes: bool | None = None,
    progress: bool = True,
    dataset: TopDownDataset | Subset[dict[str, Any]] | None = None,
    num_workers: int | None = None,
) -> list[PosePrediction]:
    """Raw per-person predictions of ``model`` (flip test per ``cfg.eval.flip_test``)."""
    ds = build_eval_dataset(cfg, split, use_gt_boxes) if dataset is None else dataset
    base = base_dataset(ds)
    sigmoid = cfg.loss.name in SIGMOID_LOSSES
    flip_index = base.spec.flip_index if cfg.eval.flip_test else None
    dev = torch.device(device)
    was_training = model.training
    model.to(dev).eval()

    def heatmap_fn(batch: dict[str, Any]) -> np.ndarray:
        return model_heatmaps(model, batch["image"].to(dev), base.codec, flip_index, sigmoid)

    try:
        return run_predictions(
            ds, heatmap_fn, cfg.eval.batch_size, cfg.data.num_workers if num_workers is None else num_workers, progress
        )
    finally:
        model.train(was_training)


def predict_oracle(
    cfg: Config,
    split: str = "val",
    progress: bool = True,
    dataset: TopDownDataset | Subset[dict[str, Any]] | None = None,
    num_workers: int | None = None,
) -> list[PosePrediction]:
    """Ground truth through encode -> decode -> back-projection: the codec's accuracy ceiling."""
    ds = build_eval_dataset(cfg, split, use_gt_boxes=True) if dataset is None else dataset

    def heatmap_fn(batch: dict[str, Any]) -> np.ndarray:
        return batch["target"].numpy()

    return run_predictions(
        ds,
        heatmap_fn,
        cfg.eval.batch_size,
        cfg.data.num_workers if num_workers is None else num_workers,
        progress,
        "oracle",
    )


def score_predictions(
    predictions: list[PosePrediction],
    cfg: Config,
    dataset: TopDownDataset | Subset[dict[str, Any]],
    split: str = "val",
    out_dir: str | Path | None = None,
    file_prefix: str = "",
) -> tuple[dict[str, float], dict[str, Any]]:
    """COCO/SynthPose: rescoring + OKS-NMS + COCOeval (10 stats); MPII: PCKh.

    Returns ``(metrics, info)``; ``info`` holds non-numeric facts (MPII ``head_size_source``,
    people counts, file paths). With ``out_dir`` writes ``<prefix>results_<split>.json`` (COCO
    results format; MPII: per-record joints in MATLAB 1-based coordinates) and
    ``<prefix>metrics_<split>.json``.
    """
    base = base_dataset(dataset)
    spec = resolve_layout(cfg.data)
    out = Path(out_dir) if out_dir is not None else None
    extra: dict[str, Any] = {"people": len(predictions)}
    results_file = out / f"{file_prefix}results_{split}.json" if out is not None else None
    if cfg.data.dataset == "mpii":
        indices = _indices(dataset)  # records evaluated (all, or those of eval.max_images images)
        position = {base_index: pos for pos, base_index in enumerate(indices)}
        pckh = PckhEvaluator([base.records[i] for i in indices], spec)
        pckh.process(dataclasses.replace(p, index=position[p.index]) for p in predictions)
        metrics = pckh.evaluate()
        extra["head_size_source"] = pckh.head_size_source
        if results_file is not None:
            _write_json(results_file, [_mpii_entry(p, base) for p in predictions])
    else:
        kept = postprocess(predictions, spec, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
        ann = Path(cfg.data.root) / (cfg.data.val_ann if split == "val" else cfg.data.train_ann)
        image_ids = None
        if cfg.eval.max_images is not None:
            image_ids = sorted({int(base.records[i].image_id) for i in _indices(dataset)})
        coco = CocoEvaluator(ann, spec, image_ids=image_ids)
        coco.process(kept)
        if results_file is not None:
            coco.write_results(results_file)
        metrics = coco.evaluate()
        extra["people_after_nms"] = len(kept)
        recs = [base.records[p.index] for p in predictions]
        if recs and all("area" in r.extra and r.keypoints[:, 2].max() > 0 for r in recs):
            oks = oks_to_ground_truth(
                np.stack([p.keypoints for p in predictions]),
                np.stack([r.keypoints for r in recs]),
                np.array([float(r.extra["area"]) for r in recs]),  # type: ignore[arg-type]
                spec.sigmas,
            )
            extra["mean_oks_to_gt"] = float(np.nanmean(oks))  # every person vs its own annotation, pre-NMS
    if out is not None:
        extra["results_file"] = str(results_file)
        extra["metrics_file"] = str(out / f"{file_prefix}metrics_{split}.json")
        _write_json(Path(extra["metrics_file"]), {"metrics": metrics, **extra})
    return metrics, extra


def evaluate_model(
    model: nn.Module,
    cfg: Config,
    device: str | torch.device = "cpu",
    split: str = "val",
    out_dir: str | Path | None = None,
    use_gt_boxes: bool | None = None,
    progress: bool = True,
    num_workers: int | None = None,
) -> dict[str, float]:
    """Evaluate ``model`` on ``split``: COCO/SynthPose -> AP, AP50, ..., ARl; MPII -> PCKh table.

    Writes ``results_<split>.json`` and ``metrics_<split>.json`` to ``out_dir`` when given. The
    model's train/eval mode is restored afterwards.
    """
    dataset = build_eval_dataset(cfg, split, use_gt_boxes)
    preds = predict_dataset(model, cfg, device, split, progress=progress, dataset=dataset, num_workers=num_workers)
    return score_predictions(preds, cfg, dataset, split, out_dir)[0]


def _indices(dataset: Dataset[Any]) -> list[int]:
    if isinstance(dataset, Subset):
        inner = _indices(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    return list(range(len(dataset)))  # type: ignore[arg-type]


def _mpii_entry(p: PosePrediction, base: TopDownDataset) -> dict[str, Any]:
    """MPII prediction row; ``joints_matlab`` are 1-based like the .mat ground truth (x + 1)."""
    record = base.records[p.index]
    return {
        "index": p.index,
        "image": Path(record.image_path).name,
        "joints_matlab": (np.asarray(p.keypoints[:, :2], np.float64) + 1.0).tolist(),
        "scores": np.asarray(p.keypoints[:, 2], np.float64).tolist(),
    }


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1 if isinstance(data, dict) else None))
