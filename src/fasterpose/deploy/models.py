"""Open any model file as a :class:`~fasterpose.pipeline.runner.Runner` plus the config it needs.

Accepted: a ``PoseModel`` (with its config), a training checkpoint, a FasterPose weights file
(``.safetensors`` with its config, ``fasterpose export --format weights``), a bare state dict (the
architecture comes from the config given), an exported ``.onnx`` or an OpenVINO ``.xml``. Exported
files carry their config and precision; ``.onnx`` / ``.xml`` never import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasterpose.config import Config
from fasterpose.deploy.metadata import MODEL_SUFFIXES, read_metadata
from fasterpose.deploy.runtimes import RUNTIMES, OnnxRuntimeRunner, OpenVinoRunner, auto_cpu_runtime
from fasterpose.pipeline.runner import Runner

if TYPE_CHECKING:
    from torch import nn


def is_exported(path: str | os.PathLike[str]) -> bool:
    """An exported model file (``.onnx`` / ``.xml``), runnable without torch."""
    return Path(path).suffix in MODEL_SUFFIXES


def load_torch_model(path: str | os.PathLike[str], cfg: Config | None, device: str = "cpu") -> tuple[nn.Module, Config]:
    """A training checkpoint or a weights file (each with its own config), or a bare state dict for ``cfg``'s model."""
    from fasterpose.extras import require

    require("torch", f"{path}: a torch model file (run an exported .onnx / .xml without torch), which")
    import torch

    from fasterpose.engine.checkpoint import CheckpointError
    from fasterpose.engine.model_file import load_model_file
    from fasterpose.models.pose_model import PoseModel

    try:
        return load_model_file(path, map_location=device)
    except CheckpointError as exc:
        if "not a FasterPose checkpoint" not in str(exc):
            raise
    if cfg is None:
        raise ValueError(f"{path}: a bare weights file; give the config of its model (fasterpose eval CONFIG --model)")
    state: Any = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: neither a FasterPose checkpoint nor a state dict of tensors")
    from fasterpose.integrity import unverified

    unverified(path, "a bare state dict (not written by FasterPose) carries no content hash")
    model = PoseModel.from_config(cfg, pretrained=False)
    try:
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the model of the config ({cfg.model.backbone}): {exc}") from exc
    return model.eval(), cfg


def open_exported(
    path: Path, cfg: Config | None, runtime: str, precision: str | None, source: str | None = None
) -> tuple[Runner, Config]:
    """An ``.onnx`` / ``.xml`` file on ONNX Runtime or OpenVINO, with its embedded (or the given) config."""
    file_cfg, file_precision = read_metadata(path)
    cfg = cfg or file_cfg
    if cfg is None:
        raise ValueError(f"{path}: carries no fasterpose config; pass cfg= (or re-export it)")
    precision = precision or file_precision
    if runtime == "auto":
        runtime = "openvino" if path.suffix == ".xml" else auto_cpu_runtime(precision)
    if runtime == "torch" or (runtime == "onnxruntime" and path.suffix == ".xml"):
        raise ValueError(f"{path}: runtime {runtime!r} cannot run a {path.suffix} file")
    runner: OnnxRuntimeRunner | OpenVinoRunner
    if runtime == "onnxruntime":
        runner = OnnxRuntimeRunner(path, precision=precision)
    else:
        runner = OpenVinoRunner(path, precision=precision)
    runner.source = source or runner.source  # a cached export names the file it was made from
    return runner, cfg


def open_runner(
    model_or_path: nn.Module | str | os.PathLike[str],
    cfg: Config | None = None,
    runtime: str = "auto",
    device: str = "cpu",
    precision: str | None = None,
    source: str | None = None,
) -> tuple[Runner, Config]:
    """Resolve a model (module, checkpoint, weights file, .onnx or .xml) and a runtime into a runner + config.

    ``source`` names the file a module came from in errors (a path names itself).

    For an exported file ``cfg`` replaces its embedded config when given; for a checkpoint the
    checkpoint's own config is used unless ``cfg`` is given. A checkpoint or weights file run on ONNX
    Runtime or OpenVINO is exported once and cached by its content hash
    (:mod:`fasterpose.deploy.export_cache`), not re-exported at every load.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise ValueError(f"runtime must be 'auto' or one of {RUNTIMES}, got {runtime!r}")
    if isinstance(model_or_path, str | os.PathLike):
        path = Path(model_or_path)
        if is_exported(path):
            return open_exported(path, cfg, runtime, precision)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        resolved = _cpu_runtime(runtime, device, precision or "fp32")
        if resolved != "torch" and (precision or "fp32") != "int8":
            # a torch file on ONNX Runtime / OpenVINO: its ONNX export is made once and cached
            from fasterpose.deploy.export_cache import cached_onnx

            onnx_file = cached_onnx(path, cfg, lambda p, c: load_torch_model(p, c, "cpu"))
            return open_exported(onnx_file, cfg, resolved, precision or "fp32", str(path))
        model, ck_cfg = load_torch_model(path, cfg, device)
        cfg = cfg or ck_cfg
        source = str(path)
    else:
        model = model_or_path
        if cfg is None:
            raise ValueError("a torch module needs its config: Predictor(model, cfg=cfg)")
    precision = precision or "fp32"
    runtime = _cpu_runtime(runtime, device, precision)
    if runtime == "torch":
        from fasterpose.pipeline.torch_runner import TorchRunner

        runner = TorchRunner(model, device=device, precision=precision)
        runner.source = source or runner.source
        return runner, cfg
    if precision == "int8":
        raise ValueError("int8 needs a quantised export: `fasterpose export --precision int8`")
    from fasterpose.deploy.onnx_export import onnx_bytes

    data = onnx_bytes(model, cfg.data.input_size)
    exported: OnnxRuntimeRunner | OpenVinoRunner
    if runtime == "onnxruntime":
        exported = OnnxRuntimeRunner(data, precision=precision)
    else:
        import io

        import openvino as ov

        exported = OpenVinoRunner(ov.convert_model(io.BytesIO(data)), precision=precision)
    exported.source = source or exported.source
    return exported, cfg


def _cpu_runtime(runtime: str, device: str, precision: str) -> str:
    """``runtime`` with ``auto`` resolved (torch off the CPU); a CPU-only runtime on a GPU is an error."""
    if runtime == "auto":
        runtime = auto_cpu_runtime(precision) if str(device).startswith("cpu") else "torch"
    if runtime != "torch" and not str(device).startswith("cpu"):
        raise ValueError(f"runtime {runtime!r} runs on the CPU only; use runtime='torch' for device {device!r}")
    return runtime
