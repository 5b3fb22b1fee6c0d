"""``fasterpose predict --checkpoint P SOURCE``: poses on an image, a folder, a video or a webcam.

Person boxes, in order of precedence:

1. ``--boxes FILE``: a COCO detections file (``[{image_id, category_id, bbox: xywh, score}]``;
   ``image_id`` is matched to the numeric file stem, e.g. ``000000000785.jpg`` -> 785, or to the
   frame index for video) or a ``{file_name: [[x, y, w, h(, score)], ...]}`` mapping.
2. ``--whole-image``: one person filling each image (a cropped single-person photo).
3. a torchvision person detector (``fasterrcnn_mobilenet_v3_large_fpn``) whose COCO weights come
   from ``--detector-weights FILE`` or the torch hub cache. Nothing is ever downloaded.

With none of these available the command stops and says how to pass boxes, rather than guess
that every image holds exactly one person filling the frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fasterpose.engine.predict import PersonPose, Predictor
from fasterpose.engine.runtimes import RUNTIMES
from fasterpose.evaluation.oks_nms import oks_nms
from fasterpose.export import IMAGE_SUFFIXES, image_files
from fasterpose.geometry import box_to_center_scale
from fasterpose.visualize import draw_poses

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"
NO_BOXES_HELP = (
    "no person boxes: pass --boxes DETECTIONS.json (COCO detections format), --whole-image (one "
    "person filling each image), or --detector-weights FILE (torchvision's COCO weights for "
    f"{DETECTOR}, e.g. fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth; or place that file in the torch "
    "hub cache, {cache}). Nothing is downloaded."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="an image, a folder of images, a video file, or a webcam index (0, 1, ...)")
    parser.add_argument("--checkpoint", required=True, help="training checkpoint, or an exported .onnx / .xml model")
    parser.add_argument("--boxes", help="person boxes: COCO detections JSON, or {file_name: [[x, y, w, h, score]]}")
    parser.add_argument("--whole-image", action="store_true", help="one person filling each image")
    parser.add_argument("--detector-weights", help=f"local state dict of torchvision's {DETECTOR} (COCO)")
    parser.add_argument("--det-threshold", type=float, default=0.5, help="minimum person box score (0.5)")
    parser.add_argument("--out", help="folder for the drawn images (or <name>_pose.mp4 for video)")
    parser.add_argument("--json", help="write COCO keypoint results to this file")
    parser.add_argument("--runtime", default="auto", choices=("auto", *RUNTIMES))
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="default: the model file's own")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flip-test", action="store_true", help="average with the mirrored crop")
    parser.add_argument("--threshold", type=float, default=0.3, help="joint score below which nothing is drawn")
    parser.add_argument("--no-nms", action="store_true", help="keep duplicate poses (no OKS-NMS)")
    parser.add_argument("--smooth", action="store_true", help="One-Euro temporal smoothing (video, webcam)")
    parser.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One-Euro min cutoff, Hz (1.0)")
    parser.add_argument("--smooth-beta", type=float, default=0.05, help="One-Euro speed coefficient (0.05)")
    parser.add_argument("--max-frames", type=int, help="stop after this many video / webcam frames")


# ---------------------------------------------------------------------------------------- sources
Frame = tuple[str, int, np.ndarray, float]  # name, image id, RGB image, time (s)


def _image_id(path: Path, index: int) -> int:
    return int(path.stem) if path.stem.isdigit() else index


def _images(paths: list[Path], progress: bool) -> Iterator[Frame]:
    from fasterpose.engine.predict import read_image

    for i, p in enumerate(tqdm(paths, desc="images", unit="img", disable=not progress)):
        yield p.name, _image_id(p, i), read_image(p), 0.0


def _video(capture: cv2.VideoCapture, name: str, max_frames: int | None) -> Iterator[Frame]:
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    bar = tqdm(total=total, desc=name, unit="frame")
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield name, index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index / fps
            index += 1
            bar.update()
    finally:
        bar.close()
        capture.release()


def open_source(source: str, max_frames: int | None) -> tuple[str, Iterator[Frame], float]:
    """(kind, frames, fps) for an image, folder, video file or webcam index."""
    if source.isdigit() and not Path(source).exists():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise RuntimeError(f"cannot open webcam {source}")
        return "video", _video(cap, f"webcam{source}", max_frames), cap.get(cv2.CAP_PROP_FPS) or 30.0
    path = Path(source)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return "images", _images(files, progress=True), 0.0
    if not path.is_file():
        raise FileNotFoundError(f"source not found: {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video")
        return "video", _video(cap, path.stem, max_frames), cap.get(cv2.CAP_PROP_FPS) or 30.0
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "images", _images([path], progress=False), 0.0
    raise ValueError(f"{path}: unknown source type (images: {IMAGE_SUFFIXES}, videos: {VIDEO_SUFFIXES})")


# ---------------------------------------------------------------------------------------- boxes
def load_box_file(path: str | os.PathLike[str], threshold: float) -> dict[Any, np.ndarray]:
    """Boxes (P, 5) xywh+score keyed by image id (int) or file name (str)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"boxes file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a readable JSON boxes file ({exc})") from exc
    table: dict[Any, list[list[float]]] = {}
    if isinstance(data, dict):
        for key, boxes in data.items():
            rows = [[float(v) for v in b] for b in boxes] if isinstance(boxes, list) else None
            if rows is None or any(len(r) not in (4, 5) for r in rows):
                raise ValueError(f"{p}: boxes for {key!r} must be a list of [x, y, w, h(, score)]")
            table[key] = [r if len(r) == 5 else [*r, 1.0] for r in rows]
    elif isinstance(data, list):
        for i, det in enumerate(data):
            if not isinstance(det, dict) or "bbox" not in det or "image_id" not in det:
                raise ValueError(f"{p}: entry {i} is not a COCO detection ({{image_id, bbox, score}})")
            if int(det.get("category_id", 1)) != 1:
                continue
            table.setdefault(int(det["image_id"]), []).append([*map(float, det["bbox"]), float(det.get("score", 1.0))])
    else:
        raise ValueError(f"{p}: expected a list of COCO detections or a {{file_name: boxes}} mapping")
    out = {}
    for key, rows in table.items():
        arr = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
        out[key] = arr[(arr[:, 4] >= threshold) & (arr[:, 2] > 1) & (arr[:, 3] > 1)]
    return out


def find_detector_weights(explicit: str | None) -> Path | None:
    """``--detector-weights`` or the torch hub cache copy of torchvision's COCO weights (no download)."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise FileNotFoundError(f"detector weights not found: {p}")
        return p
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights as W

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(W.COCO_V1.url).name
    return cached if cached.is_file() else None


class PersonDetector:
    """torchvision's Faster R-CNN MobileNetV3-Large FPN, person class only, from a local state dict."""

    def __init__(self, weights: Path, threshold: float) -> None:
        from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

        self.model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - many failure types; one clear message
            raise ValueError(
                f"{weights}: not a {DETECTOR} COCO state dict ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        self.model.eval()
        self.threshold = threshold

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> person boxes (P, 5) xywh+score."""
        x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        det = self.model([x])[0]
        keep = (det["labels"] == 1) & (det["scores"] >= self.threshold)
        xyxy = det["boxes"][keep].numpy()
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        return np.concatenate([xywh, det["scores"][keep].numpy()[:, None]], axis=1).astype(np.float32)


def box_provider(args: argparse.Namespace) -> Any:
    """A callable (name, image_id, image) -> boxes (P, 5) or None (whole image)."""
    if args.boxes:
        table = load_box_file(args.boxes, args.det_threshold)
        empty = np.zeros((0, 5), np.float32)
        return lambda name, image_id, image: table.get(name, table.get(image_id, empty))
    if args.whole_image:
        return lambda name, image_id, image: None
    weights = find_detector_weights(args.detector_weights)
    if weights is None:
        raise ValueError(NO_BOXES_HELP.format(cache=Path(torch.hub.get_dir()) / "checkpoints"))
    detector = PersonDetector(weights, args.det_threshold)
    return lambda name, image_id, image: detector(image)


# ---------------------------------------------------------------------------------------- run
def suppress(preds: list[PersonPose], predictor: Predictor) -> list[PersonPose]:
    """OKS-NMS over one image's poses (crop area as person area, as in evaluation)."""
    if len(preds) < 2:
        return preds
    kpts = np.stack([np.concatenate([p.keypoints, p.scores[:, None]], 1) for p in preds])
    aspect = predictor.input_size[0] / predictor.input_size[1]
    areas = np.array([np.prod(box_to_center_scale(p.box, aspect, predictor.padding)[1]) for p in preds])
    keep = oks_nms(
        kpts,
        np.array([p.score for p in preds]),
        areas,
        predictor.spec.sigmas,
        predictor.cfg.eval.oks_nms_threshold,
    )
    return [preds[i] for i in sorted(keep.tolist())]


def run(args: argparse.Namespace) -> int:
    boxes_for = box_provider(args)  # first: a missing box source fails before any model work
    predictor = Predictor(
        args.checkpoint,
        runtime=args.runtime,
        flip_test=args.flip_test,
        device=args.device,
        precision=args.precision,
    )
    kind, frames, fps = open_source(args.source, args.max_frames)
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    smoother = None
    if args.smooth and kind == "video":
        from fasterpose.engine.smoothing import PoseSmoother

        smoother = PoseSmoother(args.smooth_min_cutoff, args.smooth_beta)
    writer: cv2.VideoWriter | None = None
    results: list[dict[str, Any]] = []
    n_frames = n_people = 0
    for name, image_id, image, t in frames:
        preds = predictor(image, boxes_for(name, image_id, image))
        if not args.no_nms:
            preds = suppress(preds, predictor)
        if smoother is not None:
            preds = smoother(preds, t)
        n_frames += 1
        n_people += len(preds)
        for p in preds:
            entry = p.to_coco(image_id)
            entry["file_name" if kind == "images" else "frame"] = name if kind == "images" else image_id
            results.append(entry)
        if out_dir is None:
            continue
        drawn = image
        if preds:
            drawn = draw_poses(
                image,
                np.stack([p.keypoints for p in preds]),
                np.stack([p.scores for p in preds]),
                predictor.spec,
                args.threshold,
                np.stack([p.box for p in preds]),
            )
        bgr = cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)
        if kind == "images":
            cv2.imwrite(str(out_dir / name), bgr)
            continue
        if writer is None:
            path = out_dir / f"{name}_pose.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (bgr.shape[1], bgr.shape[0]))
            if not writer.isOpened():
                raise RuntimeError(f"cannot write video {path} (OpenCV has no mp4v encoder?)")
        writer.write(bgr)
    if writer is not None:
        writer.release()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results))
    log.info(
        "%d %s, %d people, runtime %s%s%s",
        n_frames,
        "frames" if kind == "video" else "images",
        n_people,
        predictor.runtime,
        f"; drawn into {out_dir}" if out_dir else "",
        f"; results in {args.json}" if args.json else "",
    )
    return 0
