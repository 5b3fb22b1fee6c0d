"""``fasterpose export --checkpoint P --format onnx|openvino|weights [--precision P] [--val CONFIG]``.

``P`` is a training checkpoint or a weights file. ``--format weights`` writes the model's tensors and
config only (``.safetensors``, optionally float16). ``onnx`` / ``openvino`` write one self-contained
ONNX file or an OpenVINO IR (``.xml`` + ``.bin``) carrying the model's config, then print its parity
against the torch model (max |difference| of the raw heatmaps and the mean distance between decoded
keypoints, per runtime that can run it) and, with ``--val``, the exported model's AP beside the torch
model's on that config's validation set. INT8 calibrates on person crops of a dataset's boxes
(``--calib-config``, default the ``--val`` config, else the checkpoint's own) or on the whole images
of a folder (``--calib DIR``). No output may replace the input file.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from fasterpose.commands.argtypes import count
from fasterpose.config import load_config
from fasterpose.deploy.quantize import CALIBRATION_METHODS
from fasterpose.experiment import resolve

log = logging.getLogger(__name__)

DESCRIPTION = """\
Export a trained model for deployment: one self-contained ONNX file, an OpenVINO IR (.xml + .bin),
or a weights file (.safetensors: the model's tensors and config, no optimizer state). The model's
config travels inside the file, so predict and eval need nothing else. After an ONNX/OpenVINO
export the command prints how close the exported model's heatmaps and keypoints are to the torch
model's, and with --val the AP of both on a validation set. INT8 is calibrated on person crops of a
dataset (--calib-config) or on the images of a folder (--calib). The output never replaces the
model it reads, and an existing file is kept unless you pass --overwrite."""
EXAMPLES = """\
examples:
  fasterpose export --checkpoint runs/quickstart/last.pth --format onnx      # -> runs/quickstart/last.onnx
  fasterpose export --checkpoint best.pth --format openvino --precision int8 --calib-config configs/quickstart.yaml
  fasterpose export --checkpoint best.pth --format onnx --val configs/quickstart.yaml --json
  fasterpose export --checkpoint best.pth --format weights --half          # -> best_fp16.safetensors"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="the model to export: training checkpoint or weights file")
    parser.add_argument(
        "--format",
        required=True,
        choices=("onnx", "openvino", "weights"),
        help="onnx (.onnx), openvino (.xml + .bin) or weights (.safetensors: tensors + config, no optimizer state)",
    )
    parser.add_argument("--half", action="store_true", help="weights format: store float16 tensors (half the size)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "int8"),
        help="fp32; bf16 (OpenVINO only, needs a CPU with bf16); int8 (static quantisation, calibrated)",
    )
    parser.add_argument(
        "--calib", help="int8: calibrate on the whole images of this folder (default: person crops, see --calib-config)"
    )
    parser.add_argument(
        "--calib-config",
        help="int8: dataset config whose person boxes calibrate (default: --val, else the model's own)",
    )
    parser.add_argument("--calib-split", default="train", choices=("train", "val"), help="int8: whose boxes calibrate")
    parser.add_argument(
        "--calib-limit", type=count(), default=64, help="int8: at most this many calibration crops/images"
    )
    parser.add_argument(
        "--calib-method", default="minmax", choices=CALIBRATION_METHODS, help="int8: how value ranges are chosen"
    )
    parser.add_argument(
        "--quantize-head", action="store_true", help="int8: quantise the final heatmap layer too (kept fp32 otherwise)"
    )
    parser.add_argument(
        "--out", help="output file (default: beside the checkpoint, e.g. best.onnx, best_int8.xml, best.safetensors)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output file (refused without this flag)"
    )
    parser.add_argument(
        "--parity-images", help="folder of images for the parity check (default: the calibration crops, else noise)"
    )
    parser.add_argument(
        "--val",
        metavar="CONFIG",
        help="also report the AP of torch and exported model on CONFIG's validation set (default: not measured)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config changes for --val / --calib-config (default: none)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from fasterpose.deploy.export import calibration_crops, default_output, export_model, validate_export
    from fasterpose.deploy.models import load_model_file
    from fasterpose.deploy.parity import parity_report
    from fasterpose.deploy.quantize import folder_calibration_crops

    if args.half and args.format != "weights":
        raise ValueError(
            f"--half stores float16 weights files (--format weights); an {args.format} export is float32 "
            "(or --precision bf16 / int8): drop --half or pass --format weights"
        )
    if args.format == "weights" and args.out and Path(args.out).suffix.lower() != ".safetensors":
        _refuse_overwriting_input(Path(args.out), args.checkpoint, "weights", overwrite=True)  # named first
        raise ValueError(
            f"--out {args.out}: --format weights writes a .safetensors file; name it "
            f"{Path(args.out).with_suffix('.safetensors')} (for an ONNX model pass --format onnx)"
        )
    if args.format != "weights":  # refused before any work (the weights path checks its own output)
        out = Path(args.out) if args.out else default_output(args.checkpoint, args.format, args.precision)
        _refuse_overwriting_input(out, args.checkpoint, args.format, args.overwrite)
    model, cfg = load_model_file(args.checkpoint)
    if args.format == "weights":
        return _export_weights(model, cfg, args)
    val_cfg = load_config(args.val, list(args.set)) if args.val else None
    calib: np.ndarray | None = None
    source = "random noise"
    if args.precision == "int8" or args.calib:
        calib_cfg = load_config(args.calib_config, list(args.set)) if args.calib_config else (val_cfg or cfg)
        calib, source = calibration_crops(calib_cfg, args.calib, args.calib_split, args.calib_limit)
    export_model(model, cfg, out, args.format, args.precision, calib, args.calib_method, not args.quantize_head)
    if args.parity_images:
        probe, source = folder_calibration_crops(args.parity_images, cfg, 16), args.parity_images
    elif calib is not None:
        probe = calib[:16]
    else:
        w, h = cfg.data.input_size
        probe = np.random.default_rng(0).standard_normal((8, 3, h, w)).astype(np.float32)
    report: dict[str, Any] = {
        "output": str(out),
        "format": args.format,
        "precision": args.precision,
        "crops": len(probe),
        "source": source,
        "parity": parity_report(model, cfg, out, args.precision, probe),
    }
    if val_cfg is not None:
        report["val"] = {"config": args.val, **validate_export(model, resolve(val_cfg), out)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"wrote {out} ({args.format}, {args.precision})")
    print(f"parity vs torch fp32 on {len(probe)} crops ({source}):")
    for runtime, r in report["parity"].items():
        if "skipped" in r:
            print(f"  {runtime:12s} skipped: {r['skipped']}")
            continue
        print(
            f"  {runtime:12s} heatmaps max|d| {r['max_abs']:.3g} mean|d| {r['mean_abs']:.3g}; "
            f"keypoints mean {r['kpt_px_mean']:.3g} px, max {r['kpt_px_max']:.3g} px (input pixels)"
        )
    if val_cfg is not None:
        t, e = report["val"]["torch"], report["val"]["exported"]
        key = next(k for k in t if k not in ("runtime", "precision"))
        print(
            f"{key} on {args.val} val: torch fp32 {t[key]:.4f}, exported ({e['runtime']} {e['precision']}) "
            f"{e[key]:.4f}, difference {e[key] - t[key]:+.4f}"
        )
    return 0


def _refuse_overwriting_input(out: Path, source: str | Path, fmt: str, overwrite: bool = False) -> None:
    """An export never replaces the file it reads (an IR's ``.bin`` included), nor, without
    ``--overwrite``, any file that exists."""
    from fasterpose.atomic import refuse_inputs

    written = [out, out.with_suffix(".bin")] if fmt == "openvino" else [out]
    refuse_inputs(list(written), {"checkpoint": Path(source)})
    existing = [str(p) for p in written if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exists: pass --overwrite to replace it, or another --out")


def _export_weights(model: Any, cfg: Any, args: argparse.Namespace) -> int:
    """``--format weights``: the weights file beside the checkpoint (``best.pth`` -> ``best.safetensors``)."""
    from fasterpose.models.weights_file import SUFFIX, save_weights

    src = Path(args.checkpoint)
    out = Path(args.out) if args.out else src.with_name(src.stem + ("_fp16" if args.half else "") + SUFFIX)
    _refuse_overwriting_input(out, src, "weights", args.overwrite)
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
