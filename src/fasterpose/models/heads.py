"""Heads that turn a backbone feature map into keypoint heatmaps (logits)."""

from __future__ import annotations

import math

import torch
from torch import nn


def prior_bias(prior: float | None) -> float:
    """Bias that makes a sigmoid output ``prior`` at init (0 when ``prior`` is None)."""
    if prior is None:
        return 0.0
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in (0, 1), got {prior}")
    return -math.log((1.0 - prior) / prior)


class LowToHighRegressor(nn.Module):
    """The paper's LHR: one 1x1 conv M -> N*L^2, then a per-keypoint pixel shuffle.

    Channel ``n * L^2 + i * L + j`` becomes keypoint ``n`` at offset ``(i, j)`` of each LxL block
    (exactly ``nn.PixelShuffle(L)``; ONNX DepthToSpace in CRD mode). ``upscale=1`` is a plain
    1x1 conv.

    Args:
        in_channels: M, channels of the low-resolution feature.
        num_keypoints: N.
        upscale: L.
        bias_prior: initial sigmoid probability (bias = logit(prior)), or None for bias 0.
    """

    def __init__(self, in_channels: int, num_keypoints: int, upscale: int, bias_prior: float | None = None):
        super().__init__()
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.upscale = upscale
        self.conv = nn.Conv2d(in_channels, num_keypoints * upscale**2, kernel_size=1)
        self.shuffle = nn.PixelShuffle(upscale)
        nn.init.normal_(self.conv.weight, std=0.001)
        assert self.conv.bias is not None
        nn.init.constant_(self.conv.bias, prior_bias(bias_prior))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, N, h * L, w * L)."""
        return self.shuffle(self.conv(x))


class DeconvHead(nn.Module):
    """SimpleBaseline head: ``num_deconv`` x (deconv 4x4 stride 2, BN, ReLU), then a final layer.

    The final layer is a 1x1 conv (``final_upscale == 1``) or an LHR with the remaining upscale,
    which spans all four rows of the paper's Table 5.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        num_deconv: int = 3,
        filters: int = 256,
        kernel: int = 4,
        final_upscale: int = 1,
        bias_prior: float | None = None,
    ) -> None:
        super().__init__()
        if kernel not in (2, 3, 4):
            raise ValueError(f"deconv kernel must be 2, 3 or 4, got {kernel}")
        padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_deconv):
            deconv = nn.ConvTranspose2d(
                ch, filters, kernel, stride=2, padding=padding, output_padding=output_padding, bias=False
            )
            nn.init.normal_(deconv.weight, std=0.001)
            layers += [deconv, nn.BatchNorm2d(filters), nn.ReLU(inplace=True)]
            ch = filters
        self.deconvs = nn.Sequential(*layers)
        self.num_deconv = num_deconv
        self.final = LowToHighRegressor(ch, num_keypoints, final_upscale, bias_prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, N, h * 2^num_deconv * final_upscale, ...)."""
        return self.final(self.deconvs(x))


class ConvLHRHead(nn.Module):
    """``num_convs`` x (3x3 conv, BN, ReLU) at the feature's resolution, then an LHR with upscale L.

    The low-resolution counterpart of a :class:`DeconvHead` with as many nonlinear layers: it adds depth
    without adding resolution (``model.lr_extra_convs``), so a Table 5 comparison can hold depth fixed.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        upscale: int,
        num_convs: int,
        filters: int,
        bias_prior: float | None = None,
    ) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"num_convs must be >= 1, got {num_convs}")
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_convs):
            conv = nn.Conv2d(ch, filters, 3, padding=1, bias=False)
            nn.init.normal_(conv.weight, std=0.001)
            layers += [conv, nn.BatchNorm2d(filters), nn.ReLU(inplace=True)]
            ch = filters
        self.convs = nn.Sequential(*layers)
        self.final = LowToHighRegressor(ch, num_keypoints, upscale, bias_prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, N, h * L, w * L)."""
        return self.final(self.convs(x))


class PooledRegressor(nn.Module):
    """A head-neutral pretraining head: global average pool, one linear layer to each keypoint's (x, y),
    rendered as a Gaussian heatmap of the output size.

    It has no spatial layer (no deconvolution, no low-to-high regressor): what it asks of the backbone is
    what an ImageNet classifier's pooled head asks, a global description from which a linear map reads
    positions, so a backbone pretrained under it favours neither head the study compares. The
    coordinates are ``sigmoid(linear(pool(x)))`` scaled to the heatmap's pixel range; the heatmap is
    ``exp(-d^2 / (2 sigma^2))`` around them (values, not logits), so every decoder and evaluator reads it
    as it reads an MSE head's output. Train it with ``loss.name: centroid``.

    Args:
        in_channels: channels of the feature map.
        num_keypoints: N.
        upscale: heatmap pixels per feature cell (backbone stride / heatmap stride).
        sigma: the rendered Gaussian's standard deviation in heatmap pixels.
    """

    def __init__(self, in_channels: int, num_keypoints: int, upscale: int, sigma: float) -> None:
        super().__init__()
        if upscale < 1 or sigma <= 0:
            raise ValueError(f"upscale must be >= 1 and sigma > 0, got {upscale} and {sigma}")
        self.num_keypoints, self.upscale, self.sigma = num_keypoints, upscale, float(sigma)
        self.fc = nn.Linear(in_channels, num_keypoints * 2)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.zeros_(self.fc.bias)  # every keypoint starts at the map's centre

    def coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, N, 2) keypoint (x, y) in heatmap pixels of the (h * L, w * L) map."""
        b, _, h, w = x.shape
        unit = torch.sigmoid(self.fc(x.mean(dim=(2, 3)))).view(b, self.num_keypoints, 2)
        size = torch.tensor([w * self.upscale - 1, h * self.upscale - 1], dtype=unit.dtype, device=unit.device)
        return unit * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) -> (B, N, h * L, w * L) Gaussian heatmaps around :meth:`coordinates`."""
        h, w = x.shape[2] * self.upscale, x.shape[3] * self.upscale
        xy = self.coordinates(x)
        gx = torch.arange(w, dtype=xy.dtype, device=xy.device)
        gy = torch.arange(h, dtype=xy.dtype, device=xy.device)
        dx = (gx[None, None, None, :] - xy[..., 0, None, None]) ** 2  # (B, N, 1, W)
        dy = (gy[None, None, :, None] - xy[..., 1, None, None]) ** 2  # (B, N, H, 1)
        return torch.exp(-(dx + dy) / (2 * self.sigma**2))
