"""The multi-seed study: manifest, planning, resumability, aggregation, claims, report, rerun check."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from fasterpose.config import Config, dump_config, load_config
from fasterpose.study import (
    ArmResult,
    Claim,
    DatasetInfo,
    DatasetSpec,
    Invocation,
    RegimeResult,
    RunResult,
    StudyError,
    StudyResults,
    backbone_file,
    collect_results,
    compare_results,
    ensure_dataset,
    evaluate_claim,
    identical_runs,
    load_study,
    plan_runs,
    run_finished,
    run_study,
    save_backbone,
    summarize,
    update_readme,
    write_report,
)
from fasterpose.study.collect import summarize_arm
from fasterpose.study.tables import verdict_summary

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
    manifest["regimes"] = {"scratch": manifest["regimes"]["scratch"]}
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
    assert list(study.regimes) == ["scratch", "pretrained"]
    plan = plan_runs(study, 3, tmp_path / "runs", tmp_path / "data")
    capped = [a for a in study.arms.values() if a.max_seeds]
    per_regime = 3 * len(study.arms) - sum(3 - min(3, a.max_seeds or 3) for a in capped)
    pretrains = [r for r in plan if r.arm is None]
    assert len(plan) == 2 * per_regime + 3 and [(r.regime, r.seed) for r in pretrains] == [
        ("pretrained", s) for s in range(3)
    ]
    # seed-major order, capped (grid) arms last; the run's seed, folder and data root come from the study
    main = [r.seed for r in plan if r.arm and not study.arms[r.arm].max_seeds]
    assert main == sorted(main) and len(main) == 2 * 3 * len([a for a in study.arms.values() if not a.max_seeds])
    assert all(r.arm and study.arms[r.arm].max_seeds for r in plan[len(main) + 3 :])
    last = plan[-1]
    assert last.cfg.train.seed == last.seed
    assert Path(last.cfg.train.out_dir) == tmp_path / "runs" / last.regime / str(last.arm) / f"seed{last.seed}"
    assert last.cfg.data.root == str(tmp_path / "data")
    # a seed's pretraining comes before its fine-tuning runs, which start from its backbone with a fresh head
    for r in plan:
        if r.regime == "pretrained" and r.arm:
            assert r.needs == backbone_file(tmp_path / "runs", "pretrained", r.seed) == Path(str(r.cfg.model.weights))
            assert plan.index(next(p for p in pretrains if p.seed == r.seed)) < plan.index(r)
        elif r.arm:
            assert r.needs is None and r.cfg.model.weights is None
    pre = pretrains[0].cfg
    assert pre.data.root == study.regimes["pretrained"].pretrain.dataset.dir != study.dataset.dir

    def head(c: Config) -> tuple[object, ...]:
        return (c.model.head, c.model.num_deconv, c.model.final_layer, c.model.heatmap_stride)

    assert head(pre) not in {head(r.cfg) for r in plan if r.arm}  # pretrained with a head no arm uses
    assert (
        pre.model.backbone == plan[0].cfg.model.backbone and pre.model.feature_index == plan[0].cfg.model.feature_index
    )

    # within a regime every arm shares everything but the head and the loss
    def shared(c: Config) -> tuple[object, ...]:
        return (
            c.model.backbone,
            c.model.feature_index,
            c.data,
            c.train.epochs,
            c.train.lr,
            c.train.lr_steps,
            c.train.batch_size,
            c.eval,
        )

    for regime in study.regimes:
        assert len({shared(r.cfg) for r in plan if r.regime == regime and r.arm}) == 1
    # the CE comparators are plain CE (Eq. 1)
    assert all(not r.cfg.loss.ce_weighted for r in plan if r.cfg.loss.name.startswith("ce_"))


def test_pretrained_backbone_loads_into_a_fresh_head(tmp_path: Path) -> None:
    """save_backbone writes what model.weights loads: the backbone is the pretrained one, the head is new."""
    import torch

    from fasterpose.models.pose_model import PoseModel

    pre_cfg = load_config(STUDY / "pretrain.yaml")
    torch.manual_seed(1)
    pretrained = PoseModel.from_config(pre_cfg)
    with torch.no_grad():
        for p in pretrained.backbone.parameters():
            p.add_(torch.randn_like(p))
    save_backbone(pretrained, tmp_path / "backbone.pth")
    arm = load_config(STUDY / "lr_rce.yaml", [f"model.weights={tmp_path / 'backbone.pth'}"])
    model = PoseModel.from_config(arm)
    for (name, a), b in zip(
        pretrained.backbone.state_dict().items(), model.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # the head is the arm's own, at its initialisation (LHR: weights N(0, 0.001), bias logit(0.01))
    assert type(model.head).__name__ == "LowToHighRegressor" != type(pretrained.head).__name__
    assert float(model.head.conv.weight.detach().std()) < 0.002
    assert torch.allclose(model.head.conv.bias, torch.full_like(model.head.conv.bias, math.log(0.01 / 0.99)))
    # a file that is not a backbone of this architecture is refused with the file named
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        PoseModel.from_config(load_config(STUDY / "lr_rce.yaml", [f"model.weights={tmp_path / 'bad.pth'}"]))


def test_bad_manifest_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="no study.yaml"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text("arms: {a: {config: missing.yaml}}\n")
    with pytest.raises(StudyError, match="missing.yaml"):
        load_study(tmp_path)
    # a pretraining on the study's own SynthPose seed is not disjoint
    (tmp_path / "s").mkdir()
    root = small_study(tmp_path / "s")
    manifest = yaml.safe_load((STUDY / "study.yaml").read_text())
    manifest["arms"] = {"lr_mse": manifest["arms"]["lr_mse"]}
    manifest["groups"], manifest["claims"] = [], []
    manifest["regimes"]["pretrained"]["pretrain"]["dataset"]["seed"] = manifest["dataset"]["seed"]
    shutil.copy(STUDY / "pretrain.yaml", root)
    (root / "study.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(StudyError, match="disjoint"):
        load_study(root)
    manifest["claims"] = [{"text": "x", "kind": "bigger", "arms": ["lr_mse"]}]
    (root / "study.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(StudyError, match="kind: must be one of better, not_worse, equal"):
        load_study(root)


def test_fake_study_end_to_end_resumes_and_reports(tmp_path: Path) -> None:
    study = load_study(small_study(tmp_path))
    work, data = tmp_path / "runs", tmp_path / "data"

    def failing_for_hr(cfg: Config, threads: int) -> None:
        if "hr_mse" in cfg.train.out_dir:
            raise RuntimeError("boom")
        fake_runner(cfg, threads)

    # one failing run is counted and the others still train
    counts = run_study(study, 2, work, data, ["train.epochs=4"], runner=failing_for_hr)
    assert counts == {"planned": 6, "skipped": 0, "trained": 4, "failed": 2}
    counts = run_study(study, 2, work, data, ["train.epochs=4"], runner=fake_runner)
    assert counts == {"planned": 6, "skipped": 4, "trained": 2, "failed": 0}

    def must_not_run(cfg: Config, threads: int) -> None:
        raise AssertionError(f"finished run {cfg.train.out_dir} was trained again")

    assert run_study(study, 2, work, data, ["train.epochs=4"], runner=must_not_run)["skipped"] == 6
    assert json.loads((work / "scratch" / "lr_rce" / "seed0" / "study_run.json").read_text())["cpu_seconds"] >= 0
    # a changed config is a different run: nothing finished for it
    cfg = plan_runs(study, 1, work, data, ["train.epochs=5"])[0].cfg
    assert not run_finished(cfg)
    # a config field added after the run (absent from its config.yaml) counts as its default
    cfg = plan_runs(study, 1, work, data, ["train.epochs=4"])[0].cfg
    saved = Path(cfg.train.out_dir) / "config.yaml"
    text = saved.read_text()
    saved.write_text(text.replace("  log_every:", "  no_such_field: 1\n  log_every:"))
    assert not run_finished(cfg)  # a key the config classes do not know: a different config
    data_ = yaml.safe_load(text)
    assert cfg.train.weight_decay == Config().train.weight_decay
    del data_["train"]["weight_decay"]
    saved.write_text(yaml.safe_dump(data_))
    assert run_finished(cfg)
    saved.write_text(text)

    import fasterpose.study.collect as collect_module

    judged: list[int] = []
    real_judge = collect_module.judge_family
    with pytest.MonkeyPatch.context() as mp:  # the family correction sees every claim of every regime
        mp.setattr(collect_module, "judge_family", lambda cs: (judged.append(len(cs)), real_judge(cs)))
        results = collect_results(study, 2, work, data, ["train.epochs=4"])
    assert judged == [len(study.claims) * len(results.regimes)]
    rce = results.regimes["scratch"].arms["lr_rce"]
    assert [r.seed for r in rce.runs] == [0, 1]
    assert rce.summary is not None and rce.complete
    assert rce.summary.final.mean == pytest.approx(0.505)
    assert rce.summary.final.std == pytest.approx(0.01 / 2**0.5)
    assert rce.summary.early.mean == pytest.approx(0.505 * 2 / 4)  # early_epoch 2 of 4
    assert rce.summary.curve_mean == pytest.approx([0.505 * e / 4 for e in (1, 2, 3, 4)])
    # the gain over the last third: AP(4) - AP(8/3), interpolated on the linear fake curve
    assert rce.summary.late_gain.mean == pytest.approx(0.505 * (1 - 2 / 3))
    assert rce.params_m > 0 and rce.paper_gflops > 0
    verdicts = {c.text: c.verdict for c in results.regimes["scratch"].claims}
    assert verdicts["rce > mse"] == "holds"
    assert verdicts["equal"] == "does not hold"
    scratch = results.regimes["scratch"]
    assert scratch.feature_stride == 16 and scratch.upsample_L == 4 and scratch.finetune_epochs is None

    results.dataset = DatasetInfo(str(data), 0, 1, 1, {}, oracle_ap=0.9)
    results.invocation = Invocation(seconds=1.0, jobs=1, threads=1)
    (study.root / "discussion.md").write_text("## Reading\n\nHand-written reading.\n")
    md = write_report(results, study, tmp_path / "docs", study.root, "fasterpose study x --seeds 2")
    text = md.read_text()
    assert "Hand-written reading." in text and "SynthPose" in text and "**holds**" in text
    assert "50.5 ± 0.7 (50.0–51.0)" in text  # lr_rce final AP, percent
    assert "Codec ceiling" in text and "90.0 AP" in text and "Status**: complete" in text
    for name in ("study_scratch_fig5.png", "study_scratch_t.png", "study_scratch_t_final.png"):
        assert (tmp_path / "docs" / "images" / name).stat().st_size > 1000
    saved = StudyResults.load(tmp_path / "docs" / "study_results.json")
    assert saved.regimes["scratch"].arms["lr_rce"].runs[1] == rce.runs[1]
    assert compare_results(saved, results) == []
    assert identical_runs(saved, results) == (6, 6)
    # a partial study (3 seeds planned, 2 finished) is reported as such, arm by arm
    partial = collect_results(study, 3, work, data, ["train.epochs=4"])
    partial.dataset, partial.invocation = results.dataset, results.invocation
    text = write_report(partial, study, tmp_path / "partial", study.root, "x").read_text()
    assert "partial: 6 of 9 arm runs finished" in text and "2/3 **incomplete**" in text
    # the README block is replaced between its markers, and only there
    readme = tmp_path / "README.md"
    from fasterpose.study.report import README_BEGIN, README_END

    readme.write_text(f"# top\n{README_BEGIN}\nstale block\n{README_END}\nbottom\n")
    update_readme(readme, results)
    body = readme.read_text()
    assert body.startswith("# top\n") and body.endswith("\nbottom\n") and "stale block" not in body
    assert "| rce > mse | holds (Holm p < 0.001; diff +20.0 [+20.0, +20.0]) |" in body and "best arm `lr_rce`" in body
    with pytest.raises(StudyError, match="study-summary"):
        update_readme(tmp_path / "docs" / "results.md", results)
    # another study keeps its own block, named by its config folder; the main block stays as it is
    from fasterpose.study.report import readme_markers

    begin, end = readme_markers("study_power")
    readme.write_text(body + f"{begin}\nold power block\n{end}\n")
    update_readme(readme, results, "docs/study_power/results.md", "study_power")
    both = readme.read_text()
    assert both.startswith(body) and "old power block" not in both
    assert both.count("docs/study_power/results.md") == 1 and both.count(README_BEGIN) == 1
    with pytest.raises(StudyError, match="study_geometry"):
        update_readme(readme, results, "x", "study_geometry")


def run_results(values: list[float], metric: str = "final") -> list[RunResult]:
    return [
        RunResult(seed=i, eval_epochs=[1], ap=[v], final=v, best=v, auc=v, early=v, late_gain=0.0)
        for i, v in enumerate(values)
    ]


def arm(name: str, values: list[float]) -> ArmResult:
    runs = run_results(values)
    return ArmResult(name, name, "", "mse", 0.7, 1.0, 1.0, 1.0, 1.0, len(values), runs, summarize_arm(runs))


def study_results(**arms: list[float]) -> StudyResults:
    regime = RegimeResult("scratch", "scratch", 1, {n: arm(n, v) for n, v in arms.items()}, [])
    return StudyResults("t", 3, [], [], {"scratch": regime})


def test_compare_results_spread_logic() -> None:
    ref = study_results(a=[0.50, 0.52, 0.54], b=[0.30])
    # within mean ± std (std 0.02) and within the 0.005 floor for the single-seed arm
    ok = study_results(a=[0.51, 0.53, 0.55], b=[0.304])
    assert compare_results(ref, ok) == []
    assert identical_runs(ref, ok) == (0, 4)
    bad = study_results(a=[0.55, 0.56, 0.57], b=[0.31])
    problems = compare_results(ref, bad)
    assert len(problems) == 2 and problems[0].startswith("a: final AP 56.00 is outside the reference 52.00 ± 2.00")
    missing = study_results(a=[0.52])
    assert compare_results(ref, missing) == [
        "a: 1 seed(s) in the rerun, 3 in the reference",
        "b: no finished runs in the rerun",
    ]
    assert summarize([0.5]).std == 0.0 and summarize([0.4, 0.6]).mean == pytest.approx(0.5)


def test_evaluate_claim_directions() -> None:
    arms = {
        n: arm(n, v)
        for n, v in {
            "hi": [0.60, 0.61, 0.62],
            "lo": [0.40, 0.41, 0.42],
            "lo2": [0.405, 0.41, 0.415],
            "lo3": [0.401, 0.411, 0.421],
            "one": [0.5],
        }.items()
    }

    def verdict(names: list[str], kind: str = "better") -> str:
        return evaluate_claim(Claim("t", tuple(names), kind), arms).verdict

    assert verdict(["hi", "lo"]) == "holds"
    assert verdict(["lo", "hi"]) == "does not hold"
    assert verdict(["lo", "lo2"]) == "not resolved"
    assert verdict(["lo", "lo3"], "equal") == "holds"  # 0.1 AP apart on every seed: inside the 1 AP margin
    assert verdict(["lo", "hi"], "equal") == "does not hold"
    assert verdict(["hi", "one"]) == "not resolved"
    assert evaluate_claim(Claim("t", ("hi", "one")), arms).test.startswith("none")
    assert verdict(["lo", "lo3"], "not_worse") == "holds"
    assert verdict(["hi", "lo"], "not_worse") == "holds"
    assert verdict(["lo", "hi"], "not_worse") == "does not hold"
    result = evaluate_claim(Claim("t", ("hi", "lo")), arms)
    assert result.diff == pytest.approx(20.0) and result.p is not None and result.p < 0.001
    assert result.ci95 == pytest.approx([20.0, 20.0]) and result.test.startswith("paired t, one-sided")


def test_claim_test_is_paired_by_seed() -> None:
    # a large seed effect shared by both arms, and a small consistent gain of "b" within every seed
    a = arm("a", [0.30, 0.45, 0.60])
    b = arm("b", [0.312, 0.459, 0.615])
    c = evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b})
    assert c.n_pairs == 3 and c.diff == pytest.approx(1.2)
    assert c.p is not None and c.p < 0.05 and c.verdict == "holds"  # Welch's unpaired t gives p ~ 0.47
    # the pairing is by seed, not by position: reordered runs give the same answer
    b.runs.reverse()
    assert evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b}).p == pytest.approx(c.p)
    # only the seeds both arms finished are paired
    a.runs = a.runs[:2]
    assert evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b}).n_pairs == 2


def test_sign_flip_permutation_from_six_seeds() -> None:
    from fasterpose.study.claims import sign_flip_greater

    base = [0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65]
    a, b = arm("a", base), arm("b", [v + 0.01 for v in base])
    c = evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b})
    assert c.test.startswith("paired sign-flip permutation") and c.p == pytest.approx(1 / 256)
    import numpy as np

    assert sign_flip_greater(np.array([1.0, 2.0, -0.5, 3.0, 1.0, 0.5])) == pytest.approx(3 / 64)


def test_holm_over_the_whole_family() -> None:
    from fasterpose.study.claims import holm, judge_family

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    a = arm("a", [0.40, 0.41, 0.42])
    b = arm("b", [0.405, 0.42, 0.428])  # alone: p ~ 0.03, holds; one of 3 such claims: Holm p > 0.05
    alone = evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b})
    assert alone.p is not None and alone.p < 0.05 and alone.verdict == "holds"
    family = [evaluate_claim(Claim(f"b > a #{i}", ("b", "a")), {"a": a, "b": b}) for i in range(3)]
    judge_family(family)
    assert all(c.p_adjusted == pytest.approx(min(1.0, 3 * alone.p)) for c in family)
    assert [c.verdict for c in family] == ["not resolved"] * 3


def test_a_claim_is_decided_only_at_its_planned_seeds() -> None:
    """A partial study reports its interim CI but decides nothing: an arm short of its planned seeds makes
    the claim "not resolved (interim)", however small its p; the complete claim is decided as usual."""
    from fasterpose.study.claims import judge_family, mark_interim

    a, b = arm("a", [0.40, 0.41, 0.42]), arm("b", [0.60, 0.61, 0.62])
    done = mark_interim(evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b}), {"a": a, "b": b})
    assert done.interim is None and done.verdict == "holds"
    a.seeds_planned = b.seeds_planned = 8  # 3 of 8 seeds finished
    early = mark_interim(evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b}), {"a": a, "b": b})
    judge_family([early])
    assert early.p is not None and early.p < 0.001 and early.p_adjusted is not None
    assert early.interim == "3 of 8 planned seeds" and early.verdict == "not resolved"
    a.seeds_planned = 3  # an arm capped at 3 seeds (max_seeds) beside one planned for 8: decided at 3 pairs
    capped = mark_interim(evaluate_claim(Claim("b > a", ("b", "a")), {"a": a, "b": b}), {"a": a, "b": b})
    assert capped.interim is None and capped.verdict == "holds"
    assert "interim, 3 of 8 planned seeds" in verdict_summary(
        StudyResults("t", 8, [], [], {"r": RegimeResult("r", "r", 1, {"a": a, "b": b}, [early])})
    )


def test_equivalence_holds_only_when_its_margin_test_rejects() -> None:
    # no significant difference, but 3 noisy seeds cannot show |diff| < 1 AP: not resolved, not "holds"
    a = arm("a", [0.40, 0.45, 0.50])
    b = arm("b", [0.41, 0.44, 0.505])
    eq = evaluate_claim(Claim("a = b", ("a", "b"), "equal"), {"a": a, "b": b})
    assert eq.margin == 1.0 and eq.p is not None and eq.p > 0.05 and eq.verdict == "not resolved"
    assert eq.ci95 is not None and eq.ci95[0] < -1.0 < 1.0 < eq.ci95[1]
    assert evaluate_claim(Claim("a >= b", ("a", "b"), "not_worse"), {"a": a, "b": b}).verdict == "not resolved"
    # the same noise with a 5 AP margin decides
    wide = evaluate_claim(Claim("a = b", ("a", "b"), "equal", margin=5.0), {"a": a, "b": b})
    assert wide.verdict == "holds" and wide.test.startswith("paired t TOST")
    # three arms: every pair must be equivalent; the pairs are reported
    c = arm("c", [0.401, 0.451, 0.502])
    three = evaluate_claim(Claim("abc", ("a", "b", "c"), "equal", margin=5.0), {"a": a, "b": b, "c": c})
    assert len(three.pairs) == 3 and three.verdict == "holds"
    assert three.p == pytest.approx(max(float(x["p_holm_within"]) for x in three.pairs))


def test_ensure_dataset_generates_once_and_refuses_another(tmp_path: Path) -> None:
    spec = DatasetSpec(str(tmp_path / "sp"), 3, 2, 1, {"image_size": [64, 96], "max_people": 1})
    first = ensure_dataset(spec)
    assert first.generated and (tmp_path / "sp" / "annotations" / "person_keypoints_val.json").is_file()
    assert not ensure_dataset(spec, tmp_path / "sp").generated
    # a copy made before the generator gained a knob (recorded without it) still matches at its default
    ann = tmp_path / "sp" / "annotations" / "person_keypoints_train.json"
    coco = json.loads(ann.read_text())
    coco["info"]["synthpose"]["knobs"].pop("jpeg_quality")
    ann.write_text(json.dumps(coco))
    assert not ensure_dataset(spec, tmp_path / "sp").generated
    with pytest.raises(StudyError, match="different SynthPose"):
        ensure_dataset(dataclasses.replace(spec, seed=4), tmp_path / "sp")


def test_real_micro_study_reruns_and_checks(tmp_path: Path) -> None:
    """Real (tiny) trainings through the CLI in both regimes (a pretraining, then fine-tuning from its
    backbone), a rerun that reproduces them exactly, and --check against itself."""
    from fasterpose.cli import main

    root = small_study(tmp_path, ("lr_mse", "lr_rce"))
    manifest = yaml.safe_load((root / "study.yaml").read_text())
    shipped = yaml.safe_load((STUDY / "study.yaml").read_text())
    knobs = {"image_size": [96, 128], "max_people": 1}
    manifest["dataset"] = {"seed": 1, "num_train": 4, "num_val": 2, "knobs": knobs}
    pretrained = shipped["regimes"]["pretrained"]
    pretrained["overrides"] = ["train.epochs=1"]
    pretrained["pretrain"]["dataset"] = {
        "dir": str(tmp_path / "sp_pre"),
        "seed": 2,
        "num_train": 4,
        "num_val": 2,
        "knobs": knobs,
    }
    manifest["regimes"]["pretrained"] = pretrained
    shutil.copy(STUDY / "pretrain.yaml", root)
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
    saved = StudyResults.load(tmp_path / "docs" / "study_results.json")
    assert [len(saved.regimes["scratch"].arms[a].runs[0].ap) for a in ("lr_mse", "lr_rce")] == [2, 2]
    # user overrides come last: train.epochs=2 wins over the regime's train.epochs=1 as well
    assert [len(saved.regimes["pretrained"].arms[a].runs[0].ap) for a in ("lr_mse", "lr_rce")] == [2, 2]
    assert len(saved.regimes["pretrained"].pretrain) == 1
    assert all(r.cpu_seconds and r.cpu_seconds > 0 for a in saved.regimes["scratch"].arms.values() for r in a.runs)
    assert saved.regimes["pretrained"].pretrain_dataset is not None
    assert saved.regimes["pretrained"].pretrain_dataset.seed == 2
    # checkpoints dropped by default; the pretraining keeps its exported backbone
    assert [p.name for p in (tmp_path / "runs").rglob("*.pth")] == ["backbone.pth"]
    # reports regenerated from the records, once or twice, keep the facts of the invocation that trained
    trained_by = saved.invocation
    assert trained_by is not None and trained_by.trained == 5 and not trained_by.report_only
    for _ in range(2):
        assert main([*args, "--out", str(tmp_path / "docs"), "--report-only"]) == 0
        kept = StudyResults.load(tmp_path / "docs" / "study_results.json").invocation
        assert kept == dataclasses.replace(trained_by, report_only=True)
    assert f"runs trained at commit `{trained_by.git_commit}`" in (tmp_path / "docs" / "results.md").read_text()
    # a fresh clone holds the run records but not backbone.pth: no finished run is trained again ...
    from fasterpose.study.runs import read_metrics, train_runner

    work, over = tmp_path / "runs", ["train.epochs=2", "train.batch_size=4", "eval.batch_size=8"]
    (work / "pretrained" / "_pretrain" / "seed0" / "backbone.pth").unlink()
    trained: list[str] = []

    def recording(cfg: Config, threads: int) -> None:
        trained.append(Path(cfg.train.out_dir).relative_to(work).as_posix())
        train_runner(cfg, threads)

    def aps(run: str) -> list[float]:
        return [r["AP"] for r in read_metrics(work / run / "metrics.jsonl") if r.get("kind") == "eval"]

    before = {run: aps(run) for run in ("pretrained/_pretrain/seed0", "pretrained/lr_rce/seed0")}
    counts = run_study(load_study(root), 1, work, tmp_path / "sp", over, runner=recording)
    assert trained == [] and counts["skipped"] == counts["planned"] == 5
    # ... until a fine-tuning that starts from it must run: the pretraining runs again first, identically
    shutil.rmtree(work / "pretrained" / "lr_rce" / "seed0")
    counts = run_study(load_study(root), 1, work, tmp_path / "sp", over, runner=recording)
    assert trained == list(before) and counts == {"planned": 5, "skipped": 3, "trained": 2, "failed": 0}
    assert {run: aps(run) for run in before} == before
    # a rerun into a fresh work dir reproduces the per-epoch APs exactly (deterministic per seed)
    rerun = [*args, "--out", str(tmp_path / "rerun"), "--check", str(tmp_path / "docs" / "study_results.json")]
    rerun[rerun.index("--work-dir") + 1] = str(tmp_path / "runs2")
    assert main(rerun) == 0
    again = StudyResults.load(tmp_path / "rerun" / "study_results.json")
    assert identical_runs(saved, again) == (4, 4)
    # a reference that the rerun does not match fails the check
    arm = saved.regimes["scratch"].arms["lr_mse"]
    assert arm.summary is not None
    arm.summary.final = dataclasses.replace(arm.summary.final, mean=arm.summary.final.mean + 0.5)
    (tmp_path / "bad.json").write_text(json.dumps(saved.to_dict()))
    rerun[-1] = str(tmp_path / "bad.json")
    assert main(rerun) == 1


def test_the_command_and_the_driver_share_the_committed_work_dir() -> None:
    from fasterpose.commands import study as command
    from fasterpose.study import driver

    assert command.WORK_DIR == driver.WORK_DIR == str(driver.Options().work_dir) == "docs/study_runs"


def test_a_resumed_run_is_recorded_and_left_out_of_the_cpu_figures(tmp_path: Path) -> None:
    """An interrupted run continues from last.pth; its process timed only that piece, so the report must
    not count its CPU or run wall time as the run's."""
    study = load_study(small_study(tmp_path))
    work, data = tmp_path / "runs", tmp_path / "data"
    interrupted = plan_runs(study, 1, work, data, ["train.epochs=2"])[1]
    interrupted.out_dir.mkdir(parents=True)
    dump_config(interrupted.cfg, interrupted.out_dir / "config.yaml")
    (interrupted.out_dir / "last.pth").write_bytes(b"checkpoint of the first piece")
    assert run_study(study, 1, work, data, ["train.epochs=2"], runner=fake_runner)["trained"] == 3
    records = {p.parent.parent.name: json.loads(p.read_text()) for p in work.rglob("study_run.json")}
    assert records[interrupted.arm]["resumed"] is True
    assert [a for a, r in records.items() if r["resumed"]] == [interrupted.arm]

    results = collect_results(study, 1, work, data, ["train.epochs=2"])
    runs = {a: r.runs[0] for a, r in results.regimes["scratch"].arms.items()}
    assert runs[interrupted.arm].resumed and runs[interrupted.arm].cpu_seconds is None
    assert runs[interrupted.arm].run_seconds is None  # wall falls back to the epochs' training time
    assert all(r.cpu_seconds is not None for a, r in runs.items() if a != interrupted.arm)
    summary = results.regimes["scratch"].arms[interrupted.arm].summary
    assert summary is not None and summary.cpu_seconds is None
    results.dataset = DatasetInfo(str(data), 0, 1, 1, {}, oracle_ap=0.9)
    results.invocation = Invocation(seconds=60.0, planned=3, trained=3, jobs=2, threads=1)
    text = write_report(results, study, tmp_path / "docs", study.root, "x").read_text()
    assert "over the 2 runs with a CPU record (1 run(s) resumed after an interruption" in text
    assert "Last training invocation to finish: 1.0 min wall, trained 3 of 3 planned runs, 2 run(s) at a time" in text
    # a report-only invocation is not described as if it had trained anything
    results.invocation = Invocation(seconds=12.0, report_only=True)
    text = write_report(results, study, tmp_path / "docs", study.root, "x").read_text()
    assert "Last training invocation" not in text and "regenerated from the committed run records" in text
    assert "the runs record 1 torch thread(s) each" in text
    saved = StudyResults.load(tmp_path / "docs" / "study_results.json")
    assert saved.regimes["scratch"].arms[interrupted.arm].runs[0].resumed


def _hold_lock(folder: Path, pid: int) -> Path:
    """A lock file as a live process on this host leaves it (the engine's RunFolder format)."""
    import socket

    from fasterpose.engine.run_folder import LOCK

    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    return lock


def test_a_second_study_into_a_busy_work_dir_or_run_folder_is_refused(tmp_path: Path) -> None:
    """Two invocations training into one work dir at once could restart each other's runs: the second is
    refused with the folder named, and a run folder held by a live training keeps its files."""
    import subprocess
    import sys

    from fasterpose.study.runs import train_runner

    study = load_study(small_study(tmp_path, ("lr_mse", "lr_rce")))
    work, data = tmp_path / "runs", tmp_path / "data"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _hold_lock(work, other.pid)
        with pytest.raises(StudyError, match=rf"{work}.*another study invocation \(pid {other.pid}.*--work-dir"):
            run_study(study, 1, work, data, runner=fake_runner)
        assert not (work / "scratch").exists()  # nothing was trained
        lock.unlink()
        # a run folder in use by a live training (not a study): the run fails, its files stay as they are
        plan = plan_runs(study, 1, work, data, ["train.epochs=1"])
        for run in plan:
            _hold_lock(run.out_dir, other.pid)
            (run.out_dir / "metrics.jsonl").write_text('{"kind": "step"}\n')
        counts = run_study(study, 1, work, data, ["train.epochs=1"], runner=train_runner)
        assert counts["failed"] == 2 and counts["trained"] == 0
        assert all((r.out_dir / "metrics.jsonl").read_text() == '{"kind": "step"}\n' for r in plan)
    finally:
        other.kill()
        other.wait()
    # the lock of a process that is gone is taken over; the study's own lock goes when it ends
    _hold_lock(work, other.pid)
    assert run_study(study, 1, work, data, runner=fake_runner)["trained"] == 2
    assert not (work / ".lock").exists()


RUNNER_MODULE = """
import os, signal, time
from pathlib import Path

def runner(cfg, threads):
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    (out / "pid").write_text(str(os.getpid()))
    while not stop:
        time.sleep(0.05)
    (out / "stopped").write_text("after SIGTERM")
    raise RuntimeError("stopped")
"""

DRIVER = """
import sys
from pathlib import Path
from fasterpose.study import load_study, run_study
import slow_runner
if __name__ == "__main__":
    root, work = Path(sys.argv[1]), Path(sys.argv[2])
    run_study(load_study(root), 1, work, work / "data", runner=slow_runner.runner, jobs=2)
"""


def test_runs_stop_when_the_study_process_is_killed(tmp_path: Path) -> None:
    """A killed study (SIGKILL, or SIGTERM to it alone) cannot stop its pool: each worker notices and stops
    its run the way SIGTERM does (checkpoint saved, resumable) instead of training on unseen."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = small_study(tmp_path, ("lr_mse", "lr_rce"))
    (tmp_path / "slow_runner.py").write_text(RUNNER_MODULE)
    (tmp_path / "driver.py").write_text(DRIVER)
    work = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    study = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(root), str(work)], env=env)
    pids: list[Path] = []
    try:
        deadline = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < deadline and study.poll() is None:
            time.sleep(0.2)
            pids = sorted(work.rglob("pid"))
        assert len(pids) == 2, "the two runs did not start"
        os.kill(study.pid, signal.SIGKILL)
        study.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(work.rglob("stopped"))) < 2:
            time.sleep(0.2)
        assert sorted(p.parent for p in work.rglob("stopped")) == [p.parent for p in pids]
    finally:
        if study.poll() is None:
            study.kill()
        for p in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(p.read_text()), signal.SIGKILL)


def test_a_p_value_below_the_printed_precision_reads_as_a_bound() -> None:
    from fasterpose.study.tables import fmt_p

    assert [fmt_p(p) for p in (None, 0.0, 0.0004, 0.0006, 0.0123, 0.5, 0.0498, 0.0502, 0.05, 0.0512)] == [
        "n/a",
        "< 0.001",
        "< 0.001",
        "0.001",
        "0.012",
        "0.500",
        "0.0498",
        "0.0502",
        "0.050",
        "0.051",
    ]
    # the committed report and README summary never print a p-value as zero
    for doc in (REPO / "docs" / "results.md", REPO / "README.md"):
        text = doc.read_text()
        assert "p 0.000" not in text and "| 0.000 |" not in text, doc


def test_report_only_keeps_the_training_machine_and_generates_no_dataset(tmp_path: Path) -> None:
    from fasterpose.study import Options, execute

    study = load_study(small_study(tmp_path, ("lr_mse", "lr_rce")))
    work, data, out = tmp_path / "runs", tmp_path / "no_data_here", tmp_path / "docs"
    run_study(study, 2, work, data, ["train.epochs=4"], runner=fake_runner)
    first = collect_results(study, 2, work, data, ["train.epochs=4"])
    first.dataset = DatasetInfo(str(data), 0, 4000, 300, {}, generated=True, oracle_ap=0.97)
    first.invocation = Invocation(seconds=60.0, planned=4, trained=4, jobs=2, threads=1)
    first.hardware = "the machine that trained"
    write_report(first, study, out, study.root, "x")
    opts = Options(seeds=2, work_dir=work, dataset_dir=data, overrides=("train.epochs=4",), report_only=True, out=out)
    results, _ = execute(study, opts, study.root)
    assert not data.exists()  # nothing generated
    saved = StudyResults.load(out / "study_results.json")
    assert saved.hardware == "the machine that trained" and saved.dataset is not None
    assert saved.dataset.oracle_ap == 0.97 and saved.invocation is not None and saved.invocation.trained == 4
    assert [c.verdict for c in saved.regimes["scratch"].claims][0] == "holds"


def test_a_report_never_replaces_files_a_study_did_not_write(tmp_path: Path) -> None:
    from fasterpose.study import Options, execute

    study = load_study(small_study(tmp_path, ("lr_mse", "lr_rce")))
    work, data, out = tmp_path / "runs", tmp_path / "not_generated", tmp_path / "docs"
    out.mkdir()
    notes = out / "results.md"
    notes.write_text("# my own results\n")
    opts = Options(seeds=2, work_dir=work, dataset_dir=data, overrides=("train.epochs=4",), out=out)
    with pytest.raises(StudyError, match=r"results\.md.*--overwrite"):
        execute(study, opts, study.root)
    assert notes.read_text() == "# my own results\n"
    assert not data.exists() and not work.exists()  # refused before generating or training anything
    notes.unlink()
    figure = out / "images" / "study_scratch_fig5.png"  # a figure's name with no study report beside it
    figure.parent.mkdir()
    figure.write_bytes(b"not ours")
    with pytest.raises(StudyError, match="study_scratch_fig5.png"):
        execute(study, dataclasses.replace(opts, report_only=True), study.root)
    assert figure.read_bytes() == b"not ours"
    run_study(study, 2, work, data, ["train.epochs=4"], runner=fake_runner)
    execute(study, dataclasses.replace(opts, report_only=True, overwrite=True), study.root)  # asked: replaced
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = notes.read_text()
    assert "written by `fasterpose study`" in first.splitlines()[1]
    execute(study, dataclasses.replace(opts, report_only=True), study.root)  # its own report: regenerated
    assert notes.read_text().splitlines()[0] == first.splitlines()[0]
    assert not [f for f in out.rglob("*.tmp")]  # written atomically, no temporary left


def test_planned_studies_load_and_reuse_the_committed_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fasterpose.study.collect import lr_geometry

    monkeypatch.chdir(REPO)  # the command runs from the repository root with its default, relative folders

    geometry = load_study(REPO / "configs" / "study_geometry")
    cfgs = [p.cfg for p in plan_runs(geometry, 1, tmp_path, tmp_path / "data")]
    assert lr_geometry(cfgs) == (32, 8)  # the paper's LR head geometry
    hr = next(c for c in cfgs if c.model.head == "deconv")
    assert hr.model.num_deconv == 3 and tuple(hr.data.heatmap_size) == (32, 48)
    power = load_study(REPO / "configs" / "study_power")
    assert power.arms["t5_lr_2conv"].config_path.is_file()
    plan = plan_runs(power, 3, Path("docs/study_runs"), Path("data/synthpose_study"))
    shared = {p.arm for p in plan if run_finished(p.cfg)}  # the same arm files as configs/study: reused
    assert {"lr_rce", "lr_mse", "hr_mse", "t5_1deconv"} <= shared
    mask = next(p.cfg for p in plan if p.arm == "lr_ce_mask_area")
    assert mask.loss.name == "ce_mask" and mask.loss.positive_threshold == 0.24
    neutral = load_study(REPO / "configs" / "study_pretrained")
    plan = plan_runs(neutral, 1, tmp_path, tmp_path / "data")
    pre = next(p.cfg for p in plan if p.arm is None)  # the pretraining: a head no arm uses, without a spatial layer
    assert pre.model.head == "pooled" and pre.loss.name == "centroid"
    assert {p.cfg.model.head for p in plan if p.arm} == {"lhr", "deconv"}
    for arm in (p.cfg for p in plan if p.arm):
        assert arm.train.epochs >= 10 and arm.train.head_warmup_epochs == 1 and arm.train.head_warmup_backbone_lr == 0
        assert arm.model.weights is not None and "pretrained_neutral/_pretrain/seed0" in arm.model.weights
