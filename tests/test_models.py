"""Models: exact parameter counts, LHR against a reshape reference, heads, backbones, ImageNet init."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from fasterpose.config import Config, apply_overrides
from fasterpose.models.backbones import build_backbone, load_imagenet_weights
from fasterpose.models.heads import DeconvHead, LowToHighRegressor, prior_bias
from fasterpose.models.pose_model import PoseModel, build_head

torch.set_num_threads(2)


def _model(*overrides: str) -> PoseModel:
    cfg = apply_overrides(Config(), ["model.pretrained=false", *overrides])
    return PoseModel.from_config(cfg)


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("backbone", "head", "expected"),
    [
        ("resnet50", ["model.head=lhr"], 25_737_344),
        ("resnet50", ["model.head=deconv", "model.num_deconv=3"], 33_999_697),
        ("resnet101", ["model.head=lhr"], 44_729_472),
        ("resnet101", ["model.head=deconv", "model.num_deconv=3"], 52_991_825),
        ("resnet152", ["model.head=lhr"], 60_373_120),
        ("resnet152", ["model.head=deconv", "model.num_deconv=3"], 68_635_473),
        ("resnet50", ["model.head=deconv", "model.num_deconv=1", "model.final_layer=lhr"], 31_967_056),
        ("resnet50", ["model.head=deconv", "model.num_deconv=2", "model.final_layer=lhr"], 32_963_716),
    ],
)
def test_exact_parameter_counts(backbone: str, head: list[str], expected: int) -> None:
    assert _count(_model(f"model.backbone={backbone}", *head)) == expected


def reference_lhr(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, n: int, l_: int) -> torch.Tensor:
    """Explicit loops: keypoint k, offset (i, j) of the LxL block comes from channel k*L^2 + i*L + j."""
    b, _, h, w = x.shape
    y = torch.einsum("bmhw,cm->bchw", x, weight[:, :, 0, 0]) + bias[None, :, None, None]
    out = torch.empty(b, n, h * l_, w * l_, dtype=x.dtype)
    for k in range(n):
        for i in range(l_):
            for j in range(l_):
                out[:, k, i::l_, j::l_] = y[:, k * l_ * l_ + i * l_ + j]
    return out


@pytest.mark.parametrize(("n", "l_", "batch"), [(17, 8, 2), (16, 4, 1), (3, 2, 5), (5, 1, 3), (1, 3, 2)])
def test_lhr_equals_reshape_reference(n: int, l_: int, batch: int) -> None:
    torch.manual_seed(n * 10 + l_)
    m = 7
    head = LowToHighRegressor(m, n, l_, bias_prior=0.01)
    with torch.no_grad():
        head.conv.weight.normal_()
        head.conv.bias.normal_()
    x = torch.randn(batch, m, 4, 3, dtype=torch.float32)
    out = head(x)
    ref = reference_lhr(x, head.conv.weight, head.conv.bias, n, l_)
    assert out.shape == (batch, n, 4 * l_, 3 * l_)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_lhr_init_follows_spec() -> None:
    sig = LowToHighRegressor(64, 17, 8, bias_prior=0.01)
    assert torch.allclose(torch.sigmoid(sig.conv.bias), torch.full((17 * 64,), 0.01), atol=1e-6)
    assert 0.0005 < sig.conv.weight.std().item() < 0.0015
    mse = LowToHighRegressor(64, 17, 8, bias_prior=None)
    assert torch.count_nonzero(mse.conv.bias) == 0
    assert prior_bias(0.5) == 0.0
    with pytest.raises(ValueError):
        prior_bias(1.5)


def test_loss_choice_sets_head_bias() -> None:
    rce = _model("model.backbone=resnet18", "loss.name=rce")
    mse = _model("model.backbone=resnet18", "loss.name=mse")
    assert rce.head.conv.bias.mean().item() == pytest.approx(prior_bias(0.01), abs=1e-5)
    assert mse.head.conv.bias.abs().max().item() == 0.0


@pytest.mark.parametrize(
    ("name", "channels", "stride"),
    [("resnet18", 512, 32), ("resnet34", 512, 32), ("resnet50", 2048, 32), ("mobilenetv3_small_100", 576, 32)],
)
def test_timm_backbones_report_channels_and_stride(name: str, channels: int, stride: int) -> None:
    bb = build_backbone(name)
    assert (bb.out_channels, bb.stride) == (channels, stride)
    y = bb(torch.zeros(1, 3, 128, 96))
    assert y.shape == (1, channels, 128 // stride, 96 // stride)


def test_feature_index_and_derived_upscale() -> None:
    # Stage 3 of resnet18 has stride 16: the LHR then needs L = 4 to reach stride 4.
    m = _model("model.backbone=resnet18", "model.feature_index=3")
    assert m.backbone.stride == 16 and m.head.upscale == 4
    assert m(torch.zeros(2, 3, 128, 96)).shape == (2, 17, 32, 24)


@pytest.mark.parametrize(
    ("num_deconv", "final", "upscale"), [(0, "lhr", 8), (1, "lhr", 4), (2, "lhr", 2), (3, "conv", 1)]
)
def test_deconv_head_rows_of_table5(num_deconv: int, final: str, upscale: int) -> None:
    head = build_head("deconv", 64, 32, 17, num_deconv=num_deconv, final_layer=final, filters=32)
    assert isinstance(head, DeconvHead) and head.final.upscale == upscale
    assert head(torch.zeros(1, 64, 8, 6)).shape == (1, 17, 64, 48)


def test_head_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="final_layer=lhr"):
        build_head("deconv", 64, 32, 17, num_deconv=1, final_layer="conv")
    with pytest.raises(ValueError, match="more than"):
        build_head("deconv", 64, 32, 17, num_deconv=4)
    with pytest.raises(ValueError, match="unknown head"):
        build_head("nope", 64, 32, 17)
    with pytest.raises(ValueError, match="not a timm model"):
        build_backbone("resnet_does_not_exist")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        _model("model.backbone=resnet18")(torch.zeros(3, 64, 48))


def test_local_torchvision_weights_load(tmp_path) -> None:
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_tv.pth"
    torch.save(ref.state_dict(), path)
    bb = build_backbone("resnet18", weights=str(path))
    torch.testing.assert_close(bb.body.conv1.weight, ref.conv1.weight)
    torch.testing.assert_close(bb.body.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var)


def test_local_weights_mismatch_and_pickle_are_refused(tmp_path) -> None:
    wrong = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="does not match the backbone"):
        build_backbone("resnet18", weights=str(wrong))
    evil = tmp_path / "evil.pth"
    torch.save({"obj": logging.getLogger("x")}, evil)
    bb = build_backbone("resnet18")
    with pytest.raises(ValueError, match="weights-only"):
        load_imagenet_weights(bb.body, evil)
    with pytest.raises(FileNotFoundError):
        load_imagenet_weights(bb.body, tmp_path / "missing.pth")


def _hub_offline_and_empty(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """huggingface_hub offline (as ``HF_HUB_OFFLINE=1`` sets it) with an empty cache."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every socket opened from now on."""
    import socket

    opened: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        opened.append(args)
        raise OSError("the test forbids network access")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return opened


def test_building_a_model_opens_no_socket(monkeypatch, tmp_path) -> None:
    _hub_offline_and_empty(monkeypatch, tmp_path)
    opened = _no_sockets(monkeypatch)
    _model("model.backbone=resnet18", "model.feature_index=-2")
    build_backbone("lpn50")
    build_backbone("resnet18", pretrained=True)  # offline: the hub cache only, then random init
    assert opened == []


def test_offline_pretrained_warns_once_and_falls_back(monkeypatch, caplog, tmp_path) -> None:
    _hub_offline_and_empty(monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING, logger="fasterpose.models.backbones"):
        bb = build_backbone("resnet18", pretrained=True)
    ours = [r for r in caplog.records if r.name == "fasterpose.models.backbones"]
    assert len(ours) == 1 and "model.weights" in ours[0].getMessage()
    assert bb.out_channels == 512
