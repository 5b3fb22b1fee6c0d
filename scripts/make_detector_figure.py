"""docs/images/detector_predict.jpg: ``fasterpose predict --detector DET.onnx`` on three coco_mini photos.

What draws it, honestly: the pose model is the coco_mini fit of ``tests/test_train_real.py`` (a
ResNet-18 FasterPose, LHR + RCE, 96x64 input, trained from scratch for 40 epochs on the 35 people
of ``../shared/data/coco_mini`` train, no augmentation), exported to ONNX; the photos are three of
those training photos. The person boxes come from detector ONNX files, one per photo, in the three
layouts ``--detector`` reads (ultralytics YOLOv8, YOLOX raw, mmdeploy RTMDet), built by
``scripts/replay_detector.py`` to replay the photo's annotated person boxes: no trained detector
exists on this machine, so the figure shows the path (letterbox, decode, NMS, mapping back, crops,
pose, drawing), not a detector's or the pose model's accuracy.

    python scripts/make_detector_figure.py [--checkpoint runs/coco_mini_fit/last.pth] [--work runs/detector_figure]

Without ``--checkpoint`` it first trains the fit (a few minutes on 2 CPU cores) into ``--work``.
The work folder keeps ``model.onnx``, the detector files and the photos, for rerunning by hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "coco_mini"
LAYOUTS = ("yolov8", "yolox", "rtmdet")


def _replay():  # noqa: ANN202 - a script module
    spec = importlib.util.spec_from_file_location("replay_detector", Path(__file__).with_name("replay_detector.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_fit(work: Path) -> Path:
    """The coco_mini fit of tests/test_train_real.py (same config), into ``work/fit``."""
    import torch

    from fasterpose.config import config_from_dict
    from fasterpose.engine.train import train

    no_augment = {
        "scale_factor": 0.0,
        "rotation_factor": 0.0,
        "rotation_prob": 0.0,
        "flip": False,
        "half_body_prob": 0.0,
    }
    epochs = 40
    cfg = config_from_dict(
        {
            "name": "coco_mini_fit",
            "model": {"backbone": "resnet18", "pretrained": False, "feature_index": -2},
            "data": {
                "dataset": "coco",
                "root": str(DATA),
                "train_ann": "annotations/person_keypoints_train2017_mini.json",
                "train_images": "train2017",
                "val_ann": "annotations/person_keypoints_val2017_mini.json",
                "val_images": "val2017",
                "input_size": [64, 96],
                "heatmap_size": [16, 24],
                "sigma": 1.5,
                "encoding": "unbiased",
                "num_workers": 0,
                "augment": no_augment,
            },
            "loss": {"name": "rce"},
            "train": {
                "epochs": epochs,
                "batch_size": 8,
                "lr": 2e-3,
                "lr_steps": [epochs - 8],
                "warmup_iters": 10,
                "eval_every": 0,
                "out_dir": str(work / "fit"),
                "log_every": 10,
                "device": "cpu",
                "cpu_amp": True,
                "channels_last": True,
            },
            "eval": {"batch_size": 35, "flip_test": False, "dark": True},
        }
    )
    torch.set_num_threads(1)
    train(cfg, progress=False)
    return work / "fit" / "last.pth"


def photos(n: int = 3) -> list[tuple[str, np.ndarray]]:
    """The ``n`` train photos with the most annotated people: (file name, person boxes x1, y1, x2, y2)."""
    ann = json.loads((DATA / "annotations" / "person_keypoints_train2017_mini.json").read_text())
    names = {im["id"]: im["file_name"] for im in ann["images"]}
    boxes: dict[str, list[list[float]]] = {}
    for a in ann["annotations"]:
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            x, y, w, h = a["bbox"]
            boxes.setdefault(names[a["image_id"]], []).append([x, y, x + w, y + h])
    best = sorted(boxes, key=lambda k: (-len(boxes[k]), k))[:n]
    return [(name, np.array(boxes[name])) for name in best]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="the coco_mini fit (default: train it into --work)")
    p.add_argument("--work", default="runs/detector_figure")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "detector_predict.jpg"))
    p.add_argument("--json", default=str(ROOT / "docs" / "bench" / "detector_predict.json"))
    args = p.parse_args()
    from fasterpose.bench.provenance import emit, finish, provenance
    from fasterpose.cli import main as cli

    report = provenance()
    report["pose_model"] = "coco_mini fit of tests/test_train_real.py (its training photos; not a generalisation test)"
    report["boxes"] = "annotated person boxes, replayed by scripts/replay_detector.py graphs (no trained detector)"
    report["photos"] = []

    replay = _replay()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.checkpoint) if args.checkpoint else train_fit(work)
    model = work / "model.onnx"
    assert cli(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(model), "--overwrite"]) == 0
    tiles = []
    for (name, boxes), layout in zip(photos(), LAYOUTS, strict=True):
        src = work / name
        shutil.copy(DATA / "train2017" / name, src)
        h, w = cv2.imread(str(src)).shape[:2]
        inp = replay.image_to_input(boxes, (w, h), layout, (640, 640))
        det = replay.write_detector(
            work / f"{Path(name).stem}_{layout}.onnx", layout, replay.encode(layout, inp, [0.9] * len(boxes))
        )
        drawn = work / f"{Path(name).stem}_{layout}_pose.jpg"
        assert (
            cli(
                [
                    "predict",
                    "--checkpoint",
                    str(model),
                    str(src),
                    "--detector",
                    str(det),
                    "--out",
                    str(drawn),
                    "--overwrite",
                    "--json",
                    str(drawn.with_suffix(".json")),
                ]
            )
            == 0
        )
        people = json.loads(drawn.with_suffix(".json").read_text())
        report["photos"].append(
            {
                "file": name,
                "layout": layout,
                "replayed_boxes_xyxy": boxes.round(2).tolist(),
                "people_drawn_from": len(people),
                "bbox_xywh": [[round(v, 2) for v in q["bbox"]] for q in people],
            }
        )
        tile = cv2.imread(str(drawn))
        scale = 360 / tile.shape[0]
        tile = cv2.resize(tile, (round(tile.shape[1] * scale), 360), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"--detector {layout} layout", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(tile)
    cv2.imwrite(args.out, np.concatenate(tiles, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 88])
    emit(finish(report), args.json)
    print(f"wrote {args.out} and {args.json} (work files in {work})")


if __name__ == "__main__":
    main()
