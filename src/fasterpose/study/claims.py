"""Test the paper's claims over seeds, paired by seed, with a Holm correction over the whole family.

Within a seed every arm starts from the same initial weights and sees the same sample order (and, in a
pretrained regime, the same pretrained backbone), so the unit of evidence is the per-seed difference
``d_s = arm0_s - arm1_s`` (AP percent) over the seeds both arms finished. Each claim kind has one test,
declared in the manifest before any number is seen:

- ``better`` (arm0 > arm1): one-sided superiority test of H0: mean d <= 0.
- ``not_worse`` ("at least matches"): one-sided non-inferiority test of H0: mean d <= -margin.
- ``equal`` ("matches" / "barely changes"): equivalence by two one-sided tests (TOST) of
  H0: |mean d| >= margin for every pair of arms; the pairs are Holm-adjusted within the claim and the
  claim's p is the largest adjusted pair p (it holds only when every pair is shown equivalent).

The test is the paired t-test below :data:`PERMUTATION_MIN_SEEDS` pairs and the exact sign-flip
permutation test from there on (no normality assumption; its smallest p is 2^-n). :func:`judge_family`
then Holm-adjusts the p of every testable claim of the study (all regimes together) and gives the
verdict: **holds** when the adjusted p < alpha; **does not hold** when the opposite one-sided test
(arm0 < arm1 for ``better``, arm0 < arm1 for ``not_worse``, a difference beyond the margin for
``equal``) rejects at alpha after a Bonferroni factor of the family size; otherwise **not resolved**,
read with the 95% confidence interval of the mean paired difference (t interval).

A claim is decided only at its declared sample size: while one of its arms has fewer finished seeds than
the study plans (:func:`mark_interim`), it reads **not resolved** with its interim CI, so looking at a
partial study never spends the test (its p still counts in the family's Holm correction).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fasterpose.study.manifest import Claim
from fasterpose.study.results import ArmResult, ClaimResult

ALPHA = 0.05
PCT = 100.0
PERMUTATION_MIN_SEEDS = 6
_EXACT_MAX = 16  # up to 2^16 sign patterns enumerated; above, a fixed-seed Monte Carlo sample


def paired_differences(a: ArmResult | None, b: ArmResult | None, metric: str) -> tuple[list[int], np.ndarray]:
    """Seeds both arms finished and ``a - b`` on ``metric`` per seed, in AP percent."""
    if a is None or b is None:
        return [], np.zeros(0)
    va = {r.seed: r.value(metric) for r in a.runs}
    vb = {r.seed: r.value(metric) for r in b.runs}
    seeds = sorted(set(va) & set(vb))
    return seeds, np.array([(va[s] - vb[s]) * PCT for s in seeds], np.float64)


def t_greater(d: np.ndarray, delta0: float = 0.0) -> float:
    """One-sided paired t-test p of H0: mean d <= delta0 against mean d > delta0."""
    from scipy import stats

    n, shift = d.size, float(d.mean()) - delta0
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if shift > 0 else 1.0
    return float(stats.t.sf(shift / (sd / math.sqrt(n)), n - 1))


def sign_flip_greater(d: np.ndarray, delta0: float = 0.0) -> float:
    """One-sided sign-flip permutation p of H0: d - delta0 symmetric about 0 (mean d <= delta0)."""
    x = d - delta0
    n = x.size
    if n <= _EXACT_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(65536, n))
        signs[0] = 1.0
    means = (signs * x).mean(axis=1)
    return float(np.mean(means >= x.mean() - 1e-12))


def ci95(d: np.ndarray) -> list[float]:
    """Two-sided 95% t confidence interval of the mean of ``d``."""
    from scipy import stats

    m, n = float(d.mean()), d.size
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return [m - half, m + half]


def holm(ps: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as ``ps``)."""
    m = len(ps)
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: ps[k])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def _greater(d: np.ndarray, delta0: float) -> float:
    return sign_flip_greater(d, delta0) if d.size >= PERMUTATION_MIN_SEEDS else t_greater(d, delta0)


def test_name(claim: Claim, n: int) -> str:
    """The test used for ``claim`` with ``n`` paired seeds."""
    base = "paired sign-flip permutation" if n >= PERMUTATION_MIN_SEEDS else "paired t"
    return {
        "better": f"{base}, one-sided superiority (H0: diff <= 0)",
        "not_worse": f"{base}, one-sided non-inferiority (H0: diff <= -margin)",
        "equal": f"{base} TOST equivalence per pair (H0: abs(diff) >= margin), Holm within the claim",
    }[claim.kind]


def _pair_result(a: str, b: str, d: np.ndarray, margin: float) -> dict[str, object]:
    p = max(_greater(d, -margin), _greater(-d, -margin))  # TOST: both one-sided tests must reject
    p_out = min(1.0, 2 * min(_greater(d, margin), _greater(-d, margin)))  # |diff| > margin, either side
    return {"arms": [a, b], "n": int(d.size), "diff": float(d.mean()), "ci95": ci95(d), "p": p, "p_against": p_out}


def _equal(out: ClaimResult, claim: Claim, arms: dict[str, ArmResult], margin: float) -> ClaimResult:
    pairs = []
    for a, b in itertools.combinations(claim.arms, 2):
        _, d = paired_differences(arms.get(a), arms.get(b), claim.metric)
        if d.size < 2:
            return out
        pairs.append(_pair_result(a, b, d, margin))
    adjusted = holm([float(x["p"]) for x in pairs])  # type: ignore[arg-type]
    for x, q in zip(pairs, adjusted, strict=True):
        x["p_holm_within"] = q
    worst = max(range(len(pairs)), key=lambda i: adjusted[i])
    out.pairs, out.p, out.n_pairs = pairs, adjusted[worst], min(int(x["n"]) for x in pairs)  # type: ignore[call-overload]
    out.p_against = min(1.0, len(pairs) * min(float(x["p_against"]) for x in pairs))  # type: ignore[arg-type]
    out.diff, out.ci95 = float(pairs[worst]["diff"]), list(pairs[worst]["ci95"])  # type: ignore[arg-type, call-overload]
    return out


def evaluate_claim(claim: Claim, arms: dict[str, ArmResult], alpha: float = ALPHA) -> ClaimResult:
    """Test one claim on ``claim.metric`` (final | auc | early | best), paired by seed.

    Fills ``test``, ``p``, ``p_against``, ``ci95`` (AP percent), ``margin`` and a verdict as if the claim
    were alone; :func:`judge_family` sets ``p_adjusted`` and the final verdict over the whole family.
    Fewer than 2 paired seeds: test "none", verdict "not resolved".
    """
    means = {
        a: float(np.mean([r.value(claim.metric) for r in arms[a].runs])) if a in arms and arms[a].runs else None
        for a in claim.arms
    }
    margin = claim.margin if claim.kind in ("not_worse", "equal") else None
    out = ClaimResult(claim.text, claim.kind, claim.metric, list(claim.arms), means, "not resolved", margin=margin)
    out.test = "none (fewer than 2 paired seeds)"
    if claim.kind == "equal":
        _equal(out, claim, arms, float(claim.margin))
    else:
        _, d = paired_differences(arms.get(claim.arms[0]), arms.get(claim.arms[1]), claim.metric)
        if d.size >= 2:
            out.p = _greater(d, -float(margin) if margin is not None else 0.0)
            out.p_against = _greater(-d, 0.0)
            out.diff, out.ci95, out.n_pairs = float(d.mean()), ci95(d), int(d.size)
    if out.p is not None:
        out.test = test_name(claim, out.n_pairs)
    judge_family([out], alpha)
    return out


def mark_interim(result: ClaimResult, arms: dict[str, ArmResult]) -> ClaimResult:
    """Mark ``result`` interim while its arms share fewer finished seeds than the fewest any of them
    plans (an arm planned for 3 seeds beside one planned for 8 is decided at 3 pairs)."""
    present = [arms[a] for a in result.arms if a in arms]
    planned = min((x.seeds_planned for x in present), default=0)
    common = set.intersection(*({r.seed for r in x.runs} for x in present)) if present else set()
    if len(present) < len(result.arms) or len(common) < planned:
        result.interim = f"{len(common)} of {planned} planned seeds"
    return result


def judge_family(claims: list[ClaimResult], alpha: float = ALPHA) -> None:
    """Holm-adjust the p of every testable claim in ``claims`` together and set each verdict (an interim
    claim, :func:`mark_interim`, is adjusted with the others and reads "not resolved")."""
    tested = [c for c in claims if c.p is not None]
    for c, q in zip(tested, holm([float(c.p) for c in tested]), strict=True):  # type: ignore[arg-type]
        c.p_adjusted = q
        against = min(1.0, len(tested) * float(c.p_against if c.p_against is not None else 1.0))
        c.verdict = "holds" if q < alpha else "does not hold" if against < alpha else "not resolved"
        if c.interim:
            c.verdict = "not resolved"
    for c in claims:
        if c.p is None:
            c.p_adjusted, c.verdict = None, "not resolved"
