"""The model-file backend: any model as a :class:`~fasterpose.runtimes.base.Runner` plus its config.

:func:`open_model` takes a path (classified once by :func:`fasterpose.runtimes.formats.classify`: a
training checkpoint, a FasterPose weights file, a bare state dict, a published lineage checkpoint, an
exported ``.onnx`` or an OpenVINO ``.xml``), a classified :class:`~fasterpose.runtimes.formats.ModelFile`,
a ``PoseModel`` or serialized ONNX bytes, and builds the runner for the runtime asked
(:mod:`fasterpose.runtimes`). ``Predictor``, ``fasterpose eval``, ``fasterpose export`` (parity and
validation) and ``fasterpose bench latency`` all open their models here. Exported files carry their
config and precision; ``.onnx`` / ``.xml`` never import torch.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fasterpose.config import Config
from fasterpose.deploy.metadata import read_metadata
from fasterpose.deploy.runtimes import auto_cpu_runtime
from fasterpose.runtimes.base import RUNTIMES, Runner
from fasterpose.runtimes.formats import (
    CHECKPOINT,
    LINEAGE,
    ONNX,
    OPENVINO,
    STATE_DICT,
    WEIGHTS,
    ModelFile,
    classify,
    refuse_non_checkpoint,
)

if TYPE_CHECKING:
    from torch import nn


def is_exported(path: str | os.PathLike[str]) -> bool:
    """An exported model file (``.onnx`` / ``.xml``, any case), runnable without torch."""
    from fasterpose.runtimes.formats import exported_kind

    return exported_kind(path) is not None


def load_torch_model(
    model: str | os.PathLike[str] | ModelFile, cfg: Config | None = None, device: Any = "cpu"
) -> tuple[nn.Module, Config]:
    """The torch model (eval mode) and its config of a checkpoint, weights file or lineage checkpoint
    (each with its own config), or of a bare state dict for ``cfg``'s architecture."""
    from fasterpose.extras import require

    path = model.path if isinstance(model, ModelFile) else Path(model)
    require("torch", f"{path}: a torch model file (run an exported .onnx / .xml without torch), which")
    mf = model if isinstance(model, ModelFile) else classify(path, map_location=device)
    if mf.exported:
        refuse_non_checkpoint(mf.path)  # "is an ONNX model, not a training checkpoint"
    if mf.kind == CHECKPOINT:
        from fasterpose.engine.checkpoint import check_checkpoint, model_from_checkpoint

        return model_from_checkpoint(mf.path, check_checkpoint(mf.path, mf.payload))
    if mf.kind == WEIGHTS:
        from fasterpose.models.pose_model import PoseModel
        from fasterpose.models.weights_file import load_into, read_weights

        state, file_cfg = read_weights(mf.path)
        net = PoseModel.for_loading(file_cfg)
        load_into(net, state, str(mf.path))
        return net.float().to(device).eval(), file_cfg
    if mf.kind == LINEAGE:
        from fasterpose.models.lineage import convert

        net, file_cfg, _ = convert(mf.path)
        return net.to(device), file_cfg
    assert mf.kind == STATE_DICT, mf.kind
    return _state_dict_model(mf, cfg, device)


def _state_dict_model(mf: ModelFile, cfg: Config | None, device: Any) -> tuple[nn.Module, Config]:
    """A bare state dict (not written by FasterPose) loaded into ``cfg``'s model."""
    if cfg is None:
        raise ValueError(
            f"{mf.path}: a bare weights file; give the config of its model (fasterpose eval CONFIG --model)"
        )
    from fasterpose.integrity import unverified
    from fasterpose.models.pose_model import PoseModel

    unverified(mf.path, "a bare state dict (not written by FasterPose) carries no content hash")
    net = PoseModel.for_loading(cfg)
    try:
        net.load_state_dict(mf.payload)
    except RuntimeError as exc:
        raise ValueError(
            f"{mf.path}: weights do not match the model of the config ({cfg.model.backbone}): {exc}"
        ) from exc
    return net.to(device).eval(), cfg


def load_model_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> tuple[nn.Module, Config]:
    """The torch model (eval mode) and config of a model file that carries its config."""
    return load_torch_model(path, None, map_location)


def model_device(device: str, model: object, runtime: str = "auto") -> str:
    """``device`` with ``auto`` resolved: a CUDA GPU when torch sees one and the model runs on torch, else
    the CPU. Exported files and the CPU runtimes never import torch for this."""
    if device != "auto":
        return device
    exported = isinstance(model, bytes) or (isinstance(model, ModelFile) and model.exported)
    exported = exported or (isinstance(model, str | os.PathLike) and is_exported(model))
    if exported or runtime not in ("auto", "torch"):
        return "cpu"
    try:
        from fasterpose.runtimes.device import auto_device

        return auto_device()
    except ImportError:
        return "cpu"


def open_model(
    model: nn.Module | str | os.PathLike[str] | ModelFile | bytes,
    runtime: str = "auto",
    precision: str | None = None,
    device: str = "auto",
    cfg: Config | None = None,
    *,
    source: str | None = None,
    **options: Any,
) -> tuple[Runner, Config]:
    """The runner for ``model`` on ``runtime`` and the model's own config.

    Args:
        model: a path (classified once), a :class:`ModelFile`, a torch module or serialized ONNX bytes.
        runtime: ``auto`` (exported files: their runtime; torch files: the measured CPU runtime on the
            CPU, torch on a GPU), ``torch``, ``onnxruntime`` or ``openvino``.
        precision: ``fp32`` / ``bf16`` / ``int8``; None: the exported file's own, else fp32.
        device: ``auto`` (:func:`model_device`), ``cpu``, ``cuda[:N]``; ONNX Runtime and OpenVINO run on the CPU.
        cfg: the architecture of a bare state dict, a module or ONNX bytes, and the config of an exported
            file that carries none. A file's own config is returned when it has one.
        source: the file a module or bytes came from, named in errors.
        options: runner settings: ``compile``, ``channels_last`` (torch), ``num_threads`` (ONNX Runtime,
            OpenVINO).

    A torch file run on ONNX Runtime or OpenVINO is exported once and cached by its content hash
    (:mod:`fasterpose.deploy.export_cache`), not re-exported at every load.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise ValueError(f"runtime must be 'auto' or one of {RUNTIMES}, got {runtime!r}")
    device = model_device(device, model, runtime)
    if isinstance(model, bytes):
        if cfg is None:
            raise ValueError("ONNX bytes need their config: open_model(data, cfg=cfg)")
        return _exported_runner(model, runtime, precision or "fp32", source, options), cfg
    if isinstance(model, str | os.PathLike | ModelFile):
        mf = model if isinstance(model, ModelFile) else _classify(Path(model), device)
        if mf.exported:
            return _open_exported(mf, cfg, runtime, precision, source, options)
        return _open_torch_file(mf, cfg, runtime, precision or "fp32", device, options)
    if cfg is None:
        raise ValueError("a torch module needs its config: Predictor(model, cfg=cfg)")
    return _module_runner(model, cfg, runtime, precision or "fp32", device, source, options), cfg


def _classify(path: Path, device: str) -> ModelFile:
    from fasterpose.runtimes.formats import exported_kind

    if exported_kind(path) is None:
        from fasterpose.extras import require

        require("torch", f"{path}: a torch model file (run an exported .onnx / .xml without torch), which")
    return classify(path, map_location=device)


def _open_exported(
    mf: ModelFile, cfg: Config | None, runtime: str, precision: str | None, source: str | None, options: dict[str, Any]
) -> tuple[Runner, Config]:
    """An ``.onnx`` / ``.xml`` file on ONNX Runtime or OpenVINO, with its embedded (or the given) config."""
    file_cfg, file_precision = read_metadata(mf.path)
    own = file_cfg or cfg
    if own is None:
        raise ValueError(f"{mf.path}: carries no fasterpose config; pass cfg= (or re-export it)")
    precision = precision or file_precision
    if runtime == "auto":
        runtime = "openvino" if mf.kind == OPENVINO else auto_cpu_runtime(precision)
    if runtime == "torch" or (runtime == "onnxruntime" and mf.kind == OPENVINO):
        raise ValueError(f"{mf.path}: runtime {runtime!r} cannot run a {mf.path.suffix} file")
    runner = _exported_runner(mf.path, runtime, precision, source, options)
    return runner, own


def _open_torch_file(
    mf: ModelFile, cfg: Config | None, runtime: str, precision: str, device: str, options: dict[str, Any]
) -> tuple[Runner, Config]:
    runtime = _cpu_runtime(runtime, device, precision)
    arch = cfg if mf.kind == STATE_DICT else None  # files with their own config are run with it
    if runtime != "torch" and precision != "int8":
        # a torch file on ONNX Runtime / OpenVINO: its ONNX export is made once and cached
        from fasterpose.deploy.export_cache import cached_onnx

        onnx_file = cached_onnx(mf.path, arch, lambda p, c: load_torch_model(mf, c, "cpu"))
        runner, own = _open_exported(ModelFile(onnx_file, ONNX), arch, runtime, precision, str(mf.path), options)
        return runner, own
    net, own = load_torch_model(mf, arch, device)
    return _module_runner(net, own, runtime, precision, device, str(mf.path), options), own


def _module_runner(
    model: nn.Module,
    cfg: Config,
    runtime: str,
    precision: str,
    device: str,
    source: str | None,
    options: dict[str, Any],
) -> Runner:
    runtime = _cpu_runtime(runtime, device, precision)
    if runtime == "torch":
        from fasterpose.runtimes.torch_runner import TorchRunner

        runner = TorchRunner(model, device=device, precision=precision, **options)
        runner.source = source or runner.source
        return runner
    if precision == "int8":
        raise ValueError("int8 needs a quantised export: `fasterpose export --precision int8`")
    from fasterpose.deploy.onnx_export import onnx_bytes

    return _exported_runner(onnx_bytes(model, cfg.data.input_size), runtime, precision, source, options)


def _exported_runner(
    model: Path | bytes, runtime: str, precision: str, source: str | None, options: dict[str, Any]
) -> Runner:
    """ONNX Runtime or OpenVINO (``auto``: the measured CPU runtime) on a file or ONNX bytes."""
    if runtime == "auto":
        runtime = auto_cpu_runtime(precision)
    runner: Any
    if runtime == "onnxruntime":
        from fasterpose.runtimes.onnxruntime_runner import OnnxRuntimeRunner

        runner = OnnxRuntimeRunner(model, precision=precision, **options)
    elif runtime == "openvino":
        from fasterpose.runtimes.openvino_runner import OpenVinoRunner

        if isinstance(model, bytes):
            from fasterpose.extras import import_runtime

            ov = import_runtime("openvino")
            runner = OpenVinoRunner(ov.convert_model(io.BytesIO(model)), precision=precision, **options)
        else:
            runner = OpenVinoRunner(model, precision=precision, **options)
    else:
        raise ValueError(f"runtime {runtime!r} cannot run an exported model (use onnxruntime or openvino)")
    runner.source = source or runner.source  # a cached export or bytes name the file they were made from
    return runner


def open_runner(
    model_or_path: nn.Module | str | os.PathLike[str],
    cfg: Config | None = None,
    runtime: str = "auto",
    device: str = "cpu",
    precision: str | None = None,
    source: str | None = None,
) -> tuple[Runner, Config]:
    """:func:`open_model` returning ``cfg`` in place of the model's own config when ``cfg`` is given."""
    runner, own = open_model(model_or_path, runtime, precision, device, cfg, source=source)
    return runner, cfg or own


def _cpu_runtime(runtime: str, device: str, precision: str) -> str:
    """``runtime`` with ``auto`` resolved (torch off the CPU); a CPU-only runtime on a GPU is an error."""
    if runtime == "auto":
        runtime = auto_cpu_runtime(precision) if str(device).startswith("cpu") else "torch"
    if runtime != "torch" and not str(device).startswith("cpu"):
        raise ValueError(f"runtime {runtime!r} runs on the CPU only; use runtime='torch' for device {device!r}")
    return runtime
