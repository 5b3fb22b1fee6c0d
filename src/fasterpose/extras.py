"""Which optional extra of ``pip install fasterpose[...]`` provides a package, and the one-line error
that says so when it is missing. No imports beyond the standard library.

    base     numpy, OpenCV, pycocotools, PyYAML, tqdm: preprocessing, decoding, COCO evaluation
    runtime  onnxruntime + openvino: run exported .onnx / .xml files (either one alone is enough)
    train    torch, torchvision, timm, safetensors, matplotlib, scipy: training, checkpoints, export
    deploy   onnx (+ both runtimes): export to ONNX / OpenVINO, INT8 quantisation
"""

from __future__ import annotations

from typing import Any

# top-level package -> (extra that installs it, its pip name)
EXTRA_OF: dict[str, str] = {
    "torch": "train",
    "torchvision": "train",
    "timm": "train",
    "safetensors": "train",
    "matplotlib": "train",
    "scipy": "train",
    "onnx": "deploy",
    "onnxruntime": "runtime",
    "openvino": "runtime",
    "nncf": "deploy",
}
RUNTIME_HELP = (
    "running an exported .onnx / .xml model needs a runtime: pip install 'fasterpose[runtime]' "
    "(ONNX Runtime and OpenVINO; either alone is enough: pip install onnxruntime, or pip install openvino)"
)


class MissingExtraError(ImportError):
    """An optional package this call needs is not installed; the message names the extra to install."""


def missing_extra(exc: ImportError, what: str) -> MissingExtraError | None:
    """The one-line error for ``what`` (``"training"``, ``"export"``, ...) when ``exc`` is a missing
    package of one of the extras; None when ``exc`` is some other import problem."""
    if isinstance(exc, MissingExtraError):
        return exc
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or name not in EXTRA_OF:
        return None
    if name in ("onnxruntime", "openvino") and what == "running an exported model":
        err = MissingExtraError(RUNTIME_HELP, name=name)
    else:
        err = MissingExtraError(f"{what} needs {name}: pip install 'fasterpose[{EXTRA_OF[name]}]'", name=name)
    return err


def require(module: str, what: str) -> None:
    """Raise :class:`MissingExtraError` for ``what`` unless ``module`` can be imported."""
    import importlib

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        err = missing_extra(exc, what)
        if err is None:
            raise
        raise err from None


def import_runtime(name: str) -> Any:
    """``import onnxruntime`` / ``import openvino``, or the one-line error naming what to install: the
    runtime extra when neither runtime is installed, else this runtime (or the installed one to use)."""
    import importlib
    import importlib.util

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != name:
            raise
        other = "openvino" if name == "onnxruntime" else "onnxruntime"
        if importlib.util.find_spec(other) is None:
            raise MissingExtraError(RUNTIME_HELP, name=name) from None
        raise MissingExtraError(
            f"runtime {name!r} is not installed: pip install {name} (or use runtime={other!r}, which is)", name=name
        ) from None
