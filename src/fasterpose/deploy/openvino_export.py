"""OpenVINO IR export: the ONNX model converted by ``openvino.convert_model``, saved with f32 weights;
the config and the intended inference precision (``fp32`` / ``bf16`` / ``int8``) go into rt_info.
bf16 is a run-time choice on CPU (``INFERENCE_PRECISION_HINT``), not a weight format."""

from __future__ import annotations

import json
from pathlib import Path

from fasterpose.config import Config, config_to_dict


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
    from fasterpose.integrity import seal_openvino

    seal_openvino(out)  # the content hashes of the .xml and the .bin, checked at every load
    return out
