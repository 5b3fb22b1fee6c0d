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
    from fasterpose.deploy.models import open_model
    from fasterpose.runtimes.device import has_bf16
    from fasterpose.runtimes.formats import ONNX, classify

    codec = HeatmapCodec.from_config(cfg)
    reference = open_model(model, "torch", "fp32", "cpu", cfg, channels_last=False)[0](crops)
    file = classify(exported)
    if runtimes is None:
        runtimes = ["onnxruntime", "openvino"] if file.kind == ONNX else ["openvino"]
    report: dict[str, dict[str, Any]] = {}
    for rt in runtimes:
        if precision == "bf16" and not has_bf16("cpu"):
            report[rt] = {"skipped": "this CPU has no bf16 instructions (AVX512-BF16 or AMX)"}
            continue
        runner, _ = open_model(file, rt, precision, "cpu", cfg)
        report[rt] = compare_heatmaps(reference, runner(crops), codec, outputs_logits(cfg))
    return report
