"""The exported-model suffix table: ``.onnx`` (ONNX) and ``.xml`` (OpenVINO IR, its weights in the ``.bin``
beside it), compared case-insensitively. Standard library only, so that every module can ask it;
:mod:`fasterpose.runtimes.formats` classifies model files with it."""

from __future__ import annotations

import os
from pathlib import Path

ONNX, OPENVINO = "onnx", "openvino"
EXPORTED_SUFFIXES = {".onnx": ONNX, ".xml": OPENVINO}  # lower case
IR_WEIGHTS_SUFFIX = ".bin"  # an OpenVINO IR's weights, beside its .xml


def exported_kind(path: str | os.PathLike[str]) -> str | None:
    """``onnx`` / ``openvino`` for an exported model's suffix (any case), else None. Reads nothing."""
    return EXPORTED_SUFFIXES.get(Path(path).suffix.lower())


def exported_suffix(kind: str) -> str:
    """The suffix an exported model of ``kind`` (``onnx`` / ``openvino``) is written with."""
    return next(s for s, k in EXPORTED_SUFFIXES.items() if k == kind)


def model_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a model path stands for: an OpenVINO ``.xml`` and its ``.bin``, else the file itself."""
    p = Path(path)
    return [p, p.with_suffix(IR_WEIGHTS_SUFFIX)] if exported_kind(p) == OPENVINO else [p]
