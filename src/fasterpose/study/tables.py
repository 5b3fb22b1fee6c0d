"""Markdown tables of the study report: arms per group and regime, the RCE grid, claims, regimes, setup."""

from __future__ import annotations

import math
from pathlib import Path

from fasterpose.study.manifest import Group, Study
from fasterpose.study.results import LATE_FRACTION, ArmResult, ClaimResult, RegimeResult, Stat, StudyResults
from fasterpose.study.runs import run_config

PCT = 100.0


def fmt_stat(s: Stat | None, digits: int = 1) -> str:
    """``mean ± std (min–max)`` in AP percent; ``n/a`` when there are no runs."""
    if s is None:
        return "n/a"
    m, sd = s.mean * PCT, s.std * PCT
    if s.n == 1:
        return f"{m:.{digits}f} (1 seed)"
    return f"{m:.{digits}f} ± {sd:.{digits}f} ({s.min * PCT:.{digits}f}–{s.max * PCT:.{digits}f})"


def _seeds(a: ArmResult) -> str:
    return f"{len(a.runs)}/{a.seeds_planned}" + ("" if a.complete else " **incomplete**")


def group_table(regime: RegimeResult, group: Group) -> str:
    """Markdown table of one group's arms in one regime: final/best/AUC/early AP, size, paper AP, cost."""
    head = [
        "arm",
        "params (M)",
        "paper GFLOPs",
        "final AP",
        "best AP",
        "mean AP over epochs",
        f"AP at epoch {regime.early_epoch}",
        "seeds",
        "CPU s/run",
    ]
    if group.paper_ap:
        head.append("paper COCO val AP")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in group.arms:
        a = regime.arms.get(name)
        if a is None:
            continue
        s = a.summary
        cpu = s.cpu_seconds if s else None
        row = [
            f"{a.label} (`{name}`)",
            f"{a.params_m:.2f}",
            f"{a.paper_gflops:.3f}",
            fmt_stat(s.final if s else None),
            fmt_stat(s.best if s else None),
            fmt_stat(s.auc if s else None),
            fmt_stat(s.early if s else None),
            _seeds(a),
            f"{cpu.mean:.0f}" if cpu else "n/a",
        ]
        if group.paper_ap:
            row.append(str(group.paper_ap.get(name, "")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def grid_table(regime: RegimeResult, group: Group) -> str:
    """alpha (rows) x gamma (columns) table of final AP for the RCE grid; cells not run are blank."""
    cells = {(a.alpha, a.gamma): a for n in group.arms if (a := regime.arms.get(n))}
    alphas, gammas = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
    lines = ["| alpha \\ gamma | " + " | ".join(f"{g:g}" for g in gammas) + " |", "|" + " --- |" * (len(gammas) + 1)]
    for al in alphas:
        row = []
        for g in gammas:
            a = cells.get((al, g))
            row.append(
                ""
                if a is None
                else fmt_stat(a.summary.final if a.summary else None) + ("" if a.complete else " (incomplete)")
            )
        lines.append(f"| {al:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def fmt_p(p: float | None, alpha: float = 0.05) -> str:
    """A p-value at 3 decimals; one that rounds to 0.000 reads "< 0.001", not zero, and one that would
    round onto the significance level ``alpha`` gets a 4th decimal, so that its side of it shows."""
    if p is None:
        return "n/a"
    if p < 0.0005:
        return "< 0.001"
    text = f"{p:.3f}"
    return f"{p:.4f}" if float(text) == alpha and p != alpha else text


def fmt_diff(c: ClaimResult) -> str:
    """The mean paired difference with its 95% CI, AP percent (equal: the pair that decides the claim)."""
    if c.diff is None or c.ci95 is None:
        return "n/a"
    pair = f" (`{c.pairs_deciding()}`)" if c.kind == "equal" and c.pairs else ""
    return f"{c.diff:+.1f} [{c.ci95[0]:+.1f}, {c.ci95[1]:+.1f}]{pair}"


def _claim_cells(c: ClaimResult) -> str:
    means = ", ".join(f"`{a}` {m * PCT:.1f}" if m is not None else f"`{a}` n/a" for a, m in c.means.items())
    verdict = f"**{c.verdict}** (interim: {c.interim})" if c.interim else f"**{c.verdict}**"
    return f"{means} | {c.n_pairs} | {fmt_diff(c)} | {fmt_p(c.p)} / {fmt_p(c.p_adjusted)} | {verdict}"


def claims_table(results: StudyResults) -> str:
    """One row per claim, one block of columns (means, pairs, difference [CI], p, verdict) per regime."""
    regimes = list(results.regimes.values())
    cols = ("means (AP %)", "paired seeds", "difference [95% CI]", "p / Holm p", "verdict")
    head = "| claim (paper) | metric | test | margin | " + " | ".join(f"{r.name}: {c}" for r in regimes for c in cols)
    lines = [head + " |", "|" + " --- |" * (4 + len(cols) * len(regimes))]
    first = regimes[0]
    for i, c in enumerate(first.claims):
        margin = "n/a" if c.margin is None else f"{c.margin:g} AP"
        test = next((r.claims[i].test for r in regimes if r.claims[i].p is not None), c.test)
        cells = " | ".join(_claim_cells(r.claims[i]) for r in regimes)
        lines.append(f"| {c.text} | {c.metric} | {test} | {margin} | {cells} |")
    return "\n".join(lines)


def verdict_summary(results: StudyResults) -> str:
    """Compact claim x regime verdict table (used in the README summary)."""
    regimes = list(results.regimes.values())
    lines = ["| claim | " + " | ".join(r.label for r in regimes) + " |", "|" + " --- |" * (1 + len(regimes))]
    for i, c in enumerate(regimes[0].claims):
        cells = []
        for r in regimes:
            rc = r.claims[i]
            interim = f"interim, {rc.interim}; " if rc.interim else ""
            p = (
                f" ({interim}Holm p {fmt_p(rc.p_adjusted)}; diff {fmt_diff(rc)})"
                if rc.p_adjusted is not None
                else f" ({interim}not tested: fewer than 2 paired seeds)"
            )
            cells.append(f"{rc.verdict}{p}")
        lines.append(f"| {c.text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flattening(regime: RegimeResult) -> str:
    """The best arm's final AP and how much it still gained in the last third of its schedule."""
    best = regime.best_arm()
    if best is None or best.summary is None:
        return "no finished runs yet"
    s = best.summary
    share = s.late_gain.mean / s.final.mean if s.final.mean > 0 else math.nan
    flat = "flattened" if share < 0.10 else "**still rising**"
    return (
        f"best arm `{best.name}` at {fmt_stat(s.final)} final AP ({len(best.runs)}/{best.seeds_planned} seeds); "
        f"in the last {1 - LATE_FRACTION:.0%} of its schedule it gained {s.late_gain.mean * PCT:+.1f} AP, "
        f"{share:.0%} of its final AP: {flat} (threshold 10%)"
    )


def regime_table(results: StudyResults) -> str:
    lines = [
        "| regime | how every arm is trained | runs finished | best arm and its flattening |",
        "| --- | --- | --- | --- |",
    ]
    for r in results.regimes.values():
        done = sum(len(a.runs) for a in r.arms.values())
        planned = sum(a.seeds_planned for a in r.arms.values())
        how = r.note or r.label
        if r.pretrain_label:
            pre = ", ".join(f"{x.final * PCT:.1f}" for x in r.pretrain) or "none finished"
            how += f" Pretraining: {r.pretrain_label} (its own val AP per seed: {pre})."
        if r.feature_stride is not None:
            how += f" LR arms: stride-{r.feature_stride} features, L = {r.upsample_L}."
        if r.finetune_epochs is not None:
            how += f" Fine-tune: {r.finetune_epochs} epochs"
            how += f", the first {r.head_warmup_epochs} a head warm-up." if r.head_warmup_epochs else "."
            if r.pretrain_head is not None:
                neutral = " (head-neutral: no spatial layer)" if r.pretrain_head == "pooled" else ""
                how += f" Pretraining head: `{r.pretrain_head}`{neutral}."
        lines.append(f"| **{r.label}** (`{r.name}`) | {how} | {done}/{planned} | {flattening(r)} |")
    return "\n".join(lines)


def setup_table(results: StudyResults, study: Study) -> str:
    """The shared recipe, read from the first arm's config in each regime."""
    assert results.dataset is not None
    arm = next(iter(study.arms))
    rows = []
    for name in results.regimes:
        cfg = run_config(study, name, arm, 0, Path("."), Path(results.dataset.dir), results.overrides)
        d, t, m, a = cfg.data, cfg.train, cfg.model, cfg.data.augment
        init = "backbone from the pretraining (`model.weights`), fresh head" if m.weights else "random init"
        rows += [
            (f"{name}: network", f"{m.backbone} cut at feature_index {m.feature_index}, {init}"),
            (
                f"{name}: input / heatmap",
                f"{d.input_size[0]}x{d.input_size[1]} (WxH) -> {d.heatmap_size[0]}x"
                f"{d.heatmap_size[1]}, sigma {d.sigma:g} ({d.encoding} targets, DARK={cfg.eval.dark})",
            ),
            (
                f"{name}: schedule",
                f"{t.optimizer}, lr {t.lr:g}, warmup {t.warmup_iters} it, x{t.lr_factor:g} at epochs "
                f"{list(t.lr_steps)}, batch {t.batch_size}, {t.epochs} epochs, eval every {t.eval_every}",
            ),
            (
                f"{name}: augmentation",
                f"scale ±{a.scale_factor:g}, rotation ±{a.rotation_factor:g}° (p "
                f"{a.rotation_prob:g}), flip {a.flip}, half body p {a.half_body_prob:g}; eval flip test "
                f"{cfg.eval.flip_test}, ground-truth boxes",
            ),
        ]
    rows.append(("seeds", f"train.seed = 0..{results.seeds - 1} (initial weights, sample order, augmentation)"))
    return "\n".join(["| setting | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])
