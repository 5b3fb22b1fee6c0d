"""The config and precision an exported model carries (ONNX metadata / OpenVINO rt_info). No torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fasterpose.config import Config, config_from_dict, config_to_dict

CONFIG_KEY = "fasterpose.config"
PRECISION_KEY = "fasterpose.precision"
MODEL_SUFFIXES = (".onnx", ".xml")
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
    """ONNX metadata_props through ONNX Runtime (the runtime install) or the onnx package."""
    from fasterpose.deploy.runtimes import unreadable_model

    try:
        import onnxruntime as ort
    except ImportError:
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise unreadable_model(path, exc) from exc
        return {m.key: m.value for m in proto.metadata_props}
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own types (InvalidProtobuf, Fail, ...)
        raise unreadable_model(path, exc) from exc
    return dict(session.get_modelmeta().custom_metadata_map)


def read_metadata(path: str | Path) -> tuple[Config | None, str]:
    """The config and precision stored in an exported ``.onnx`` or ``.xml`` (None / fp32 if absent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    raw: str | None = None
    precision = "fp32"
    if p.suffix == ".onnx":
        props = _onnx_props(p)
        raw, precision = props.get(CONFIG_KEY), props.get(PRECISION_KEY, "fp32")
    elif p.suffix == ".xml":
        from fasterpose.deploy.runtimes import openvino_core, unreadable_model

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
    try:
        cfg = config_from_dict(json.loads(raw)) if raw else None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: its embedded fasterpose config is unreadable: {exc}") from exc
    return cfg, precision
