"""Check a rerun of the study against a committed results file."""

from __future__ import annotations

import numpy as np

from fasterpose.study.results import StudyResults

PCT = 100.0


def compare_results(
    reference: StudyResults, rerun: StudyResults, metric: str = "final", min_tol: float = 0.005
) -> list[str]:
    """Problems found when checking ``rerun`` against ``reference`` (empty list: reproduced).

    An arm reproduces when its rerun mean of ``metric`` lies within the reference mean ± the reference
    spread, taken as max(sample std over seeds, ``min_tol``) (AP in [0, 1]; the floor keeps a single-seed
    or bit-identical reference from demanding exact equality). Arms or seeds missing from the rerun are
    reported too.
    """
    problems = []
    for rname, ref_regime in reference.regimes.items():
        new_regime = rerun.regimes.get(rname)
        for name, ref in ref_regime.arms.items():
            where = f"{rname}/{name}" if len(reference.regimes) > 1 else name
            if ref.summary is None:
                continue
            new = new_regime.arms.get(name) if new_regime else None
            if new is None or new.summary is None:
                problems.append(f"{where}: no finished runs in the rerun")
                continue
            r, n = getattr(ref.summary, metric), getattr(new.summary, metric)
            tol = max(r.std, min_tol)
            if abs(n.mean - r.mean) > tol:
                problems.append(
                    f"{where}: {metric} AP {n.mean * PCT:.2f} is outside the reference "
                    f"{r.mean * PCT:.2f} ± {tol * PCT:.2f}"
                )
            if n.n < r.n:
                problems.append(f"{where}: {n.n} seed(s) in the rerun, {r.n} in the reference")
    return problems


def identical_runs(reference: StudyResults, rerun: StudyResults) -> tuple[int, int]:
    """(runs whose per-epoch AP matches the reference to 1e-9, runs present in both)."""
    same = total = 0
    for rname, ref_regime in reference.regimes.items():
        new_regime = rerun.regimes.get(rname)
        for name, ref in ref_regime.arms.items():
            arm = new_regime.arms.get(name) if new_regime else None
            new = {r.seed: r for r in (arm.runs if arm else [])}
            for r in ref.runs:
                if r.seed in new:
                    total += 1
                    same += bool(np.allclose(r.ap, new[r.seed].ap, atol=1e-9, rtol=0))
    return same, total
