"""Study figures: AP-vs-epoch curves, final AP per seed, the RCE alpha x gamma grid (one set per regime)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.study.manifest import Group
from fasterpose.study.results import RegimeResult

PCT = 100.0


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    from fasterpose.atomic import atomic_write

    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90), "figure")
    finally:
        _plt().close(fig)


def plot_convergence(regime: RegimeResult, arms: tuple[str, ...], path: Path, title: str) -> bool:
    """AP vs epoch per arm: mean over seeds (line) and the min-max band over seeds. False if no arm has runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn = False
    for name in arms:
        a = regime.arms.get(name)
        if a is None or a.summary is None:
            continue
        s = a.summary
        x = np.asarray(a.runs[0].eval_epochs[: len(s.curve_mean)])
        ax.plot(x, np.asarray(s.curve_mean) * PCT, "o-", ms=3, label=f"{a.label} (n={len(a.runs)})")
        ax.fill_between(x, np.asarray(s.curve_min) * PCT, np.asarray(s.curve_max) * PCT, alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("epoch")
    ax.set_ylabel("AP (%) on SynthPose val")
    ax.set_title(f"{title}\n[{regime.label}]", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)
    return True


def plot_bars(regime: RegimeResult, arms: tuple[str, ...], path: Path, title: str) -> bool:
    """Final AP per arm: mean bar, one dot per seed."""
    plt = _plt()
    names = [n for n in arms if n in regime.arms and regime.arms[n].runs]
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.0, 3.6))
    for i, name in enumerate(names):
        vals = np.asarray([r.final for r in regime.arms[name].runs]) * PCT
        ax.bar(i, vals.mean(), color="tab:blue", alpha=0.5)
        ax.plot(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, "k.", ms=6)
    ax.set_xticks(range(len(names)), [regime.arms[n].label for n in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("final AP (%) on SynthPose val")
    ax.set_title(f"{title}\n[{regime.label}]", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return True


def plot_grid(regime: RegimeResult, arms: tuple[str, ...], path: Path, title: str) -> bool:
    """Heat map of the mean final AP over (alpha, gamma); empty cells are blank."""
    plt = _plt()
    cells = {
        (regime.arms[n].alpha, regime.arms[n].gamma): regime.arms[n].summary
        for n in arms
        if n in regime.arms and regime.arms[n].summary
    }
    if not cells:
        return False
    alphas, gammas = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
    grid = np.full((len(alphas), len(gammas)), math.nan)
    for (al, g), s in cells.items():
        if s is not None:
            grid[alphas.index(al), gammas.index(g)] = s.final.mean * PCT
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    im = ax.imshow(grid, cmap="viridis", origin="lower")
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for (i, j), v in np.ndenumerate(grid):
        s = cells.get((alphas[i], gammas[j]))
        if s is not None and not math.isnan(v):
            spread = f"±{s.final.std * PCT:.1f} (n={s.final.n})" if s.final.n > 1 else "1 seed"
            color = "k" if v > lo + 0.6 * (hi - lo) else "w"
            ax.text(j, i, f"{v:.1f}\n{spread}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("gamma")
    ax.set_ylabel("alpha")
    ax.set_title(f"{title}\n[{regime.label}]", fontsize=9)
    fig.colorbar(im, ax=ax, label="final AP (%)")
    _save(fig, path)
    return True


def write_figures(regime: RegimeResult, groups: list[Group], image_dir: Path) -> dict[str, str]:
    """The figures of one regime; returns group key (and ``<key>_final``) -> file name, for those drawn."""
    image_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for g in groups:
        name = f"study_{regime.name}_{g.key}.png"
        if g.kind == "grid":
            drawn = plot_grid(regime, g.arms, image_dir / name, g.title)
        else:
            drawn = plot_convergence(regime, g.arms, image_dir / name, g.title)
            if g.kind == "table" and plot_bars(
                regime, g.arms, image_dir / f"study_{regime.name}_{g.key}_final.png", g.title
            ):
                files[f"{g.key}_final"] = f"study_{regime.name}_{g.key}_final.png"
        if drawn:
            files[g.key] = name
    return files
