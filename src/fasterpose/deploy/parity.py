"""Parity of an exported model against the torch model: raw outputs and decoded keypoints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from fasterpose.activation import outputs_logits, sigmoid
from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config


def compare_heatmaps(
    reference: np.ndarray, candidate: np.ndarray, codec: HeatmapCodec, apply_sigmoid: bool
) -> dict[str, float]:
    """Parity of two runtimes' raw outputs (B, K, h, w).

    Returns max and mean absolute difference of the raw outputs, and the mean / max distance
    between the decoded keypoints in network-input pixels.
    """
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    ref, cand = (sigmoid(reference), sigmoid(candidate)) if apply_sigmoid else (reference, candidate)
    k_ref, _ = codec.decode(ref)
    k_cand, _ = codec.decode(cand)
    dist = np.linalg.norm(k_ref.astype(np.float64) - k_cand, axis=-1)
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "kpt_px_mean": float(dist.mean()),
        "kpt_px_max": float(dist.max()),
    }


def parity_report(
    model: nn.Module,
    cfg: Config,
    exported: str | Path,
    precision: str,
    crops: np.ndarray,
    runtimes: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Compare an exported file to the torch model on ``crops`` (N, 3, H, W), per runtime (a bf16 file
    on a CPU without bf16 is reported as skipped: it would silently run at another precision)."""
    from fasterpose.deploy.runtimes import OnnxRuntimeRunner, OpenVinoRunner
    from fasterpose.pipeline.torch_runner import TorchRunner

    codec = HeatmapCodec.from_config(cfg)
    reference = TorchRunner(model, channels_last=False)(crops)
    path = Path(exported)
    if runtimes is None:
        runtimes = ["onnxruntime", "openvino"] if path.suffix == ".onnx" else ["openvino"]
    report: dict[str, dict[str, Any]] = {}
    from fasterpose.deploy.runtimes import cpu_has_bf16

    for rt in runtimes:
        if precision == "bf16" and not cpu_has_bf16():
            report[rt] = {"skipped": "this CPU has no bf16 (OpenVINO reports no BF16 capability)"}
            continue
        runner: Any
        if rt == "onnxruntime":
            runner = OnnxRuntimeRunner(path, precision=precision)
        else:
            runner = OpenVinoRunner(path, precision=precision)
        report[rt] = compare_heatmaps(reference, runner(crops), codec, outputs_logits(cfg))
    return report
