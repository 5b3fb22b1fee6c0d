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
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fasterpose.atomic import atomic_write_text
from fasterpose.data.coco import load_json
from fasterpose.data.coco_schema import other_keypoint_categories, person_category, require_coco
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.evaluation.validate import ResultsTarget, check_results
from fasterpose.keypoints import COCO_17, KeypointSpec

log = logging.getLogger(__name__)
EPS_AREA = float(np.spacing(1))  # pycocotools adds the same to the area
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def load_coco(gt: str | Path | COCO, num_keypoints: int = 17) -> COCO:
    """A pycocotools COCO object from a path or the object itself, validated as evaluation ground truth.

    The file is checked by the same schema as training reads it, plus what COCOeval needs
    (:func:`~fasterpose.data.coco_schema.require_coco` with ``for_eval``): integer and unique ids,
    finite numeric keypoints, ``area``, ``num_keypoints`` and a person category.

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: anything malformed, naming the file and the entry.
    """
    if isinstance(gt, COCO):
        require_coco(gt.dataset, "ground truth (COCO object)", num_keypoints, for_eval=True, need_sizes=False)
        return gt
    path = Path(gt)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    data = load_json(path)
    require_coco(data, path, num_keypoints, for_eval=True, need_sizes=False)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


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

    The ground truth is validated on construction and every result in :meth:`process` (see
    :mod:`fasterpose.evaluation.validate`), so nothing malformed reaches pycocotools. The person
    category is found by name (any id); only it is scored, other categories with keypoints are
    left out with a logged notice.

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
        self.coco = load_coco(gt, spec.num_keypoints)
        self.source = str(gt) if not isinstance(gt, COCO) else "ground truth"
        self.spec = spec
        person = person_category(self.coco.dataset, self.source)
        assert person is not None  # require_coco(for_eval=True) insists on it
        self.person_id = int(person["id"])
        self.target = ResultsTarget(
            spec.num_keypoints, set(self.coco.getImgIds()), set(self.coco.getCatIds()), self.person_id
        )
        self.image_ids = None if image_ids is None else sorted({int(i) for i in image_ids})
        self.summary = ""
        self._results: list[dict[str, Any]] = []
        self._other = 0
        self._seen = 0

    def reset(self) -> None:
        self._results = []
        self._other = 0
        self._seen = 0
        self.summary = ""

    def process(self, predictions: Iterable[dict[str, Any] | PosePrediction], source: str = "predictions") -> None:
        """Add results: COCO results dicts or :class:`PosePrediction` objects.

        Raises:
            ResultsError: an entry with NaN / infinite / non-numeric keypoints or score, the wrong
                number of keypoints, or an image or category the ground truth lacks; the message
                names ``source`` and the entry.
        """
        entries = [p.to_coco(category_id=self.person_id) if isinstance(p, PosePrediction) else p for p in predictions]
        kept, other = check_results(entries, self.target, source, start=self._seen)
        self._seen += len(entries)
        self._other += other
        self._results += kept

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self._results)

    def write_results(self, path: str | Path) -> Path:
        """Write the collected results as a COCO keypoint results JSON file (atomically)."""
        return atomic_write_text(path, json.dumps(self._results), what="results")

    def evaluate(self) -> dict[str, float]:
        """Run COCOeval on the collected results; returns the 10 stats by name.

        With no results at all every stat is 0.0 (pycocotools cannot load an empty list).
        Stats for which the ground truth has no instance (e.g. no medium person) are -1.0, as
        pycocotools reports them. Only the person category is scored (``params.catIds``).
        """
        self._notices()
        if not self._results:
            self.summary = "no results to evaluate"
            return dict.fromkeys(STAT_NAMES, 0.0)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            dets = self.coco.loadRes(copy.deepcopy(self._results))
            coco_eval = COCOeval(self.coco, dets, iouType="keypoints")
            coco_eval.params.useSegm = None
            coco_eval.params.catIds = [self.person_id]
            coco_eval.params.kpt_oks_sigmas = np.asarray(self.spec.sigmas, dtype=np.float64)
            if self.image_ids is not None:
                coco_eval.params.imgIds = self.image_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        self.summary = buf.getvalue()
        return {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats, strict=True)}

    def _notices(self) -> None:
        others = other_keypoint_categories(self.coco.dataset, self.person_id)
        if others:
            log.warning(
                "%s: categories %s also have keypoints; only the person (id %d) is scored",
                self.source,
                others,
                self.person_id,
            )
        if self._other:
            log.warning("%d results of other categories are not scored (keypoint AP of the person only)", self._other)


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
