"""End-to-end inference overhead: time beyond the model for one image with 16 person boxes.

Times each stage of ``Predictor.__call__`` separately (read + decode JPEG, crop + normalise, the
runtime call, sigmoid + heatmap decoding + back-projection), interleaved over ``--runs`` rounds,
plus the whole call as a cross-check. The target: overhead (everything but the runtime call) at
most 10% of the model time. The image is a real COCO val photo with its detector boxes when
``../shared/data`` is present (padded to 16 boxes by jittering), else a generated 640x480 JPEG.

    python scripts/bench_predict_overhead.py [--config configs/fasterpose_r50_256x192.yaml]
        [--runtime auto] [--boxes 16] [--runs 10] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fasterpose.activation import sigmoid
from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import apply_overrides, load_config
from fasterpose.deploy.predictor import Predictor
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.crops import as_rgb_image, crop_people

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco_mini"


def pick_image(n_boxes: int, tmp: Path) -> tuple[Path, np.ndarray, str]:
    """(image path, boxes (n, 5), description)."""
    rng = np.random.default_rng(0)
    dets_file = COCO / "annotations" / "person_detections_val2017_mini.json"
    if dets_file.is_file():
        dets = [d for d in json.loads(dets_file.read_text()) if d["image_id"] == 196141]
        dets.sort(key=lambda d: -d["score"])
        boxes = np.array([[*d["bbox"], d["score"]] for d in dets], np.float32)
        while len(boxes) < n_boxes:  # jitter existing boxes to reach the count
            extra = boxes[: n_boxes - len(boxes)].copy()
            extra[:, :4] += rng.normal(0, 4, (len(extra), 4)).astype(np.float32)
            boxes = np.concatenate([boxes, extra])
        return COCO / "val2017" / "000000196141.jpg", boxes[:n_boxes], "coco_mini val 196141, detector boxes"
    path = tmp / "generated.jpg"
    cv2.imwrite(str(path), (rng.random((480, 640, 3)) * 255).astype(np.uint8))
    xy = rng.uniform(0, 400, (n_boxes, 2))
    wh = rng.uniform(60, 220, (n_boxes, 2))
    boxes = np.concatenate([xy, wh, np.ones((n_boxes, 1))], axis=1).astype(np.float32)
    return path, boxes, "generated 640x480 JPEG, random boxes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fasterpose_r50_256x192.yaml"))
    parser.add_argument("--set", nargs="*", default=[], help="config overrides")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--boxes", type=int, default=16)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)
    prov = provenance()

    cfg = apply_overrides(load_config(args.config), ["model.pretrained=false", *args.set])
    torch.manual_seed(0)
    predictor = Predictor(PoseModel.from_config(cfg, pretrained=False), cfg, runtime=args.runtime)
    with tempfile.TemporaryDirectory() as tmp:
        path, boxes, source = pick_image(args.boxes, Path(tmp))
        stages: dict[str, list[float]] = {k: [] for k in ("read", "crop", "model", "post", "total")}
        for r in range(args.runs + 1):  # round 0 is warm-up
            t0 = time.perf_counter()
            image = as_rgb_image(path)
            t1 = time.perf_counter()
            crops, centers, scales, xywh, box_scores = crop_people(image, boxes, predictor.input_size)
            t2 = time.perf_counter()
            raw = predictor.runner(crops)
            t3 = time.perf_counter()
            hm = sigmoid(raw) if predictor.pipeline.logits else raw
            kpts = predictor.pipeline.keypoints(hm, centers, scales)
            preds = [PosePrediction(0, kpts[i], float(box_scores[i]), box=xywh[i]) for i in range(len(kpts))]
            t4 = time.perf_counter()
            full = predictor(path, boxes)
            t5 = time.perf_counter()
            assert len(preds) == len(full) == args.boxes
            if r:
                for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    stages[key].append(dt * 1e3)
    med = {k: float(np.median(v)) for k, v in stages.items()}
    overhead = med["read"] + med["crop"] + med["post"]
    report = {
        "config": cfg.name,
        "runtime": predictor.runtime,
        "boxes": args.boxes,
        "runs": args.runs,
        "image": source,
        "image_hw": list(image.shape[:2]),
        "threads": torch.get_num_threads(),
        "ms_median": {k: round(v, 2) for k, v in med.items()},
        "overhead_ms": round(overhead, 2),
        "overhead_ratio": round(overhead / med["model"], 4),
        "total_minus_model_ratio": round((med["total"] - med["model"]) / med["model"], 4),
        "target_ratio": 0.10,
    }
    report["meets_target"] = report["overhead_ratio"] <= 0.10
    report["provenance"] = finish(prov)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
