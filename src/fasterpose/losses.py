"""Heatmap losses: regressive cross-entropy (the paper's Eq. 2/3) and the Table 6 comparators.

All losses take ``(output (B, K, h, w), target (B, K, h, w), target_weight (B, K))`` and return a
scalar. ``output`` is the raw model output: logits for the sigmoid losses (RCE, CE), the heatmap
itself for MSE and the centroid loss. Half-precision inputs are computed in float32, whatever the autocast dtype.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from fasterpose.config import LossConfig

DEFAULT_POSITIVE_THRESHOLD = 0.01  # reproduces Table 1: 113 positives at 64x48 / sigma 2, 261 at 96x72 / sigma 3


def _check(output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> None:
    if output.shape != target.shape or output.ndim != 4:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} must both be (B, K, h, w)")
    if target_weight.shape != output.shape[:2]:
        raise ValueError(f"target_weight must be (B, K) = {tuple(output.shape[:2])}, got {tuple(target_weight.shape)}")


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs compute in float32; float32 and float64 keep their precision."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def positive_mask(target: torch.Tensor, threshold: float = DEFAULT_POSITIVE_THRESHOLD) -> torch.Tensor:
    """Positive pixels ``t >= threshold``, decided in float32 whatever the target's dtype.

    Targets are drawn in float32; comparing them in float32 against the float32 threshold makes the
    set identical for float32, float64 and half-precision targets of the same map.
    """
    return target.to(torch.float32) >= torch.tensor(threshold, dtype=torch.float32, device=target.device)


def rce_log_one_minus_abs_error(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``log(1 - |sigmoid(x) - t|)`` computed from logits, finite for any finite x and t in [0, 1].

    When ``y >= t``: ``1 - |e| = sigmoid(-x) + t``; otherwise ``1 - |e| = sigmoid(x) + 1 - t``. Each
    branch is a log-sum-exp of a log-sigmoid and a log of a target term, so no clamp is needed and
    gradients survive saturated logits.
    """
    x = _upcast(logits)
    t = target.to(x.dtype)
    upper = torch.logaddexp(F.logsigmoid(-x), torch.log(t))  # y >= t
    lower = torch.logaddexp(F.logsigmoid(x), torch.log1p(-t))  # y < t
    return torch.where(torch.sigmoid(x) >= t, upper, lower)


def regressive_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.7,
    gamma: float = 1.0,
    positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD,
) -> torch.Tensor:
    """Per-pixel RCE (Eq. 3): ``-w(t) |e|^gamma log(1 - |e|)``, ``e = sigmoid(x) - t``.

    ``w(t) = alpha`` where ``t >= positive_threshold`` (positive pixels), ``1 - alpha`` elsewhere.
    Returns a float32 tensor of the input's shape.
    """
    x = _upcast(logits)
    t = target.to(x.dtype)
    log_term = rce_log_one_minus_abs_error(x, t)
    loss = -log_term
    if gamma != 0:
        abs_err = (torch.sigmoid(x) - t).abs()
        loss = loss * abs_err.pow(gamma)
    positive = positive_mask(t, positive_threshold)
    weight = torch.where(positive, torch.full_like(t, alpha), torch.full_like(t, 1.0 - alpha))
    return weight * loss


def _reduce(per_pixel: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
    """Mean over pixels, joints and batch, each joint's map scaled by its target weight."""
    return (per_pixel * target_weight.float()[:, :, None, None]).mean()


class RegressiveCrossEntropy(nn.Module):
    """The paper's RCE loss on sigmoid outputs, reduced like JointsMSE (mean, masked by target_weight)."""

    def __init__(
        self, alpha: float = 0.7, gamma: float = 1.0, positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.alpha, self.gamma, self.positive_threshold = alpha, gamma, positive_threshold

    def forward(self, logits: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        _check(logits, target, target_weight)
        per_pixel = regressive_cross_entropy(logits, target, self.alpha, self.gamma, self.positive_threshold)
        return _reduce(per_pixel, target_weight)


class JointsMSELoss(nn.Module):
    """SimpleBaseline's target-weighted MSE: ``0.5 * mean((w * (pred - t))^2)`` over joints and pixels."""

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        _check(output, target, target_weight)
        w = target_weight.float()[:, :, None, None]
        return 0.5 * ((output.float() * w - target.float() * w) ** 2).mean()


def one_hot_targets(target: torch.Tensor) -> torch.Tensor:
    """1 at each map's peak pixel (maps with any positive value), 0 elsewhere."""
    b, k, h, w = target.shape
    flat = target.reshape(b, k, -1)
    out = torch.zeros_like(flat)
    idx = flat.argmax(dim=2, keepdim=True)
    out.scatter_(2, idx, 1.0)
    out = out * (flat.amax(dim=2, keepdim=True) > 0)
    return out.reshape(b, k, h, w)


class BinaryHeatmapCE(nn.Module):
    """Table 6's CE comparators: binary cross-entropy (the paper's Eq. 1) on sigmoid outputs with 0/1 targets.

    ``mode="onehot"``: only the peak pixel is positive (PoseFix); ``mode="mask"``: every pixel with
    target >= ``positive_threshold`` is positive (G-RMI's disk). By default plain, unweighted CE as
    Eq. 1 prints it; ``weighted=True`` weights positives and negatives ``alpha`` / ``1 - alpha`` as in
    RCE, and then equals RCE with gamma 0 on the binarised target.
    """

    def __init__(
        self,
        mode: str = "mask",
        alpha: float = 0.7,
        positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD,
        weighted: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ("onehot", "mask"):
            raise ValueError(f"mode must be 'onehot' or 'mask', got {mode!r}")
        self.mode, self.alpha, self.positive_threshold, self.weighted = mode, alpha, positive_threshold, weighted

    def forward(self, logits: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        _check(logits, target, target_weight)
        t = target.float()
        binary = one_hot_targets(t) if self.mode == "onehot" else positive_mask(t, self.positive_threshold).float()
        bce = F.binary_cross_entropy_with_logits(logits.float(), binary, reduction="none")
        if self.weighted:
            bce = bce * torch.where(binary > 0.5, torch.full_like(t, self.alpha), torch.full_like(t, 1 - self.alpha))
        return _reduce(bce, target_weight)


def heatmap_centroids(heatmaps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(B, K, h, w) non-negative maps -> (B, K, 2) their (x, y) centres of mass in pixels (0 for an empty map)."""
    hm = _upcast(heatmaps).clamp(min=0)
    h, w = hm.shape[-2:]
    mass = hm.sum(dim=(2, 3))
    x = (hm.sum(dim=2) * torch.arange(w, dtype=hm.dtype, device=hm.device)).sum(dim=2)
    y = (hm.sum(dim=3) * torch.arange(h, dtype=hm.dtype, device=hm.device)).sum(dim=2)
    return torch.stack([x, y], dim=2) / (mass[..., None] + eps)


class CentroidL1Loss(nn.Module):
    """Coordinate regression through heatmaps: the L1 distance in heatmap pixels between the centres of mass
    of the output and the target maps, averaged over the joints with weight > 0.

    For a target Gaussian the centre of mass is its centre (pulled inwards by the same truncation for a
    rendered output at the same place near a border), so the loss is 0 exactly when the coordinates agree.
    It trains :class:`~fasterpose.models.heads.PooledRegressor`, the study's head-neutral pretraining.
    """

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        _check(output, target, target_weight)
        w = (target_weight.float() > 0).float()
        dist = (heatmap_centroids(output) - heatmap_centroids(target)).abs().sum(dim=2)
        return (dist * w).sum() / w.sum().clamp(min=1.0)


def build_loss(cfg: LossConfig) -> nn.Module:
    """The loss named by ``cfg.name``: rce, mse, ce_onehot, ce_mask or centroid."""
    if cfg.name == "rce":
        return RegressiveCrossEntropy(cfg.alpha, cfg.gamma, cfg.positive_threshold)
    if cfg.name == "mse":
        return JointsMSELoss()
    if cfg.name == "ce_onehot":
        return BinaryHeatmapCE("onehot", cfg.alpha, cfg.positive_threshold, cfg.ce_weighted)
    if cfg.name == "ce_mask":
        return BinaryHeatmapCE("mask", cfg.alpha, cfg.positive_threshold, cfg.ce_weighted)
    if cfg.name == "centroid":
        return CentroidL1Loss()
    raise ValueError(f"unknown loss {cfg.name!r}; valid: rce, mse, ce_onehot, ce_mask, centroid")
