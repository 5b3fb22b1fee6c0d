"""Benchmark the top-down training data pipeline on one core; prints JSON.

Measures ``TopDownDataset[i]`` at 256x192 with the full COCO augmentation (half-body, scale,
rotation, flip), the affine crop, ImageNet normalisation and MSRA target encoding, JPEG decode
included, on the real COCO images in ``../shared/data/coco_mini/train2017``. Single-threaded:
``cv2.setNumThreads(1)`` and ``torch.set_num_threads(1)``, one process. Per-core rates divide by
the process CPU time, so they stay meaningful on a shared machine; wall-clock rates are reported
beside them. When ``fasterpose.data.synthpose`` is importable it also times SynthPose generation
(images/s/core) and the same training pipeline on the generated images.

    python scripts/bench_data.py --samples 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.codec import HeatmapCodec
from fasterpose.config import AugmentConfig
from fasterpose.data import TopDownDataset, parse_coco_keypoints
from fasterpose.data.image_io import read_image_bgr
from fasterpose.keypoints import COCO_17

TARGET_PER_CORE = 200.0  # training samples/s/core the pipeline must sustain
DEFAULT_COCO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_mini"


def timed(fn: Any, count: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` wall and CPU rates of calling ``fn(i)`` for i in range(count)."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(count):
            fn(i)
        best_wall = min(best_wall, time.perf_counter() - wall0)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
    return {"per_second_wall": count / best_wall, "per_cpu_second": count / max(best_cpu, 1e-9)}


def bench_pipeline(dataset: TopDownDataset, samples: int, repeats: int) -> dict[str, Any]:
    order = np.random.default_rng(0).permutation(np.resize(np.arange(len(dataset)), samples))
    for i in range(min(20, samples)):  # warm caches and lazy imports
        dataset[int(order[i])]
    full = timed(lambda i: dataset[int(order[i])], samples, repeats)
    paths = [dataset.records[int(i)].image_path for i in order]
    decode = timed(lambda i: read_image_bgr(paths[i]), samples, repeats)
    sizes = np.array([read_image_bgr(p).shape[:2] for p in sorted(set(paths))])
    return {
        "people": len(dataset),
        "images": len(set(paths)),
        "mean_image_hw": [round(float(v), 1) for v in sizes.mean(axis=0)],
        "samples_timed": samples,
        "samples_per_second_per_core": round(full["per_cpu_second"], 1),
        "samples_per_second_wall": round(full["per_second_wall"], 1),
        "decode_only_per_second_per_core": round(decode["per_cpu_second"], 1),
        "decode_share_of_time": round(full["per_cpu_second"] / decode["per_cpu_second"], 3),
    }


def make_dataset(ann: Path, images: Path) -> TopDownDataset:
    records = parse_coco_keypoints(ann, images)
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0, encoding="msra")
    return TopDownDataset(records, COCO_17, codec, augment=AugmentConfig(), seed=0)


def bench_synthpose(num_images: int, samples: int, repeats: int) -> dict[str, Any]:
    try:
        from fasterpose.data.synthpose import generate
    except ImportError as exc:
        return {"skipped": f"fasterpose.data.synthpose not importable ({exc})"}
    with tempfile.TemporaryDirectory() as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        generate(tmp, num_images, 0, 0)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        root = Path(tmp)
        pipeline = bench_pipeline(
            make_dataset(root / "annotations" / "person_keypoints_train.json", root / "train"), samples, repeats
        )
    return {
        "generated_images": num_images,
        "images_per_second_per_core": round(num_images / max(cpu, 1e-9), 1),
        "images_per_second_wall": round(num_images / wall, 1),
        "training_pipeline": pipeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", type=Path, default=DEFAULT_COCO, help="coco_mini folder (train2017 split used)")
    parser.add_argument("--samples", type=int, default=600, help="training samples per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--synthpose-images", type=int, default=100, help="SynthPose images to generate (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    prov = provenance()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    result: dict[str, Any] = {
        "benchmark": "top-down training data pipeline, 256x192, full augmentation + MSRA encoding, decode included",
        "provenance": prov,
        "threads": {"cv2": cv2.getNumThreads(), "torch": torch.get_num_threads()},
        "target_samples_per_second_per_core": TARGET_PER_CORE,
    }
    ann = args.coco / "annotations" / "person_keypoints_train2017_mini.json"
    if ann.is_file():
        coco = bench_pipeline(make_dataset(ann, args.coco / "train2017"), args.samples, args.repeats)
        coco["meets_target"] = coco["samples_per_second_per_core"] >= TARGET_PER_CORE
        result["coco_mini_train"] = coco
    else:
        result["coco_mini_train"] = {"skipped": f"{ann} not found"}
    if args.synthpose_images > 0:
        result["synthpose"] = bench_synthpose(args.synthpose_images, args.samples, args.repeats)
    finish(prov)
    emit(result, args.out)


if __name__ == "__main__":
    main()
