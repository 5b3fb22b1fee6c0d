"""Benchmark SynthPose generation speed on one core; prints JSON.

Runs ``generate`` (render + JPEG encode + write + JSON) single-threaded (``cv2.setNumThreads(1)``,
one process) into a temporary folder. ``images_per_second_per_core`` uses the process CPU time,
so it stays meaningful on a shared machine; ``images_per_second_wall`` is the wall-clock rate.

With ``--baseline REV`` the generator as it was at git revision REV (imported beside this tree by
:func:`fasterpose.bench.baseline.import_baseline`) runs interleaved with the current one, round by
round in alternating order, so that load drift hits both; the JSON gives the per-round CPU-time
ratios old / new, their median, and whether both wrote the same bytes (SHA-256 over every file).

    python scripts/bench_synthpose.py --images 400
    python scripts/bench_synthpose.py --images 200 --repeats 6 --baseline 5e1c2f0
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.data.synthpose import generate

TARGET_PER_CORE = 100.0  # SynthPose images/s/core


def tree_digest(root: str | Path) -> str:
    """SHA-256 over the relative path and bytes of every file under ``root``, in sorted order."""
    h = hashlib.sha256()
    base = Path(root)
    for p in sorted(base.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def timed_generate(gen: Callable[..., dict[str, Any]], images: int, seed: int) -> tuple[float, float, dict, str]:
    """(CPU seconds, wall seconds, statistics, output digest) of one ``gen`` run into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="synthpose_bench_") as out:
        c0, w0 = time.process_time(), time.perf_counter()
        stats = gen(out, images, 0, seed=seed)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        return cpu, wall, stats, tree_digest(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate (train split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--baseline", default=None, help="git revision to time interleaved against (old / new)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    prov = provenance()
    cv2.setNumThreads(1)
    gens: dict[str, Callable[..., dict[str, Any]]] = {"new": generate}
    if args.baseline:
        from fasterpose.bench.baseline import import_baseline

        gens["old"] = import_baseline(args.baseline, "data.synthpose").generate
    for gen in gens.values():
        gen(tempfile.mkdtemp(prefix="synthpose_bench_"), 8, 0, seed=args.seed)  # warm-up
    cpu: dict[str, list[float]] = {k: [] for k in gens}
    wall: dict[str, list[float]] = {k: [] for k in gens}
    digests: dict[str, set[str]] = {k: set() for k in gens}
    stats: dict[str, Any] = {}
    for r in range(args.repeats):
        for name in sorted(gens, reverse=bool(r % 2)):  # alternate which runs first
            c, w, s, d = timed_generate(gens[name], args.images, args.seed)
            cpu[name].append(c)
            wall[name].append(w)
            digests[name].add(d)
            stats = s if name == "new" else stats
    train = stats["train"]
    best_cpu, best_wall = min(cpu["new"]), min(wall["new"])
    report: dict[str, Any] = {
        "images_per_second_per_core": round(args.images / best_cpu, 1),
        "images_per_second_wall": round(args.images / best_wall, 1),
        "ms_per_image_cpu": round(1000 * best_cpu / args.images, 2),
        "target_images_per_second_per_core": TARGET_PER_CORE,
        "meets_target": args.images / best_cpu >= TARGET_PER_CORE,
        "images": args.images,
        "people_per_image": round(train["people"] / max(train["images"], 1), 2),
        "fraction_visible": round(train["fraction_visible"], 3),
        "fraction_occluded": round(train["fraction_occluded"], 3),
        "cv2_threads": cv2.getNumThreads(),
        "output_sha256": sorted(digests["new"]),
    }
    if "old" in gens:
        ratios = [o / n for o, n in zip(cpu["old"], cpu["new"], strict=True)]
        report["baseline"] = {
            "revision": args.baseline,
            "images_per_second_per_core": round(args.images / min(cpu["old"]), 1),
            "ms_per_image_cpu": round(1000 * min(cpu["old"]) / args.images, 2),
            "cpu_ratio_old_over_new_per_round": [round(x, 3) for x in ratios],
            "cpu_ratio_old_over_new_median": round(statistics.median(ratios), 3),
            "same_bytes_as_new": digests["old"] == digests["new"] and len(digests["new"]) == 1,
        }
    report["provenance"] = finish(prov)
    emit(report, args.out)


if __name__ == "__main__":
    main()
