"""Test the paper's claims over seeds: Welch's t-test for an ordering, one-way ANOVA for "no difference"."""

from __future__ import annotations

import numpy as np

from fasterpose.study.manifest import Claim
from fasterpose.study.results import ArmResult, ClaimResult


def evaluate_claim(claim: Claim, arms: dict[str, ArmResult], alpha: float = 0.05) -> ClaimResult:
    """Test one claim over the per-seed values of ``claim.metric`` (final | auc | early | best).

    ``kind: better`` (arms[0] > arms[1]): Welch's t-test, verdict "holds" / "reversed" (p < alpha
    in that direction) or "not resolved". ``kind: not_worse`` (arms[0] >= arms[1]): "does not
    hold" only when arms[0] is significantly lower, else "holds". ``kind: equal`` (no arm differs): one-way
    ANOVA, verdict "holds" (p >= alpha, no detectable difference) or "does not hold"; the range of the
    means is reported beside it so that "no detectable difference" is read with its size.
    """
    from scipy import stats

    values = {a: [r.value(claim.metric) for r in (arms[a].runs if a in arms else [])] for a in claim.arms}
    means: dict[str, float | None] = {a: float(np.mean(v)) if v else None for a, v in values.items()}
    out = ClaimResult(claim.text, claim.kind, claim.metric, list(claim.arms), means, "not enough seeds")
    if any(len(v) < 2 for v in values.values()):
        return out
    if claim.kind in ("better", "not_worse"):
        a, b = claim.arms[:2]
        diff = float(np.mean(values[a]) - np.mean(values[b]))
        if np.std(values[a]) == 0 and np.std(values[b]) == 0:
            p = 0.0 if diff != 0 else 1.0
        else:
            p = float(stats.ttest_ind(values[a], values[b], equal_var=False).pvalue)
        if claim.kind == "not_worse":
            out.verdict = "does not hold" if p < alpha and diff < 0 else "holds"
        else:
            out.verdict = "holds" if p < alpha and diff > 0 else "reversed" if p < alpha else "not resolved"
        out.p, out.diff = p, diff
        return out
    spread = [float(np.mean(v)) for v in values.values()]
    out.p = float(stats.f_oneway(*values.values()).pvalue)
    out.verdict, out.diff = ("holds" if not out.p < alpha else "does not hold"), max(spread) - min(spread)
    return out
