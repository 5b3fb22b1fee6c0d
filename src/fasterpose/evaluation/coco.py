"""COCO keypoint evaluation: ``reset / process / evaluate`` around unmodified pycocotools COCOeval.

OKS AP is never re-implemented here: results go to ``COCO.loadRes`` and
``COCOeval(iouType="keypoints")`` with the layout's OKS sigmas, exactly as SimpleBaseline/HRNet
score COCO (``params.useSegm = None``, evaluate, accumulate, summarize).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.keypoints import COCO_17, KeypointSpec

EPS_AREA = float(np.spacing(1))  # pycocotools adds the same to the area
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def load_coco(gt: str | Path | COCO) -> COCO:
    """A pycocotools COCO object from a path (loaded quietly) or the object itself."""
    if isinstance(gt, COCO):
        return gt
    path = Path(gt)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return COCO(str(path))
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise ValueError(f"{path}: not a COCO annotation file ({exc})") from exc


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a COCO keypoint results file (a JSON list of result dicts)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{p}: a COCO results file is a JSON list of dicts, got {type(data).__name__}")
    return data


class CocoEvaluator:
    """Collect keypoint results and score them with pycocotools.

    Args:
        gt: ground-truth annotation file or a loaded ``COCO`` object.
        spec: keypoint layout; its OKS sigmas go to ``COCOeval.params.kpt_oks_sigmas``.
        image_ids: evaluate on these images only (default: every image of the ground truth, as
            COCOeval does).
    """

    def __init__(
        self,
        gt: str | Path | COCO,
        spec: KeypointSpec = COCO_17,
        image_ids: Sequence[int] | None = None,
    ) -> None:
        self.coco = load_coco(gt)
        self.spec = spec
        self.image_ids = None if image_ids is None else sorted({int(i) for i in image_ids})
        self.summary = ""
        self._results: list[dict[str, Any]] = []

    def reset(self) -> None:
        self._results = []
        self.summary = ""

    def process(self, predictions: Iterable[dict[str, Any] | PosePrediction]) -> None:
        """Add results: COCO results dicts or :class:`PosePrediction` objects."""
        k = self.spec.num_keypoints
        for pred in predictions:
            entry = pred.to_coco() if isinstance(pred, PosePrediction) else dict(pred)
            for key in ("image_id", "keypoints", "score"):
                if key not in entry:
                    raise ValueError(f"result entry lacks {key!r}: {str(entry)[:200]}")
            if len(entry["keypoints"]) != 3 * k:
                raise ValueError(
                    f"result for image {entry['image_id']} has {len(entry['keypoints'])} keypoint values, "
                    f"expected {3 * k} for layout {self.spec.name}"
                )
            entry.setdefault("category_id", 1)
            self._results.append(entry)

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self._results)

    def write_results(self, path: str | Path) -> Path:
        """Write the collected results as a COCO keypoint results JSON file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self._results))
        return p

    def evaluate(self) -> dict[str, float]:
        """Run COCOeval on the collected results; returns the 10 stats by name.

        With no results at all every stat is 0.0 (pycocotools cannot load an empty list).
        Stats for which the ground truth has no instance (e.g. no medium person) are -1.0, as
        pycocotools reports them.
        """
        if not self._results:
            self.summary = "no results to evaluate"
            return dict.fromkeys(STAT_NAMES, 0.0)
        known = set(self.coco.getImgIds())
        unknown = {int(r["image_id"]) for r in self._results} - known
        if unknown:
            raise ValueError(
                f"results name {len(unknown)} image ids absent from the ground truth, e.g. {sorted(unknown)[:5]}"
            )
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            dets = self.coco.loadRes(copy.deepcopy(self._results))
            coco_eval = COCOeval(self.coco, dets, iouType="keypoints")
            coco_eval.params.useSegm = None
            coco_eval.params.kpt_oks_sigmas = np.asarray(self.spec.sigmas, dtype=np.float64)
            if self.image_ids is not None:
                coco_eval.params.imgIds = self.image_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        self.summary = buf.getvalue()
        return {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats, strict=True)}


def oks_to_ground_truth(
    pred: np.ndarray, gt: np.ndarray, areas: np.ndarray, sigmas: np.ndarray | Sequence[float]
) -> np.ndarray:
    """OKS of each prediction with its own ground truth (a diagnostic, not part of AP).

    COCO's formula: mean over labelled ground-truth joints of ``exp(-d^2 / (2 * area * (2 sigma)^2))``.

    Args:
        pred: (N, K, 2+) predicted joints; gt: (N, K, 3) ground truth (visibility > 0 counts);
        areas: (N,) ground-truth segment areas; sigmas: (K,).

    Returns:
        (N,) OKS, NaN for a person without labelled joints.
    """
    p = np.asarray(pred, dtype=np.float64)[..., :2]
    g = np.asarray(gt, dtype=np.float64)
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((p - g[..., :2]) ** 2).sum(axis=2)
    e = d2 / var / (np.asarray(areas, dtype=np.float64)[:, None] + EPS_AREA) / 2.0
    vis = g[..., 2] > 0
    count = vis.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (np.exp(-e) * vis).sum(axis=1) / np.maximum(count, 1), np.nan)
