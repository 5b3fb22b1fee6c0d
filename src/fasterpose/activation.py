"""What a pose network's raw outputs are: logits (sigmoid-trained) or heatmap values (MSE).

The one place that decides it. Models read it for the bias prior of their last layer, inference
for whether to apply a sigmoid before flip averaging and decoding; nothing else tests loss names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fasterpose.config import Config

SIGMOID_LOSSES = ("rce", "ce_onehot", "ce_mask")


def loss_outputs_logits(loss_name: str) -> bool:
    """True when a model trained with ``loss_name`` outputs logits (its loss applies the sigmoid)."""
    return loss_name in SIGMOID_LOSSES


def outputs_logits(cfg: Config) -> bool:
    """True when the model of ``cfg`` outputs logits, so inference applies a sigmoid."""
    return loss_outputs_logits(cfg.loss.name)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float32))), dtype=np.float32)
