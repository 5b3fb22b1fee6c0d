"""The one encode/decode boundary between keypoints and heatmaps.

Two encodings:

* ``"msra"`` (SimpleBaseline/HRNet): the joint is rounded to a heatmap pixel exactly as HRNet's
  ``JointsDataset.generate_target`` does, ``mu = int(x / stride + 0.5)`` with Python's ``int``
  (truncation toward zero, so a joint up to 1.5 px left of or above the map rounds to pixel 0,
  where ``floor`` would give -1), and a Gaussian of ``sigma`` is drawn inside a 3-sigma window.
  Heatmap pixel ``u`` stands for input coordinate ``u * stride``. Flip test needs a 1-pixel shift.
* ``"unbiased"`` (UDP/DARK style): the Gaussian is centred on the exact sub-pixel location and
  heatmap pixel ``u`` stands for input coordinate ``u * (W - 1) / (w - 1)``, so a mirror of the
  input is exactly a mirror of the heatmap and flip test needs no shift.

Decoding: argmax, then a quarter-pixel step toward the higher neighbour (paper 4.1.3), or, with
``dark=True``, DARK's second-order Taylor refinement on the log of the blurred heatmap. DARK
refines only maxima far enough from the border: its derivatives need the full 5x5 neighbourhood
(mmpose skips maxima within 2 px of the border), and the zero-padded blur truncates the Gaussian
a further ``int(sigma) - 1`` px in; elsewhere the quarter offset is used. On clean Gaussians this
makes DARK's error no larger than the quarter offset's at every argmax column (tests/test_codec.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

if TYPE_CHECKING:
    from fasterpose.config import Config

Encoding = Literal["msra", "unbiased"]


class HeatmapCodec:
    """Encode keypoints in network-input pixels to heatmaps, and decode heatmaps back.

    Args:
        input_size: network input (W, H).
        heatmap_size: heatmap (w, h).
        sigma: Gaussian sigma in heatmap pixels.
        encoding: ``"msra"`` or ``"unbiased"``.
        dark: refine decoded maxima with DARK instead of the quarter offset.
        blur_kernel: Gaussian blur kernel size used by DARK (odd).
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float = 2.0,
        encoding: Encoding = "msra",
        dark: bool = False,
        blur_kernel: int = 11,
    ) -> None:
        if encoding not in ("msra", "unbiased"):
            raise ValueError(f"encoding must be 'msra' or 'unbiased', got {encoding!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if blur_kernel % 2 != 1:
            raise ValueError(f"blur_kernel must be odd, got {blur_kernel}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.encoding: Encoding = encoding
        self.dark = dark
        self.blur_kernel = blur_kernel

    @classmethod
    def from_config(cls, cfg: Config) -> HeatmapCodec:
        """The codec of ``cfg``: ``data.input_size``, ``heatmap_size``, ``sigma``, ``encoding``, ``eval.dark``."""
        d = cfg.data
        return cls(d.input_size, d.heatmap_size, d.sigma, d.encoding, dark=cfg.eval.dark)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ coordinates
    @property
    def _ratio(self) -> np.ndarray:
        """Input pixels per heatmap pixel along (x, y)."""
        (iw, ih), (hw, hh) = self.input_size, self.heatmap_size
        if self.encoding == "msra":
            return np.array([iw / hw, ih / hh], dtype=np.float64)
        return np.array([(iw - 1) / max(hw - 1, 1), (ih - 1) / max(hh - 1, 1)], dtype=np.float64)

    def input_to_heatmap(self, points: np.ndarray) -> np.ndarray:
        """Input pixel coordinates (..., 2) to continuous heatmap coordinates."""
        return np.asarray(points, dtype=np.float64) / self._ratio

    def heatmap_to_input(self, points: np.ndarray) -> np.ndarray:
        """Continuous heatmap coordinates (..., 2) to input pixel coordinates."""
        return (np.asarray(points, dtype=np.float64) * self._ratio).astype(np.float32)

    @property
    def flip_shift(self) -> int:
        """Pixels to shift a flipped-back heatmap to the right (1 for MSRA, 0 for unbiased)."""
        return 1 if self.encoding == "msra" else 0

    # ------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, joint_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw target heatmaps.

        Args:
            keypoints: (K, 3) input-pixel x, y and visibility (> 0 means labelled).
            joint_weights: optional (K,) multipliers for the returned weights.

        Returns:
            heatmaps (K, h, w) float32 in [0, 1], target_weight (K,) float32. A joint that is
            unlabelled or whose window falls outside the map gets weight 0 and an empty map.
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.ndim != 2 or kpts.shape[1] < 3:
            raise ValueError(f"keypoints must have shape (K, 3), got {kpts.shape}")
        num = kpts.shape[0]
        w, h = self.heatmap_size
        radius = self.sigma * 3
        labelled = (kpts[:, 2] > 0) & np.isfinite(kpts[:, :2]).all(axis=1)
        weight = labelled.astype(np.float32)
        xs = np.arange(w, dtype=np.float64)
        ys = np.arange(h, dtype=np.float64)
        mu = self.input_to_heatmap(np.nan_to_num(kpts[:, :2], nan=-1e6))
        if self.encoding == "msra":
            mu = np.trunc(mu + 0.5)  # HRNet's int(): toward zero
            # HRNet window: integer corners ul = int(mu - r), br = int(mu + r + 1) (exclusive)
            ul = np.trunc(mu - radius)
            br = np.trunc(mu + radius + 1)
            inside = (ul[:, 0] < w) & (ul[:, 1] < h) & (br[:, 0] >= 0) & (br[:, 1] >= 0)
            mx = (xs[None, :] >= ul[:, :1]) & (xs[None, :] < br[:, :1])
            my = (ys[None, :] >= ul[:, 1:]) & (ys[None, :] < br[:, 1:])
        else:
            inside = (
                (mu[:, 0] + radius >= 0)
                & (mu[:, 1] + radius >= 0)
                & (mu[:, 0] - radius <= w - 1)
                & (mu[:, 1] - radius <= h - 1)
            )
            mx = np.abs(xs[None, :] - mu[:, :1]) <= radius
            my = np.abs(ys[None, :] - mu[:, 1:]) <= radius
        weight = weight * inside.astype(np.float32)
        # a joint of weight 0 gets an all-zero x factor, so its map is exact zeros
        gx = np.exp(-((xs[None, :] - mu[:, :1]) ** 2) / (2 * self.sigma**2)) * (mx & (weight > 0)[:, None])
        gy = np.exp(-((ys[None, :] - mu[:, 1:]) ** 2) / (2 * self.sigma**2)) * my
        # each pixel is one float64 product gy[y] * gx[x] rounded to float32 (einsum: faster than broadcasting)
        heatmaps = np.einsum("ki,kj->kij", gy, gx).astype(np.float32)
        if joint_weights is not None:
            jw = np.asarray(joint_weights, dtype=np.float32)
            if jw.shape != (num,):
                raise ValueError(f"joint_weights must have shape ({num},), got {jw.shape}")
            weight = weight * jw
        return heatmaps, weight.astype(np.float32)

    # ------------------------------------------------------------------ decode
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Locate each heatmap's maximum.

        Args:
            heatmaps: (B, K, h, w) or (K, h, w) scores (probabilities or raw MSE outputs).

        Returns:
            keypoints in input pixels (B, K, 2) and scores (B, K) (the map maxima); without the
            batch axis when the input had none.
        """
        hm = np.asarray(heatmaps, dtype=np.float32)
        squeeze = hm.ndim == 3
        if squeeze:
            hm = hm[None]
        if hm.ndim != 4:
            raise ValueError(f"heatmaps must have shape (B, K, h, w), got {hm.shape}")
        b, k, h, w = hm.shape
        flat = hm.reshape(b, k, -1)
        idx = flat.argmax(axis=2)
        scores = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
        coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
        coords = self._refine_dark(hm, coords) if self.dark else self._refine_quarter(hm, coords)
        out = self.heatmap_to_input(coords)
        if squeeze:
            return out[0], scores[0]
        return out, scores

    @staticmethod
    def _refine_quarter(hm: np.ndarray, coords: np.ndarray) -> np.ndarray:
        b, k, h, w = hm.shape
        px = coords[..., 0].astype(np.int64)
        py = coords[..., 1].astype(np.int64)
        bi, ki = np.meshgrid(np.arange(b), np.arange(k), indexing="ij")
        okx = (px > 0) & (px < w - 1)
        oky = (py > 0) & (py < h - 1)
        pxc = np.clip(px, 1, max(w - 2, 1))
        pyc = np.clip(py, 1, max(h - 2, 1))
        dx = hm[bi, ki, py, np.minimum(pxc + 1, w - 1)] - hm[bi, ki, py, pxc - 1]
        dy = hm[bi, ki, np.minimum(pyc + 1, h - 1), px] - hm[bi, ki, pyc - 1, px]
        out = coords.copy()
        out[..., 0] += np.where(okx, np.sign(dx) * 0.25, 0.0)
        out[..., 1] += np.where(oky, np.sign(dy) * 0.25, 0.0)
        return out

    @property
    def dark_margin(self) -> int:
        """Closest distance (heatmap px) of a maximum to the border that DARK refines; nearer, the quarter offset.

        2 for the 5x5 neighbourhood of the derivatives, and ``int(sigma) + 1`` where the zero-padded
        blur still truncates the Gaussian (measured on clean Gaussians at sigma 1, 2, 2.5 and 3).
        """
        return max(2, int(self.sigma) + 1)

    def _refine_dark(self, hm: np.ndarray, coords: np.ndarray) -> np.ndarray:
        b, k, h, w = hm.shape
        kernel = self.blur_kernel
        border = (kernel - 1) // 2
        blurred = np.empty_like(hm)
        for i in range(b):
            for j in range(k):
                m = hm[i, j]
                peak = m.max()
                padded = np.pad(m, border)
                sm = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
                blurred[i, j] = sm * (peak / sm.max()) if sm.max() > 0 else sm
        logm = np.log(np.maximum(blurred, 1e-10)).astype(np.float64)
        logm = np.pad(logm, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
        bi, ki = np.meshgrid(np.arange(b), np.arange(k), indexing="ij")
        x = coords[..., 0].astype(np.int64) + 2
        y = coords[..., 1].astype(np.int64) + 2

        def at(dy: int, dx: int) -> np.ndarray:
            return logm[bi, ki, y + dy, x + dx]

        c = at(0, 0)
        dx = 0.5 * (at(0, 1) - at(0, -1))
        dy = 0.5 * (at(1, 0) - at(-1, 0))
        dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
        dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
        dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
        det = dxx * dyy - dxy**2
        ok = np.abs(det) > 1e-12
        safe = np.where(ok, det, 1.0)
        ox = -(dyy * dx - dxy * dy) / safe
        oy = -(dxx * dy - dxy * dx) / safe
        ok &= (np.abs(ox) <= 1.0) & (np.abs(oy) <= 1.0)
        margin = self.dark_margin
        ok &= (x - 2 >= margin) & (x - 2 <= w - 1 - margin) & (y - 2 >= margin) & (y - 2 <= h - 1 - margin)
        out = self._refine_quarter(hm, coords)
        out[..., 0] = np.where(ok, coords[..., 0] + ox, out[..., 0])
        out[..., 1] = np.where(ok, coords[..., 1] + oy, out[..., 1])
        return out

    # ------------------------------------------------------------------ flip test
    def flip_back(self, heatmaps: np.ndarray, flip_index: np.ndarray) -> np.ndarray:
        """Undo a horizontal input flip on heatmaps (B, K, h, w): mirror, swap joints, shift."""
        hm = np.asarray(heatmaps)[..., ::-1][:, flip_index]
        hm = np.ascontiguousarray(hm)
        if self.flip_shift:
            hm[..., 1:] = hm[..., :-1].copy()
        return hm
