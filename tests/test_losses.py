"""Losses: RCE against a float64 reference, gradcheck, numerics at extreme logits, comparators."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fasterpose.config import LossConfig
from fasterpose.losses import (
    BinaryHeatmapCE,
    JointsMSELoss,
    RegressiveCrossEntropy,
    build_loss,
    one_hot_targets,
    regressive_cross_entropy,
)

THR = math.exp(-4.5)


def rce_reference(x: torch.Tensor, t: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """The formula as written in the paper, in float64: -w(t) |e|^gamma log(1 - |e|)."""
    x, t = x.double(), t.double()
    e = (torch.sigmoid(x) - t).abs()
    w = torch.where(t >= THR, torch.full_like(t, alpha), torch.full_like(t, 1 - alpha))
    return -w * e.pow(gamma) * torch.log(1 - e)


def _random_case(seed: int, shape=(2, 3, 8, 6)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 4
    t = torch.rand(shape, generator=g)
    t[t < 0.5] = 0.0  # realistic: many exact zeros, plus positives in (0, 1]
    t[0, 0, 0, 0] = 1.0
    return x, t


@pytest.mark.parametrize(("alpha", "gamma"), [(0.7, 1.0), (0.5, 0.0), (0.25, 2.0), (0.9, 0.5)])
def test_rce_matches_float64_reference(alpha: float, gamma: float) -> None:
    for seed in range(5):
        x, t = _random_case(seed)
        ours = regressive_cross_entropy(x.double(), t.double(), alpha, gamma).double()
        ref = rce_reference(x, t, alpha, gamma)
        rel = ((ours - ref).abs() / ref.abs().clamp_min(1e-300)).max().item()
        assert rel < 1e-6


def test_rce_float32_close_to_reference() -> None:
    x, t = _random_case(11)
    ours = regressive_cross_entropy(x, t, 0.7, 1.0).double()
    ref = rce_reference(x, t, 0.7, 1.0)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_rce_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(1, 2, 4, 3, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    t = torch.rand(1, 2, 4, 3, generator=g, dtype=torch.float64) * 0.98 + 0.01
    t[0, 0, 0] = 0.0
    w = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    loss = RegressiveCrossEntropy(0.7, 1.0)
    assert torch.autograd.gradcheck(lambda z: loss(z, t, w), (x,), eps=1e-6, atol=1e-7)
    loss0 = RegressiveCrossEntropy(0.6, 0.0)
    assert torch.autograd.gradcheck(lambda z: loss0(z, t, w), (x,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("autocast", [False, True])
def test_rce_finite_for_extreme_logits(autocast: bool) -> None:
    x = torch.linspace(-100, 100, 401).reshape(1, 1, 1, 401)
    targets = [torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, 0.3), torch.rand_like(x)]
    loss_fn = RegressiveCrossEntropy(0.7, 1.0)
    for t in targets:
        xx = x.clone().requires_grad_(True)
        w = torch.ones(1, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = xx * 1.0  # an autocast region op producing the "model output"
            loss = loss_fn(logits, t, w)
        loss.backward()
        assert torch.isfinite(loss).item()
        assert loss.dtype == torch.float32
        assert torch.isfinite(xx.grad).all()
    # gradient does not vanish for a confidently wrong, saturated logit
    xx = torch.full((1, 1, 1, 1), -60.0, requires_grad=True)
    loss_fn(xx, torch.ones(1, 1, 1, 1), torch.ones(1, 1)).backward()
    assert xx.grad.item() < -0.1


def test_rce_reduces_to_half_bce_on_binary_targets() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 8, 6, generator=g) * 5
    t = (torch.rand(2, 4, 8, 6, generator=g) > 0.8).float()
    w = torch.ones(2, 4)
    rce = RegressiveCrossEntropy(alpha=0.5, gamma=0.0)(x, t, w)
    bce = F.binary_cross_entropy_with_logits(x, t)
    assert rce.item() == pytest.approx(0.5 * bce.item(), rel=1e-5)


def test_target_weight_masks_joints() -> None:
    x, t = _random_case(7)
    w = torch.ones(2, 3)
    full = RegressiveCrossEntropy()(x, t, w)
    w0 = w.clone()
    w0[:, 1] = 0
    x2 = x.clone()
    x2[:, 1] = 50.0  # anything in a masked joint must not matter
    assert RegressiveCrossEntropy()(x2, t, w0).item() == pytest.approx(
        RegressiveCrossEntropy()(x, t, w0).item(), rel=1e-6)
    assert RegressiveCrossEntropy()(x, t, w0).item() < full.item()


def test_joints_mse_matches_simplebaseline_formula() -> None:
    x, t = _random_case(9)
    w = torch.tensor([[1.0, 0.0, 1.5], [1.0, 1.0, 1.0]])
    ref = 0.0
    for k in range(3):
        ref += 0.5 * F.mse_loss(x[:, k].reshape(2, -1) * w[:, k:k + 1], t[:, k].reshape(2, -1) * w[:, k:k + 1])
    assert JointsMSELoss()(x, t, w).item() == pytest.approx(ref.item() / 3, rel=1e-6)


def test_ce_variants_targets_and_values() -> None:
    t = torch.zeros(1, 2, 5, 5)
    t[0, 0, 2, 3] = 1.0
    t[0, 0, 2, 2] = 0.6
    t[0, 0, 0, 0] = 0.005  # below the positive threshold
    oh = one_hot_targets(t)
    assert oh[0, 0].sum() == 1 and oh[0, 0, 2, 3] == 1 and oh[0, 1].sum() == 0
    x = torch.randn(1, 2, 5, 5)
    w = torch.ones(1, 2)
    mask_loss = BinaryHeatmapCE("mask", alpha=0.5)(x, t, w)
    mask_target = (t >= THR).float()
    assert mask_loss.item() == pytest.approx(0.5 * F.binary_cross_entropy_with_logits(x, mask_target).item(), rel=1e-5)
    onehot_loss = BinaryHeatmapCE("onehot", alpha=0.5)(x, t, w)
    assert onehot_loss.item() == pytest.approx(0.5 * F.binary_cross_entropy_with_logits(x, oh).item(), rel=1e-5)


def test_build_loss_and_shape_errors() -> None:
    assert isinstance(build_loss(LossConfig(name="rce")), RegressiveCrossEntropy)
    assert isinstance(build_loss(LossConfig(name="mse")), JointsMSELoss)
    assert build_loss(LossConfig(name="ce_onehot")).mode == "onehot"
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss(LossConfig(name="l1"))
    with pytest.raises(ValueError, match="target_weight"):
        RegressiveCrossEntropy()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.ones(2))
    with pytest.raises(ValueError, match="alpha"):
        RegressiveCrossEntropy(alpha=1.5)
