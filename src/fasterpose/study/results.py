"""Typed study results: runs, per-arm summaries, tested claims, per regime, and their JSON form.

:func:`fasterpose.study.collect.collect_results` fills a :class:`StudyResults`, which round-trips through
JSON (:meth:`StudyResults.to_dict` / :meth:`StudyResults.from_dict`). AP is COCOeval's keypoint AP on the
study's SynthPose validation split, in [0, 1].
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.study.dataset import DatasetInfo
from fasterpose.study.manifest import Group, StudyError

LATE_FRACTION = 2 / 3  # "flattened": the gain after this fraction of the schedule, relative to the final AP


@dataclass(frozen=True)
class Stat:
    """mean, sample std (ddof 1; 0 for one value), min, max, n."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        v = np.asarray(values, np.float64)
        if v.size == 0:
            raise ValueError("no values to summarise")
        return cls(
            float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, float(v.min()), float(v.max()), int(v.size)
        )


def summarize(values: list[float]) -> Stat:
    """:meth:`Stat.of`."""
    return Stat.of(values)


@dataclass
class RunResult:
    """One finished run: AP per evaluated epoch and its summaries."""

    seed: int
    eval_epochs: list[int]
    ap: list[float]
    final: float
    best: float
    auc: float  # mean AP over the evaluated epochs (area under the curve / its length)
    early: float  # AP at the regime's early epoch
    late_gain: float  # final AP minus the AP at LATE_FRACTION of the schedule
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    run_seconds: float | None = None  # the run's wall time; None when it was resumed (only a piece was timed)
    cpu_seconds: float | None = None  # process CPU time; None when unknown or resumed
    resumed: bool = False  # continued from last.pth after an interruption
    threads: int | None = None  # torch threads of the training process, from study_run.json

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))


@dataclass
class ArmSummary:
    final: Stat
    best: Stat
    auc: Stat
    early: Stat
    late_gain: Stat
    curve_mean: list[float]
    curve_min: list[float]
    curve_max: list[float]
    train_seconds: Stat
    cpu_seconds: Stat | None = None


@dataclass
class ArmResult:
    name: str
    label: str
    config: str
    loss: str
    alpha: float
    gamma: float
    params_m: float
    paper_gflops: float
    gmacs: float
    seeds_planned: int
    runs: list[RunResult] = field(default_factory=list)
    summary: ArmSummary | None = None

    @property
    def complete(self) -> bool:
        return len(self.runs) >= self.seeds_planned


@dataclass
class ClaimResult:
    text: str
    kind: str
    metric: str
    arms: list[str]
    means: dict[str, float | None]
    verdict: str  # holds | does not hold | not resolved (see fasterpose.study.claims)
    p: float | None = None
    diff: float | None = None  # mean paired difference arm0 - arm1, AP percent (equal: the deciding pair)
    test: str = ""
    p_adjusted: float | None = None  # Holm over the study's whole family of claims
    p_against: float | None = None  # the opposite one-sided test (before the family's Bonferroni factor)
    ci95: list[float] | None = None  # 95% t interval of the mean paired difference, AP percent
    margin: float | None = None  # AP percent, for non-inferiority and equivalence claims
    n_pairs: int = 0  # seeds both arms finished
    pairs: list[dict[str, Any]] = field(default_factory=list)  # equal: one entry per pair of arms
    interim: str | None = None  # e.g. "3 of 8 planned seeds": an arm is short of its plan, nothing is decided

    def pairs_deciding(self) -> str:
        """``a - b`` of the pair with the largest within-claim Holm p (the one that decides an equal claim)."""
        if not self.pairs:
            return ""
        worst = max(self.pairs, key=lambda x: float(x.get("p_holm_within", x["p"])))
        return " - ".join(worst["arms"])


@dataclass
class RegimeResult:
    name: str
    label: str
    early_epoch: int
    arms: dict[str, ArmResult]
    claims: list[ClaimResult]
    note: str = ""
    pretrain: list[RunResult] = field(default_factory=list)  # AP of each pretraining on its own val split
    pretrain_label: str = ""
    pretrain_dataset: DatasetInfo | None = None
    feature_stride: int | None = None  # of the LR arms' head input (backbone stride at feature_index)
    upsample_L: int | None = None  # the LR arms' LHR upscale: feature_stride / heatmap stride
    finetune_epochs: int | None = None  # epochs of every arm after the pretraining (None: no pretraining)
    pretrain_head: str | None = None  # model.head of the pretraining (pooled: head-neutral; None: no pretraining)
    head_warmup_epochs: int | None = None  # fine-tune epochs with the backbone at a reduced rate (None: no pretraining)

    def best_arm(self) -> ArmResult | None:
        """The arm with the highest mean final AP among those with more than one seed planned."""
        scored = [a for a in self.arms.values() if a.summary and a.seeds_planned > 1]
        return max(scored, key=lambda a: a.summary.final.mean if a.summary else 0.0, default=None)


@dataclass
class Invocation:
    seconds: float = 0.0
    planned: int = 0
    skipped: int = 0
    trained: int = 0
    failed: int = 0
    jobs: int = 1
    threads: int = 1
    load_average: list[float | None] = field(default_factory=list)
    command: str = ""
    git_commit: str | None = None
    report_only: bool = False


@dataclass
class StudyResults:
    title: str
    seeds: int
    overrides: list[str]
    groups: list[Group]
    regimes: dict[str, RegimeResult]
    dataset: DatasetInfo | None = None
    invocation: Invocation | None = None
    hardware: str | None = None
    git_commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], _encode(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyResults:
        return typing.cast(StudyResults, _decode(cls, data, "results"))

    @classmethod
    def load(cls, path: Path) -> StudyResults:
        try:
            data = json.loads(Path(path).read_text())
            return cls.from_dict(data)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StudyError(f"{path}: not a study results file of this version ({exc})") from exc


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _decode(tp: Any, value: Any, where: str) -> Any:  # noqa: C901 - one branch per type form
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _decode(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return typing.cast(Any, tp)(**{k: _decode(hints[k], v, f"{where}.{k}") for k, v in value.items() if k in names})
    if origin is list:
        return [_decode(args[0], v, where) for v in value]
    if origin is tuple:
        return tuple(_decode(args[0], v, where) for v in value)
    if origin is dict:
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Path:
        return Path(value)
    return value
