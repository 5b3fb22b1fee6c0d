"""``fasterpose eval-results RESULTS.json --ann GT.json``: score any COCO keypoint results file."""

from __future__ import annotations

import argparse
import json
import logging

from fasterpose.evaluation.coco import CocoEvaluator, load_results
from fasterpose.evaluation.report import format_table
from fasterpose.experiment import load_layout

log = logging.getLogger(__name__)

DESCRIPTION = """\
Score a COCO keypoint results file (from fasterpose, mmpose, HRNet or any other tool) against a
ground-truth annotation file with pycocotools' OKS AP. The results are checked first: NaN or
non-numeric keypoints, unknown image ids and categories absent from the ground truth are errors."""
EXAMPLES = """\
examples:
  fasterpose eval-results runs/quickstart/results_val_gt.json --ann data/synthpose/annotations/person_keypoints_val.json
  fasterpose eval-results results.json --ann person_keypoints_val2017.json --summary --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="COCO keypoint results JSON (a list of {image_id, keypoints, score})")
    parser.add_argument("--ann", required=True, help="ground-truth COCO person_keypoints JSON")
    parser.add_argument(
        "--keypoints",
        default="coco17",
        help="keypoint layout whose OKS sigmas score the joints: coco17, mpii16 or a layout YAML",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object (last line)")
    parser.add_argument("--summary", action="store_true", help="also print pycocotools' own 10-line summary")


def run(args: argparse.Namespace) -> int:
    evaluator = CocoEvaluator(args.ann, load_layout(args.keypoints, args.ann))
    results = load_results(args.results)
    if not results:
        log.warning("%s holds no results (an empty list): every person counts as missed, AP 0", args.results)
    evaluator.process(results, source=str(args.results))
    metrics = evaluator.evaluate()
    if args.summary:
        print(evaluator.summary.rstrip())
    empty = " (NO RESULTS in the file)" if not results else ""
    print(format_table(metrics, title=f"{args.results} vs {args.ann}{empty}"))
    if args.json:
        print(json.dumps(metrics))
    return 0
