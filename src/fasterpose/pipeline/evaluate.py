"""A dataset's person boxes through the top-down pipeline, scored by COCOeval (10 stats) or PCKh.

    records (GT or detector boxes) -> crops (threads read and warp images, in record order)
      -> TopDownPipeline.predict_crops in batches of ``eval.batch_size`` -> PosePrediction per box
      -> COCO / SynthPose: rescore + OKS-NMS + COCOeval; MPII: PCKh per record (no NMS)

:func:`evaluate_on_dataset` is the one evaluation entry point: the training loop, ``fasterpose eval``
(model files, the codec oracle, the test-dev results file), export validation and the study call it.
Torch-free: the runtime install scores exported models with this module. Under ``torchrun`` each
rank predicts one shard of the images (:func:`shard_images`) and :func:`evaluate_on_dataset`
gathers the predictions to rank 0, which scores them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from fasterpose.atomic import atomic_write_text
from fasterpose.data.build import build_records, initial_crop
from fasterpose.data.image_io import ImageReadError, in_annotated_frame
from fasterpose.data.records import PersonRecord
from fasterpose.data.transforms import transform_keypoints
from fasterpose.data.workers import capped_workers
from fasterpose.evaluation.coco import CocoEvaluator, oks_to_ground_truth
from fasterpose.evaluation.pckh import METRIC_NOTES, PckhEvaluator
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.experiment import Experiment, experiment_of, split_files
from fasterpose.geometry import get_affine_transform
from fasterpose.keypoints import check_annotation_layout
from fasterpose.pipeline.crops import as_rgb_image, warp_crops
from fasterpose.pipeline.testdev import write_testdev
from fasterpose.pipeline.topdown import TopDownPipeline, crop_padding, decode_to_image, postprocess, rescore

if TYPE_CHECKING:
    import torch
    from torch import nn

    from fasterpose.config import Config

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """The people to evaluate: records with their un-augmented crops.

    Attributes:
        records: the evaluated records (all, or those of the first ``eval.max_images`` images);
            a prediction's ``index`` is a position in this list.
        centers, scales: (N, 2) crop centre and size per record, image pixels.
        split: ``val``, ``train`` or ``test-dev``.
        ann_file: the ground-truth annotation file of the split (test-dev: its image-info file).
        image_ids: the images scored when limited by ``eval.max_images`` (None: every image).
        boxes: where the person boxes came from: ``gt`` (annotations) or ``det`` (``data.det_file``).
        skip_bad_images: leave out the people of an image that cannot be read or is damaged
            (listed in ``bad_images``) instead of stopping with an error naming it.
        bad_images: ``{"file", "error"}`` per image left out (filled while predicting).
    """

    records: list[PersonRecord]
    centers: np.ndarray
    scales: np.ndarray
    split: str
    ann_file: Path
    image_ids: list[int] | None = None
    boxes: str = "gt"
    skip_bad_images: bool = False
    bad_images: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


def split_annotations(cfg: Config, split: str) -> Path:
    """The annotation file of ``split``: train / val ground truth, or test-dev's image-info file."""
    return split_files(cfg.data, split).annotations


def build_eval_set(
    experiment: Experiment | Config,
    split: str = "val",
    use_gt_boxes: bool | None = None,
    skip_bad_images: bool | None = None,
) -> EvalSet:
    """The records of ``split`` (GT boxes or ``data.det_file``), limited to ``eval.max_images`` images.

    ``skip_bad_images`` (default ``data.skip_bad_images``): see :class:`EvalSet`.

    ``split="test-dev"`` takes the detector boxes of ``data.test_det_file`` (there is no ground truth).
    A layout given as data must match the joints the annotation file's category lists.
    """
    exp = experiment_of(experiment)
    cfg, spec = exp.cfg, exp.spec
    gt_boxes = cfg.eval.use_gt_boxes if use_gt_boxes is None else use_gt_boxes
    ann = split_annotations(cfg, split)
    if exp.coco_format and ann.is_file():
        check_annotation_layout(spec, ann)
    records = build_records(exp, split, gt_boxes and split != "test-dev")
    image_ids = None
    if cfg.eval.max_images is not None:
        chosen = list(dict.fromkeys(r.image_id for r in records))[: cfg.eval.max_images]  # first-seen order
        keep = set(chosen)
        records = [r for r in records if r.image_id in keep]
        image_ids = sorted(int(i) for i in keep)
    w, h = cfg.data.input_size
    crops = [initial_crop(r, spec.num_keypoints, w / h, crop_padding(cfg), spec.name) for r in records]
    centers = np.array([c for c, _ in crops], np.float32).reshape(-1, 2)
    scales = np.array([s for _, s in crops], np.float32).reshape(-1, 2)
    boxes = "gt" if gt_boxes and split != "test-dev" else "det"
    skip = cfg.data.skip_bad_images if skip_bad_images is None else skip_bad_images
    return EvalSet(records, centers, scales, split, ann, image_ids, boxes, skip)


def eval_file_names(split: str, boxes: str, prefix: str = "") -> tuple[str, str]:
    """(results, metrics) file names of one evaluation: ``<prefix>results_<split>_<boxes>.json`` and
    ``<prefix>metrics_<split>_<boxes>.json``, so an evaluation on detector boxes (``det``) never
    replaces the one on ground-truth boxes (``gt``) of the same model and split."""
    return f"{prefix}results_{split}_{boxes}.json", f"{prefix}metrics_{split}_{boxes}.json"


def eval_identity(cfg: Config, split: str, boxes: str, model: str | Path | None) -> dict[str, Any]:
    """What one evaluation scored, as its metrics file records it under ``evaluated``: the model file,
    the dataset, the annotation file, the detection file (``det`` boxes) and ``eval.max_images``."""
    d = cfg.data
    det = d.test_det_file if split == "test-dev" else d.det_file if boxes == "det" else None
    return {
        "model": str(Path(model).resolve()) if model is not None else None,
        "dataset": d.dataset,
        "ann_file": str(split_annotations(cfg, split).resolve()),
        "det_file": str((Path(d.root) / det).resolve()) if det else None,
        "max_images": cfg.eval.max_images,
    }


def check_eval_outputs(
    out_dir: Path, names: tuple[str, str], identity: dict[str, Any], inputs: dict[str, Any], overwrite: bool
) -> None:
    """Before any work: the results / metrics files are none of the inputs, the folder can be written,
    and an existing pair holds this same evaluation (same model and data) unless ``overwrite``.

    Raises:
        InputOverwriteError: an output is an input (even with ``overwrite``).
        OSError: the folder cannot be written.
        FileExistsError: the files hold another model's or another dataset's evaluation.
    """
    from fasterpose.atomic import check_writable_folder, refuse_inputs

    results, metrics = out_dir / names[0], out_dir / names[1]
    refuse_inputs([results, metrics], inputs)
    check_writable_folder(out_dir, "results")
    if overwrite or not (results.exists() or metrics.exists()):
        return
    try:
        earlier = json.loads(metrics.read_text())
        before = earlier.get("evaluated") or {"model": earlier.get("model")}
    except (OSError, ValueError, AttributeError):
        before = {}
    if before.get("model") and not Path(str(before["model"])).is_absolute():
        before["model"] = str(Path(str(before["model"])).resolve())
    differ = [
        k
        for k in ("model", "dataset", "ann_file", "det_file", "max_images")
        if k in before and before[k] != identity.get(k)
    ]
    if before and not differ:
        return  # the same evaluation again: its files are replaced
    what = ", ".join(f"{k} {before.get(k)}" for k in differ) if before else "an unknown evaluation"
    raise FileExistsError(
        f"{metrics if metrics.exists() else results} holds the evaluation of {what}, not this one: pass --out DIR "
        "to keep both, or --overwrite to replace it"
    )


def shard_images(eval_set: EvalSet, rank: int, world_size: int) -> list[list[int]]:
    """Record positions grouped by image (first-seen order); rank ``r`` of ``w`` gets groups r, r+w, ..."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(eval_set.records):
        groups.setdefault(r.image_path, []).append(i)
    return list(groups.values())[rank::world_size]


def _load(eval_set: EvalSet, group: list[int], input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    path, size = eval_set.records[group[0]].image_path, eval_set.records[group[0]].image_size
    try:
        image = in_annotated_frame(as_rgb_image(path), path, size, rgb=True)  # as training reads it
    except ImageReadError as exc:
        if not eval_set.skip_bad_images:
            raise ImageReadError(
                exc.path,
                f"{exc.problem}; a set with a damaged or unreadable image is not scored: replace the file, "
                "or pass --skip-bad-images (data.skip_bad_images=true) to leave its people out",
            ) from None
        log.warning("skipped %s: its %d people are not scored", exc, len(group))
        eval_set.bad_images.append({"file": exc.path, "error": exc.problem})
        return np.zeros((0, 3, input_size[1], input_size[0]), np.float32), np.zeros(0, np.int64)
    idx = np.asarray(group)
    return warp_crops(image, eval_set.centers[idx], eval_set.scales[idx], input_size), idx


def crop_batches(
    eval_set: EvalSet, groups: Sequence[list[int]], input_size: tuple[int, int], batch_size: int, num_workers: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches (crops (B, 3, H, W), record positions (B,)) over ``groups`` in order, ``batch_size`` each
    (the last one shorter); ``num_workers`` threads read and warp ahead (bounded)."""
    buf_crops: list[np.ndarray] = []
    buf_idx: list[np.ndarray] = []
    buffered = 0

    def loaded() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if num_workers <= 0:
            for g in groups:
                yield _load(eval_set, g, input_size)
            return
        with ThreadPoolExecutor(num_workers) as pool:
            pending: deque[Future[tuple[np.ndarray, np.ndarray]]] = deque()
            it = iter(groups)
            for g in it:
                pending.append(pool.submit(_load, eval_set, g, input_size))
                if len(pending) >= 2 * num_workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    for crops, idx in loaded():
        buf_crops.append(crops)
        buf_idx.append(idx)
        buffered += len(idx)
        while buffered >= batch_size:
            all_crops, all_idx = np.concatenate(buf_crops), np.concatenate(buf_idx)
            yield all_crops[:batch_size], all_idx[:batch_size]
            buf_crops, buf_idx = [all_crops[batch_size:]], [all_idx[batch_size:]]
            buffered -= batch_size
    if buffered:
        yield np.concatenate(buf_crops), np.concatenate(buf_idx)


def _predict(
    pipeline: TopDownPipeline,
    eval_set: EvalSet,
    num_workers: int,
    progress: bool,
    rank: int,
    world_size: int,
    timings: dict[str, float],
) -> list[PosePrediction]:
    """One rescored prediction per record of this rank's shard, ordered by record position; adds the
    seconds spent waiting for crops (``data``), in the runner (``forward``) and decoding (``decode``)."""
    groups = shard_images(eval_set, rank, world_size)
    total = sum(len(g) for g in groups)
    preds: list[PosePrediction] = []
    speed: dict[str, float] = {"inference": 0.0, "postprocess": 0.0}  # ms, summed by predict_crops
    bar = tqdm(total=total, desc="eval", unit="crop", disable=not progress, leave=False)
    batches = crop_batches(eval_set, groups, pipeline.input_size, pipeline.batch_size, num_workers)
    waited = time.perf_counter()
    for crops, idx in batches:
        timings["data"] += time.perf_counter() - waited
        recs = [eval_set.records[i] for i in idx]
        preds += pipeline.predict_crops(
            crops,
            eval_set.centers[idx],
            eval_set.scales[idx],
            np.array([r.box_score for r in recs], np.float64),
            np.array([r.image_id for r in recs]),
            idx,
            speed=speed,
        )
        bar.update(len(idx))
        waited = time.perf_counter()
    bar.close()
    timings["forward"] += speed["inference"] / 1e3
    timings["decode"] += speed["postprocess"] / 1e3
    return sorted(preds, key=lambda p: p.index)


def oracle_predictions(
    cfg: Config | Experiment, eval_set: EvalSet, in_vis_threshold: float | None = None
) -> list[PosePrediction]:
    """Ground truth through encode -> decode -> back-projection: the codec's accuracy ceiling."""
    exp = experiment_of(cfg)
    cfg, codec = exp.cfg, exp.codec
    thr = cfg.eval.in_vis_threshold if in_vis_threshold is None else in_vis_threshold
    preds = []
    for i, r in enumerate(eval_set.records):
        c, s = eval_set.centers[i], eval_set.scales[i]
        kpts_in = transform_keypoints(r.keypoints, get_affine_transform(c, s, 0.0, codec.input_size))
        heatmaps, _ = codec.encode(kpts_in)
        kpts = decode_to_image(codec, heatmaps[None], c[None], s[None])[0]
        c64, s64 = c.astype(np.float64), s.astype(np.float64)
        score = rescore(kpts[:, 2], r.box_score, thr)
        preds.append(PosePrediction(r.image_id, kpts, score, r.box_score, c64, s64, float(s64[0] * s64[1]), i))
    return preds


def score_predictions(
    predictions: list[PosePrediction],
    cfg: Config | Experiment,
    eval_set: EvalSet,
    out_dir: str | Path | None = None,
    file_prefix: str = "",
    extra_info: dict[str, Any] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """COCO/SynthPose: rescoring + OKS-NMS + COCOeval (10 stats); MPII: PCKh.

    Returns ``(metrics, info)``; ``info`` holds non-numeric facts (MPII ``head_size_source``,
    people counts, file paths, and ``extra_info``, e.g. runtime and precision). With ``out_dir``
    writes ``<prefix>results_<split>_<boxes>.json`` (COCO results format; MPII: per-record joints
    in MATLAB 1-based coordinates) and ``<prefix>metrics_<split>_<boxes>.json`` (:func:`eval_file_names`),
    each atomically (an interrupted write leaves the previous file).
    """
    exp = experiment_of(cfg)
    cfg, spec = exp.cfg, exp.spec
    split = eval_set.split
    out = Path(out_dir) if out_dir is not None else None
    extra: dict[str, Any] = {**(extra_info or {}), "people": len(predictions)}
    results_name, metrics_name = eval_file_names(split, eval_set.boxes, file_prefix)
    results_file = out / results_name if out is not None else None
    extra["boxes"] = eval_set.boxes
    extra["evaluated"] = eval_identity(cfg, split, eval_set.boxes, extra.get("model"))
    records = eval_set.records
    skipped = {b["file"] for b in eval_set.bad_images}
    if skipped:
        extra["bad_images"] = list(eval_set.bad_images)
        extra["people_not_scored"] = sum(r.image_path in skipped for r in records)
    if exp.metric == "pckh":
        if skipped:  # PCKh counts a record without a prediction as missed: score the others only
            keep = [i for i, r in enumerate(records) if r.image_path not in skipped]
            where = {old: new for new, old in enumerate(keep)}
            records = [records[i] for i in keep]
            predictions = [replace(p, index=where[p.index]) for p in predictions if p.index in where]
        pckh = PckhEvaluator(records, spec)
        pckh.process(predictions)
        metrics = pckh.evaluate()
        extra["head_size_source"] = pckh.head_size_source
        extra["notes"] = {k: v for k, v in METRIC_NOTES.items() if k in metrics}
        if results_file is not None:
            _write_json(results_file, [_mpii_entry(p, records[p.index]) for p in predictions])
    else:
        kept = postprocess(predictions, spec, cfg.eval.in_vis_threshold, cfg.eval.oks_nms_threshold)
        coco = CocoEvaluator(eval_set.ann_file, spec, image_ids=eval_set.image_ids)
        if skipped:  # the skipped images' people are left out, not counted as missed
            gone = {int(r.image_id) for r in records if r.image_path in skipped}
            coco.image_ids = sorted(set(coco.image_ids or coco.coco.getImgIds()) - gone)
        coco.process(kept)
        if results_file is not None:
            coco.write_results(results_file)
        metrics = coco.evaluate()
        extra["people_after_nms"] = len(kept)
        recs = [records[p.index] for p in predictions]
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
        extra["metrics_file"] = str(out / metrics_name)
        _write_json(Path(extra["metrics_file"]), {"metrics": metrics, **extra})
    return metrics, extra


class CodecOracle:
    """The model of :func:`evaluate_on_dataset` that predicts the ground truth itself, pushed through
    encode -> decode -> back-projection (:func:`oracle_predictions`): the ceiling a codec allows."""


@dataclass
class EvalResult:
    """What :func:`evaluate_on_dataset` returns.

    Attributes:
        metrics: COCO's 10 stats or the PCKh table (test-dev, which has no ground truth: empty).
        info: the facts of :func:`score_predictions` (test-dev: those of
            :func:`~fasterpose.pipeline.testdev.write_testdev`), plus runtime, precision, flip test and
            processes when a model ran.
        predictions: every rank's rescored predictions (before OKS-NMS), by record position.
        timings: this process's seconds per stage: ``data`` (waiting for read and warped crops),
            ``forward`` (the runner, flip test included), ``decode`` (decode, back-project, rescore),
            ``metric`` (scoring and writing the files; on rank 0 only), ``total``.

    On a rank other than 0 of a distributed evaluation ``metrics``, ``info`` and ``predictions`` are empty.
    """

    metrics: dict[str, float]
    info: dict[str, Any]
    predictions: list[PosePrediction]
    timings: dict[str, float]


def evaluate_on_dataset(
    model: TopDownPipeline | CodecOracle | nn.Module,
    cfg: Config | Experiment,
    eval_set: EvalSet,
    out_dir: str | Path | None = None,
    file_prefix: str = "",
    num_workers: int | None = None,
    progress: bool = True,
    extra_info: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> EvalResult:
    """Predict every record of ``eval_set`` with ``model`` and score the predictions (COCO / SynthPose:
    rescore + OKS-NMS + COCOeval; MPII: PCKh) or, for the ``test-dev`` split, write the COCO server's
    results file into ``out_dir`` (:func:`~fasterpose.pipeline.testdev.write_testdev`).

    ``model``: a :class:`TopDownPipeline` over any runner; a torch ``nn.Module`` (run on ``device``,
    default where its parameters are, in eval mode inside :func:`~fasterpose.pipeline.torch_runner.inference_context`
    so its train/eval mode is restored afterwards, also on an error); or :class:`CodecOracle`.
    ``num_workers``: image-reading threads (default ``data.num_workers``, at most the CPU cores).
    ``extra_info`` (e.g. the model file) goes into the metrics file beside :func:`runner_info`.
    ``rank`` of ``world_size`` > 1 (``torch.distributed`` initialised, every rank calling): each
    rank predicts its shard of the images (:func:`shard_images`), rank 0 gathers all predictions and
    unreadable-image reports, scores and writes; the other ranks get an empty result. Per-stage
    seconds are returned in ``timings`` and logged; the metrics do not depend on them.
    """
    start = time.perf_counter()
    exp = experiment_of(cfg)  # a caller holding the Experiment passes it: nothing is resolved again
    cfg = exp.cfg
    timings = {"data": 0.0, "forward": 0.0, "decode": 0.0}
    workers = capped_workers(cfg.data.num_workers) if num_workers is None else num_workers
    shown = progress and rank == 0
    info: dict[str, Any] = {}
    if isinstance(model, CodecOracle):
        preds = oracle_predictions(exp, eval_set)
        timings["decode"] = time.perf_counter() - start
    elif isinstance(model, TopDownPipeline):
        preds = _predict(model, eval_set, workers, shown, rank, world_size, timings)
        info = {**runner_info(model), "processes": world_size}
    else:  # a torch module
        from fasterpose.pipeline.torch_runner import TorchRunner, inference_context

        with inference_context(model):
            here = next(model.parameters()).device if device is None else device
            pipeline = TopDownPipeline.from_config(exp, TorchRunner(model, device=here, channels_last=False))
            preds = _predict(pipeline, eval_set, workers, shown, rank, world_size, timings)
        info = {**runner_info(pipeline), "processes": world_size}
    if world_size > 1:
        preds = sorted(_gather_to_rank0(preds), key=lambda p: p.index)
        eval_set.bad_images = _gather_to_rank0(eval_set.bad_images)  # every rank's, for rank 0's summary
        if rank != 0:
            return EvalResult({}, {}, [], {**timings, "total": time.perf_counter() - start})
    scored = time.perf_counter()
    metrics, info = _score_or_write(preds, exp, eval_set, out_dir, file_prefix, {**info, **(extra_info or {})})
    timings["metric"] = time.perf_counter() - scored
    timings["total"] = time.perf_counter() - start
    log.info(
        "evaluated %d people in %.2f s: %s",
        len(preds),
        timings["total"],
        ", ".join(f"{k} {v:.2f} s" for k, v in timings.items() if k != "total"),
    )
    return EvalResult(metrics, info, preds, timings)


def _score_or_write(
    preds: list[PosePrediction],
    cfg: Config | Experiment,
    eval_set: EvalSet,
    out_dir: str | Path | None,
    file_prefix: str,
    extra_info: dict[str, Any],
) -> tuple[dict[str, float], dict[str, Any]]:
    """:func:`score_predictions`, or for test-dev the server's results file (no metrics)."""
    if eval_set.split != "test-dev":
        return score_predictions(preds, cfg, eval_set, out_dir, file_prefix, extra_info)
    if out_dir is None:
        raise ValueError("test-dev is not scored: give the folder for its results file (out_dir)")
    info = write_testdev(preds, cfg, out_dir)
    if eval_set.bad_images:
        info["bad_images"] = list(eval_set.bad_images)
    return {}, info


def _gather_to_rank0(items: list[Any]) -> list[Any]:
    """Every rank's ``items`` concatenated on rank 0 in rank order (the other ranks get [])."""
    import torch.distributed as dist

    parts: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(items, parts, dst=0)
    return [x for part in parts or [] for x in part]


def runner_info(pipeline: TopDownPipeline) -> dict[str, Any]:
    """What ran the model, for the metrics file: runtime, precision, flip test."""
    return {
        "runtime": getattr(pipeline.runner, "runtime", "?"),
        "precision": getattr(pipeline.runner, "precision", "?"),
        "flip_test": pipeline.flip_test,
    }


def _mpii_entry(p: PosePrediction, record: PersonRecord) -> dict[str, Any]:
    """MPII prediction row; ``joints_matlab`` are 1-based like the .mat ground truth (x + 1)."""
    return {
        "index": p.index,
        "image": Path(record.image_path).name,
        "joints_matlab": (np.asarray(p.keypoints[:, :2], np.float64) + 1.0).tolist(),
        "scores": np.asarray(p.keypoints[:, 2], np.float64).tolist(),
    }


def _write_json(path: Path, data: Any) -> None:
    what = "metrics" if isinstance(data, dict) else "results"
    atomic_write_text(path, json.dumps(data, indent=1 if isinstance(data, dict) else None), what=what)
