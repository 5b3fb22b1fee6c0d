"""ONNX export: one self-contained file (weights inside, opset 17, dynamic batch axis, the LHR pixel
shuffle as ``DepthToSpace`` in CRD mode), the experiment config in its metadata."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fasterpose.atomic import atomic_write_bytes
from fasterpose.config import Config
from fasterpose.deploy.metadata import INPUT_NAME, OUTPUT_NAME, set_onnx_metadata


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
    set_onnx_metadata(proto, cfg, "fp32")
    onnx.checker.check_model(proto)
    return save_onnx(proto, path)


def save_onnx(proto: Any, path: str | Path) -> Path:
    """Write an ONNX ``ModelProto`` as one file sealed with its content hash
    (:func:`fasterpose.integrity.seal_onnx`; an earlier hash entry is dropped first)."""
    from fasterpose.integrity import ONNX_HASH_KEY, seal_onnx

    keep = [p for p in proto.metadata_props if p.key != ONNX_HASH_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    return atomic_write_bytes(Path(path), seal_onnx(proto.SerializeToString()), "ONNX model")


def onnx_op_types(path: str | Path) -> list[str]:
    """Operator types of an ONNX file's graph, in order."""
    import onnx

    return [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
