"""PoseModel = backbone + head; ``forward`` returns heatmap logits and nothing else."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from fasterpose.activation import loss_outputs_logits
from fasterpose.experiment import model_num_keypoints
from fasterpose.models.backbones import build_backbone
from fasterpose.models.heads import ConvLHRHead, DeconvHead, LowToHighRegressor, PooledRegressor
from fasterpose.models.weights import load_backbone_only
from fasterpose.models.weights_file import is_weights_file, load_into, read_weights

if TYPE_CHECKING:
    from fasterpose.config import Config

log = logging.getLogger(__name__)


class PoseModel(nn.Module):
    """Top-down pose network.

    ``forward(images (B, 3, H, W)) -> heatmaps (B, K, H / s, W / s)``: raw outputs (logits for
    sigmoid-trained models). The sigmoid lives in the loss and in inference, never here, so the
    same module exports once for every loss.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, input_order: str = "rgb") -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        # weights trained on BGR images (model.input_order): our RGB input re-ordered and re-normalised first
        self.bgr = BgrInput() if input_order == "bgr" else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if self.bgr is not None:
            images = self.bgr(images)
        return self.head(self.backbone(images))

    @classmethod
    def from_config(cls, cfg: Config, pretrained: bool | None = None) -> PoseModel:
        """Build the network described by ``cfg.model``.

        ``model.weights`` is a local ImageNet state dict for the backbone, or a FasterPose weights file
        (``fasterpose export --format weights``) that initialises the whole model for fine-tuning; head
        tensors of another keypoint count then start from scratch. ``pretrained=False`` builds a randomly
        initialised network and reads no weights at all (the caller loads its own, e.g. a checkpoint).
        """
        m = cfg.model
        use = m.pretrained if pretrained is None else pretrained
        weights = m.weights if pretrained is not False else None
        init = weights if weights is not None and is_weights_file(weights) else None
        backbone = build_backbone(
            m.backbone,
            feature_index=m.feature_index,
            pretrained=use and init is None,
            weights=None if init is not None else weights,
        )
        prior = m.prior if loss_outputs_logits(cfg.loss.name) else None
        head = build_head(
            kind=m.head,
            in_channels=int(getattr(backbone, "out_channels")),  # noqa: B009 - published by every backbone
            backbone_stride=int(getattr(backbone, "stride")),  # noqa: B009
            num_keypoints=model_num_keypoints(cfg),
            heatmap_stride=m.heatmap_stride,
            num_deconv=m.num_deconv,
            filters=m.deconv_filters,
            kernel=m.deconv_kernel,
            final_layer=m.final_layer,
            bias_prior=prior,
            lr_extra_convs=m.lr_extra_convs,
            sigma=cfg.data.sigma,
        )
        model = cls(backbone, head, m.input_order)
        if init is not None:
            state, file_cfg = read_weights(init)
            _init_from_weights_file(model, state, file_cfg, cfg, init)
        return model

    @classmethod
    def for_loading(cls, cfg: Config) -> PoseModel:
        """``cfg``'s network with its tensors allocated but not initialised, for a strict
        ``load_state_dict`` that replaces every one (a checkpoint, weights file or converted file).

        The random init such a load throws away takes longer than the load itself; building on the meta
        device skips it. Constants outside the state dict (non-persistent buffers) cannot come from the load:
        the BGR input's are made again, and a backbone with its own (some timm models: attention bias
        indices, relative position indices) is built the ordinary way instead.
        """
        with torch.device("meta"):
            model = cls.from_config(cfg, pretrained=False)
        persistent = set(model.state_dict())
        constants = [n for n, _ in model.named_buffers() if n not in persistent and not n.startswith("bgr.")]
        if constants:
            return cls.from_config(cfg, pretrained=False)
        model = model.to_empty(device="cpu")
        if model.bgr is not None:
            model.bgr = BgrInput()
        return model


def _init_from_weights_file(
    model: PoseModel, state: dict[str, torch.Tensor], file_cfg: Config, cfg: Config, source: str
) -> None:
    """``model.weights=FILE``: the whole model when the file's head is this head (another keypoint count
    re-initialises it), else the backbone tensors only and a fresh head (a converted SimpleBaseline file
    starting a FasterPose LHR model)."""
    theirs = {k for k in state if k.startswith("head.")}
    ours = {k for k in model.state_dict() if k.startswith("head.")}
    if theirs == ours:
        load_into(model, state, source, allow_new_head=True)
        log.info("initialised the model from the weights file %s", source)
    else:
        loaded, fresh = load_backbone_only(model, state, source)
        log.info(
            "initialised the backbone from the weights file %s (%d tensors); its %s head (%d tensors) is "
            "not this model's %s head, which starts fresh (%d tensors: %s)",
            source,
            loaded,
            file_cfg.model.head,
            len(theirs),
            cfg.model.head,
            len(fresh),
            ", ".join(fresh),
        )
    if file_cfg.model.input_order != cfg.model.input_order:
        log.warning(
            "%s was trained on %s images, this model takes %s: set model.input_order=%s to keep the "
            "backbone's channel order",
            source,
            file_cfg.model.input_order.upper(),
            cfg.model.input_order.upper(),
            file_cfg.model.input_order,
        )


class BgrInput(nn.Module):
    """RGB input normalised with ImageNet mean/std -> what a network trained on BGR images saw.

    The Microsoft / HRNet SimpleBaseline code feeds OpenCV's BGR images normalised with the RGB mean
    and std (channel c of the BGR image with mean[c], std[c]). Channel c of that input is
    ``rgb[2 - c] * std[2 - c] / std[c] + (mean[2 - c] - mean[c]) / std[c]`` in terms of our input, exactly;
    no tensors of its own (the state dict is unchanged; ONNX gets a Gather, a Mul and an Add).
    """

    def __init__(self) -> None:
        super().__init__()
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64)
        scale, shift = std.flip(0) / std, (mean.flip(0) - mean) / std
        self.register_buffer("order", torch.tensor([2, 1, 0]), persistent=False)
        self.register_buffer("scale", scale.float().view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.float().view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        order, scale, shift = self.order, self.scale, self.shift
        assert isinstance(order, torch.Tensor) and isinstance(scale, torch.Tensor) and isinstance(shift, torch.Tensor)
        return torch.index_select(images, 1, order) * scale.to(images.dtype) + shift.to(images.dtype)


def build_head(
    kind: str,
    in_channels: int,
    backbone_stride: int,
    num_keypoints: int,
    heatmap_stride: int = 4,
    num_deconv: int = 0,
    filters: int = 256,
    kernel: int = 4,
    final_layer: str = "conv",
    bias_prior: float | None = None,
    lr_extra_convs: int = 0,
    sigma: float = 2.0,
) -> nn.Module:
    """Head by kind; the upscale factor L is derived from the strides, never given."""
    if backbone_stride % heatmap_stride:
        raise ValueError(f"backbone stride {backbone_stride} is not a multiple of heatmap stride {heatmap_stride}")
    total = backbone_stride // heatmap_stride
    if lr_extra_convs < 0 or (lr_extra_convs and kind != "lhr"):
        raise ValueError(f"model.lr_extra_convs must be >= 0 and needs head lhr, got {lr_extra_convs} ({kind})")
    if kind == "lhr" and lr_extra_convs:
        return ConvLHRHead(in_channels, num_keypoints, total, lr_extra_convs, filters, bias_prior)
    if kind == "lhr":
        return LowToHighRegressor(in_channels, num_keypoints, total, bias_prior)
    if kind == "deconv":
        up = 2**num_deconv
        if total % up:
            raise ValueError(
                f"{num_deconv} deconvs upscale {up}x, more than the {total}x from stride "
                f"{backbone_stride} to heatmap stride {heatmap_stride}"
            )
        rest = total // up
        if final_layer == "conv" and rest != 1:
            raise ValueError(f"final_layer=conv needs {total}x from deconvs, got {up}x; use final_layer=lhr")
        if final_layer not in ("conv", "lhr"):
            raise ValueError(f"final_layer must be 'conv' or 'lhr', got {final_layer!r}")
        return DeconvHead(in_channels, num_keypoints, num_deconv, filters, kernel, rest, bias_prior)
    if kind == "pooled":
        return PooledRegressor(in_channels, num_keypoints, total, sigma)
    if kind == "lpn":
        lpn = importlib.import_module("fasterpose.models.lpn")
        return lpn.build_lpn_head(
            in_channels=in_channels,
            backbone_stride=backbone_stride,
            num_keypoints=num_keypoints,
            heatmap_stride=heatmap_stride,
            bias_prior=bias_prior,
        )
    raise ValueError(f"unknown head {kind!r}; valid: lhr, deconv, lpn, pooled")
