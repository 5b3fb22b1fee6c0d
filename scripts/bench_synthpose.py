"""Benchmark SynthPose generation speed on one core; prints JSON.

Runs ``generate`` (render + JPEG encode + write + JSON) single-threaded (``cv2.setNumThreads(1)``,
one process) into a temporary folder. ``images_per_second_per_core`` uses the process CPU time,
so it stays meaningful on a shared machine; ``images_per_second_wall`` is the wall-clock rate.

With ``--baseline REV`` the generator as it was at git revision REV (extracted beside this tree by
:func:`fasterpose.bench.baseline.import_baseline`) and the current one run in two processes (the
allocator setting ``generate`` makes is process-wide), timed block by block in alternation
(:func:`fasterpose.bench.baseline.interleave`) so that load drift hits both; the JSON gives the
CPU-time ratios old / new of the paired blocks and whether both wrote the same bytes (SHA-256
over every file of every block). The paired blocks'
own rates read below the main figure: hashing each block's output between samples evicts the
caches for old and new alike.

    python scripts/bench_synthpose.py --images 400
    python scripts/bench_synthpose.py --baseline de0debf --blocks 20
"""

from __future__ import annotations

import argparse
import hashlib
import resource
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
    """One variant as an :func:`~fasterpose.bench.baseline.interleave` child: block ``b`` generates
    ``--block`` images with seed ``b``; the closing digest covers every block's files."""
    from fasterpose.bench.baseline import serve_blocks

    def setup() -> dict[str, Any]:
        cv2.setNumThreads(1)
        gen = load_generate(args.child, args.baseline)
        gen(tempfile.mkdtemp(prefix="synthpose_bench_"), 8, 0, seed=args.seed)  # warm-up
        state = {"gen": gen, "blocks": 0, "sha256": hashlib.sha256(), "images": 0}
        state["faults0"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return state

    def block(state: dict[str, Any]) -> float:
        run = timed_generate(state["gen"], args.block, args.seed + state["blocks"])
        state["blocks"] += 1
        state["images"] += args.block
        state["sha256"].update(run["sha256"].encode())
        return float(run["cpu_s"])

    def end(state: dict[str, Any]) -> dict[str, Any]:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - state["faults0"]
        return {"sha256": state["sha256"].hexdigest(), "faults_per_image": faults / max(state["images"], 1)}

    serve_blocks(setup, block, end)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Old and new in two processes timed block by block in alternation: rates, ratios, same bytes or not."""
    from fasterpose.bench.baseline import compare_old_new

    opts = ["--block", str(args.block), "--seed", str(args.seed)]
    return compare_old_new(__file__, opts, args.blocks, args.block, "image", str(args.baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate (train split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--baseline", default=None, help="git revision to compare with (old / new)")
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks per variant (--baseline)")
    parser.add_argument("--block", type=int, default=25, help="images per block (--baseline)")
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
