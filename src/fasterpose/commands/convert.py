"""``fasterpose convert CHECKPOINT.pth [--input-size HxW] [--out FILE.safetensors]``.

Reads a published SimpleBaseline checkpoint (the Microsoft / HRNet ``pose_resnet_*.pth`` or an mmpose
``td-hm_res*`` file; see :mod:`fasterpose.models.lineage`) and writes our weights file: the same
network as one of our ``simplebaseline_r*`` models, tensors and config, ready for ``eval --model``,
``export``, ``predict`` and ``train ... model.weights=FILE``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DESCRIPTION = """\
Convert a published SimpleBaseline checkpoint into a FasterPose weights file (.safetensors: tensors +
config). Read: the Microsoft / HRNet code's pose_resnet_{50,101,152}_{256x192,384x288}.pth and mmpose's
td-hm_res{50,101,152} checkpoints (1.x head.* or 0.x keypoint_head.* keys). The ResNet depth and the
keypoint count (17 COCO, 16 MPII) come from the tensors; the input size from the file name (HEIGHTxWIDTH,
e.g. 256x192) or --input-size, else 256x192 (COCO) / 256x256 (MPII). Loaded weights-only: a file that
needs Python code to load is refused, and so is one with missing or unexpected tensors."""
EXAMPLES = """\
examples:
  fasterpose convert pose_resnet_50_256x192.pth                  # -> pose_resnet_50_256x192.safetensors
  fasterpose convert td-hm_res50_8xb64-210e_coco-256x192.pth --out r50.safetensors   # mmpose 1.x
  fasterpose convert my_simplebaseline.pth --input-size 384x288"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the published SimpleBaseline checkpoint (.pth)")
    parser.add_argument(
        "--input-size",
        metavar="HxW",
        help="network input HEIGHTxWIDTH, e.g. 384x288 (default: from the file name, else 256x192 COCO / 256x256 MPII)",
    )
    parser.add_argument("--out", help="output weights file (default: beside the checkpoint, NAME.safetensors)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--json", action="store_true", help="print what was converted as JSON")


def run(args: argparse.Namespace) -> int:
    from fasterpose.atomic import refuse_inputs
    from fasterpose.models.lineage import convert, input_size_from_name, parse_size
    from fasterpose.models.weights_file import SUFFIX, save_weights

    src = Path(args.checkpoint)
    out = Path(args.out) if args.out else src.with_suffix(SUFFIX)
    refuse_inputs([out], {"checkpoint": src})
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists: pass --overwrite to replace it, or another --out")
    size = parse_size(args.input_size) if args.input_size else None
    model, cfg, info = convert(src, size)
    save_weights(model, cfg, out)
    w, h = cfg.data.input_size
    origin = "--input-size" if size else ("the file name" if input_size_from_name(src) else "the default")
    report = {
        "output": str(out),
        "layout": info.layout,
        "model": cfg.name,
        "depth": info.depth,
        "num_keypoints": info.num_keypoints,
        "input_size_hw": [h, w],
        "input_size_from": origin,
        "input_order": cfg.model.input_order,
        "tensors": len(info.state),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    dataset = {17: "COCO", 16: "MPII"}[info.num_keypoints]
    order = " (trained on BGR images: the model re-orders its RGB input)" if cfg.model.input_order == "bgr" else ""
    print(
        f"wrote {out}: SimpleBaseline ResNet-{info.depth}, {info.num_keypoints} keypoints ({dataset}), input "
        f"{h}x{w} (HxW, from {origin}), {len(info.state)} tensors from the {info.layout} layout{order}"
    )
    return 0
