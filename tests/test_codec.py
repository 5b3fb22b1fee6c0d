"""Heatmap codec and crop geometry: MSRA rounding, round trips, DARK at the border, flip, affine maps."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fasterpose.codec import HeatmapCodec
from fasterpose.geometry import (
    affine_points,
    box_to_center_scale,
    get_affine_transform,
    input_to_image,
    invert_affine,
)
from fasterpose.keypoints import COCO_17, MPII_16, get_spec


def test_msra_encoding_matches_hrnet_window() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    hm, _ = codec.encode(np.array([[41.0, 70.0, 1.0]]))
    mu = (int(41 / 4 + 0.5), int(70 / 4 + 0.5))  # HRNet rounding
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (mu[1], mu[0])
    ys, xs = np.nonzero(hm[0])
    assert xs.min() == mu[0] - 6 and xs.max() == mu[0] + 6 and ys.min() == mu[1] - 6 and ys.max() == mu[1] + 6
    assert hm[0, mu[1], mu[0] + 1] == pytest.approx(math.exp(-1 / 8))


def test_msra_rounds_like_hrnet_int_toward_zero() -> None:
    """HRNet: ``mu_x = int(x / stride + 0.5)``; Python's int truncates toward zero, unlike floor.

    x = -3 input px: -3 / 4 + 0.5 = -0.25 -> int 0 (floor: -1); x = -5: -0.75 -> 0 (floor: -1);
    x = -7: -1.25 -> -1. x = 41: 10.75 -> 10 either way.
    """
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    hm, w = codec.encode(np.array([[-3.0, 70.0, 2.0], [-5.0, 70.0, 2.0], [-7.0, 70.0, 2.0], [41.0, 70.0, 2.0]]))
    assert w.tolist() == [1.0, 1.0, 1.0, 1.0]
    row = int(70 / 4 + 0.5)
    assert hm[0, row, 0] == 1.0 and hm[1, row, 0] == 1.0  # peak on column 0
    assert hm[2, row, 0] == pytest.approx(math.exp(-1 / 8))  # peak on column -1, off the map
    assert hm[3, row].argmax() == 10


def test_unlabelled_and_outside_joints_get_zero_weight() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    kpts = np.array([[50, 50, 0], [-60, 10, 2], [300, 10, 2], [10, 10, 2], [np.nan, 5, 2]], dtype=np.float32)
    hm, w = codec.encode(kpts, joint_weights=np.array([1, 1, 1, 1.5, 1]))
    assert w.tolist() == [0.0, 0.0, 0.0, 1.5, 0.0]
    assert hm[[0, 1, 2, 4]].max() == 0.0 and hm[3].max() == 1.0
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        codec.encode(np.zeros((3, 2)))


@pytest.mark.parametrize("encoding", ["msra", "unbiased"])
@pytest.mark.parametrize("dark", [False, True])
def test_encode_decode_round_trip(encoding: str, dark: bool) -> None:
    rng = np.random.default_rng(0)
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0, encoding=encoding, dark=dark)
    pts = np.column_stack([rng.uniform(20, 172, 17), rng.uniform(20, 236, 17), np.full(17, 2.0)])
    hm, _ = codec.encode(pts)
    dec, scores = codec.decode(hm[None])
    err = np.abs(dec[0] - pts[:, :2]).max()
    bound = {
        ("msra", False): 2.0 + 1.0,
        ("msra", True): 2.0 + 0.01,
        ("unbiased", False): 3.0,
        ("unbiased", True): 0.05,
    }[(encoding, dark)]
    assert err <= bound
    assert scores.shape == (1, 17) and np.all(scores > 0.5)


def test_unbiased_dark_is_subpixel_exact() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0, encoding="unbiased", dark=True)
    pts = np.array([[77.3, 101.9, 2], [52.6, 200.2, 2], [12.6, 30.7, 2]])
    dec, _ = codec.decode(codec.encode(pts)[0][None])
    err = np.abs(dec[0] - pts[:, :2]).max(axis=1)
    assert err[:2].max() < 0.05
    # 3 heatmap pixels from the border the blur sees a truncated Gaussian: still well under a pixel
    assert err[2] < 0.25


def _worst_error_per_argmax_column(codec: HeatmapCodec, row: float) -> np.ndarray:
    """Largest |decoded - true| (heatmap px) over clean Gaussians, grouped by their argmax column."""
    w = codec.heatmap_size[0]
    worst = np.zeros(w)
    for x in np.linspace(0, w - 1, (w - 1) * 8 + 1):
        hm, weight = codec.encode(np.column_stack([codec.heatmap_to_input(np.array([[x, row]])), [2.0]]))
        assert weight[0] == 1.0
        col = int(hm[0].argmax() % w)
        dec, _ = codec.decode(hm[None])
        err = np.abs(codec.input_to_heatmap(dec[0, 0]) - [x, row]).max()
        worst[col] = max(worst[col], err)
    return worst


@pytest.mark.parametrize(("heatmap_size", "sigma"), [((48, 64), 2.0), ((72, 96), 3.0)])
def test_dark_is_never_worse_than_the_quarter_offset_near_the_border(
    heatmap_size: tuple[int, int], sigma: float
) -> None:
    """On clean (unbiased, sub-pixel) Gaussians DARK must not lose to argmax + quarter offset at any column.

    Before the border rule, DARK read edge-padded derivatives and the blur's truncated Gaussian:
    1.15 vs 0.23 px on column 1 and 0.36 vs 0.25 px on column 2 at sigma 2.
    """
    size = (heatmap_size[0] * 4, heatmap_size[1] * 4)
    row = heatmap_size[1] / 2 + 0.3
    quarter = _worst_error_per_argmax_column(HeatmapCodec(size, heatmap_size, sigma, "unbiased"), row)
    dark = _worst_error_per_argmax_column(HeatmapCodec(size, heatmap_size, sigma, "unbiased", dark=True), row)
    assert np.all(dark <= quarter + 1e-9), np.flatnonzero(dark > quarter + 1e-9)
    inner = slice(6, heatmap_size[0] - 6)
    assert dark[inner].max() < 0.05 < 0.2 < quarter[inner].max()  # and away from the border DARK is exact
    # the same along rows: a Gaussian one pixel below the top edge falls back to the quarter offset
    codec = HeatmapCodec(size, heatmap_size, sigma, "unbiased", dark=True)
    pt = codec.heatmap_to_input(np.array([[20.3, 1.2]]))
    dec, _ = codec.decode(codec.encode(np.column_stack([pt, [2.0]]))[0][None])
    assert codec.input_to_heatmap(dec[0, 0]).tolist() == pytest.approx([20.3, 1.25], abs=0.05)


def test_quarter_offset_moves_toward_higher_neighbour() -> None:
    codec = HeatmapCodec((48, 64), (12, 16))
    hm = np.zeros((1, 1, 16, 12), dtype=np.float32)
    hm[0, 0, 5, 6] = 1.0
    hm[0, 0, 5, 7] = 0.5
    hm[0, 0, 4, 6] = 0.3
    dec, score = codec.decode(hm)
    assert dec[0, 0].tolist() == pytest.approx([(6.25) * 4, (4.75) * 4])
    assert score[0, 0] == 1.0


@pytest.mark.parametrize("encoding", ["msra", "unbiased"])
def test_flip_back_matches_encoding_of_mirrored_keypoints(encoding: str) -> None:
    w_in, h_in = 192, 256
    codec = HeatmapCodec((w_in, h_in), (48, 64), sigma=2.0, encoding=encoding)
    pts = np.array([[60.0, 100.0, 2]] * 17)
    pts[:, 0] += np.arange(17) * 4
    hm, _ = codec.encode(pts)
    mirrored = pts.copy()
    mirrored[:, 0] = w_in - 1 - pts[:, 0]
    mirrored = mirrored[COCO_17.flip_index]  # the flipped image's left joint is the original right one
    hm_flip, _ = codec.encode(mirrored)
    back = codec.flip_back(hm_flip[None], COCO_17.flip_index)[0]
    dec, _ = codec.decode(back[None])
    direct, _ = codec.decode(hm[None])
    tol = 1.0 if encoding == "msra" else 0.01
    assert np.abs(dec - direct).max() <= tol * 4 + 1e-6


def test_flip_back_shift_is_exact() -> None:
    """MSRA needs exactly a 1-pixel right shift after mirroring; the unbiased encoding none.

    (a) Maps of an equivariant model: flipping its input mirrors the maps and swaps the joints, so
    flip_back(model(flip(x))) must be model(x) shifted one column right (MSRA) or model(x) itself.
    (b) Training geometry: the mirrored sample of a joint at input x sits at W - x (the lineage's crop
    centre at W / 2, tests/test_data_transforms.py); its MSRA target, flipped back, must equal the
    original target exactly. Integer-rounded joints away from .5 ties keep the rounding symmetric.
    """
    rng = np.random.default_rng(0)
    flip = COCO_17.flip_index
    maps = rng.random((2, 17, 64, 48)).astype(np.float32)
    from_flipped_input = maps[..., ::-1][:, flip]
    msra = HeatmapCodec((192, 256), (48, 64), encoding="msra")
    back = msra.flip_back(from_flipped_input, flip)
    assert np.array_equal(back[..., 1:], maps[..., :-1]) and np.array_equal(back[..., 0], maps[..., 0])
    unbiased = HeatmapCodec((192, 256), (48, 64), encoding="unbiased")
    assert np.array_equal(unbiased.flip_back(from_flipped_input, flip), maps)
    # (b)
    pts = np.column_stack([rng.integers(30, 160, 17) + 0.3, rng.integers(30, 220, 17) + 0.3, np.full(17, 2.0)])
    target, _ = msra.encode(pts)
    mirrored = pts.copy()
    mirrored[:, 0] = 192 - pts[:, 0]
    mirrored_target, _ = msra.encode(mirrored[flip])
    assert np.array_equal(msra.flip_back(mirrored_target[None], flip)[0], target)
    # unbiased: the mirror of input column x is W - 1 - x, and no shift is needed
    mirrored[:, 0] = 191 - pts[:, 0]
    target_u, _ = unbiased.encode(pts)
    back_u = unbiased.flip_back(unbiased.encode(mirrored[flip])[0][None], flip)[0]
    np.testing.assert_allclose(back_u, target_u, atol=1e-6)


def test_flip_shift_belongs_to_encoding() -> None:
    assert HeatmapCodec((192, 256), (48, 64), encoding="msra").flip_shift == 1
    assert HeatmapCodec((192, 256), (48, 64), encoding="unbiased").flip_shift == 0
    with pytest.raises(ValueError):
        HeatmapCodec((192, 256), (48, 64), encoding="udp")


def test_box_to_center_scale_keeps_aspect_and_pads() -> None:
    c, s = box_to_center_scale((10, 20, 30, 120), aspect_ratio=0.75)
    assert c.tolist() == [25.0, 80.0]
    assert s.tolist() == pytest.approx([90 * 1.25, 120 * 1.25])
    c, s = box_to_center_scale((0, 0, 300, 100), aspect_ratio=0.75)
    assert s.tolist() == pytest.approx([300 * 1.25, 400 * 1.25])
    for bad in [(0, 0, 0, 10), (0, 0, 5, -1), (0, 0, float("nan"), 3)]:
        with pytest.raises(ValueError, match="positive finite"):
            box_to_center_scale(bad, 0.75)


def test_affine_maps_box_to_input_and_back() -> None:
    center, scale = np.array([100.0, 80.0]), np.array([60.0, 80.0])
    m = get_affine_transform(center, scale, 0.0, (192, 256))
    corners = np.array([[70.0, 40.0], [130.0, 120.0], [100.0, 80.0]])
    assert np.allclose(affine_points(corners, m), [[0, 0], [192, 256], [96, 128]], atol=1e-3)
    inv = get_affine_transform(center, scale, 0.0, (192, 256), inverse=True)
    assert np.allclose(inv, invert_affine(m), atol=1e-4)
    pts = np.array([[[10.0, 20.0], [96.0, 128.0]]])
    back = input_to_image(pts, center[None], scale[None], (192, 256))
    assert np.allclose(back[0], affine_points(pts[0], inv), atol=1e-3)


def test_rotation_direction_matches_warp() -> None:
    img = np.zeros((200, 200, 3), np.uint8)
    cv2.circle(img, (100, 60), 4, (255, 255, 255), -1)  # a dot above the centre
    center, scale = np.array([100.0, 100.0]), np.array([200.0, 200.0])
    for rot in (0.0, 30.0, -45.0, 90.0):
        m = get_affine_transform(center, scale, rot, (100, 100))
        warped = cv2.warpAffine(img, m, (100, 100), flags=cv2.INTER_LINEAR)
        ys, xs = np.nonzero(warped[..., 0] > 100)
        expected = affine_points(np.array([[100.0, 60.0]]), m)[0]
        assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0
    m90 = get_affine_transform(center, scale, 90.0, (100, 100))
    # +90 degrees: image content rotates counter-clockwise, so "up" moves to the left
    assert affine_points(np.array([[100.0, 60.0]]), m90)[0, 0] < 40


def test_keypoint_specs_are_consistent() -> None:
    for spec in (COCO_17, MPII_16):
        perm = spec.flip_index
        assert sorted(perm.tolist()) == list(range(spec.num_keypoints))
        assert (perm[perm] == np.arange(spec.num_keypoints)).all()
        assert spec.weights.shape == (spec.num_keypoints,)
    assert COCO_17.names[COCO_17.flip_index[5]] == "right_shoulder"
    assert get_spec("mpii16") is MPII_16
    with pytest.raises(ValueError, match="valid"):
        get_spec("h36m")


def _encode_broadcast(codec: HeatmapCodec, keypoints: np.ndarray, joint_weights: np.ndarray | None = None):
    """The encoder in its plain formulation (broadcast outer product, then the weight mask), kept to pin
    :meth:`HeatmapCodec.encode` bit for bit: training targets must not change with its implementation."""
    kpts = np.asarray(keypoints, dtype=np.float64)
    w, h = codec.heatmap_size
    radius = codec.sigma * 3
    labelled = (kpts[:, 2] > 0) & np.isfinite(kpts[:, :2]).all(axis=1)
    weight = labelled.astype(np.float32)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    mu = codec.input_to_heatmap(np.nan_to_num(kpts[:, :2], nan=-1e6))
    if codec.encoding == "msra":
        mu = np.trunc(mu + 0.5)
        ul, br = np.trunc(mu - radius), np.trunc(mu + radius + 1)
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
    gx = np.exp(-((xs[None, :] - mu[:, :1]) ** 2) / (2 * codec.sigma**2)) * mx
    gy = np.exp(-((ys[None, :] - mu[:, 1:]) ** 2) / (2 * codec.sigma**2)) * my
    heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    heatmaps *= (weight > 0)[:, None, None]
    if joint_weights is not None:
        weight = weight * np.asarray(joint_weights, dtype=np.float32)
    return heatmaps, weight.astype(np.float32)


def _assert_same_bits(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "codec",
    [
        HeatmapCodec((192, 256), (48, 64), 2.0, "msra"),
        HeatmapCodec((192, 256), (48, 64), 2.0, "unbiased"),
        HeatmapCodec((288, 384), (72, 96), 3.0, "msra"),
        HeatmapCodec((96, 128), (24, 32), 1.5, "unbiased"),
    ],
    ids=["msra", "unbiased", "msra-384", "unbiased-s1.5"],
)
def test_encode_is_bit_identical_to_the_broadcast_product(codec: HeatmapCodec) -> None:
    """Joints inside, on the border and outside the map, on pixel centres and half pixels, NaN and inf,
    unlabelled, with and without joint weights."""
    rng = np.random.default_rng(0)
    W, H = codec.input_size
    for t in range(400):
        k = np.zeros((17, 3))
        k[:, 0], k[:, 1] = rng.uniform(-60, W + 60, 17), rng.uniform(-60, H + 60, 17)
        k[:, 2] = rng.integers(0, 3, 17)
        if t % 5 == 0:
            k[:, :2] = np.round(k[:, :2] / 4) * 4 + rng.choice([-2.0, -0.5, 0.0, 0.5, 2.0], (17, 2))
        if t % 7 == 0:
            k[rng.integers(17), 0] = np.nan
        if t % 11 == 0:
            k[rng.integers(17), 1] = np.inf
        jw = rng.uniform(0.5, 1.5, 17).astype(np.float32) if t % 3 == 0 else None
        _assert_same_bits(codec.encode(k, jw), _encode_broadcast(codec, k, jw))


@pytest.mark.real_data
def test_encode_is_bit_identical_on_real_training_crops(shared_data: Path) -> None:
    """The keypoints of augmented coco_mini training crops (three epochs) encode bit for bit as before."""
    from fasterpose.config import AugmentConfig
    from fasterpose.data import TopDownDataset, parse_coco_keypoints

    root = shared_data / "coco_mini"
    records = parse_coco_keypoints(root / "annotations/person_keypoints_train2017_mini.json", root / "train2017")
    codec = HeatmapCodec((192, 256), (48, 64), 2.0)
    ds = TopDownDataset(records, COCO_17, codec, augment=AugmentConfig(), seed=0)
    for epoch in range(3):
        for i in range(len(ds)):
            sample = ds.prepare(i, np.random.default_rng([epoch, i]))
            _assert_same_bits(codec.encode(sample.keypoints), _encode_broadcast(codec, sample.keypoints))
