"""The study's head-neutral pretraining (a pooled coordinate head and its centroid loss) and the head warm-up."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from fasterpose.config import TrainConfig
from fasterpose.engine.optim import build_optimizer, build_scheduler
from fasterpose.losses import CentroidL1Loss, heatmap_centroids
from fasterpose.models.heads import PooledRegressor
from fasterpose.models.pose_model import build_head


def gaussian(h: int, w: int, x: float, y: float, sigma: float = 1.25) -> torch.Tensor:
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((gx - x) ** 2 + (gy - y) ** 2) / (2 * sigma**2))


def test_pooled_head_renders_its_coordinates_at_the_output_size() -> None:
    head = build_head("pooled", 8, 16, 3, heatmap_stride=4, sigma=1.25)
    assert isinstance(head, PooledRegressor)
    x = torch.randn(2, 8, 6, 4)
    out = head(x)
    assert out.shape == (2, 3, 24, 16)
    xy = head.coordinates(x)
    assert torch.allclose(xy, torch.full_like(xy, 0.0) + torch.tensor([7.5, 11.5]), atol=0.05)  # starts at the centre
    with torch.no_grad():
        head.fc.bias.copy_(torch.tensor([0.5, -1.0] * 3))  # an interior point: x 9.3, y 6.2
        head.fc.weight.zero_()
        xy = head.coordinates(x)[0, 0]
        hm = head(x)[0, 0]
    peak = divmod(int(hm.argmax()), 16)
    assert peak == (round(float(xy[1])), round(float(xy[0])))
    assert float(hm.max()) <= 1.0 and torch.allclose(heatmap_centroids(hm[None, None])[0, 0], xy, atol=0.02)


def test_pooled_head_passes_gradients_to_the_features() -> None:
    head = PooledRegressor(8, 2, 4, 1.25)
    x = torch.randn(1, 8, 6, 4, requires_grad=True)
    target = torch.stack([gaussian(24, 16, 3.0, 20.0), gaussian(24, 16, 12.0, 2.0)])[None]
    CentroidL1Loss()(head(x), target, torch.ones(1, 2)).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert head.fc.weight.grad is not None and float(head.fc.weight.grad.abs().sum()) > 0


def test_centroid_loss_is_the_l1_distance_of_the_centres_over_weighted_joints() -> None:
    target = torch.stack([gaussian(24, 16, 5.0, 9.0), gaussian(24, 16, 10.0, 12.0)])[None]
    same = CentroidL1Loss()(target.clone(), target, torch.ones(1, 2))
    assert float(same) == pytest.approx(0.0, abs=1e-5)
    shifted = torch.stack([gaussian(24, 16, 6.0, 7.0), gaussian(24, 16, 0.0, 0.0)])[None]
    loss = CentroidL1Loss()(shifted, target, torch.tensor([[1.0, 0.0]]))  # joint 1 unlabelled: ignored
    assert float(loss) == pytest.approx(1.0 + 2.0, abs=1e-3)
    both = CentroidL1Loss()(shifted, target, torch.ones(1, 2))
    assert float(both) > float(loss)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))


def steps(t: TrainConfig, n: int, per_epoch: int) -> list[tuple[bool, bool]]:
    """(backbone changed, head changed) after each of ``n`` Adam steps."""
    torch.manual_seed(0)
    net = Net()
    opt = build_optimizer(net, t)
    sched = build_scheduler(opt, per_epoch, t)
    out = []
    for _ in range(n):
        before = [p.detach().clone() for p in (net.backbone.weight, net.head.weight)]
        opt.zero_grad()
        net(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        sched.step()
        after = (net.backbone.weight, net.head.weight)
        out.append(tuple(not torch.equal(b, p) for b, p in zip(before, after, strict=True)))
    return out


def test_head_warmup_freezes_the_backbone_for_its_epochs_only() -> None:
    t = dataclasses.replace(TrainConfig(), lr=0.01, lr_steps=(), head_warmup_epochs=1, head_warmup_backbone_lr=0.0)
    assert steps(t, 4, per_epoch=2) == [(False, True), (False, True), (True, True), (True, True)]
    low = dataclasses.replace(t, head_warmup_backbone_lr=0.1)
    assert steps(low, 1, per_epoch=2) == [(True, True)]
    plain = TrainConfig(lr=0.01, lr_steps=())
    assert steps(plain, 1, per_epoch=2) == [(True, True)]
    assert len(build_optimizer(Net(), plain).param_groups) == 1  # checkpoints without a warm-up keep one group
    net = Net()
    groups = build_optimizer(net, t).param_groups  # the head's group first: the logged learning rate is its
    assert [{id(p) for p in g["params"]} for g in groups] == [
        {id(p) for p in net.head.parameters()},
        {id(p) for p in net.backbone.parameters()},
    ]


def test_head_warmup_needs_a_backbone_and_non_negative_settings() -> None:
    with pytest.raises(ValueError, match="backbone"):
        build_optimizer(nn.Linear(2, 2), TrainConfig(head_warmup_epochs=1))
    with pytest.raises(ValueError, match="head_warmup"):
        build_optimizer(Net(), TrainConfig(head_warmup_epochs=-1))
