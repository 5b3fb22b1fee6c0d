"""The multi-seed study: manifest, planning, resumability, aggregation, claims, report, rerun check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from fasterpose.config import Config, dump_config
from fasterpose.study import (
    StudyError,
    collect_results,
    ensure_dataset,
    evaluate_claim,
    load_study,
    plan_runs,
    run_finished,
    run_study,
    summarize,
)
from fasterpose.study_report import compare_results, identical_runs, write_report

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "configs" / "study"

# A fake arm "quality" per arm: the fake AP curve rises to it; seeds add a small offset.
QUALITY = {"lr_mse": 0.30, "lr_rce": 0.50, "hr_mse": 0.45}


def fake_runner(cfg: Config, threads: int) -> None:
    """Writes what the training engine writes (config.yaml, metrics.jsonl) without training."""
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    arm = out.parent.name
    q = QUALITY.get(arm, 0.4) + 0.01 * cfg.train.seed
    lines = []
    for epoch in range(1, cfg.train.epochs + 1):
        lines.append({"kind": "epoch", "epoch": epoch, "step": epoch * 10, "loss": 1.0 / epoch, "seconds": 2.0})
        lines.append(
            {"kind": "eval", "epoch": epoch, "step": epoch * 10, "AP": q * epoch / cfg.train.epochs, "AP50": q}
        )
    lines.append({"kind": "end", "status": "finished", "epoch": cfg.train.epochs, "seconds": 7.0})
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def small_study(tmp_path: Path, arms: tuple[str, ...] = ("lr_mse", "lr_rce", "hr_mse")) -> Path:
    """A copy of the shipped study restricted to ``arms`` (same configs, smaller manifest)."""
    root = tmp_path / "study"
    root.mkdir()
    manifest = yaml.safe_load((STUDY / "study.yaml").read_text())
    manifest["arms"] = {a: manifest["arms"][a] for a in arms}
    manifest["groups"] = [
        {"key": "fig5", "kind": "convergence", "title": "fig5", "arms": list(arms)},
        {"key": "t", "title": "table", "arms": list(arms), "paper_ap": {arms[0]: 70.3}},
    ]
    manifest["claims"] = [
        {"text": "rce > mse", "kind": "better", "metric": "final", "arms": ["lr_rce", "lr_mse"]},
        {"text": "equal", "kind": "equal", "metric": "auc", "arms": list(arms)},
    ]
    for a in arms:
        shutil.copy(STUDY / manifest["arms"][a]["config"], root)
    (root / "study.yaml").write_text(yaml.safe_dump(manifest))
    return root


def test_shipped_study_loads_and_plans_every_arm(tmp_path: Path) -> None:
    study = load_study(STUDY)
    plan = plan_runs(study, 3, tmp_path / "runs", tmp_path / "data")
    capped = [a for a in study.arms.values() if a.max_seeds]
    assert len(plan) == 3 * len(study.arms) - sum(3 - min(3, a.max_seeds or 3) for a in capped)
    # seed-major order, capped (grid) arms last; the run's seed, folder and data root come from the study
    main = [s for a, s, _ in plan if not study.arms[a].max_seeds]
    assert main == sorted(main) and len(main) == 3 * len([a for a in study.arms.values() if not a.max_seeds])
    assert all(study.arms[a].max_seeds for a, _, _ in plan[len(main) :])
    arm, seed, cfg = plan[-1]
    assert cfg.train.seed == seed and Path(cfg.train.out_dir) == tmp_path / "runs" / arm / f"seed{seed}"
    assert cfg.data.root == str(tmp_path / "data")

    # every arm shares everything but the head and the loss
    def shared(c: Config) -> tuple[object, ...]:
        return (c.model.backbone, c.data, c.train.epochs, c.train.lr, c.train.lr_steps, c.train.batch_size, c.eval)

    assert len({shared(c) for _, _, c in plan}) == 1


def test_bad_manifest_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="no study.yaml"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text("arms: {a: {config: missing.yaml}}\n")
    with pytest.raises(StudyError, match="missing.yaml"):
        load_study(tmp_path)


def test_fake_study_end_to_end_resumes_and_reports(tmp_path: Path) -> None:
    study = load_study(small_study(tmp_path))
    work, data = tmp_path / "runs", tmp_path / "data"
    counts = run_study(study, 2, work, data, ["train.epochs=4"], runner=fake_runner)
    assert counts == {"planned": 6, "skipped": 0, "trained": 6}

    def must_not_run(cfg: Config, threads: int) -> None:
        raise AssertionError(f"finished run {cfg.train.out_dir} was trained again")

    assert run_study(study, 2, work, data, ["train.epochs=4"], runner=must_not_run)["skipped"] == 6
    # a changed config is a different run: nothing finished for it
    cfg = plan_runs(study, 1, work, data, ["train.epochs=5"])[0][2]
    assert not run_finished(cfg)
    # a config field added after the run (absent from its config.yaml) counts as its default
    cfg = plan_runs(study, 1, work, data, ["train.epochs=4"])[0][2]
    saved = Path(cfg.train.out_dir) / "config.yaml"
    text = saved.read_text()
    saved.write_text(text.replace("  log_every:", "  no_such_field: 1\n  log_every:"))
    assert not run_finished(cfg)  # a key the config classes do not know: a different config
    data_ = yaml.safe_load(text)
    assert cfg.train.warmup_iters == Config().train.warmup_iters
    del data_["train"]["warmup_iters"]
    saved.write_text(yaml.safe_dump(data_))
    assert run_finished(cfg)
    saved.write_text(text)

    results = collect_results(study, 2, work, data, ["train.epochs=4"])
    rce = results["arms"]["lr_rce"]
    assert [r["seed"] for r in rce["runs"]] == [0, 1]
    assert rce["summary"]["final"]["mean"] == pytest.approx(0.505)
    assert rce["summary"]["final"]["std"] == pytest.approx(0.01 / 2**0.5)
    assert rce["summary"]["early"]["mean"] == pytest.approx(0.505 * 2 / 4)  # early_epoch 2 of 4
    assert rce["summary"]["curve_mean"] == pytest.approx([0.505 * e / 4 for e in (1, 2, 3, 4)])
    assert rce["params_m"] > 0 and rce["paper_gflops"] > 0
    verdicts = {c["text"]: c["verdict"] for c in results["claims"]}
    assert verdicts["rce > mse"] == "holds"
    assert verdicts["equal"] == "does not hold"

    results["dataset"] = {"dir": str(data), "seed": 0, "train": 1, "val": 1, "knobs": {}}
    results["invocation"] = {"seconds": 1.0, "jobs": 1, "threads": 1}
    (study.root / "discussion.md").write_text("## Reading\n\nHand-written reading.\n")
    md = write_report(results, study, tmp_path / "docs", study.root, "fasterpose study x --seeds 2")
    text = md.read_text()
    assert "Hand-written reading." in text and "SynthPose" in text and "**holds**" in text
    assert "50.5 ± 0.7 (50.0–51.0)" in text  # lr_rce final AP, percent
    for name in ("study_convergence.png", "study_t.png", "study_t_final.png"):
        assert (tmp_path / "docs" / "images" / name).stat().st_size > 1000
    saved = json.loads((tmp_path / "docs" / "study_results.json").read_text())
    assert compare_results(saved, results) == []
    assert identical_runs(saved, results) == (6, 6)


def run_summary(values: list[float]) -> dict[str, object]:
    return {
        "runs": [{"seed": i, "ap": [v], "final": v} for i, v in enumerate(values)],
        "summary": {"final": summarize(values)},
    }


def test_compare_results_spread_logic() -> None:
    ref = {"arms": {"a": run_summary([0.50, 0.52, 0.54]), "b": run_summary([0.30])}}
    # within mean ± std (std 0.02) and within the 0.005 floor for the single-seed arm
    ok = {"arms": {"a": run_summary([0.51, 0.53, 0.55]), "b": run_summary([0.304])}}
    assert compare_results(ref, ok) == []
    assert identical_runs(ref, ok) == (0, 4)
    bad = {"arms": {"a": run_summary([0.55, 0.56, 0.57]), "b": run_summary([0.31])}}
    problems = compare_results(ref, bad)
    assert len(problems) == 2 and problems[0].startswith("a: final AP 56.00 is outside the reference 52.00 ± 2.00")
    missing = {"arms": {"a": run_summary([0.52])}}
    assert compare_results(ref, missing) == [
        "a: 1 seed(s) in the rerun, 3 in the reference",
        "b: no finished runs in the rerun",
    ]


def test_evaluate_claim_directions() -> None:
    arms = {
        "hi": {"runs": [{"final": v} for v in (0.60, 0.61, 0.62)]},
        "lo": {"runs": [{"final": v} for v in (0.40, 0.41, 0.42)]},
        "lo2": {"runs": [{"final": v} for v in (0.405, 0.41, 0.415)]},
        "one": {"runs": [{"final": 0.5}]},
    }
    assert evaluate_claim({"text": "t", "arms": ["hi", "lo"]}, arms)["verdict"] == "holds"
    assert evaluate_claim({"text": "t", "arms": ["lo", "hi"]}, arms)["verdict"] == "reversed"
    assert evaluate_claim({"text": "t", "arms": ["lo", "lo2"]}, arms)["verdict"] == "not resolved"
    assert evaluate_claim({"text": "t", "kind": "equal", "arms": ["lo", "lo2"]}, arms)["verdict"] == "holds"
    assert evaluate_claim({"text": "t", "kind": "equal", "arms": ["lo", "hi"]}, arms)["verdict"] == "does not hold"
    assert evaluate_claim({"text": "t", "arms": ["hi", "one"]}, arms)["verdict"] == "not enough seeds"
    assert evaluate_claim({"text": "t", "kind": "not_worse", "arms": ["lo", "lo2"]}, arms)["verdict"] == "holds"
    assert evaluate_claim({"text": "t", "kind": "not_worse", "arms": ["hi", "lo"]}, arms)["verdict"] == "holds"
    verdict = evaluate_claim({"text": "t", "kind": "not_worse", "arms": ["lo", "hi"]}, arms)["verdict"]
    assert verdict == "does not hold"


def test_ensure_dataset_generates_once_and_refuses_another(tmp_path: Path) -> None:
    spec = {"seed": 3, "num_train": 2, "num_val": 1, "knobs": {"image_size": [64, 96], "max_people": 1}}
    first = ensure_dataset(spec, tmp_path / "sp")
    assert first["generated"] and (tmp_path / "sp" / "annotations" / "person_keypoints_val.json").is_file()
    assert not ensure_dataset(spec, tmp_path / "sp")["generated"]
    # a copy made before the generator gained a knob (recorded without it) still matches at its default
    ann = tmp_path / "sp" / "annotations" / "person_keypoints_train.json"
    coco = json.loads(ann.read_text())
    coco["info"]["synthpose"]["knobs"].pop("jpeg_quality")
    ann.write_text(json.dumps(coco))
    assert not ensure_dataset(spec, tmp_path / "sp")["generated"]
    with pytest.raises(StudyError, match="different SynthPose"):
        ensure_dataset({**spec, "seed": 4}, tmp_path / "sp")


def test_real_micro_study_reruns_and_checks(tmp_path: Path) -> None:
    """Two real (tiny) trainings through the CLI, a resumed rerun, and --check against itself."""
    from fasterpose.cli import main

    root = small_study(tmp_path, ("lr_mse", "lr_rce"))
    manifest = yaml.safe_load((root / "study.yaml").read_text())
    manifest["dataset"] = {"seed": 1, "num_train": 4, "num_val": 2, "knobs": {"image_size": [96, 128], "max_people": 1}}
    (root / "study.yaml").write_text(yaml.safe_dump(manifest))
    args = [
        "study",
        str(root),
        "--seeds",
        "1",
        "--work-dir",
        str(tmp_path / "runs"),
        "--dataset-dir",
        str(tmp_path / "sp"),
        "train.epochs=2",
        "train.batch_size=4",
        "eval.batch_size=8",
    ]
    assert main([*args, "--out", str(tmp_path / "docs")]) == 0
    saved = json.loads((tmp_path / "docs" / "study_results.json").read_text())
    assert [len(saved["arms"][a]["runs"][0]["ap"]) for a in ("lr_mse", "lr_rce")] == [2, 2]
    assert not list((tmp_path / "runs").rglob("*.pth"))  # checkpoints dropped by default
    # a rerun into a fresh work dir reproduces the per-epoch APs exactly (deterministic per seed)
    rerun = [*args, "--out", str(tmp_path / "rerun"), "--check", str(tmp_path / "docs" / "study_results.json")]
    rerun[rerun.index("--work-dir") + 1] = str(tmp_path / "runs2")
    assert main(rerun) == 0
    again = json.loads((tmp_path / "rerun" / "study_results.json").read_text())
    assert identical_runs(saved, again) == (2, 2)
    # a reference that the rerun does not match fails the check
    saved["arms"]["lr_mse"]["summary"]["final"]["mean"] += 0.5
    (tmp_path / "bad.json").write_text(json.dumps(saved))
    rerun[-1] = str(tmp_path / "bad.json")
    assert main(rerun) == 1
