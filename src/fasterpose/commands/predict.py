"""``fasterpose predict --checkpoint P SOURCE``: poses on an image, a folder, a video or a webcam.

Person boxes, in order of precedence (see :mod:`fasterpose.deploy.boxes`): ``--boxes FILE`` (COCO
detections, ``image_id`` matched to the numeric file stem or the frame index, or a
``{file_name: [[x, y, w, h(, score)], ...]}`` mapping); ``--whole-image``; a torchvision person
detector from ``--detector-weights FILE`` or the torch hub cache. Nothing is ever downloaded; with
none of these the command stops and says how to pass boxes.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fasterpose.pipeline.runner import RUNTIMES

log = logging.getLogger(__name__)
DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"


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


def run(args: argparse.Namespace) -> int:
    from fasterpose.deploy.boxes import box_provider
    from fasterpose.deploy.predictor import Predictor
    from fasterpose.deploy.smoothing import PoseSmoother
    from fasterpose.deploy.sources import open_source
    from fasterpose.visualize import draw_poses

    # first: a missing box source fails before any model work
    boxes_for = box_provider(args.boxes, args.whole_image, args.detector_weights, args.det_threshold)
    predictor = Predictor(
        args.checkpoint, runtime=args.runtime, flip_test=args.flip_test, device=args.device, precision=args.precision
    )
    kind, frames, fps = open_source(args.source, args.max_frames)
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    smoother = PoseSmoother(args.smooth_min_cutoff, args.smooth_beta) if args.smooth and kind == "video" else None
    writer: cv2.VideoWriter | None = None
    results: list[dict[str, Any]] = []
    n_frames = n_people = 0
    for name, image_id, image, t in frames:
        preds = predictor(image, boxes_for(name, image_id, image), image_id)
        if not args.no_nms:
            preds = predictor.suppress(preds)
        if smoother is not None:
            preds = smoother(preds, t)
        n_frames += 1
        n_people += len(preds)
        for p in preds:
            entry = p.to_coco()
            entry["file_name" if kind == "images" else "frame"] = name if kind == "images" else image_id
            results.append(entry)
        if out_dir is None:
            continue
        drawn = image
        if preds:
            xy, scores = np.stack([p.xy for p in preds]), np.stack([p.scores for p in preds])
            boxes = np.stack([np.asarray(p.box) for p in preds])
            drawn = draw_poses(image, xy, scores, predictor.spec, args.threshold, boxes)
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
