"""Export a torch model to ONNX or OpenVINO at fp32, bf16 (OpenVINO hint) or int8 (QDQ)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from fasterpose.atomic import atomic_files
from fasterpose.config import Config
from fasterpose.deploy.onnx_export import export_onnx
from fasterpose.deploy.openvino_export import export_openvino
from fasterpose.deploy.quantize import quantize_int8
from fasterpose.experiment import Experiment, experiment_of


def default_output(checkpoint: str | Path, fmt: str, precision: str) -> Path:
    """``run/best.pt`` -> ``run/best.onnx`` / ``run/best_int8.onnx`` / ``run/best_bf16.xml``."""
    from fasterpose.runtimes.formats import exported_suffix

    p = Path(checkpoint)
    suffix = "" if precision == "fp32" else f"_{precision}"
    return p.with_name(p.stem + suffix + exported_suffix(fmt))


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

    The files are written in a hidden folder beside ``out`` and renamed into place at the end, so an
    interrupted or failed export leaves any earlier file intact.

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
    written = [out.with_suffix(".bin"), out] if fmt == "openvino" else [out]
    with atomic_files(written, what="export") as staging, tempfile.TemporaryDirectory() as tmp:
        final = staging / out.name
        fp32 = final if fmt == "onnx" and precision == "fp32" else Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, cfg.data.input_size, cfg)
        src = fp32
        if precision == "int8":
            assert calib is not None
            dest = final if fmt == "onnx" else Path(tmp) / "int8.onnx"
            src = quantize_int8(fp32, dest, calib, cfg, calib_method, keep_head_fp32)
        if fmt == "openvino":
            export_openvino(src, final, cfg, precision)
    return out


def calibration_crops(
    cfg: Config, folder: str | Path | None = None, split: str = "train", limit: int = 64
) -> tuple[np.ndarray, str]:
    """INT8 calibration crops and where they came from: person crops of ``cfg``'s ``split`` boxes
    (the default; as evaluation crops them), or whole-image crops of ``folder`` when given."""
    from fasterpose.deploy.quantize import dataset_calibration_crops, folder_calibration_crops

    if folder is not None:
        return folder_calibration_crops(folder, cfg, limit), f"whole images of {folder}"
    try:
        crops = dataset_calibration_crops(cfg, split, limit)
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(
            f"int8 calibration on the config's {split} person boxes failed ({exc}); give a dataset config "
            "(--calib-config CONFIG data.root=...) or a folder of typical images (--calib DIR)"
        ) from exc
    return crops, f"{len(crops)} person crops of {cfg.data.dataset} {split} ({cfg.data.root})"


def validate_export(
    model: nn.Module,
    val: Experiment | Config,
    exported: str | Path,
    progress: bool = False,
    num_workers: int = 0,
) -> dict[str, dict[str, float | str]]:
    """The primary metric (COCO AP / MPII PCKh mean) of the torch model and of the exported file on
    the validation set of ``val``, through the same pipeline: ``{"torch": {...}, "exported": {...}}``."""
    import dataclasses

    from fasterpose.deploy.models import open_model
    from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset
    from fasterpose.pipeline.topdown import TopDownPipeline

    exp = experiment_of(val)
    val_cfg = exp.cfg
    eval_set = build_eval_set(exp, "val")
    key = exp.primary_metric
    out: dict[str, dict[str, float | str]] = {}
    torch_runner, _ = open_model(model, "torch", "fp32", "cpu", val_cfg, channels_last=False)
    torch_pipe = TopDownPipeline.from_config(exp, torch_runner)
    runner, file_cfg = open_model(exported)
    exported_exp = experiment_of(dataclasses.replace(val_cfg, model=file_cfg.model, loss=file_cfg.loss))
    exported_pipe = TopDownPipeline.from_config(exported_exp, runner)
    for name, pipe, run_exp in (("torch", torch_pipe, exp), ("exported", exported_pipe, exported_exp)):
        result = evaluate_on_dataset(pipe, run_exp, eval_set, None, "", num_workers, progress)
        out[name] = {key: result.metrics[key], "runtime": result.info["runtime"], "precision": result.info["precision"]}
    return out
