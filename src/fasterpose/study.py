"""Multi-seed training study of the paper's claims (Fig. 5, Tables 5 and 6, RCE alpha/gamma) on SynthPose.

A study folder holds ``study.yaml`` (the manifest: dataset, arms, groups, claims) and one complete
experiment YAML per arm. :func:`run_study` trains every (arm, seed) into ``work_dir/<arm>/seed<k>``
through the training engine, skipping runs that already finished with the same config (so a study
is resumable), then :func:`collect_results` reads each run's ``metrics.jsonl`` into one JSON-ready
dict. Reports and figures live in :mod:`fasterpose.study_report`; :func:`compare_results` checks a
rerun against a committed results file.

Manifest layout (``study.yaml``)::

    title: str
    dataset: {dir, seed, num_train, num_val, knobs: {...}}   # SynthPose generation
    arms: {name: {config: file.yaml, label: str, max_seeds: int (optional)}}
    groups: [{key, title, kind: table|convergence|grid, arms: [...], paper_ap: {arm: AP} (optional)}]
    claims: [{text, kind: better|equal, metric: final|auc|early, arms: [a, b, ...]}]
    early_epoch: int                                         # the "early" metric's epoch

Runs are deterministic per seed: ``train.seed = k`` fixes the initial weights, the sample order
and every augmentation draw (see :mod:`fasterpose.engine.train`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fasterpose.config import Config, config_to_dict, load_config

log = logging.getLogger(__name__)

MANIFEST = "study.yaml"
Runner = Callable[[Config, int], None]


class StudyError(ValueError):
    """A study folder, dataset or results file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Arm:
    """One experimental condition: a complete config trained over several seeds."""

    name: str
    config_path: Path
    label: str
    max_seeds: int | None = None


@dataclass(frozen=True)
class Study:
    """A parsed study folder (see the module docstring for the manifest)."""

    root: Path
    title: str
    dataset: dict[str, Any]
    arms: dict[str, Arm]
    groups: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    early_epoch: int

    def seeds_for(self, arm: str, seeds: int) -> list[int]:
        """Seeds 0..n-1 of ``arm``: ``seeds`` capped by the arm's ``max_seeds``."""
        cap = self.arms[arm].max_seeds
        return list(range(min(seeds, cap) if cap else seeds))


def load_study(root: str | Path) -> Study:
    """Parse ``root/study.yaml`` and check that every referenced arm and config exists."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise StudyError(f"{root}: no {MANIFEST} (the study manifest) in this folder")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from exc
    arms: dict[str, Arm] = {}
    for name, spec in (data.get("arms") or {}).items():
        if not isinstance(spec, dict) or "config" not in spec:
            raise StudyError(f"{path}: arm {name!r} needs a mapping with a 'config' file")
        cfg_path = root / spec["config"]
        if not cfg_path.is_file():
            raise StudyError(f"{path}: arm {name!r} names {cfg_path}, which does not exist")
        arms[name] = Arm(name, cfg_path, str(spec.get("label", name)), spec.get("max_seeds"))
    if not arms:
        raise StudyError(f"{path}: no arms")
    groups = list(data.get("groups") or [])
    claims = list(data.get("claims") or [])
    for item in [*groups, *claims]:
        missing = [a for a in item.get("arms", []) if a not in arms]
        if missing:
            raise StudyError(f"{path}: {item.get('key') or item.get('text')!r} names unknown arm(s) {missing}")
    return Study(
        root,
        str(data.get("title", root.name)),
        dict(data.get("dataset") or {}),
        arms,
        groups,
        claims,
        int(data.get("early_epoch", 1)),
    )


# ---------------------------------------------------------------- dataset


def ensure_dataset(spec: dict[str, Any], directory: Path, workers: int = 1) -> dict[str, Any]:
    """Generate the study's SynthPose copy into ``directory`` unless an identical one is there.

    Identity = the seed, knobs and image counts recorded in the annotation files. A folder that
    holds a different SynthPose is an error (never silently overwritten).
    """
    from fasterpose.data.synthpose import SynthPoseKnobs, generate

    seed, knobs = int(spec.get("seed", 0)), dict(spec.get("knobs") or {})
    counts = {"train": int(spec.get("num_train", 1000)), "val": int(spec.get("num_val", 100))}
    want = json.loads(json.dumps(SynthPoseKnobs.from_kwargs(**knobs).__dict__))
    defaults = json.loads(json.dumps(SynthPoseKnobs().__dict__))
    found = {}
    for split in counts:
        ann = directory / "annotations" / f"person_keypoints_{split}.json"
        if ann.is_file():
            coco = json.loads(ann.read_text())
            found[split] = (coco.get("info", {}).get("synthpose", {}), len(coco.get("images", [])))
    if found:
        for split, (info, n) in found.items():
            # knobs added to the generator after this copy was made count as their defaults
            saved = {**defaults, **(info.get("knobs") or {})}
            if info.get("seed") != seed or saved != want or n != counts[split]:
                raise StudyError(
                    f"{directory}: holds a different SynthPose ({split}: seed {info.get('seed')}, {n} images) "
                    f"than the study asks for (seed {seed}, {counts[split]} images, knobs {knobs}); "
                    f"pass another --dataset-dir or delete that folder"
                )
        if len(found) == len(counts):
            return {"seed": seed, "knobs": want, **counts, "generated": False}
    log.info(
        "generating SynthPose (seed %d, %d train / %d val images) into %s",
        seed,
        counts["train"],
        counts["val"],
        directory,
    )
    stats = generate(directory, counts["train"], counts["val"], seed, workers=workers, **knobs)
    return {"seed": seed, "knobs": want, **counts, "generated": True, "seconds": stats.get("seconds")}


# ---------------------------------------------------------------- runs


def run_config(
    study: Study, arm: str, seed: int, work_dir: Path, dataset_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """The exact config of one run: the arm's YAML + dataset root, seed, out_dir, then ``overrides``."""
    fixed = [f"data.root={dataset_dir}", f"train.seed={seed}", f"train.out_dir={work_dir / arm / f'seed{seed}'}"]
    return load_config(study.arms[arm].config_path, [*fixed, *overrides])


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` (a torn last line from a killed run is ignored)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def same_config(saved: Path, cfg: Config) -> bool:
    """Whether the run config saved at ``saved`` is ``cfg``. Fields added to the config classes after the
    run was made count as their defaults (so new options do not invalidate finished runs); a saved key
    that no longer exists makes it a different config."""
    from fasterpose.config import ConfigError, config_from_dict

    if not saved.is_file():
        return False
    try:
        return config_from_dict(yaml.safe_load(saved.read_text()) or {}) == cfg
    except (ConfigError, TypeError, yaml.YAMLError):
        return False


def run_finished(cfg: Config) -> bool:
    """Whether ``cfg``'s run folder holds a finished run of exactly this config."""
    out = Path(cfg.train.out_dir)
    metrics, saved = out / "metrics.jsonl", out / "config.yaml"
    if not metrics.is_file() or not same_config(saved, cfg):
        return False
    ends = [r for r in read_metrics(metrics) if r.get("kind") == "end"]
    return bool(ends) and ends[-1].get("status") == "finished" and int(ends[-1]["epoch"]) >= cfg.train.epochs


def train_runner(cfg: Config, threads: int) -> None:
    """Default runner: the training engine, in this process, with ``threads`` torch threads."""
    import torch

    from fasterpose.engine.train import train

    if threads > 0:
        torch.set_num_threads(threads)
    out = Path(cfg.train.out_dir)
    last = out / "last.pth"
    saved = out / "config.yaml"
    resume = last if last.is_file() and same_config(saved, cfg) else None
    if resume is None and out.exists():
        shutil.rmtree(out)  # a stale or foreign run: start clean so metrics.jsonl holds one run
    result = train(cfg, resume=resume, progress=False)
    if result.status != "finished":
        raise RuntimeError(f"run {out} stopped early ({result.status}) at epoch {result.epoch}")


def _run_one(runner: Runner, cfg: Config, threads: int, keep_checkpoints: bool) -> float:
    start = time.monotonic()
    runner(cfg, threads)
    if not keep_checkpoints:
        for p in Path(cfg.train.out_dir).glob("*.pth"):
            p.unlink()
    return time.monotonic() - start


def plan_runs(
    study: Study, seeds: int, work_dir: Path, dataset_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> list[tuple[str, int, Config]]:
    """Every (arm, seed, config) of the study: seed-major (all arms of seed 0 first), arms capped by
    ``max_seeds`` last, so that a study stopped early has the main arms on the most seeds."""
    plan = []
    for capped in (False, True):
        for seed in range(seeds):
            for arm in study.arms:
                if bool(study.arms[arm].max_seeds) == capped and seed in study.seeds_for(arm, seeds):
                    plan.append((arm, seed, run_config(study, arm, seed, work_dir, dataset_dir, overrides)))
    return plan


def run_study(
    study: Study,
    seeds: int,
    work_dir: Path,
    dataset_dir: Path,
    overrides: list[str] | tuple[str, ...] = (),
    runner: Runner = train_runner,
    jobs: int = 1,
    threads: int = 1,
    keep_checkpoints: bool = False,
) -> dict[str, int]:
    """Train every unfinished run of the plan; returns counts {"planned", "skipped", "trained"}.

    ``jobs > 1`` trains that many runs at once in spawned processes (``runner`` must then be a
    module-level function); each run uses ``threads`` torch threads.
    """
    plan = plan_runs(study, seeds, work_dir, dataset_dir, overrides)
    todo = [(a, s, c) for a, s, c in plan if not run_finished(c)]
    log.info("study %s: %d runs planned, %d already finished", study.title, len(plan), len(plan) - len(todo))
    if jobs <= 1:
        for i, (arm, seed, cfg) in enumerate(todo):
            log.info("[%d/%d] training %s seed %d", i + 1, len(todo), arm, seed)
            secs = _run_one(runner, cfg, threads, keep_checkpoints)
            log.info("[%d/%d] %s seed %d done in %.0f s", i + 1, len(todo), arm, seed, secs)
    elif todo:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, runner, c, threads, keep_checkpoints): (a, s) for a, s, c in todo}
            for i, fut in enumerate(futures):
                arm, seed = futures[fut]
                log.info("[%d/%d] %s seed %d done in %.0f s", i + 1, len(todo), arm, seed, fut.result())
    return {"planned": len(plan), "skipped": len(plan) - len(todo), "trained": len(todo)}


# ---------------------------------------------------------------- results


def parse_run(cfg: Config) -> dict[str, Any]:
    """One finished run -> {seed, epochs, ap (per epoch, index 0 = epoch 1), final, best, auc, metrics, wall_s}."""
    records = read_metrics(Path(cfg.train.out_dir) / "metrics.jsonl")
    evals: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.get("kind") == "eval" and "AP" in r:
            evals[int(r["epoch"])] = r  # a resumed run may repeat an epoch: the last one wins
    ends = [r for r in records if r.get("kind") == "end"]
    if not evals:
        raise StudyError(f"{cfg.train.out_dir}/metrics.jsonl: no evaluation records (need train.eval_every >= 1)")
    epochs = sorted(evals)
    ap = [float(evals[e]["AP"]) for e in epochs]
    last = evals[epochs[-1]]
    wall = sum(float(r["seconds"]) for r in records if r.get("kind") == "epoch")
    return {
        "seed": cfg.train.seed,
        "eval_epochs": epochs,
        "ap": ap,
        "final": ap[-1],
        "best": max(ap),
        "auc": float(np.mean(ap)),
        "metrics": {k: float(v) for k, v in last.items() if k not in ("kind", "epoch", "step")},
        "train_seconds": wall,
        "run_seconds": float(ends[-1]["seconds"]) if ends else None,
    }


def summarize(values: list[float]) -> dict[str, float | int]:
    """mean, sample std (ddof 1; 0 for one value), min, max, n."""
    v = np.asarray(values, np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


_COMPLEXITY: dict[str, dict[str, float]] = {}


def arm_complexity(cfg: Config) -> dict[str, float]:
    """Params (millions), paper GFLOPs and true GMACs of the arm's network at its input size
    (cached per architecture: arms that differ only in the loss share one count)."""
    from fasterpose.bench.flops import measure_complexity
    from fasterpose.models.pose_model import PoseModel

    key = json.dumps([config_to_dict(cfg.model), list(cfg.data.input_size)], sort_keys=True)
    if key not in _COMPLEXITY:
        w, h = cfg.data.input_size
        c = measure_complexity(PoseModel.from_config(cfg, pretrained=False), (h, w))
        _COMPLEXITY[key] = {"params_m": c.params / 1e6, "paper_gflops": c.paper_gflops, "gmacs": c.gmacs}
    return dict(_COMPLEXITY[key])


def collect_results(
    study: Study, seeds: int, work_dir: Path, dataset_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read every finished run of the plan into the study's results dict (JSON-ready)."""
    arms: dict[str, Any] = {}
    for arm, spec in study.arms.items():
        runs, cfg0 = [], None
        for seed in study.seeds_for(arm, seeds):
            cfg = run_config(study, arm, seed, work_dir, dataset_dir, overrides)
            cfg0 = cfg0 or cfg
            if run_finished(cfg):
                runs.append(parse_run(cfg))
        if cfg0 is None:
            continue
        entry: dict[str, Any] = {
            "label": spec.label,
            "config": str(spec.config_path),
            "runs": runs,
            **arm_complexity(cfg0),
            "loss": cfg0.loss.name,
            "alpha": cfg0.loss.alpha,
            "gamma": cfg0.loss.gamma,
            "seeds_planned": len(study.seeds_for(arm, seeds)),
        }
        if runs:
            n_ep = min(len(r["ap"]) for r in runs)
            curve = np.asarray([r["ap"][:n_ep] for r in runs])
            early = min(study.early_epoch, n_ep) - 1
            for r in runs:
                r["early"] = r["ap"][early]
            entry["summary"] = {
                "final": summarize([r["final"] for r in runs]),
                "best": summarize([r["best"] for r in runs]),
                "auc": summarize([r["auc"] for r in runs]),
                "early": summarize([r["early"] for r in runs]),
                "curve_mean": curve.mean(0).tolist(),
                "curve_min": curve.min(0).tolist(),
                "curve_max": curve.max(0).tolist(),
                "train_seconds": summarize([r["train_seconds"] for r in runs]),
            }
        arms[arm] = entry
    return {
        "title": study.title,
        "seeds": seeds,
        "early_epoch": study.early_epoch,
        "overrides": list(overrides),
        "arms": arms,
        "groups": study.groups,
        "claims": [evaluate_claim(c, arms) for c in study.claims],
    }


def evaluate_claim(claim: dict[str, Any], arms: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """Test one claim over the per-seed values of ``claim['metric']`` (final | auc | early | best).

    ``kind: better`` (arms[0] > arms[1]): Welch's t-test, verdict "holds" / "reversed" (p < alpha
    in that direction) or "not resolved". ``kind: not_worse`` (arms[0] >= arms[1]): "does not
    hold" only when arms[0] is significantly lower, else "holds". ``kind: equal`` (no arm differs): one-way ANOVA,
    verdict "holds" (p >= alpha, no detectable difference) or "does not hold"; the range of the
    means is reported beside it so that "no detectable difference" is read with its size.
    """
    from scipy import stats

    metric = claim.get("metric", "final")
    if metric not in ("final", "best", "auc", "early"):
        raise StudyError(f"claim {claim.get('text')!r}: metric must be final, best, auc or early, got {metric!r}")
    values = {a: [float(r[metric]) for r in arms.get(a, {}).get("runs", [])] for a in claim["arms"]}
    out = {**claim, "metric": metric, "means": {a: float(np.mean(v)) if v else None for a, v in values.items()}}
    if any(len(v) < 2 for v in values.values()):
        return {**out, "verdict": "not enough seeds", "p": None, "diff": None}
    kind = claim.get("kind", "better")
    if kind not in ("better", "not_worse", "equal"):
        raise StudyError(f"claim {claim.get('text')!r}: kind must be better, not_worse or equal, got {kind!r}")
    if kind in ("better", "not_worse"):
        a, b = claim["arms"][:2]
        diff = float(np.mean(values[a]) - np.mean(values[b]))
        if np.std(values[a]) == 0 and np.std(values[b]) == 0:
            p = 0.0 if diff != 0 else 1.0
        else:
            p = float(stats.ttest_ind(values[a], values[b], equal_var=False).pvalue)
        if kind == "not_worse":
            verdict = "does not hold" if p < alpha and diff < 0 else "holds"
        else:
            verdict = "holds" if p < alpha and diff > 0 else "reversed" if p < alpha else "not resolved"
        return {**out, "verdict": verdict, "p": p, "diff": diff}
    means = [float(np.mean(v)) for v in values.values()]
    p = float(stats.f_oneway(*values.values()).pvalue)
    return {**out, "verdict": "holds" if not p < alpha else "does not hold", "p": p, "diff": max(means) - min(means)}


def oracle_ap(study: Study, dataset_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> float:
    """AP of the ground truth passed through the heatmap codec (encode -> decode): the ceiling any arm
    can reach at the study's heatmap size."""
    from fasterpose.pipeline.evaluate import build_eval_set, oracle_predictions, score_predictions

    cfg = run_config(study, next(iter(study.arms)), 0, Path("."), dataset_dir, overrides)
    eval_set = build_eval_set(cfg, "val", use_gt_boxes=True)
    return float(score_predictions(oracle_predictions(cfg, eval_set), cfg, eval_set)[0]["AP"])
