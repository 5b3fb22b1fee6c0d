"""Evaluation: OKS-NMS, COCO keypoint AP through pycocotools, MPII PCKh."""

from fasterpose.evaluation.coco import STAT_NAMES, CocoEvaluator, load_results, oks_to_ground_truth
from fasterpose.evaluation.oks_nms import oks_matrix, oks_nms
from fasterpose.evaluation.pckh import (
    PckhEvaluator,
    PckhResult,
    compute_pckh,
    head_sizes_from_boxes,
    head_sizes_from_joints,
)
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.validate import ResultsError, check_results

__all__ = [
    "STAT_NAMES",
    "CocoEvaluator",
    "PckhEvaluator",
    "PckhResult",
    "PosePrediction",
    "ResultsError",
    "check_results",
    "compute_pckh",
    "head_sizes_from_boxes",
    "head_sizes_from_joints",
    "load_results",
    "oks_matrix",
    "oks_nms",
    "oks_to_ground_truth",
]
