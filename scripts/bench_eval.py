"""Benchmark the evaluation hot spots; prints one JSON object.

    python scripts/bench_eval.py [--people 10 100 300] [--repeats 50]

``oks_nms_ms``: median wall time of :func:`fasterpose.evaluation.oks_nms.oks_nms` for N people in
one image (17 COCO joints, poses in clusters of near-duplicates, as a detector produces them).
``oks_nms_ms_mostly_distinct``: the same with (nearly) no duplicates, the slowest case.
Target: 100 people in under 5 ms. ``postprocess_ms_per_image``: rescoring + OKS-NMS through
:func:`fasterpose.pipeline.topdown.postprocess` for the same image. With ``--baseline REV``,
``baseline`` gives ``oks_nms`` as it was at git revision REV against the current one on the same
poses, alternating old and new run by run (medians and old / new ratios; the kept poses must agree):

    python scripts/bench_eval.py --baseline 50f3b17 --out docs/bench/eval_nms_amx.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.evaluation.oks_nms import oks_nms
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.keypoints import COCO_17
from fasterpose.pipeline.topdown import postprocess

TARGET_MS_100 = 5.0


def crowd(n: int, seed: int = 0, per_cluster: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 17, 3) poses in n // per_cluster clusters, scores (n,), areas (n,)."""
    rng = np.random.default_rng(seed)
    clusters = max(1, n // per_cluster)
    base = rng.uniform(0, 600, size=(clusters, 17, 2))
    xy = base[rng.integers(0, clusters, size=n)] + rng.normal(0, 3.0, size=(n, 17, 2))
    kpts = np.concatenate([xy, rng.uniform(0, 1, size=(n, 17, 1))], axis=2)
    return kpts, rng.uniform(0, 1, size=n), rng.uniform(2000, 40000, size=n)


def median_ms(repeats: int, fn: Callable[..., object], *args: object) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--baseline", default=None, help="git revision whose oks_nms is timed against this one")
    args = parser.parse_args()
    prov = provenance()
    sigmas = np.asarray(COCO_17.sigmas)
    nms_ms: dict[str, float] = {}
    post_ms: dict[str, float] = {}
    kept: dict[str, int] = {}
    worst_ms: dict[str, float] = {}
    for n in args.people:
        distinct = crowd(n, per_cluster=1)  # worst case: few duplicates, one row per kept pose
        worst_ms[str(n)] = round(median_ms(args.repeats, oks_nms, *distinct, sigmas, 0.9), 4)
        kpts, scores, areas = crowd(n)
        oks_nms(kpts, scores, areas, sigmas, 0.9)  # warm-up
        nms_ms[str(n)] = round(median_ms(args.repeats, oks_nms, kpts, scores, areas, sigmas, 0.9), 4)
        kept[str(n)] = int(len(oks_nms(kpts, scores, areas, sigmas, 0.9)))
        preds = [
            PosePrediction(0, kpts[i].astype(np.float32), 1.0, float(scores[i]), area=float(areas[i])) for i in range(n)
        ]
        post_ms[str(n)] = round(median_ms(args.repeats, postprocess, preds, COCO_17), 4)
    result = {
        "benchmark": "evaluation",
        "provenance": finish(prov),
        "repeats": args.repeats,
        "oks_nms_ms": nms_ms,
        "oks_nms_kept": kept,
        "oks_nms_ms_mostly_distinct": worst_ms,
        "postprocess_ms_per_image": post_ms,
        "target_ms_100_people": TARGET_MS_100,
        "meets_target": max(nms_ms["100"], worst_ms["100"]) < TARGET_MS_100 if "100" in nms_ms else None,
    }
    if args.baseline:
        result["baseline"] = against_baseline(args.baseline, args.people, args.repeats, sigmas)
    emit(result, args.out)


def against_baseline(rev: str, people: list[int], repeats: int, sigmas: np.ndarray) -> dict[str, object]:
    """Old and new oks_nms on the same poses, alternating run by run: median ms and old / new."""
    from fasterpose.bench.baseline import import_baseline

    old = import_baseline(rev, "evaluation.oks_nms").oks_nms
    out: dict[str, object] = {"revision": rev}
    for kind, per in (("clustered", 4), ("mostly_distinct", 1)):
        for n in people:
            case = crowd(n, per_cluster=per)
            if old(*case, sigmas, 0.9).tolist() != oks_nms(*case, sigmas, 0.9).tolist():
                raise SystemExit(f"{kind} {n}: the kept poses differ from {rev}'s")
            times: dict[str, list[float]] = {"old": [], "new": []}
            for i in range(repeats):
                for name, fn in (("old", old), ("new", oks_nms)) if i % 2 == 0 else (("new", oks_nms), ("old", old)):
                    start = time.perf_counter()
                    fn(*case, sigmas, 0.9)
                    times[name].append((time.perf_counter() - start) * 1e3)
            o, w = statistics.median(times["old"]), statistics.median(times["new"])
            out[f"{kind}_{n}"] = {"old_ms": round(o, 4), "new_ms": round(w, 4), "old_over_new": round(o / w, 3)}
    return out


if __name__ == "__main__":
    main()
