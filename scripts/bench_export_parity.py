"""Parity of the reduced-precision exports (OpenVINO bf16, INT8) against torch fp32 on real crops.

On the person crops of ``../shared/data/coco_mini`` val (ground-truth boxes, people with labelled
joints), compare each export's heatmaps with the torch fp32 model's and report the mean and max
distance between their decoded keypoints (network-input pixels), plus the raw heatmap
differences. The fp32 exports are checked too (they should agree to ~1e-6).

A randomly initialised model has flat heatmaps whose argmax is arbitrary, which would make the
keypoint disagreement meaningless. So unless ``--checkpoint`` is given, the model is first fitted
for ``--fit-steps`` steps on the coco_mini *train* person crops (no ImageNet weights are
available offline): not an accurate model, but one whose heatmaps have real peaks. The fp32
model's own error against the val ground truth is reported for context. INT8 is calibrated the
way ``fasterpose export --calib`` does it: whole-image crops of the train2017 photos; variants
with the final (heatmap) convolution quantised too and with percentile calibration are compared.

    python scripts/bench_export_parity.py [--config configs/fasterpose_r50_256x192.yaml]
        [--set model.backbone=resnet18] [--fit-steps 120] [--checkpoint ckpt.pt] [--out parity.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fasterpose.activation import outputs_logits, sigmoid
from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config, apply_overrides, load_config
from fasterpose.deploy.export import export_model
from fasterpose.deploy.parity import parity_report
from fasterpose.deploy.quantize import folder_calibration_crops as calibration_crops
from fasterpose.engine.checkpoint import load_model_from_checkpoint, save_checkpoint
from fasterpose.geometry import affine_points, box_to_center_scale, get_affine_transform
from fasterpose.losses import build_loss
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.crops import as_rgb_image, crop_people
from fasterpose.runtimes.torch_runner import TorchRunner

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco_mini"


def person_crops(split: str, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, 3, H, W) of the people with labelled joints, and their keypoints (N, K, 3) in input px."""
    ann = json.loads((COCO / "annotations" / f"person_keypoints_{split}2017_mini.json").read_text())
    files = {im["id"]: im["file_name"] for im in ann["images"]}
    w, h = cfg.data.input_size
    crops, kpts = [], []
    for a in ann["annotations"]:
        if a.get("iscrowd") or a["num_keypoints"] == 0 or min(a["bbox"][2:]) < 4:
            continue
        image = as_rgb_image(COCO / f"{split}2017" / files[a["image_id"]])
        crops.append(crop_people(image, [a["bbox"]], (w, h), cfg.data.box_padding)[0])
        center, scale = box_to_center_scale(a["bbox"], w / h, cfg.data.box_padding)
        k = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
        k[:, :2] = affine_points(k[:, :2], get_affine_transform(center, scale, 0.0, (w, h)))
        kpts.append(k)
    return np.concatenate(crops), np.stack(kpts)


def fit(model: PoseModel, cfg: Config, steps: int, batch: int) -> float:
    """Fit ``model`` on the train crops (flip augmentation only); returns seconds spent."""
    crops, kpts = person_crops("train", cfg)
    codec = HeatmapCodec.from_config(cfg)
    enc = [codec.encode(k) for k in kpts]
    target = torch.from_numpy(np.stack([e[0] for e in enc]))
    weight = torch.from_numpy(np.stack([e[1] for e in enc]))
    images = torch.from_numpy(crops)
    loss_fn = build_loss(cfg.loss)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        loss = loss_fn(model(images[idx]), target[idx], weight[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == steps - 1:
            print(f"fit step {step}: loss {loss.item():.5f}", file=sys.stderr, flush=True)
    model.eval()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fasterpose_r50_256x192.yaml"))
    parser.add_argument("--set", nargs="*", default=[], help="config overrides")
    parser.add_argument("--checkpoint", help="use this trained model instead of fitting one")
    parser.add_argument("--fit-steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--calib-images", type=int, default=16)
    parser.add_argument(
        "--calib-source",
        choices=("images", "crops"),
        default="images",
        help="int8 calibration: whole train2017 images (as the export command) or train person crops",
    )
    parser.add_argument("--int8-only", action="store_true", help="only the int8 cases")
    parser.add_argument("--save-fitted", help="save the fitted model as a checkpoint (reuse with --checkpoint)")
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)
    if not COCO.is_dir():
        print(f"skipped: {COCO} is absent", file=sys.stderr)
        return 0
    torch.manual_seed(0)
    fit_s = 0.0
    if args.checkpoint:
        model, cfg = load_model_from_checkpoint(args.checkpoint)
    else:
        cfg = apply_overrides(load_config(args.config), ["model.pretrained=false", *args.set])
        model = PoseModel.from_config(cfg, pretrained=False)
        fit_s = fit(model, cfg, args.fit_steps, args.batch)
        if args.save_fitted:
            save_checkpoint(args.save_fitted, {"model": model.state_dict(), "config": cfg, "epoch": 0})
    val, val_kpts = person_crops("val", cfg)
    if args.calib_source == "crops":
        calib = person_crops("train", cfg)[0][: args.calib_images]
    else:
        calib = calibration_crops(COCO / "train2017", cfg, args.calib_images)
    d = cfg.data
    codec = HeatmapCodec.from_config(cfg)
    raw = TorchRunner(model, channels_last=False)(val)
    probs = sigmoid(raw) if outputs_logits(cfg) else raw
    pred, scores = codec.decode(probs)
    labelled = val_kpts[..., 2] > 0
    gt_err = float(np.linalg.norm(pred - val_kpts[..., :2], axis=-1)[labelled].mean())
    report: dict[str, Any] = {
        "config": cfg.name,
        "backbone": cfg.model.backbone,
        "input_size": list(d.input_size),
        "model": args.checkpoint or f"random init fitted {args.fit_steps} steps on coco_mini train ({fit_s:.0f} s)",
        "val_crops": len(val),
        "calib_images": len(calib),
        "calib_source": args.calib_source,
        "fp32_val_error_px": round(gt_err, 2),
        "fp32_mean_peak": round(float(scores.mean()), 4),
        "exports": [],
    }
    # (format, precision, runtimes, int8 calibration method, keep the heatmap conv in fp32)
    cases = [
        ("onnx", "fp32", None, "minmax", True),
        ("openvino", "fp32", None, "minmax", True),
        ("openvino", "bf16", None, "minmax", True),
        ("onnx", "int8", ["onnxruntime", "openvino"], "minmax", True),
        ("openvino", "int8", None, "minmax", True),
        ("onnx", "int8", ["onnxruntime"], "minmax", False),
        ("onnx", "int8", ["onnxruntime"], "percentile", True),
    ]
    if args.int8_only:
        cases = [c for c in cases if c[1] == "int8"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (fmt, precision, runtimes, method, keep_head) in enumerate(cases):
            path = Path(tmp) / f"m{i}_{precision}.{'onnx' if fmt == 'onnx' else 'xml'}"
            export_model(model, cfg, path, fmt, precision, calib if precision == "int8" else None, method, keep_head)
            for runtime, r in parity_report(model, cfg, path, precision, val, runtimes).items():
                row: dict[str, Any] = {"format": fmt, "precision": precision, "runtime": runtime}
                if precision == "int8":
                    row.update(calibration=method, head="fp32" if keep_head else "int8")
                row.update({k: round(v, 6 if "abs" in k else 3) for k, v in r.items()})
                report["exports"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
