"""``fasterpose predict``: poses on an image, a folder of images, a video or a webcam."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from fasterpose.commands.argtypes import SCORE, count, number
from fasterpose.deploy.onnx_detector import DEFAULT_SCORE as DETECTOR_SCORE
from fasterpose.deploy.onnx_detector import FORMATS
from fasterpose.pipeline.runner import RUNTIMES

log = logging.getLogger(__name__)
DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"

DESCRIPTION = """\
Find the pose of every person in an image, a folder of images, a video file or a webcam.

Person boxes come from --boxes FILE, else --whole-image, else a person detector ONNX file
(--detector: an ultralytics YOLOv8/YOLO11, YOLOX or mmdeploy RTMDet export; no torch needed), else a
local torchvision person detector (--detector-weights or the torch hub cache); nothing is downloaded.
By default the drawn images (or <video>_pose.mp4) and results.json (COCO keypoint results) go to a
new folder runs/predict, runs/predict2, ... and the folder is printed. predict never writes into or
over its source and never replaces a file it did not write in this run (unless --overwrite).

image_id in the results: a file named by a number keeps it (000000000785.jpg -> 785); other files
are numbered after the largest such number, in name order (from 0 when none is numeric); video
frames are numbered from 0."""

EXAMPLES = """\
examples:
  fasterpose predict --checkpoint best.pth photo.jpg --boxes dets.json        # -> runs/predict/
  fasterpose predict --checkpoint model.onnx photo.jpg --detector yolov8n.onnx  # boxes from a detector file
  fasterpose predict --checkpoint model.onnx photos/ --boxes yolo.json --box-format xyxy
  fasterpose predict --checkpoint best.pth crop.jpg --whole-image --out crop_pose.jpg
  fasterpose predict --checkpoint best.pth clip.mp4 --whole-image --smooth --out out/
  fasterpose predict --checkpoint best.pth photos/ --boxes dets.json --no-save --json people.json"""


def _add_box_arguments(a: Callable[..., Any]) -> None:
    """Where the person boxes come from: a file, the whole image or a detector, and its threshold."""
    a(
        "--boxes",
        metavar="FILE",
        help="person boxes: COCO detections, {file_name: [[...]]}, ultralytics or MMDetection JSON, "
        "or a folder of MMDetection <stem>.json files (default: none)",
    )
    a(
        "--box-format",
        choices=("xywh", "xyxy"),
        default="xywh",
        help="how the numbers of a {file_name: boxes} map are read (default: xywh; detector files: theirs)",
    )
    a("--whole-image", action="store_true", help="one person filling each image, no boxes needed (default: off)")
    a(
        "--detector",
        metavar="FILE.onnx",
        help="person boxes from this detector ONNX file: ultralytics YOLOv8/YOLO11, YOLOX, or mmdeploy RTMDet / "
        "YOLOX (dets + labels) exports (default: none)",
    )
    a(
        "--detector-format",
        choices=FORMATS,
        help="the --detector file's family, when its outputs do not say (default: read from the file)",
    )
    a(
        "--detector-weights",
        metavar="FILE",
        help=f"local weights of torchvision's {DETECTOR} (default: the torch hub cache)",
    )
    a(
        "--det-threshold",
        metavar="SCORE",
        type=SCORE,
        help="drop person boxes scoring below this (default: the model config's data.det_score_threshold, "
        f"the value eval uses; {DETECTOR_SCORE:g} for a --detector file)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("source", help="an image, a folder of images, a video file, or a webcam index (0, 1, ...)")
    a(
        "--checkpoint",
        metavar="MODEL",
        required=True,
        help="the model: a training checkpoint (.pth) or an exported .onnx / .xml",
    )
    _add_box_arguments(a)
    a(
        "--out",
        metavar="PATH",
        help="folder for the drawings and results.json, or FILE.jpg for one image / FILE.mp4 for a video "
        "(default: a new runs/predict, runs/predict2, ...)",
    )
    a(
        "--json",
        metavar="FILE",
        help="write the COCO keypoint results here instead (default: results.json in the output folder)",
    )
    a("--no-save", action="store_true", help="keep nothing but an explicit --json (default: off)")
    a("--overwrite", action="store_true", help="allow replacing existing files at --out / --json (default: off)")
    a(
        "--runtime",
        default="auto",
        choices=("auto", *RUNTIMES),
        help="inference engine (default: auto = ONNX Runtime on the CPU, torch on a GPU)",
    )
    a("--precision", choices=("fp32", "bf16"), help="numeric precision (default: the model file's own, else fp32)")
    a(
        "--device",
        metavar="DEVICE",
        default="auto",
        help="torch device, e.g. cpu, cuda:0 (default: auto = a GPU when there is one)",
    )
    a("--flip-test", action="store_true", help="also run the mirrored crops and average (default: off)")
    a(
        "--threshold",
        metavar="SCORE",
        type=SCORE,
        default=0.3,
        help="joints scoring at or below this are not drawn (default: 0.3)",
    )
    a("--no-nms", action="store_true", help="keep duplicate poses of one person (default: OKS-NMS on)")
    a("--smooth", action="store_true", help="One-Euro smoothing of the joints over time, video/webcam (default: off)")
    a(
        "--smooth-min-cutoff",
        type=number(0.0, low_open=True),
        default=1.0,
        help="One-Euro minimum cutoff in Hz, with --smooth (default: 1.0)",
    )
    a("--smooth-beta", type=number(0.0), default=0.05, help="One-Euro speed coefficient, with --smooth (default: 0.05)")
    a("--max-frames", metavar="N", type=count(), help="stop after this many video / webcam frames (default: all)")


def _ignored_options(args: argparse.Namespace, kind: str) -> list[str]:
    """Options given that do nothing for this source and box choice."""
    notes = []
    if kind == "images":
        notes += [
            f"{opt} applies to a video or webcam only"
            for opt, on in (("--smooth", args.smooth), ("--max-frames", args.max_frames is not None))
            if on
        ]
    if args.boxes and (args.whole_image or args.detector_weights or args.detector):
        notes.append("--boxes is used; --whole-image / --detector / --detector-weights are ignored")
    elif args.whole_image and args.detector:
        notes.append("--whole-image is used; --detector is ignored")
    elif args.detector and args.detector_weights:
        notes.append("--detector is used; --detector-weights is ignored")
    if args.detector_format and not args.detector:
        notes.append("--detector-format applies to a --detector file only")
    if args.box_format != "xywh" and not args.boxes:
        notes.append("--box-format applies to a --boxes file only")
    if args.whole_image and args.det_threshold is not None:
        notes.append("--det-threshold does nothing with --whole-image")
    return notes


def run(args: argparse.Namespace) -> int:
    from fasterpose.atomic import model_input_files, refuse_inputs
    from fasterpose.deploy.boxes import box_provider
    from fasterpose.deploy.outputs import plan_outputs
    from fasterpose.deploy.predict_run import predict_source
    from fasterpose.deploy.predictor import Predictor
    from fasterpose.deploy.smoothing import PoseSmoother
    from fasterpose.deploy.sources import open_source

    # first what can fail without a model: the source, the outputs, the boxes
    source = open_source(args.source, args.max_frames)
    for note in _ignored_options(args, source.kind):
        log.warning("%s", note)
    plan = plan_outputs(source, args.source, args.out, args.json, not args.no_save, args.overwrite)
    inputs = {
        "model": model_input_files(args.checkpoint),
        "boxes file": args.boxes,
        "detector weights": args.detector_weights,
        "detector": args.detector,
    }
    refuse_inputs([plan.json_path, plan.summary_path, plan.single_file], inputs, "--out / --json")
    boxes = box_provider(
        args.boxes,
        args.whole_image,
        args.detector_weights,
        box_format=args.box_format,
        detector=args.detector,
        detector_format=args.detector_format,
        runtime=args.runtime,
    )
    if boxes.table is not None:
        boxes.table.check_single_image(len(source.paths) if source.kind == "images" else 0)
    predictor = Predictor(
        args.checkpoint, runtime=args.runtime, flip_test=args.flip_test, device=args.device, precision=args.precision
    )
    cfg_threshold = float(predictor.cfg.data.det_score_threshold)
    if boxes.kind == "detector" and args.detector:  # a detector file keeps its candidates from 0.001 up
        cfg_threshold = DETECTOR_SCORE
    boxes.threshold = cfg_threshold if args.det_threshold is None else args.det_threshold
    smoother = (
        PoseSmoother(args.smooth_min_cutoff, args.smooth_beta) if args.smooth and source.kind == "video" else None
    )
    _, summary = predict_source(predictor, source, boxes, plan, not args.no_nms, smoother, args.threshold)
    log.info(
        "%d %s, %d people, runtime %s, box score >= %g (%s)",
        summary.items,
        summary.unit,
        summary.people,
        predictor.runtime,
        boxes.threshold,
        boxes.kind,
    )
    for line in summary.lines():
        log.warning("%s", line)
    unmatched = boxes.unmatched_warning()
    if unmatched and summary.items:
        log.warning("%s", unmatched)
    where = plan.folder or plan.single_file
    if where is not None:
        print(f"results saved to {where}" + (f" (results {plan.json_path})" if plan.json_path else ""))
    elif plan.json_path is not None:
        print(f"results saved to {plan.json_path}")
    if summary.interrupted:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
