"""Benchmark SynthPose generation speed on one core; prints JSON.

Runs ``generate`` (render + JPEG encode + write + JSON) single-threaded (``cv2.setNumThreads(1)``,
one process) into a temporary folder. ``images_per_second_per_core`` uses the process CPU time,
so it stays meaningful on a shared machine; ``images_per_second_wall`` is the wall-clock rate.

With ``--baseline REV`` the generator as it was at git revision REV (extracted beside this tree by
:func:`fasterpose.bench.baseline.import_baseline`) and the current one run in alternating fresh
processes (:func:`fasterpose.bench.baseline.alternate`: the allocator setting ``generate`` makes is
process-wide), so that load drift hits both; the JSON gives the per-round CPU-time ratios old / new,
their median, and whether both wrote the same bytes (SHA-256 over every file).

    python scripts/bench_synthpose.py --images 400
    python scripts/bench_synthpose.py --images 200 --rounds 6 --baseline de0debf
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from fasterpose.bench.provenance import emit, finish, provenance

TARGET_PER_CORE = 100.0  # SynthPose images/s/core


def tree_digest(root: str | Path) -> str:
    """SHA-256 over the relative path and bytes of every file under ``root``, in sorted order."""
    h = hashlib.sha256()
    base = Path(root)
    for p in sorted(base.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def timed_generate(gen: Callable[..., dict[str, Any]], images: int, seed: int) -> dict[str, Any]:
    """CPU and wall seconds, page faults, statistics and output digest of one ``gen`` run into a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="synthpose_bench_") as out:
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0, w0 = time.process_time(), time.perf_counter()
        stats = gen(out, images, 0, seed=seed)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
        return {"cpu_s": cpu, "wall_s": wall, "faults": faults, "stats": stats, "sha256": tree_digest(out)}


def load_generate(variant: str, baseline: str | None) -> Callable[..., dict[str, Any]]:
    """``generate`` of this tree (``new``) or of git revision ``baseline`` (``old``)."""
    if variant == "old":
        from fasterpose.bench.baseline import import_baseline

        return import_baseline(str(baseline), "data.synthpose").generate  # type: ignore[no-any-return]
    from fasterpose.data.synthpose import generate

    return generate


def child(args: argparse.Namespace) -> None:
    """One timed run of one variant in this fresh process; prints one JSON line."""
    cv2.setNumThreads(1)
    gen = load_generate(args.child, args.baseline)
    gen(tempfile.mkdtemp(prefix="synthpose_bench_"), 8, 0, seed=args.seed)  # warm-up
    run = timed_generate(gen, args.images, args.seed)
    print(json.dumps({k: run[k] for k in ("cpu_s", "wall_s", "faults", "sha256")}))


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Old and new in alternating fresh processes: rates, per-round ratios, same bytes or not."""
    from fasterpose.bench.baseline import alternate, ratio_summary

    def command(variant: str) -> list[str]:
        return [sys.executable, __file__, "--child", variant, "--baseline", args.baseline]  # type: ignore[list-item]

    base = ["--images", str(args.images), "--seed", str(args.seed)]
    runs = alternate(lambda v: command(v) + base, args.rounds)
    cpu = {v: [r["cpu_s"] for r in runs[v]] for v in runs}
    return {
        "revision": args.baseline,
        "rounds": args.rounds,
        "images_per_round": args.images,
        "old_images_per_second_per_core": round(args.images / min(cpu["old"]), 1),
        "new_images_per_second_per_core": round(args.images / min(cpu["new"]), 1),
        "old_page_faults_per_image": round(sum(r["faults"] for r in runs["old"]) / len(runs["old"]) / args.images, 1),
        "new_page_faults_per_image": round(sum(r["faults"] for r in runs["new"]) / len(runs["new"]) / args.images, 1),
        **{k.replace("ratio", "cpu_ratio", 1): v for k, v in ratio_summary(cpu["old"], cpu["new"]).items()},
        "same_bytes": len({r["sha256"] for r in runs["old"] + runs["new"]}) == 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate (train split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--baseline", default=None, help="git revision to compare with (old / new)")
    parser.add_argument("--rounds", type=int, default=4, help="old/new pairs of fresh processes (--baseline)")
    parser.add_argument("--child", choices=("old", "new"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    prov = provenance()
    cv2.setNumThreads(1)
    gen = load_generate("new", None)
    gen(tempfile.mkdtemp(prefix="synthpose_bench_"), 8, 0, seed=args.seed)  # warm-up
    runs = [timed_generate(gen, args.images, args.seed) for _ in range(args.repeats)]
    best_cpu, best_wall = min(r["cpu_s"] for r in runs), min(r["wall_s"] for r in runs)
    train = runs[-1]["stats"]["train"]
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
        "output_sha256": runs[-1]["sha256"],
    }
    if args.baseline:
        report["baseline"] = compare(args)
    report["provenance"] = finish(prov)
    emit(report, args.out)


if __name__ == "__main__":
    main()
