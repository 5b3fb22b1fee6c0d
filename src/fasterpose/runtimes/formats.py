"""What a model file is: the one classifier of a model path (the suffix table is :mod:`~fasterpose.runtimes.suffixes`).

    kind        how it is recognised                                    read by
    onnx        ``.onnx`` (any case)                                    ONNX Runtime / OpenVINO, no torch
    openvino    ``.xml`` (any case; its weights in the ``.bin`` beside)  OpenVINO, no torch
    weights     a safetensors header with the ``fasterpose-weights`` marker (``.safetensors``)
    checkpoint  a torch file holding the ``fasterpose-checkpoint`` marker (``.pth``, ``.pt``, ...)
    lineage     a torch file holding a published SimpleBaseline state dict (:mod:`fasterpose.models.lineage`)
    state_dict  a torch file holding any other state dict of tensors (the architecture comes from a config)

:func:`classify` decides once, from the suffix for exported files and from the content for torch files
(read once, weights-only; :attr:`ModelFile.payload` carries what was read). Exported files are
classified without importing torch. Anything else is refused with one line naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fasterpose.runtimes.suffixes import (
    EXPORTED_SUFFIXES,
    IR_WEIGHTS_SUFFIX,
    ONNX,
    OPENVINO,
    exported_kind,
    exported_suffix,
)

__all__ = [
    "CHECKPOINT",
    "EXPORTED_SUFFIXES",
    "KINDS",
    "LINEAGE",
    "ONNX",
    "OPENVINO",
    "STATE_DICT",
    "WEIGHTS",
    "CheckpointError",
    "ModelFile",
    "classify",
    "exported_kind",
    "exported_suffix",
    "read_torch",
    "refuse_non_checkpoint",
]

WEIGHTS, CHECKPOINT, LINEAGE, STATE_DICT = "weights", "checkpoint", "lineage", "state_dict"
KINDS = (ONNX, OPENVINO, WEIGHTS, CHECKPOINT, LINEAGE, STATE_DICT)
WEIGHTS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".tar", "")  # "": a file without a suffix is read by its content
CHECKPOINT_FORMAT = "fasterpose-checkpoint"
_DESCRIBED = {ONNX: "an ONNX model", OPENVINO: "an OpenVINO IR model"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, corrupt, unsafe, or not ours)."""


@dataclass(frozen=True)
class ModelFile:
    """A classified model path: its ``kind`` (one of :data:`KINDS`) and, for a torch file, what was
    read from it (the checkpoint dict, or the state dict unwrapped from ``state_dict`` / ``module.``)."""

    path: Path
    kind: str
    payload: Any = None

    @property
    def exported(self) -> bool:
        """An ``.onnx`` / ``.xml`` file: runs without torch, on ONNX Runtime or OpenVINO."""
        return self.kind in (ONNX, OPENVINO)


def refuse_non_checkpoint(p: Path) -> None:
    """Clear errors for the paths that are plainly not a torch checkpoint: a folder, a missing file,
    an exported model (by its suffix or, without one, by its first bytes)."""
    if p.is_dir():
        inside = sorted(q.name for q in p.glob("*.pth"))
        hint = f"; it holds {', '.join(inside)}" if inside else ""
        raise CheckpointError(f"{p} is a folder, not a checkpoint file: pass e.g. {p / 'last.pth'}{hint}")
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    exported = exported_kind(p)
    kind = _DESCRIBED[exported] if exported else None
    if p.suffix.lower() == IR_WEIGHTS_SUFFIX:
        kind = "OpenVINO IR weights"
    with p.open("rb") as fh:
        head = fh.read(8)
    if kind is None and head.lstrip().startswith(b"<"):
        kind = "an XML file (an OpenVINO IR model?)"
    if kind is None and head[:1] == b"\x08" and b"\x12" in head[1:4]:  # protobuf: ir_version, producer_name
        kind = f"an ONNX model (its name lacks the .onnx suffix: rename it {p.name}.onnx to run it)"
    if kind is not None:
        raise CheckpointError(
            f"{p} is {kind}, not a training checkpoint: exported models cannot be trained, evaluated as "
            f"checkpoints or re-exported; pass the .pth checkpoint it was exported from"
        )


def read_torch(p: Path, map_location: Any = "cpu") -> Any:
    """``torch.load(p, weights_only=True)``; one line naming ``p`` for every way it can fail."""
    import torch

    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types here
        msg = str(exc)
        if "weights_only" in msg or "Unsupported global" in msg or "GLOBAL" in msg:
            raise CheckpointError(
                f"{p}: refused: the file carries pickled Python objects, which could run code on "
                f"load. Only tensors and plain values are accepted."
            ) from exc
        raise CheckpointError(f"{p}: not a readable checkpoint ({exc.__class__.__name__}: {msg[:200]})") from exc


def classify(path: str | os.PathLike[str], map_location: Any = "cpu") -> ModelFile:
    """The kind of the model file at ``path`` (see the module docstring), decided once."""
    p = Path(path)
    kind = exported_kind(p)
    if kind is not None:
        if not p.is_file():
            raise FileNotFoundError(f"model file not found: {p}")
        return ModelFile(p, kind)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    if p.is_dir():
        refuse_non_checkpoint(p)  # names the checkpoints inside
    suffix = p.suffix.lower()
    if suffix not in (*TORCH_SUFFIXES, WEIGHTS_SUFFIX, IR_WEIGHTS_SUFFIX):
        known = ", ".join([*EXPORTED_SUFFIXES, WEIGHTS_SUFFIX, *(s for s in TORCH_SUFFIXES if s)])
        raise ValueError(f"{p}: not a model file FasterPose reads (suffix {p.suffix!r}; it reads {known})")
    from fasterpose.models.weights_file import is_weights_file  # torch: a weights file loads into torch

    if is_weights_file(p):
        return ModelFile(p, WEIGHTS)
    refuse_non_checkpoint(p)
    return _classify_torch(p, map_location)


def _classify_torch(p: Path, map_location: Any) -> ModelFile:
    """A torch file: our checkpoint, a lineage checkpoint or a bare state dict, from what it holds."""
    from fasterpose.models.lineage import LineageError, detect_layout, load_state

    try:
        data = read_torch(p, map_location)
    except CheckpointError as exc:
        if "pickled Python objects" not in str(exc):
            raise
        try:  # a lineage checkpoint may carry numpy metadata (mmpose's dataset info)
            state = load_state(p)
        except LineageError:
            raise exc from None
        if detect_layout(state) is None:
            raise
        return ModelFile(p, LINEAGE, state)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return ModelFile(p, CHECKPOINT, data)
    held = data.get("state_dict") if isinstance(data, dict) and isinstance(data.get("state_dict"), dict) else data
    import torch

    if not isinstance(held, dict) or not held or not all(isinstance(v, torch.Tensor) for v in held.values()):
        raise CheckpointError(
            f"{p}: not a FasterPose checkpoint (no '{CHECKPOINT_FORMAT}' marker) nor a state dict of tensors"
        )
    tensors = {str(k).removeprefix("module."): v for k, v in held.items()}
    return ModelFile(p, LINEAGE if detect_layout(tensors) is not None else STATE_DICT, tensors)
