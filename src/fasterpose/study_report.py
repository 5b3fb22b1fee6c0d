"""Study report: ``results.md`` tables, convergence/grid figures, and the rerun-vs-committed check.

Input is the results dict of :func:`fasterpose.study.collect_results` (also stored as JSON). AP is
COCOeval's keypoint AP on the study's SynthPose validation split, printed in percent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

PCT = 100.0


def fmt_stat(s: dict[str, Any] | None, digits: int = 1) -> str:
    """``mean ± std (min–max)`` in AP percent; ``n/a`` when there are no runs."""
    if not s:
        return "n/a"
    m, sd = s["mean"] * PCT, s["std"] * PCT
    if s["n"] == 1:
        return f"{m:.{digits}f} (1 seed)"
    return f"{m:.{digits}f} ± {sd:.{digits}f} ({s['min'] * PCT:.{digits}f}–{s['max'] * PCT:.{digits}f})"


def group_table(results: dict[str, Any], group: dict[str, Any]) -> str:
    """Markdown table of one group's arms: final/best/AUC/early AP, size, paper AP, time."""
    early = results["early_epoch"]
    paper = group.get("paper_ap") or {}
    head = [
        "arm",
        "params (M)",
        "paper GFLOPs",
        "final AP",
        "best AP",
        "mean AP over epochs",
        f"AP at epoch {early}",
        "seeds",
        "train s/run",
    ]
    if paper:
        head.append("paper COCO val AP")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in group["arms"]:
        a = results["arms"].get(name)
        if a is None:
            continue
        s = a.get("summary") or {}
        row = [
            f"{a['label']} (`{name}`)",
            f"{a['params_m']:.2f}",
            f"{a['paper_gflops']:.3f}",
            fmt_stat(s.get("final")),
            fmt_stat(s.get("best")),
            fmt_stat(s.get("auc")),
            fmt_stat(s.get("early")),
            f"{len(a['runs'])}/{a['seeds_planned']}",
            f"{s['train_seconds']['mean']:.0f}" if s else "n/a",
        ]
        if paper:
            row.append(str(paper.get(name, "")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def grid_table(results: dict[str, Any], group: dict[str, Any]) -> str:
    """alpha (rows) x gamma (columns) table of final AP for the RCE grid."""
    cells: dict[tuple[float, float], dict[str, Any]] = {}
    for name in group["arms"]:
        a = results["arms"].get(name)
        if a and a.get("summary"):
            cells[(a["alpha"], a["gamma"])] = a["summary"]["final"]
    alphas = sorted({k[0] for k in cells})
    gammas = sorted({k[1] for k in cells})
    lines = ["| alpha \\ gamma | " + " | ".join(f"{g:g}" for g in gammas) + " |", "|" + " --- |" * (len(gammas) + 1)]
    for al in alphas:
        lines.append(f"| {al:g} | " + " | ".join(fmt_stat(cells.get((al, g))) for g in gammas) + " |")
    return "\n".join(lines)


def claims_table(results: dict[str, Any]) -> str:
    lines = [
        "| claim (paper) | metric | means (AP %) | difference | p | verdict on SynthPose |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in results["claims"]:
        means = ", ".join(f"`{a}` {m * PCT:.1f}" if m is not None else f"`{a}` n/a" for a, m in c["means"].items())
        diff = (
            "n/a"
            if c.get("diff") is None
            else f"{c['diff'] * PCT:+.1f}"
            if c.get("kind", "better") != "equal"
            else f"range {c['diff'] * PCT:.1f}"
        )
        p = "n/a" if c.get("p") is None else f"{c['p']:.3f}"
        lines.append(f"| {c['text']} | {c['metric']} | {means} | {diff} | {p} | **{c['verdict']}** |")
    return "\n".join(lines)


# ---------------------------------------------------------------- figures


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_convergence(results: dict[str, Any], arms: list[str], path: Path, title: str) -> None:
    """AP vs epoch per arm: mean over seeds (line) and the min–max band over seeds."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name in arms:
        a = results["arms"].get(name)
        if not a or not a.get("summary"):
            continue
        s = a["summary"]
        x = np.asarray(a["runs"][0]["eval_epochs"][: len(s["curve_mean"])])
        ax.plot(x, np.asarray(s["curve_mean"]) * PCT, "o-", ms=3, label=f"{a['label']} (n={len(a['runs'])})")
        ax.fill_between(x, np.asarray(s["curve_min"]) * PCT, np.asarray(s["curve_max"]) * PCT, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("AP (%) on SynthPose val")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_bars(results: dict[str, Any], arms: list[str], path: Path, title: str) -> None:
    """Final AP per arm: mean bar, one dot per seed."""
    plt = _plt()
    names = [n for n in arms if results["arms"].get(n, {}).get("runs")]
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.0, 3.6))
    for i, name in enumerate(names):
        runs = results["arms"][name]["runs"]
        vals = np.asarray([r["final"] for r in runs]) * PCT
        ax.bar(i, vals.mean(), color="tab:blue", alpha=0.5)
        ax.plot(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, "k.", ms=6)
    ax.set_xticks(range(len(names)), [results["arms"][n]["label"] for n in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("final AP (%) on SynthPose val")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_grid(results: dict[str, Any], arms: list[str], path: Path, title: str) -> None:
    """Heat map of the mean final AP over (alpha, gamma)."""
    plt = _plt()
    cells = {
        (results["arms"][n]["alpha"], results["arms"][n]["gamma"]): results["arms"][n]["summary"]["final"]
        for n in arms
        if results["arms"].get(n, {}).get("summary")
    }
    if not cells:
        return
    alphas, gammas = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
    grid = np.full((len(alphas), len(gammas)), math.nan)
    for (al, g), s in cells.items():
        grid[alphas.index(al), gammas.index(g)] = s["mean"] * PCT
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    im = ax.imshow(grid, cmap="viridis", origin="lower")
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for (i, j), v in np.ndenumerate(grid):
        if not math.isnan(v):
            s = cells[(alphas[i], gammas[j])]
            spread = f"±{s['std'] * PCT:.1f} (n={s['n']})" if s["n"] > 1 else "1 seed"
            color = "k" if v > lo + 0.6 * (hi - lo) else "w"
            ax.text(j, i, f"{v:.1f}\n{spread}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("gamma")
    ax.set_ylabel("alpha")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="final AP (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_figures(results: dict[str, Any], image_dir: Path) -> dict[str, str]:
    """One figure per group (convergence groups: the first is ``study_convergence.png``); returns key -> file."""
    image_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    first_curve = True
    for g in results["groups"]:
        kind, key, title = g.get("kind", "table"), g["key"], g.get("title", g["key"])
        if kind == "convergence":
            name = "study_convergence.png" if first_curve else f"study_{key}.png"
            first_curve = False
            plot_convergence(results, g["arms"], image_dir / name, title)
        elif kind == "grid":
            name = f"study_{key}.png"
            plot_grid(results, g["arms"], image_dir / name, title)
        else:
            name = f"study_{key}.png"
            plot_convergence(results, g["arms"], image_dir / name, title)
            bars = f"study_{key}_final.png"
            plot_bars(results, g["arms"], image_dir / bars, title)
            files[f"{key}_final"] = bars
        files[key] = name
    return files


# ---------------------------------------------------------------- rerun check


def compare_results(
    reference: dict[str, Any], rerun: dict[str, Any], metric: str = "final", min_tol: float = 0.005
) -> list[str]:
    """Problems found when checking ``rerun`` against ``reference`` (empty list: reproduced).

    An arm reproduces when its rerun mean of ``metric`` lies within the reference mean ± the
    reference spread, taken as max(sample std over seeds, ``min_tol``) (AP in [0, 1]; the floor
    keeps a single-seed or bit-identical reference from demanding exact equality). Arms or
    seeds missing from the rerun are reported too.
    """
    problems = []
    for name, ref in reference["arms"].items():
        if not ref.get("summary"):
            continue
        new = rerun["arms"].get(name)
        if not new or not new.get("summary"):
            problems.append(f"{name}: no finished runs in the rerun")
            continue
        r, n = ref["summary"][metric], new["summary"][metric]
        tol = max(r["std"], min_tol)
        if abs(n["mean"] - r["mean"]) > tol:
            problems.append(
                f"{name}: {metric} AP {n['mean'] * PCT:.2f} is outside the reference "
                f"{r['mean'] * PCT:.2f} ± {tol * PCT:.2f}"
            )
        if n["n"] < r["n"]:
            problems.append(f"{name}: {n['n']} seed(s) in the rerun, {r['n']} in the reference")
    return problems


def identical_runs(reference: dict[str, Any], rerun: dict[str, Any]) -> tuple[int, int]:
    """(runs whose per-epoch AP matches the reference to 1e-9, runs present in both)."""
    same = total = 0
    for name, ref in reference["arms"].items():
        new = {r["seed"]: r for r in rerun["arms"].get(name, {}).get("runs", [])}
        for r in ref.get("runs", []):
            if r["seed"] in new:
                total += 1
                same += bool(np.allclose(r["ap"], new[r["seed"]]["ap"], atol=1e-9, rtol=0))
    return same, total


# ---------------------------------------------------------------- results.md


def _hardware() -> str:
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu}), {gpu}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, {platform.system()}"
    )


def _load_note(invocation: dict[str, Any]) -> str:
    load = invocation.get("load_average")
    if not load or None in load:
        return ""
    return f"; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"


def setup_table(results: dict[str, Any], study: Any, arm: str) -> str:
    """The shared recipe, read from one arm's config (identical across arms except head/loss)."""
    from fasterpose.study import run_config

    cfg = run_config(study, arm, 0, Path("."), Path(results["dataset"]["dir"]), results["overrides"])
    d, t, m, a = cfg.data, cfg.train, cfg.model, cfg.data.augment
    rows = [
        ("backbone", f"{m.backbone}, random init (pretrained={m.pretrained})"),
        (
            "input / heatmap",
            f"{d.input_size[0]}x{d.input_size[1]} (WxH) -> {d.heatmap_size[0]}x{d.heatmap_size[1]}, "
            f"sigma {d.sigma:g} ({d.encoding} targets)",
        ),
        (
            "optimizer",
            f"{t.optimizer}, lr {t.lr:g}, x{t.lr_factor:g} at epochs {list(t.lr_steps)}, batch "
            f"{t.batch_size}, {t.epochs} epochs, warmup {t.warmup_iters} iterations",
        ),
        (
            "augmentation",
            f"scale ±{a.scale_factor:g}, rotation ±{a.rotation_factor:g}° (p {a.rotation_prob:g}), "
            f"flip {a.flip}, half body p {a.half_body_prob:g}",
        ),
        (
            "evaluation",
            f"every epoch, SynthPose val, ground-truth boxes={cfg.eval.use_gt_boxes}, "
            f"flip test={cfg.eval.flip_test}, COCOeval keypoint AP",
        ),
        ("seeds", f"train.seed = 0..{results['seeds'] - 1} (initial weights, sample order, augmentation)"),
    ]
    return "\n".join(["| setting | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def write_report(results: dict[str, Any], study: Any, out: Path, config_dir: Path, command: str) -> Path:
    """Write ``out/results.md``, ``out/study_results.json`` and the figures; returns the .md path."""
    import datetime
    import json

    from fasterpose.engine.checkpoint import git_commit

    out.mkdir(parents=True, exist_ok=True)
    files = write_figures(results, out / "images")
    results["hardware"] = results.get("hardware") or _hardware()
    results["git_commit"] = git_commit()
    (out / "study_results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    runs = [r for a in results["arms"].values() for r in a["runs"]]
    run_s = sum(r["run_seconds"] or r["train_seconds"] for r in runs)
    ds = results["dataset"]
    lines = [
        f"# {results['title']}",
        "",
        f"Generated by `{command}` (runs trained at commit `{results['invocation'].get('git_commit')}`, "
        f"report written at `{results['git_commit']}` on {datetime.date.today().isoformat()}). "
        "Everything below was measured on **SynthPose**, the "
        "built-in procedurally drawn dataset, never on COCO: the paper's COCO numbers are quoted for "
        "the ordering only.",
        "",
        f"- **Data**: SynthPose seed {ds['seed']}, {ds['train']} train / {ds['val']} val images, generator "
        f"knobs `{json.dumps({k: v for k, v in ds['knobs'].items()})}`. Ceiling: the ground truth "
        f"encoded to heatmaps and decoded scores {ds.get('oracle_ap', math.nan) * PCT:.1f} AP.",
        f"- **Hardware**: {results['hardware']}.",
        f"- **Time**: {len(runs)} runs, {run_s / 60:.1f} min of training+evaluation summed over runs "
        f"(this invocation: {results['invocation']['seconds'] / 60:.1f} min wall, "
        f"{results['invocation']['jobs']} run(s) at a time, {results['invocation']['threads']} torch thread(s) each"
        f"{_load_note(results['invocation'])}).",
        "- **Metric**: COCO keypoint AP (pycocotools) on SynthPose val, in percent; cells read "
        "mean ± sample std over seeds (min–max). 'mean AP over epochs' is the area under the "
        "AP-vs-epoch curve divided by its length (a convergence-speed summary).",
        "",
        "## Setup (shared by every arm)",
        "",
        setup_table(results, study, next(iter(results["arms"]))),
        "",
    ]
    discussion = config_dir / "discussion.md"
    if discussion.is_file():
        lines += [discussion.read_text().strip(), ""]
    lines += [
        "## Claims, tested",
        "",
        claims_table(results),
        "",
        "Verdicts: Welch's t-test over seeds for an ordering (holds / reversed at p < 0.05, else not "
        "resolved; 'at least matches' fails only when significantly lower); one-way ANOVA for 'no "
        "difference' (holds when p >= 0.05, read with the range beside it). With 3 seeds these tests "
        "only see large effects, and a p-value per claim is not corrected for the number of claims.",
        "",
    ]
    for g in results["groups"]:
        lines += [f"## {g.get('title', g['key'])}", ""]
        if g.get("note"):
            lines += [g["note"].strip(), ""]
        lines += [grid_table(results, g) if g.get("kind") == "grid" else group_table(results, g), ""]
        lines += [f"![{g['key']}](images/{files[g['key']]})", ""]
        if g.get("kind") != "grid":
            lines += ["*AP vs epoch: lines are the mean over seeds, bands the min–max over seeds.*", ""]
        if f"{g['key']}_final" in files:
            lines += [f"![{g['key']} final AP per seed](images/{files[g['key'] + '_final']})", ""]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        command,
        "# check a rerun against this file (exit 1 if an arm's mean final AP leaves the reported spread):",
        f"{command} --work-dir runs/study_rerun --out /tmp/study_rerun --check {out / 'study_results.json'}",
        "```",
        "",
        "Finished runs are skipped (`--work-dir`, default `runs/study`), so an interrupted study resumes. "
        "Per-run APs are in `study_results.json`.",
        "",
    ]
    path = out / "results.md"
    path.write_text("\n".join(lines))
    return path
