"""Benchmark the top-down training data pipeline on one core; prints JSON.

Measures ``TopDownDataset[i]`` at 256x192 with the full COCO augmentation (half-body, scale,
rotation, flip), the affine crop, ImageNet normalisation and MSRA target encoding, JPEG decode
included, on the real COCO images in ``../shared/data/coco_mini/train2017``, in a process set up
as a DataLoader worker is (:func:`fasterpose.data.workers.keep_freed_memory`, which ``seed_worker``
calls). Single-threaded: ``cv2.setNumThreads(1)`` and ``torch.set_num_threads(1)``, one process.
Per-core rates divide by the process CPU time, so they stay meaningful on a shared machine;
wall-clock rates are reported beside them. When ``fasterpose.data.synthpose`` is importable it
also times SynthPose generation (images/s/core) and the same training pipeline on the generated
images.

``decode_options`` times what a faster decode could give: OpenCV's reduced-size JPEG decoding at
1/2, 1/4 and 1/8 (``IMREAD_REDUCED_COLOR_*``) on the same files, and the fraction of the timed
training crops that sample the image coarsely enough (at least f image pixels per crop pixel) to
be warped from a 1/f decode without upsampling it.

With ``--baseline REV`` the pipeline as it was at git revision REV and the current one run in two
processes, each set up as its revision's loader worker is, timed block by block in alternation
(:func:`fasterpose.bench.baseline.interleave`), and the JSON gives the CPU-time ratios old / new
of the paired blocks, page faults per sample and whether both produced the same bytes (every
image, target and weight of the same sample sequence). The paired blocks'
own rates read below the main figure: hashing each block's output between samples evicts the
caches for old and new alike.

``with_disk_cache`` times the same samples with ``data.image_cache=disk``
(:class:`fasterpose.data.image_cache.DecodedImageCache` in a temporary folder, filled by one pass
first): each image decoded once, read back as a memory map, the rest of the pipeline unchanged.

    python scripts/bench_data.py --samples 1000
    python scripts/bench_data.py --baseline de0debf --blocks 20
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.data.image_io import read_image_bgr
from fasterpose.data.transforms import sample_crop
from fasterpose.data.workers import keep_freed_memory

TARGET_PER_CORE = 200.0  # training samples/s/core the pipeline must sustain
DEFAULT_COCO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_mini"
COCO_ANN = "annotations/person_keypoints_train2017_mini.json"
REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


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


def sample_order(dataset: Any, samples: int) -> np.ndarray:
    return np.random.default_rng(0).permutation(np.resize(np.arange(len(dataset)), samples))


def bench_pipeline(dataset: Any, samples: int, repeats: int) -> dict[str, Any]:
    order = sample_order(dataset, samples)
    for i in range(min(20, samples)):  # warm caches and lazy imports
        dataset[int(order[i])]
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    full = timed(lambda i: dataset[int(order[i])], samples, repeats)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / (samples * repeats)
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
        "page_faults_per_sample": round(faults, 1),
    }


def decode_options(dataset: Any, samples: int, repeats: int) -> dict[str, Any]:
    """Reduced-size decode rates on the timed files and the crops each factor could serve."""
    order = sample_order(dataset, samples)
    paths = [dataset.records[int(i)].image_path for i in order]
    data = {p: np.frombuffer(Path(p).read_bytes(), np.uint8) for p in set(paths)}
    rates = {"1": timed(lambda i: cv2.imdecode(data[paths[i]], cv2.IMREAD_COLOR), samples, repeats)}
    for f, flag in REDUCED.items():
        rates[str(f)] = timed(lambda i, flag=flag: cv2.imdecode(data[paths[i]], flag), samples, repeats)
    rng = np.random.default_rng(0)
    w, h = dataset.codec.input_size
    per_pixel = []  # image pixels per crop pixel of each augmented training crop
    for i in order:
        record = dataset.records[int(i)]
        center, scale = dataset._crops[int(i)]
        params = sample_crop(center, scale, record.keypoints, dataset.augment, dataset.spec.upper_body, w / h, rng)
        per_pixel.append(min(params.scale[0] / w, params.scale[1] / h))
    pp = np.array(per_pixel)
    return {
        "decode_per_second_per_core_by_factor": {f: round(r["per_cpu_second"], 1) for f, r in rates.items()},
        "fraction_of_crops_at_least_f_pixels_per_crop_pixel": {
            f: round(float((pp >= int(f)).mean()), 3) for f in rates
        },
        "median_image_pixels_per_crop_pixel": round(float(np.median(pp)), 3),
    }


def bench_disk_cache(dataset: Any, samples: int, repeats: int) -> dict[str, Any]:
    """The pipeline with a warm decoded-image cache on disk (the page cache holds it after one pass)."""
    from fasterpose.data.image_cache import DecodedImageCache

    with tempfile.TemporaryDirectory() as tmp:
        dataset.image_cache = DecodedImageCache(tmp)
        try:
            for r in sorted({r.image_path for r in dataset.records}):
                dataset.image_cache.read_bgr(r)
            out = bench_pipeline(dataset, samples, repeats)
            size = sum(f.stat().st_size for f in Path(tmp).rglob("*.npy"))
        finally:
            dataset.image_cache = None
    return {
        "samples_per_second_per_core": out["samples_per_second_per_core"],
        "samples_per_second_wall": out["samples_per_second_wall"],
        "meets_target": out["samples_per_second_per_core"] >= TARGET_PER_CORE,
        "cache_bytes_per_image": round(size / max(out["images"], 1)),
    }


def make_dataset(ann: Path, images: Path, package: str = "fasterpose") -> Any:
    """The benchmark's training dataset, built from ``package`` (this tree, or a baseline's copy)."""
    data = importlib.import_module(f"{package}.data")
    codec = importlib.import_module(f"{package}.codec").HeatmapCodec((192, 256), (48, 64), sigma=2.0, encoding="msra")
    augment = importlib.import_module(f"{package}.config").AugmentConfig()
    coco17 = importlib.import_module(f"{package}.keypoints").COCO_17
    return data.TopDownDataset(data.parse_coco_keypoints(ann, images), coco17, codec, augment=augment, seed=0)


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


def child(args: argparse.Namespace) -> None:
    """One variant as an :func:`~fasterpose.bench.baseline.interleave` child, set up as its loader worker is."""
    from fasterpose.bench.baseline import import_baseline, serve_blocks

    package = import_baseline(args.baseline).__name__ if args.child == "old" else "fasterpose"

    def setup() -> dict[str, Any]:
        workers = importlib.import_module(f"{package}.data.workers")
        if hasattr(workers, "keep_freed_memory"):
            workers.keep_freed_memory()
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        dataset = make_dataset(args.coco / COCO_ANN, args.coco / "train2017", package)
        order = sample_order(dataset, 20 * len(dataset))
        for i in range(20):
            dataset[int(order[-1 - i])]
        state = {"dataset": dataset, "order": order, "next": 0, "sha256": hashlib.sha256(), "samples": 0}
        state["faults0"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return state

    def block(state: dict[str, Any]) -> float:
        cpu = 0.0
        for _ in range(args.block):
            index = int(state["order"][state["next"] % len(state["order"])])
            state["next"] += 1
            c0 = time.process_time()
            item = state["dataset"][index]
            cpu += time.process_time() - c0
            for key in ("image", "target", "target_weight"):
                state["sha256"].update(item[key].numpy().tobytes())
        state["samples"] += args.block
        return cpu

    def end(state: dict[str, Any]) -> dict[str, Any]:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - state["faults0"]
        return {"sha256": state["sha256"].hexdigest(), "faults_per_sample": faults / max(state["samples"], 1)}

    serve_blocks(setup, block, end)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Old and new in two processes timed block by block in alternation: rates, ratios, same bytes or not."""
    from fasterpose.bench.baseline import compare_old_new

    opts = ["--coco", str(args.coco), "--block", str(args.block)]
    return compare_old_new(__file__, opts, args.blocks, args.block, "sample", str(args.baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", type=Path, default=DEFAULT_COCO, help="coco_mini folder (train2017 split used)")
    parser.add_argument("--samples", type=int, default=600, help="training samples per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    parser.add_argument("--synthpose-images", type=int, default=100, help="SynthPose images to generate (0: skip)")
    parser.add_argument("--baseline", default=None, help="git revision to compare with (old / new)")
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks per variant (--baseline)")
    parser.add_argument("--block", type=int, default=50, help="training samples per block (--baseline)")
    parser.add_argument("--child", choices=("old", "new"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    prov = provenance()
    keep_freed_memory()  # as seed_worker does in every DataLoader worker
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    result: dict[str, Any] = {
        "benchmark": "top-down training data pipeline, 256x192, full augmentation + MSRA encoding, decode included",
        "provenance": prov,
        "threads": {"cv2": cv2.getNumThreads(), "torch": torch.get_num_threads()},
        "target_samples_per_second_per_core": TARGET_PER_CORE,
    }
    ann = args.coco / COCO_ANN
    if ann.is_file():
        dataset = make_dataset(ann, args.coco / "train2017")
        coco = bench_pipeline(dataset, args.samples, args.repeats)
        coco["meets_target"] = coco["samples_per_second_per_core"] >= TARGET_PER_CORE
        coco["decode_options"] = decode_options(dataset, args.samples, args.repeats)
        coco["with_disk_cache"] = bench_disk_cache(dataset, args.samples, args.repeats)
        result["coco_mini_train"] = coco
        if args.baseline:
            result["baseline"] = compare(args)
    else:
        result["coco_mini_train"] = {"skipped": f"{ann} not found"}
    if args.synthpose_images > 0:
        result["synthpose"] = bench_synthpose(args.synthpose_images, args.samples, args.repeats)
    finish(prov)
    emit(result, args.out)


if __name__ == "__main__":
    main()
