"""SynthPose, the built-in pose dataset: procedurally drawn people written as a COCO-format dataset.

``generate(out_dir, num_train, num_val, seed, **knobs)`` writes::

    out_dir/annotations/person_keypoints_train.json
    out_dir/annotations/person_keypoints_val.json
    out_dir/train/000000000001.jpg ...
    out_dir/val/000010000001.jpg ...

Every image is a pure function of ``(seed, split, index, knobs)``: same arguments, same bytes
(JSON with sorted keys and fixed separators, JPEG through ``cv2.imencode`` at a fixed quality).
The drawing lives in ``body`` (skeleton), ``draw`` (people), ``scene``
(backgrounds, occluders) and ``render`` (one image); knobs are :class:`SynthPoseKnobs`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fasterpose.atomic import atomic_write_text
from fasterpose.data.synthpose.render import SPLITS, SynthPoseKnobs, SynthSample, render_sample
from fasterpose.data.workers import keep_freed_memory
from fasterpose.keypoints import COCO_17
from fasterpose.visualize import draw_poses

__all__ = ["SynthPoseKnobs", "category", "generate", "image_id_for", "preview", "render_sample"]

FORMAT_VERSION = "1.0"
_ID_OFFSET = {"train": 0, "val": 10_000_000}


def image_id_for(split: str, index: int) -> int:
    """COCO image id of image ``index`` of ``split`` (train 1.., val 10000001..; unique across splits)."""
    return _ID_OFFSET[split] + index + 1


def category() -> dict[str, Any]:
    """The COCO person category with the 17 keypoint names and the 1-based COCO skeleton."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_17.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_17.skeleton],
    }


def _r(v: float) -> float:
    return round(float(v), 2)


def _render_one(args: tuple[int, str, int, SynthPoseKnobs, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Render, encode and write one image; returns its COCO image entry and annotations (ids unset)."""
    seed, split, index, knobs, folder = args
    sample = render_sample(seed, split, index, knobs)
    image_id = image_id_for(split, index)
    file_name = f"{image_id:012d}.jpg"
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, knobs.jpeg_quality])
    if not ok:
        raise RuntimeError(f"SynthPose: JPEG encoding failed for {file_name}")
    (Path(folder) / file_name).write_bytes(buf.data)
    h, w = sample.image.shape[:2]
    entry = {"id": image_id, "file_name": file_name, "width": w, "height": h}
    return entry, [_annotation(sample, p, image_id) for p in range(len(sample.people))]


def _annotation(sample: SynthSample, i: int, image_id: int) -> dict[str, Any]:
    p = sample.people[i]
    kps = p.keypoints
    flat: list[float | int] = []
    for x, y, v in kps.tolist():
        flat += [round(x, 2), round(y, 2), int(v)]
    return {
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "keypoints": flat,
        "num_keypoints": int(np.count_nonzero(kps[:, 2] > 0)),
        "bbox": [_r(v) for v in p.bbox],
        "area": _r(p.area),
        "segmentation": [[round(float(v), 2) for v in poly] for poly in p.segmentation],
    }


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n", "annotations")


def generate(
    out_dir: str | Path, num_train: int, num_val: int, seed: int, workers: int = 1, **knobs: Any
) -> dict[str, Any]:
    """Write a SynthPose dataset under ``out_dir`` and return statistics.

    Args:
        out_dir: dataset root (created; existing files of the same names are overwritten).
        num_train, num_val: images per split (>= 0).
        seed: dataset seed; image ``i`` of a split is rendered from ``(seed, split, i)``.
        workers: processes to render with (the output does not depend on it). Each process that renders
            keeps freed memory for reuse (:func:`fasterpose.data.workers.keep_freed_memory`): about
            350 page faults and 1 ms of system time less per image.
        **knobs: :class:`SynthPoseKnobs` fields (e.g. ``occluder_prob=0.5, max_people=2``).

    Returns:
        dict with per-split counts (images, people, labelled/visible/occluded keypoints,
        people-per-image histogram), ``seconds`` and ``images_per_second``.
    """
    if num_train < 0 or num_val < 0:
        raise ValueError(f"SynthPose: image counts must be >= 0, got train={num_train}, val={num_val}")
    k = SynthPoseKnobs.from_kwargs(**knobs)
    if workers <= 1:
        keep_freed_memory()
    root = Path(out_dir)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"seed": int(seed), "knobs": asdict(k)}
    start = time.perf_counter()
    for split, count in (("train", num_train), ("val", num_val)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(int(seed), split, i, k, str(folder)) for i in range(count)]
        if workers > 1 and count > 1:
            with ProcessPoolExecutor(max_workers=workers, initializer=keep_freed_memory) as pool:
                results = list(pool.map(_render_one, jobs, chunksize=max(1, min(64, count // (4 * workers)))))
        else:
            results = [_render_one(j) for j in jobs]
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for entry, anns in results:
            images.append(entry)
            for ann in anns:
                ann["id"] = len(annotations) + 1 + _ID_OFFSET[split]
                annotations.append(ann)
        coco = {
            "info": {
                "description": "SynthPose: procedurally drawn people, COCO keypoint format",
                "version": FORMAT_VERSION,
                "year": 2021,
                "synthpose": {"seed": int(seed), "split": split, "knobs": asdict(k)},
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": [category()],
        }
        _write_json(root / "annotations" / f"person_keypoints_{split}.json", coco)
        stats[split] = _split_stats(images, annotations)
    stats["seconds"] = time.perf_counter() - start
    total = num_train + num_val
    stats["images_per_second"] = total / stats["seconds"] if stats["seconds"] > 0 else 0.0
    return stats


def _split_stats(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    vis = np.array([a["keypoints"][2::3] for a in annotations], np.int64).reshape(-1)
    per_image = Counter(Counter(a["image_id"] for a in annotations).values())
    labelled = int(np.count_nonzero(vis > 0))
    return {
        "images": len(images),
        "people": len(annotations),
        "people_per_image": {str(n): per_image[n] for n in sorted(per_image)},
        "keypoints_labelled": labelled,
        "fraction_visible": float(np.count_nonzero(vis == 2) / max(labelled, 1)),
        "fraction_occluded": float(np.count_nonzero(vis == 1) / max(labelled, 1)),
        "fraction_outside": float(np.count_nonzero(vis == 0) / max(vis.size, 1)),
    }


def preview(
    dataset_dir: str | Path,
    split: str = "val",
    n: int = 12,
    path: str | Path | None = None,
    cols: int = 4,
    tile: int = 256,
    colors: int | None = None,
) -> np.ndarray:
    """A contact sheet (rows * tile, cols * tile, 3) BGR of the first ``n`` images of a split with
    the annotated skeletons drawn by :func:`fasterpose.visualize.draw_poses` (left orange, right
    blue, centre green; dots are visible keypoints, rings occluded ones); written to ``path`` when
    given, as a palette PNG of ``colors`` colours when set (small files for docs; needs Pillow,
    which matplotlib brings).

    The docs image: ``generate(d, 0, 12, seed=0)`` then
    ``preview(d, "val", 12, "docs/images/synthpose_samples.png", colors=256)``."""
    if split not in SPLITS:
        raise ValueError(f"SynthPose: split must be one of {sorted(SPLITS)}, got {split!r}")
    ann_path = Path(dataset_dir) / "annotations" / f"person_keypoints_{split}.json"
    if not ann_path.is_file():
        raise FileNotFoundError(f"SynthPose preview: {ann_path} not found (run generate first)")
    coco = json.loads(ann_path.read_text())
    by_image: dict[int, list[np.ndarray]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(np.asarray(a["keypoints"], float).reshape(-1, 3))
    if n < 1 or not coco["images"]:
        raise ValueError(f"SynthPose preview: nothing to show (n={n}, {len(coco['images'])} images in {ann_path})")
    tiles = []
    for entry in coco["images"][:n]:
        img = cv2.imread(str(Path(dataset_dir) / split / entry["file_name"]), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"SynthPose preview: cannot read {entry['file_name']} in {split}/")
        f = tile / max(img.shape[:2])
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        people = by_image.get(entry["id"], [])
        if people:
            kps = np.stack(people)
            drawn = draw_poses(
                np.ascontiguousarray(img[..., ::-1]),
                kps[..., :2] * f,
                kps[..., 2],
                COCO_17,
                threshold=0.0,
                hollow=kps[..., 2] == 1,
            )
            img = np.ascontiguousarray(drawn[..., ::-1])
        canvas = np.full((tile, tile, 3), 32, np.uint8)
        canvas[: img.shape[0], : img.shape[1]] = img
        tiles.append(canvas)
    while len(tiles) % cols:
        tiles.append(np.full((tile, tile, 3), 32, np.uint8))
    sheet = np.concatenate([np.concatenate(tiles[r : r + cols], 1) for r in range(0, len(tiles), cols)], 0)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if colors is None:
            cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        else:
            from PIL import Image

            rgb = Image.fromarray(np.ascontiguousarray(sheet[..., ::-1]))
            palette = rgb.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
            rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(str(path), optimize=True)
    return sheet
