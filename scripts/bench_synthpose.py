"""Benchmark SynthPose generation speed on one core; prints JSON.

Runs ``generate`` (render + JPEG encode + write + JSON) single-threaded (``cv2.setNumThreads(1)``,
one process) into a temporary folder. ``images_per_second_per_core`` uses the process CPU time,
so it stays meaningful on a shared machine; ``images_per_second_wall`` is the wall-clock rate.

    python scripts/bench_synthpose.py --images 400
"""

from __future__ import annotations

import argparse
import tempfile
import time

import cv2

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.data.synthpose import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400, help="images to generate (train split)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    prov = provenance()
    cv2.setNumThreads(1)
    generate(tempfile.mkdtemp(prefix="synthpose_bench_"), 8, 0, seed=args.seed)  # warm-up
    best_cpu, best_wall, stats = float("inf"), float("inf"), {}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="synthpose_bench_") as out:
            c0, w0 = time.process_time(), time.perf_counter()
            stats = generate(out, args.images, 0, seed=args.seed)
            best_cpu = min(best_cpu, time.process_time() - c0)
            best_wall = min(best_wall, time.perf_counter() - w0)
    train = stats["train"]
    emit(
        {
            "images_per_second_per_core": round(args.images / best_cpu, 1),
            "images_per_second_wall": round(args.images / best_wall, 1),
            "ms_per_image_cpu": round(1000 * best_cpu / args.images, 2),
            "images": args.images,
            "people_per_image": round(train["people"] / max(train["images"], 1), 2),
            "fraction_visible": round(train["fraction_visible"], 3),
            "fraction_occluded": round(train["fraction_occluded"], 3),
            "cv2_threads": cv2.getNumThreads(),
            "provenance": finish(prov),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
