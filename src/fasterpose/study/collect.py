"""Read the study's finished runs (``metrics.jsonl``, ``study_run.json``) into typed results."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.config import Config, config_to_dict
from fasterpose.study.claims import evaluate_claim, judge_family, mark_interim
from fasterpose.study.manifest import Study, StudyError
from fasterpose.study.results import LATE_FRACTION, ArmResult, ArmSummary, RegimeResult, RunResult, Stat, StudyResults
from fasterpose.study.runs import RUN_RECORD, pretrain_config, read_metrics, run_config, run_finished


def parse_run(cfg: Config, early_epoch: int) -> RunResult:
    """One finished run's ``metrics.jsonl`` (and ``study_run.json``, when present)."""
    out = Path(cfg.train.out_dir)
    records = read_metrics(out / "metrics.jsonl")
    evals: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.get("kind") == "eval" and "AP" in r:
            evals[int(r["epoch"])] = r  # a resumed run may repeat an epoch: the last one wins
    ends = [r for r in records if r.get("kind") == "end"]
    if not evals:
        raise StudyError(f"{out}/metrics.jsonl: no evaluation records (need train.eval_every >= 1)")
    epochs = sorted(evals)
    ap = [float(evals[e]["AP"]) for e in epochs]
    early = ap[int(np.searchsorted(epochs, min(early_epoch, epochs[-1])))]
    late = float(np.interp(LATE_FRACTION * cfg.train.epochs, [0, *epochs], [0.0, *ap]))
    record_path = out / RUN_RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    # a resumed run's process timed only its last piece: its CPU and run wall time are not the run's
    resumed = bool(record.get("resumed", False))
    return RunResult(
        seed=cfg.train.seed,
        eval_epochs=epochs,
        ap=ap,
        final=ap[-1],
        best=max(ap),
        auc=float(np.mean(ap)),
        early=early,
        late_gain=ap[-1] - late,
        metrics={k: float(v) for k, v in evals[epochs[-1]].items() if k not in ("kind", "epoch", "step")},
        train_seconds=sum(float(r["seconds"]) for r in records if r.get("kind") == "epoch"),
        run_seconds=float(ends[-1]["seconds"]) if ends and not resumed else None,
        cpu_seconds=None if resumed else record.get("cpu_seconds"),
        resumed=resumed,
        threads=record.get("threads"),
    )


def summarize_arm(runs: list[RunResult]) -> ArmSummary:
    n_ep = min(len(r.ap) for r in runs)
    curve = np.asarray([r.ap[:n_ep] for r in runs])
    cpu = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
    return ArmSummary(
        final=Stat.of([r.final for r in runs]),
        best=Stat.of([r.best for r in runs]),
        auc=Stat.of([r.auc for r in runs]),
        early=Stat.of([r.early for r in runs]),
        late_gain=Stat.of([r.late_gain for r in runs]),
        curve_mean=curve.mean(0).tolist(),
        curve_min=curve.min(0).tolist(),
        curve_max=curve.max(0).tolist(),
        train_seconds=Stat.of([r.train_seconds for r in runs]),
        cpu_seconds=Stat.of(cpu) if cpu else None,
    )


_COMPLEXITY: dict[str, tuple[float, float, float]] = {}


def lr_geometry(cfgs: list[Config]) -> tuple[int | None, int | None]:
    """(feature stride, L) of the first LR-head arm (``model.head: lhr``) among ``cfgs``; (None, None) if none."""
    from fasterpose.models.backbones import build_backbone

    for cfg in cfgs:
        if cfg.model.head == "lhr":
            m = cfg.model
            backbone = build_backbone(m.backbone, feature_index=m.feature_index, pretrained=False)
            stride = int(getattr(backbone, "stride"))  # noqa: B009 - published by every backbone
            return stride, stride // m.heatmap_stride
    return None, None


def arm_complexity(cfg: Config) -> tuple[float, float, float]:
    """(params in millions, paper GFLOPs, true GMACs) of the arm's network at its input size
    (cached per architecture: arms that differ only in the loss share one count)."""
    from fasterpose.bench.flops import measure_complexity
    from fasterpose.models.pose_model import PoseModel

    model_cfg = config_to_dict(cfg.model)
    model_cfg["weights"] = None
    key = json.dumps([model_cfg, list(cfg.data.input_size)], sort_keys=True)
    if key not in _COMPLEXITY:
        w, h = cfg.data.input_size
        scratch = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=None))
        c = measure_complexity(PoseModel.from_config(scratch, pretrained=False), (h, w))
        _COMPLEXITY[key] = (c.params / 1e6, c.paper_gflops, c.gmacs)
    return _COMPLEXITY[key]


def collect_regime(
    study: Study,
    regime: str,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
) -> RegimeResult:
    reg = study.regimes[regime]
    arms: dict[str, ArmResult] = {}
    for name, spec in study.arms.items():
        planned = study.seeds_for(name, seeds)
        if not planned:
            continue
        cfgs = [run_config(study, regime, name, s, work_dir, dataset_dir, overrides) for s in planned]
        runs = [parse_run(c, reg.early_epoch) for c in cfgs if run_finished(c)]
        params, gflops, gmacs = arm_complexity(cfgs[0])
        arms[name] = ArmResult(
            name,
            spec.label,
            str(spec.config_path),
            cfgs[0].loss.name,
            cfgs[0].loss.alpha,
            cfgs[0].loss.gamma,
            params,
            gflops,
            gmacs,
            len(planned),
            runs,
            summarize_arm(runs) if runs else None,
        )
    pretrain: list[RunResult] = []
    if reg.pretrain is not None:
        for seed in range(seeds):
            cfg = pretrain_config(study, regime, seed, work_dir, overrides)
            if run_finished(cfg):
                pretrain.append(parse_run(cfg, reg.early_epoch))
    arm0 = [run_config(study, regime, n, 0, work_dir, dataset_dir, overrides) for n in arms]
    stride, upsample = lr_geometry(arm0)
    return RegimeResult(
        regime,
        reg.label,
        reg.early_epoch,
        arms,
        [mark_interim(evaluate_claim(c, arms), arms) for c in study.claims],
        reg.note,
        pretrain,
        reg.pretrain.label if reg.pretrain else "",
        feature_stride=stride,
        upsample_L=upsample,
        finetune_epochs=arm0[0].train.epochs if reg.pretrain is not None and arm0 else None,
        pretrain_head=pretrain_config(study, regime, 0, work_dir, overrides).model.head if reg.pretrain else None,
        head_warmup_epochs=arm0[0].train.head_warmup_epochs if reg.pretrain is not None and arm0 else None,
    )


def collect_results(
    study: Study,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
    regimes: list[str] | None = None,
) -> StudyResults:
    """Read every finished run of the plan (partial studies included) into :class:`StudyResults`."""
    names = regimes or list(study.regimes)
    results = StudyResults(
        study.title,
        seeds,
        list(overrides),
        list(study.groups),
        {r: collect_regime(study, r, seeds, work_dir, dataset_dir, overrides) for r in names},
    )
    judge_family([c for r in results.regimes.values() for c in r.claims])  # Holm over every regime's claims
    return results
