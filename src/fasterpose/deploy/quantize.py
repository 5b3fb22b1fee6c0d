"""INT8 static quantisation (ONNX Runtime QDQ: per-channel signed weights, unsigned activations) and
its calibration crops: person crops of a dataset's boxes (default) or whole images of a folder."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fasterpose.deploy.metadata import INPUT_NAME, set_onnx_metadata

if TYPE_CHECKING:
    from fasterpose.config import Config


# CLI name -> onnxruntime.quantization.CalibrationMethod member (imported lazily with onnxruntime)
_CALIBRATION = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
CALIBRATION_METHODS = tuple(_CALIBRATION)


def quantize_int8(
    onnx_path: str | Path,
    out_path: str | Path,
    calib: np.ndarray,
    cfg: Config | None = None,
    method: str = "minmax",
    keep_head_fp32: bool = True,
) -> Path:
    """Static INT8 quantisation (QDQ) of an fp32 ONNX file, calibrated on crops ``calib`` (N, 3, H, W).

    Args:
        method: activation range calibration: ``minmax``, ``percentile`` (99.999th) or ``entropy``.
        keep_head_fp32: leave the last convolution (the heatmap regressor, ~3% of the MACs of
            FasterPose-R50) in fp32: its logits are what the argmax reads.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calib.ndim != 4 or len(calib) == 0:
        raise ValueError(f"calibration crops must have shape (N, 3, H, W) with N > 0, got {calib.shape}")
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    calibrate = getattr(CalibrationMethod, _CALIBRATION[method])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{INPUT_NAME: c[None].astype(np.float32)} for c in calib])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # onnxruntime.quantization logs every node on the root logger
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
            convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
            quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=calibrate,
                nodes_to_exclude=convs[-1:] if keep_head_fp32 else [],
                extra_options={"CalibPercentile": 99.999},
            )
        finally:
            root.setLevel(level)
    proto = onnx.load(str(out))
    set_onnx_metadata(proto, cfg, "int8")
    from fasterpose.deploy.onnx_export import save_onnx

    return save_onnx(proto, out)


def folder_calibration_crops(folder: str | Path, cfg: Config, limit: int = 64) -> np.ndarray:
    """Whole-image crops of the images in ``folder``, preprocessed like inference: (N, 3, H, W)."""
    from fasterpose.deploy.sources import IMAGE_SUFFIXES, image_files
    from fasterpose.pipeline.crops import as_rgb_image, crop_people
    from fasterpose.pipeline.topdown import crop_padding

    files = image_files(folder)[:limit]
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to calibrate on")
    crops = [crop_people(as_rgb_image(f), None, cfg.data.input_size, crop_padding(cfg))[0] for f in files]
    return np.concatenate(crops)


def dataset_calibration_crops(cfg: Config, split: str = "train", limit: int = 64, seed: int = 0) -> np.ndarray:
    """Person crops of the config's ``split`` boxes, exactly as evaluation crops them: (N, 3, H, W).

    ``limit`` people drawn without replacement (seeded) from every record of the split, so the
    calibration sees the box sizes, poses and backgrounds the model will see.
    """
    import dataclasses

    from fasterpose.pipeline.evaluate import build_eval_set, crop_batches

    every_image = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, max_images=None))
    eval_set = build_eval_set(every_image, split, use_gt_boxes=True)
    n = len(eval_set)
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=min(limit, n), replace=False))
    by_image: dict[str, list[int]] = {}
    for i in chosen.tolist():
        by_image.setdefault(eval_set.records[i].image_path, []).append(i)
    batches = crop_batches(
        eval_set,
        list(by_image.values()),
        (int(cfg.data.input_size[0]), int(cfg.data.input_size[1])),
        max(1, len(chosen)),
    )
    return np.concatenate([crops for crops, _ in batches])
