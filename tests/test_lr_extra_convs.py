"""model.lr_extra_convs: a low-resolution LR head with as many nonlinear layers as a deconv head (Table 5)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from fasterpose.config import Config
from fasterpose.models.heads import ConvLHRHead, LowToHighRegressor
from fasterpose.models.pose_model import PoseModel, build_head


def test_extra_convs_add_depth_not_resolution() -> None:
    head = build_head("lhr", 256, backbone_stride=16, num_keypoints=17, heatmap_stride=4, filters=64, lr_extra_convs=2)
    assert isinstance(head, ConvLHRHead) and head.final.upscale == 4
    convs = [m for m in head.convs if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)] and convs[0].in_channels == 256
    assert sum(isinstance(m, nn.ReLU) for m in head.modules()) == 2  # as many as a 2-deconv head
    out = head(torch.randn(2, 256, 6, 4))
    assert out.shape == (2, 17, 24, 16)  # the same heatmap size as the plain LHR
    plain = build_head("lhr", 256, backbone_stride=16, num_keypoints=17, heatmap_stride=4)
    assert type(plain) is LowToHighRegressor


def test_extra_convs_from_config_and_rejected_elsewhere() -> None:
    cfg = Config()
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(
            cfg.model,
            backbone="resnet18",
            pretrained=False,
            feature_index=-2,
            lr_extra_convs=1,
            deconv_filters=32,
            num_keypoints=17,
        ),
    )
    model = PoseModel.from_config(cfg, pretrained=False)
    assert isinstance(model.head, ConvLHRHead) and len(model.head.convs) == 3
    with pytest.raises(ValueError, match="lr_extra_convs"):
        build_head("deconv", 256, 16, 17, num_deconv=2, lr_extra_convs=1)
    with pytest.raises(ValueError, match="lr_extra_convs"):
        build_head("lhr", 256, 16, 17, lr_extra_convs=-1)
