"""The config and precision an exported model carries (ONNX metadata / OpenVINO rt_info). No torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fasterpose.config import Config, config_from_dict, config_to_dict

CONFIG_KEY = "fasterpose.config"
PRECISION_KEY = "fasterpose.precision"
INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"


def set_onnx_metadata(proto: Any, cfg: Config | None, precision: str) -> None:
    entries = {PRECISION_KEY: precision}
    if cfg is not None:
        entries[CONFIG_KEY] = json.dumps(config_to_dict(cfg))
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value


def _onnx_props(path: Path) -> dict[str, str]:
    """ONNX metadata_props, read from the file's protobuf directly: no onnx package, no runtime needed."""
    from fasterpose.onnx_proto import OnnxProtoError, onnx_metadata_props
    from fasterpose.runtimes.base import unreadable_model

    try:
        return onnx_metadata_props(path)
    except OnnxProtoError as exc:
        raise unreadable_model(path, exc) from exc


def read_metadata(path: str | Path) -> tuple[Config | None, str]:
    """The config and precision stored in an exported ``.onnx`` or ``.xml`` (None / fp32 if absent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    raw: str | None = None
    precision = "fp32"
    from fasterpose.runtimes.formats import ONNX, OPENVINO, exported_kind

    kind = exported_kind(p)
    if kind == ONNX:
        props = _onnx_props(p)
        raw, precision = props.get(CONFIG_KEY), props.get(PRECISION_KEY, "fp32")
    elif kind == OPENVINO:
        from fasterpose.runtimes.base import unreadable_model
        from fasterpose.runtimes.openvino_runner import openvino_core

        try:
            model = openvino_core().read_model(str(p))
        except RuntimeError as exc:
            raise unreadable_model(p, exc) from exc
        if model.has_rt_info(["fasterpose", "config"]):
            raw = model.get_rt_info(["fasterpose", "config"]).astype(str)
        if model.has_rt_info(["fasterpose", "precision"]):
            precision = model.get_rt_info(["fasterpose", "precision"]).astype(str)
    else:
        raise ValueError(f"{p}: not an exported model (expected .onnx or .xml)")
    from fasterpose.integrity import verify_exported

    verify_exported(p)  # the content hash, before anything it carries is used
    try:
        cfg = config_from_dict(json.loads(raw)) if raw else None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: its embedded fasterpose config is unreadable: {exc}") from exc
    return cfg, precision
