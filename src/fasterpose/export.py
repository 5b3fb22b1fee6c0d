"""Deployment formats: one self-contained ONNX file, OpenVINO IR, INT8 static quantisation.

* ONNX: the TorchScript exporter (opset 17), dynamic batch axis, weights inside the file, the LHR
  pixel shuffle as ``DepthToSpace`` (CRD). The experiment config travels in the file's metadata
  (``fasterpose.config``, JSON) so a :class:`~fasterpose.engine.predict.Predictor` needs nothing
  else.
* OpenVINO: the ONNX model converted by ``openvino.convert_model``, saved with f32 weights; the
  config and the intended inference precision (``fp32`` / ``bf16`` / ``int8``) go into rt_info.
  bf16 is a run-time choice on CPU (``INFERENCE_PRECISION_HINT``), not a weight format.
* INT8: ONNX Runtime static quantisation (QDQ, per-channel signed weights, unsigned activations,
  min/max calibration on crops of the user's images). The same QDQ model converts to an OpenVINO
  IR that runs its convolutions in INT8.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config, config_from_dict, config_to_dict

CONFIG_KEY = "fasterpose.config"
PRECISION_KEY = "fasterpose.precision"
INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def onnx_bytes(model: nn.Module, input_size: tuple[int, int], opset: int = 17) -> bytes:
    """Serialize ``model`` (input (B, 3, H, W) with ``input_size`` = (W, H)) to ONNX, dynamic batch."""
    w, h = int(input_size[0]), int(input_size[1])
    model = model.eval().cpu().float()
    dummy = torch.zeros(1, 3, h, w)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            buf,  # type: ignore[arg-type]  # file-like objects are accepted
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    return buf.getvalue()


def _set_onnx_metadata(proto: Any, cfg: Config | None, precision: str) -> None:
    entries = {PRECISION_KEY: precision}
    if cfg is not None:
        entries[CONFIG_KEY] = json.dumps(config_to_dict(cfg))
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    cfg: Config | None = None,
    opset: int = 17,
) -> Path:
    """Write one self-contained ONNX file (weights inside, dynamic batch, config in metadata)."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes(model, input_size, opset))
    _set_onnx_metadata(proto, cfg, "fp32")
    onnx.checker.check_model(proto)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(out), save_as_external_data=False)
    return out


def onnx_op_types(path: str | Path) -> list[str]:
    """Operator types of an ONNX file's graph, in order."""
    import onnx

    return [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]


def export_openvino(
    onnx_path: str | Path, xml_path: str | Path, cfg: Config | None = None, precision: str = "fp32"
) -> Path:
    """Convert an ONNX file to OpenVINO IR (``.xml`` + ``.bin``), recording config and precision."""
    import openvino as ov

    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")
    model = ov.convert_model(str(onnx_path))
    if cfg is not None:
        model.set_rt_info(json.dumps(config_to_dict(cfg)), ["fasterpose", "config"])
    model.set_rt_info(precision, ["fasterpose", "precision"])
    out = Path(xml_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out), compress_to_fp16=False)
    return out


def read_metadata(path: str | Path) -> tuple[Config | None, str]:
    """The config and precision stored in an exported ``.onnx`` or ``.xml`` (None / fp32 if absent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    raw: str | None = None
    precision = "fp32"
    if p.suffix == ".onnx":
        import onnx

        props = {m.key: m.value for m in onnx.load(str(p), load_external_data=False).metadata_props}
        raw, precision = props.get(CONFIG_KEY), props.get(PRECISION_KEY, "fp32")
    elif p.suffix == ".xml":
        from fasterpose.engine.runtimes import openvino_core

        model = openvino_core().read_model(str(p))
        if model.has_rt_info(["fasterpose", "config"]):
            raw = model.get_rt_info(["fasterpose", "config"]).astype(str)
        if model.has_rt_info(["fasterpose", "precision"]):
            precision = model.get_rt_info(["fasterpose", "precision"]).astype(str)
    else:
        raise ValueError(f"{p}: not an exported model (expected .onnx or .xml)")
    try:
        cfg = config_from_dict(json.loads(raw)) if raw else None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: its embedded fasterpose config is unreadable: {exc}") from exc
    return cfg, precision


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"image folder not found: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def calibration_crops(folder: str | Path, cfg: Config, limit: int = 64) -> np.ndarray:
    """Whole-image crops of the images in ``folder``, preprocessed like inference: (N, 3, H, W)."""
    from fasterpose.engine.predict import crop_people, read_image

    files = image_files(folder)[:limit]
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to calibrate on")
    crops = [crop_people(read_image(f), None, cfg.data.input_size, cfg.data.box_padding)[0] for f in files]
    return np.concatenate(crops)


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
    _set_onnx_metadata(proto, cfg, "int8")
    onnx.save_model(proto, str(out), save_as_external_data=False)
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float32))), dtype=np.float32)


def compare_heatmaps(
    reference: np.ndarray, candidate: np.ndarray, codec: HeatmapCodec, apply_sigmoid: bool
) -> dict[str, float]:
    """Parity of two runtimes' raw outputs (B, K, h, w).

    Returns max and mean absolute difference of the raw outputs, and the mean / max distance
    between the decoded keypoints in network-input pixels.
    """
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    ref, cand = (sigmoid(reference), sigmoid(candidate)) if apply_sigmoid else (reference, candidate)
    k_ref, _ = codec.decode(ref)
    k_cand, _ = codec.decode(cand)
    dist = np.linalg.norm(k_ref.astype(np.float64) - k_cand, axis=-1)
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "kpt_px_mean": float(dist.mean()),
        "kpt_px_max": float(dist.max()),
    }


def default_output(checkpoint: str | Path, fmt: str, precision: str) -> Path:
    """``run/best.pt`` -> ``run/best.onnx`` / ``run/best_int8.onnx`` / ``run/best_bf16.xml``."""
    p = Path(checkpoint)
    suffix = "" if precision == "fp32" else f"_{precision}"
    return p.with_name(p.stem + suffix + (".onnx" if fmt == "onnx" else ".xml"))


def export_model(
    model: nn.Module,
    cfg: Config,
    out: str | Path,
    fmt: str,
    precision: str = "fp32",
    calib: np.ndarray | None = None,
    calib_method: str = "minmax",
    keep_head_fp32: bool = True,
) -> Path:
    """Export ``model`` to ``out`` in format ``onnx`` or ``openvino`` at ``precision``.

    ``calib`` (N, 3, H, W) crops, ``calib_method`` and ``keep_head_fp32`` are for int8 (see
    :func:`quantize_int8`).
    """
    if fmt not in ("onnx", "openvino"):
        raise ValueError(f"format must be onnx or openvino, got {fmt!r}")
    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"precision must be fp32, bf16 or int8, got {precision!r}")
    if fmt == "onnx" and precision == "bf16":
        raise ValueError(
            "bf16 is not an ONNX deployment option (ONNX Runtime's CPU provider has no bf16 "
            "convolutions); use --format openvino --precision bf16"
        )
    if precision == "int8" and calib is None:
        raise ValueError("int8 needs calibration images: pass --calib DIR (a folder of typical photos)")
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = out if fmt == "onnx" and precision == "fp32" else Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, cfg.data.input_size, cfg)
        src = fp32
        if precision == "int8":
            assert calib is not None
            dest = out if fmt == "onnx" else Path(tmp) / "int8.onnx"
            src = quantize_int8(fp32, dest, calib, cfg, calib_method, keep_head_fp32)
        if fmt == "openvino":
            export_openvino(src, out, cfg, precision)
    return out


def parity_report(
    model: nn.Module,
    cfg: Config,
    exported: str | Path,
    precision: str,
    crops: np.ndarray,
    runtimes: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Compare an exported file to the torch model on ``crops`` (N, 3, H, W), per runtime."""
    from fasterpose.engine.runtimes import OnnxRuntimeRunner, OpenVinoRunner, TorchRunner
    from fasterpose.models.pose_model import SIGMOID_LOSSES

    d = cfg.data
    codec = HeatmapCodec(d.input_size, d.heatmap_size, d.sigma, d.encoding)  # type: ignore[arg-type]
    reference = TorchRunner(model, channels_last=False)(crops)
    path = Path(exported)
    if runtimes is None:
        runtimes = ["onnxruntime", "openvino"] if path.suffix == ".onnx" else ["openvino"]
    report: dict[str, dict[str, float]] = {}
    for rt in runtimes:
        runner: Any
        if rt == "onnxruntime":
            runner = OnnxRuntimeRunner(path, precision=precision)
        else:
            runner = OpenVinoRunner(path, precision=precision)
        report[rt] = compare_heatmaps(reference, runner(crops), codec, cfg.loss.name in SIGMOID_LOSSES)
    return report
