"""ONNX Runtime behind the :class:`~fasterpose.runtimes.base.Runner` interface: an ONNX file or bytes on
the CPU execution provider, intra-op spinning off. No torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fasterpose.runtimes.base import check_images, default_num_threads, in_fixed_batches, unreadable_model


class OnnxRuntimeRunner:
    """An ONNX model on ONNX Runtime's CPU execution provider.

    Args:
        model: ``.onnx`` path or the serialized model bytes.
        num_threads: intra-op threads (default: :func:`default_num_threads`).
        precision: label only (``int8`` models carry their quantised ops).
    """

    runtime = "onnxruntime"

    def __init__(
        self, model: str | os.PathLike[str] | bytes, num_threads: int | None = None, precision: str = "fp32"
    ) -> None:
        from fasterpose.extras import import_runtime

        ort = import_runtime("onnxruntime")
        if precision == "bf16":
            raise ValueError("onnxruntime's CPU provider has no bf16 convolutions; use runtime=openvino for bf16")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or default_num_threads()
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        source: bytes | str
        if isinstance(model, bytes):
            source = model
        else:
            source = str(model)
            if not Path(source).is_file():
                raise FileNotFoundError(f"ONNX model not found: {source}")
        try:
            self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types (InvalidProtobuf, Fail, ...)
            raise unreadable_model(source if isinstance(source, str) else "<ONNX bytes>.onnx", exc) from exc
        if isinstance(source, str):
            from fasterpose.integrity import verify_exported

            verify_exported(source)
        self.input_name = self.session.get_inputs()[0].name
        self.precision = precision
        self.source = source if isinstance(source, str) else "the model"
        self.input_shape = tuple(d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return in_fixed_batches(self._run, check_images(images), self.input_shape[0] if self.input_shape else None)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)
