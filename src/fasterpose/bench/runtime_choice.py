"""Which exact (fp32) CPU runtime ``runtime="auto"`` should mean, from an interleaved latency run.

The input is the ``rows`` of :func:`fasterpose.bench.latency.run_benchmark` timed on a trained
model (random weights can run into denormals and misrank runtimes). Per batch size the runtime with
the lower median wins; overall, the runtime with the lower geometric mean of its medians relative
to the best median of each batch. A lead under ``tolerance`` is a tie, and a tie keeps the current
default (changing it would follow noise).
"""

from __future__ import annotations

import math
from typing import Any

CANDIDATES = ("onnxruntime", "openvino")


def choose_cpu_runtime(rows: list[dict[str, Any]], current: str, tolerance: float = 0.03) -> dict[str, Any]:
    """``{"per_batch": {batch: {...}}, "auto": runtime, "lead": fraction, "tie": bool}`` from fp32 rows."""
    medians: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["precision"] == "fp32" and r["runtime"] in CANDIDATES:
            medians.setdefault(int(r["batch"]), {})[r["runtime"]] = float(r["ms_median"])
    per_batch: dict[int, dict[str, Any]] = {}
    score = dict.fromkeys(CANDIDATES, 0.0)
    complete = [b for b, m in sorted(medians.items()) if set(m) == set(CANDIDATES)]
    if not complete:
        raise ValueError(f"need fp32 rows of both {CANDIDATES} at one batch size at least")
    for b in complete:
        m = medians[b]
        best = min(m.values())
        winner = min(m, key=lambda k: m[k])
        per_batch[b] = {**m, "faster": winner, "lead": round(max(m.values()) / best - 1.0, 4)}
        for k in CANDIDATES:
            score[k] += math.log(m[k] / best) / len(complete)
    ranked = sorted(CANDIDATES, key=lambda k: score[k])
    lead = math.exp(score[ranked[1]] - score[ranked[0]]) - 1.0
    tie = lead < tolerance
    return {
        "per_batch": per_batch,
        "auto": current if tie else ranked[0],
        "fastest": ranked[0],
        "lead": round(lead, 4),
        "tie": tie,
        "tolerance": tolerance,
        "current_default": current,
    }
