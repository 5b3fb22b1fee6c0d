"""Losses: RCE against a float64 reference, gradcheck, numerics at extreme logits, comparators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fasterpose.codec import HeatmapCodec
from fasterpose.config import LossConfig
from fasterpose.losses import (
    DEFAULT_POSITIVE_THRESHOLD,
    BinaryHeatmapCE,
    JointsMSELoss,
    RegressiveCrossEntropy,
    build_loss,
    one_hot_targets,
    positive_mask,
    regressive_cross_entropy,
)

THR = 0.01


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
        RegressiveCrossEntropy()(x, t, w0).item(), rel=1e-6
    )
    assert RegressiveCrossEntropy()(x, t, w0).item() < full.item()


def test_joints_mse_matches_simplebaseline_formula() -> None:
    x, t = _random_case(9)
    w = torch.tensor([[1.0, 0.0, 1.5], [1.0, 1.0, 1.0]])
    ref = 0.0
    for k in range(3):
        ref += 0.5 * F.mse_loss(x[:, k].reshape(2, -1) * w[:, k : k + 1], t[:, k].reshape(2, -1) * w[:, k : k + 1])
    assert JointsMSELoss()(x, t, w).item() == pytest.approx(ref.item() / 3, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("input_size", "heatmap_size", "sigma", "positives"),
    [((192, 256), (48, 64), 2.0, 113), ((288, 384), (72, 96), 3.0, 261)],
)
def test_positive_pixels_reproduce_table1(
    input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float, positives: int, dtype: torch.dtype
) -> None:
    """The paper's Table 1: 113 positives per joint at 64x48 / sigma 2 and 261 at 96x72 / sigma 3.

    Counted where RCE applies alpha: with alpha = 1 the negatives weigh 0, so the non-zero pixels of
    the per-pixel loss (logits -20: y ~ 0, |e| = t > 0 on every positive) are exactly the positives.
    """
    codec = HeatmapCodec(input_size, heatmap_size, sigma=sigma)
    centre = np.array([[input_size[0] / 2, input_size[1] / 2, 2.0]])
    hm, weight = codec.encode(centre)
    assert weight[0] == 1.0 and hm.max() == pytest.approx(1.0)
    target = torch.from_numpy(hm)[None].to(dtype)
    assert int(positive_mask(target).sum()) == positives
    per_pixel = regressive_cross_entropy(torch.full_like(target, -20.0), target, alpha=1.0, gamma=1.0)
    assert per_pixel.dtype == dtype and int((per_pixel > 0).sum()) == positives
    assert DEFAULT_POSITIVE_THRESHOLD == LossConfig().positive_threshold == 0.01


def test_ce_variants_targets_and_values() -> None:
    t = torch.zeros(1, 2, 5, 5)
    t[0, 0, 2, 3] = 1.0
    t[0, 0, 2, 2] = 0.6
    t[0, 0, 0, 0] = 0.005  # below the positive threshold
    oh = one_hot_targets(t)
    assert oh[0, 0].sum() == 1 and oh[0, 0, 2, 3] == 1 and oh[0, 1].sum() == 0
    x = torch.randn(1, 2, 5, 5)
    w = torch.ones(1, 2)
    # default: plain CE (the paper's Eq. 1), the mean BCE over pixels, no alpha weighting
    mask_target = (t >= THR).float()
    assert mask_target.sum() == 2  # 1.0 and 0.6; 0.005 is negative
    plain = F.binary_cross_entropy_with_logits(x, mask_target).item()
    assert BinaryHeatmapCE("mask", alpha=0.9)(x, t, w).item() == pytest.approx(plain, rel=1e-6)
    assert build_loss(LossConfig(name="ce_mask", alpha=0.9)).weighted is False
    onehot_loss = BinaryHeatmapCE("onehot", alpha=0.9)(x, t, w)
    assert onehot_loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(x, oh).item(), rel=1e-6)
    # option: alpha for positives, 1 - alpha for negatives (RCE's weighting)
    per_pixel = F.binary_cross_entropy_with_logits(x, mask_target, reduction="none")
    weighted = torch.where(mask_target > 0, 0.9 * per_pixel, 0.1 * per_pixel).mean().item()
    assert BinaryHeatmapCE("mask", alpha=0.9, weighted=True)(x, t, w).item() == pytest.approx(weighted, rel=1e-6)
    cfg = LossConfig(name="ce_mask", alpha=0.9, ce_weighted=True)
    assert build_loss(cfg)(x, t, w).item() == pytest.approx(weighted, rel=1e-6)


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
