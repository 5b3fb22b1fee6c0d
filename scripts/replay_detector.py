"""Write a person-detector ONNX file that replays known boxes, in the output layout of a real detector.

The graph ignores the image (its outputs are constants, tied to the input by ``+ 0 * mean(input)`` so
every runtime keeps the input), but it has a real detector's input (name, 1 x 3 x H x W) and
outputs, so ``fasterpose predict --detector`` letterboxes, decodes, filters, suppresses and maps
back exactly as it does for an exported detector. Used by ``tests/test_onnx_detector.py`` and
``scripts/make_detector_figure.py``; needs the ``onnx`` package (the ``deploy`` extra).

    python scripts/replay_detector.py --layout yolov8 --image photo.jpg --box 10 20 200 400 0.9 --out det.onnx

``--box`` is x1 y1 x2 y2 score in the pixels of ``--image`` (repeat it for more people); the file
replays them for images of that size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LAYOUTS = ("yolov8", "yolox", "yolox-mmdeploy", "rtmdet")
INPUT_NAMES = {"yolov8": "images", "yolox": "images", "yolox-mmdeploy": "input", "rtmdet": "input"}


def encode(
    layout: str,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray | None = None,
    size: tuple[int, int] = (640, 640),
    num_classes: int = 80,
    anchors: int = 256,
) -> dict[str, np.ndarray]:
    """Outputs of ``layout`` whose decoded boxes are ``boxes`` (N, 4) x1, y1, x2, y2 in input pixels."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    classes = np.zeros(len(boxes), np.int64) if classes is None else np.asarray(classes, np.int64)
    cxcy = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    if layout == "yolov8":
        out = np.zeros((1, 4 + num_classes, max(anchors, len(boxes))), np.float32)
        for i, (c, w, s, k) in enumerate(zip(cxcy, wh, scores, classes, strict=True)):
            out[0, :4, i] = [c[0], c[1], w[0], w[1]]
            out[0, 4 + k, i] = s
        return {"output0": out}
    if layout == "yolox":  # raw grid outputs: invert xy = (raw + grid) * stride, wh = exp(raw) * stride
        from fasterpose.deploy.onnx_detector import yolox_grid

        grid, stride = yolox_grid(size)
        out = np.zeros((1, len(grid), 5 + num_classes), np.float32)
        out[0, :, 2:4] = np.log(1.0 / stride)  # 1-pixel boxes elsewhere, objectness 0
        for i, (c, w, s, k) in enumerate(zip(cxcy, wh, scores, classes, strict=True)):
            j = len(grid) - 1 - 3 * i  # anchors of the stride-32 grid, any would do
            out[0, j, :2] = c / stride[j] - grid[j]
            out[0, j, 2:4] = np.log(w / stride[j])
            out[0, j, 4] = 1.0
            out[0, j, 5 + k] = s
        return {"output": out}
    n = max(anchors // 8, len(boxes))
    dets = np.zeros((1, n, 5), np.float32)
    labels = np.zeros((1, n), np.int64)
    dets[0, : len(boxes), :4], dets[0, : len(boxes), 4], labels[0, : len(boxes)] = boxes, scores, classes
    return {"dets": dets, "labels": labels}


def write_detector(
    path: str | Path,
    layout: str,
    outputs: dict[str, np.ndarray],
    size: tuple[int, int] = (640, 640),
    input_name: str | None = None,
    dynamic_input: bool = False,
) -> Path:
    """Write the constant-output graph with a (1, 3, H, W) float input named as ``layout``'s exports name it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    name = input_name or INPUT_NAMES[layout]
    dims: list[int | str] = [1, 3, "height", "width"] if dynamic_input else [1, 3, *size]
    nodes = [
        helper.make_node("ReduceMean", [name], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["tie"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    graph_outputs = []
    for out_name, arr in outputs.items():
        inits.append(numpy_helper.from_array(arr, f"{out_name}_value"))
        if arr.dtype == np.float32:
            nodes.append(helper.make_node("Add", [f"{out_name}_value", "tie"], [out_name]))
            kind = TensorProto.FLOAT
        else:
            nodes.append(helper.make_node("Identity", [f"{out_name}_value"], [out_name]))
            kind = TensorProto.INT64
        graph_outputs.append(helper.make_tensor_value_info(out_name, kind, list(arr.shape)))
    graph = helper.make_graph(
        nodes, "replay_detector", [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)], graph_outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def image_to_input(boxes: np.ndarray, image_wh: tuple[int, int], layout: str, size: tuple[int, int]) -> np.ndarray:
    """Boxes x1, y1, x2, y2 in image pixels -> the detector's input pixels (its family's letterbox)."""
    from fasterpose.deploy.onnx_detector import FAMILIES, letterbox

    w, h = image_wh
    _, scale, offset = letterbox(np.zeros((h, w, 3), np.uint8), size, FAMILIES[layout])
    return np.asarray(boxes, np.float64).reshape(-1, 4) * np.tile(scale, 2) + np.tile(offset, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=LAYOUTS, required=True)
    p.add_argument("--image", required=True, help="the image the boxes belong to (for its size)")
    p.add_argument("--box", nargs=5, type=float, action="append", required=True, metavar=("X1", "Y1", "X2", "Y2", "S"))
    p.add_argument("--size", type=int, default=640, help="detector input side (default: 640)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    import cv2

    image = cv2.imread(args.image)
    if image is None:
        raise SystemExit(f"{args.image}: not a readable image")
    rows = np.array(args.box, np.float64)
    size = (args.size, args.size)
    boxes = image_to_input(rows[:, :4], (image.shape[1], image.shape[0]), args.layout, size)
    out = write_detector(args.out, args.layout, encode(args.layout, boxes, rows[:, 4], size=size), size)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
