"""``fasterpose export --checkpoint P --format onnx|openvino [--precision fp32|bf16|int8] [--calib DIR]``.

Writes one self-contained ONNX file or an OpenVINO IR (``.xml`` + ``.bin``) carrying the model's
config, then prints its parity against the torch model: max |difference| of the raw heatmaps and
the mean distance between decoded keypoints (network-input pixels), per runtime that can run it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.engine.model_file import load_model_file
from fasterpose.export import (
    CALIBRATION_METHODS,
    calibration_crops,
    default_output,
    export_model,
    parity_report,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="training checkpoint (.pth) or weights file")
    parser.add_argument(
        "--format",
        required=True,
        choices=("onnx", "openvino", "weights"),
        help="onnx, openvino, or weights: model tensors + config only (.safetensors; no optimizer state)",
    )
    parser.add_argument("--half", action="store_true", help="weights: store float16 tensors (half the size)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "int8"),
        help="fp32; bf16 (OpenVINO, run-time hint); int8 (static quantisation, needs --calib)",
    )
    parser.add_argument("--calib", help="folder of typical images for INT8 calibration (whole-image crops)")
    parser.add_argument("--calib-limit", type=int, default=64, help="calibration images used at most (64)")
    parser.add_argument(
        "--calib-method",
        default="minmax",
        choices=CALIBRATION_METHODS,
        help="int8 activation range calibration (minmax)",
    )
    parser.add_argument(
        "--quantize-head",
        action="store_true",
        help="int8: quantise the final heatmap conv too (default: it stays fp32)",
    )
    parser.add_argument("--out", help="output file (default: next to the checkpoint, .onnx or .xml)")
    parser.add_argument(
        "--parity-images",
        help="folder of images for the parity check (default: --calib, else 8 random-noise crops)",
    )
    parser.add_argument("--json", action="store_true", help="print the parity report as JSON")


def run(args: argparse.Namespace) -> int:
    model, cfg = load_model_file(args.checkpoint)
    if args.format == "weights":
        return _export_weights(model, cfg, args)
    calib = calibration_crops(args.calib, cfg, args.calib_limit) if args.calib else None
    if args.precision == "int8" and calib is None:
        raise ValueError("--precision int8 needs --calib DIR: a folder of images like the ones you will run on")
    out = Path(args.out) if args.out else default_output(args.checkpoint, args.format, args.precision)
    export_model(model, cfg, out, args.format, args.precision, calib, args.calib_method, not args.quantize_head)
    if args.parity_images:
        probe = calibration_crops(args.parity_images, cfg, 16)
        source = args.parity_images
    elif calib is not None:
        probe, source = calib[:16], args.calib
    else:
        w, h = cfg.data.input_size
        probe, source = (
            np.random.default_rng(0).standard_normal((8, 3, h, w)).astype(np.float32),
            "random noise",
        )
    report = parity_report(model, cfg, out, args.precision, probe)
    if args.json:
        print(
            json.dumps(
                {
                    "output": str(out),
                    "format": args.format,
                    "precision": args.precision,
                    "crops": len(probe),
                    "source": source,
                    "parity": report,
                },
                indent=2,
            )
        )
        return 0
    print(f"wrote {out} ({args.format}, {args.precision})")
    print(f"parity vs torch fp32 on {len(probe)} crops ({source}):")
    for runtime, r in report.items():
        print(
            f"  {runtime:12s} heatmaps max|d| {r['max_abs']:.3g} mean|d| {r['mean_abs']:.3g}; "
            f"keypoints mean {r['kpt_px_mean']:.3g} px, max {r['kpt_px_max']:.3g} px (input pixels)"
        )
    return 0


def _export_weights(model: Any, cfg: Any, args: argparse.Namespace) -> int:
    """``--format weights``: the weights file beside the checkpoint (``best.pth`` -> ``best.safetensors``)."""
    from fasterpose.models.weights_file import SUFFIX, save_weights

    src = Path(args.checkpoint)
    out = Path(args.out) if args.out else src.with_name(src.stem + ("_fp16" if args.half else "") + SUFFIX)
    if out.resolve() == src.resolve():
        raise ValueError(f"{out}: the output would overwrite the input; pass another --out")
    save_weights(model, cfg, out, half=args.half)
    size, source_size = out.stat().st_size, src.stat().st_size
    if args.json:
        report = {
            "output": str(out),
            "format": "weights",
            "half": args.half,
            "bytes": size,
            "source_bytes": source_size,
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"wrote {out} ({size / 2**20:.1f} MiB; {src} is {source_size / 2**20:.1f} MiB)")
    return 0
