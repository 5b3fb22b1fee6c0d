"""Augmentation consistency: keypoints always move with the pixels, and flip swaps left/right.

The test image carries one coloured, anti-aliased dot per joint (PNG, so colours stay exact).
After every transform, the dot of each joint is located in the crop by its colour and must sit
within 1 pixel of where the pipeline says the joint went.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from fasterpose.codec import HeatmapCodec
from fasterpose.config import AugmentConfig
from fasterpose.data import PersonRecord, TopDownDataset
from fasterpose.data.transforms import (
    CropParams,
    crop_matrix,
    denormalize_image,
    half_body_crop,
    normalize_image,
    transform_keypoints,
    warp_image,
)
from fasterpose.keypoints import COCO_17

# 17 distinct RGB directions (values in {0, 0.5, 1}); no two are multiples of each other
PALETTE = np.array(
    [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 1, 0),
        (1, 0, 1),
        (0, 1, 1),
        (1, 1, 1),
        (1, 0.5, 0),
        (0.5, 1, 0),
        (1, 0, 0.5),
        (0.5, 0, 1),
        (0, 1, 0.5),
        (0, 0.5, 1),
        (1, 1, 0.5),
        (1, 0.5, 1),
        (0.5, 1, 1),
        (1, 0.5, 0.5),
    ],
    dtype=np.float64,
)
RADIUS = 4.0
IMAGE_W, IMAGE_H = 360, 400
# a frontal person: left joints on the image right (larger x), as COCO people facing the camera
LAYOUT = np.array(
    [
        (180, 70),
        (192, 58),
        (168, 58),
        (206, 66),
        (154, 66),
        (215, 110),
        (145, 110),
        (232, 160),
        (128, 160),
        (240, 210),
        (120, 210),
        (205, 220),
        (155, 220),
        (210, 280),
        (150, 280),
        (213.3, 340.6),
        (146.7, 339.4),
    ],
    dtype=np.float64,
)


def dot_image() -> np.ndarray:
    """RGB uint8 image with an anti-aliased disc of colour PALETTE[j] at LAYOUT[j]."""
    ys, xs = np.mgrid[0:IMAGE_H, 0:IMAGE_W].astype(np.float64)
    img = np.zeros((IMAGE_H, IMAGE_W, 3), dtype=np.float64)
    for (x, y), color in zip(LAYOUT, PALETTE, strict=True):
        coverage = np.clip(RADIUS + 0.5 - np.hypot(xs - x, ys - y), 0.0, 1.0)
        img += coverage[..., None] * color * 255.0
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def find_dot(crop: np.ndarray, color: np.ndarray) -> np.ndarray | None:
    """Intensity-weighted centroid (x, y) of the pixels whose colour points along ``color``."""
    pix = crop.astype(np.float64)
    norm = np.linalg.norm(pix, axis=2)
    unit = color / np.linalg.norm(color)
    cos = (pix @ unit) / np.maximum(norm, 1e-9)
    weight = np.where((cos > 0.995) & (norm > 40), pix @ unit, 0.0)
    if weight.sum() < 255 * 3:
        return None
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def assert_dots_follow(crop: np.ndarray, keypoints: np.ndarray, flipped: bool) -> int:
    """Every labelled output joint j sits on the dot of source joint flip_index[j] (or j). Returns #checked."""
    source = COCO_17.flip_index if flipped else np.arange(17)
    h, w = crop.shape[:2]
    checked = 0
    for j in range(17):
        x, y, v = keypoints[j]
        margin = RADIUS + 3
        if v <= 0 or not (margin <= x <= w - 1 - margin and margin <= y <= h - 1 - margin):
            continue
        found = find_dot(crop, PALETTE[source[j]])
        assert found is not None, f"joint {j}: no dot of its colour near ({x:.1f}, {y:.1f})"
        assert np.hypot(*(found - (x, y))) <= 1.0, f"joint {j}: dot at {found}, keypoint at ({x:.2f}, {y:.2f})"
        checked += 1
    return checked


@pytest.fixture(scope="module")
def dot_dataset_factory(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("dots")
    path = folder / "dots.png"
    cv2.imwrite(str(path), cv2.cvtColor(dot_image(), cv2.COLOR_RGB2BGR))
    kpts = np.concatenate([LAYOUT, np.full((17, 1), 2.0)], axis=1).astype(np.float32)
    lo, hi = LAYOUT.min(axis=0), LAYOUT.max(axis=0)
    record = PersonRecord(str(path), 1, np.array([*lo, *(hi - lo)], dtype=np.float32), kpts)
    codec = HeatmapCodec((192, 256), (48, 64), 2.0)

    def make(augment: AugmentConfig | None, seed: int = 0) -> TopDownDataset:
        return TopDownDataset([record], COCO_17, codec, augment=augment, seed=seed)

    return make


NO_AUG = AugmentConfig(scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0, flip=False, half_body_prob=0.0)
SINGLE = {
    "none": NO_AUG,
    "scale": dataclasses.replace(NO_AUG, scale_factor=0.35),
    "rotation": dataclasses.replace(NO_AUG, rotation_factor=45.0, rotation_prob=1.0),
    "flip": dataclasses.replace(NO_AUG, flip=True),
    "half_body": dataclasses.replace(NO_AUG, half_body_prob=1.0),
    "full": AugmentConfig(),
}


@pytest.mark.parametrize("name", list(SINGLE))
def test_keypoints_follow_pixels(dot_dataset_factory, name: str) -> None:  # noqa: ANN001
    ds = dot_dataset_factory(SINGLE[name], seed=7)
    flips = set()
    for epoch in range(12):  # the sample's augmentation in 12 epochs
        sample = ds.prepare(0, ds.sample_rng(0, epoch))
        flips.add(sample.params.flip)
        assert assert_dots_follow(sample.crop, sample.keypoints, sample.params.flip) >= 3
    if name == "flip":
        assert flips == {True, False}


def test_evaluation_crop_is_deterministic(dot_dataset_factory) -> None:  # noqa: ANN001
    ds = dot_dataset_factory(None)
    a, b = ds.prepare(0), ds.prepare(0)
    assert not a.params.flip and a.params.rotation == 0.0
    np.testing.assert_array_equal(a.crop, b.crop)
    assert assert_dots_follow(a.crop, a.keypoints, False) == 17


def test_random_combinations_many_seeds(dot_dataset_factory) -> None:  # noqa: ANN001
    strong = AugmentConfig(scale_factor=0.35, rotation_factor=45.0, rotation_prob=1.0, half_body_prob=0.5)
    for seed in range(25):
        sample = dot_dataset_factory(strong, seed=seed).prepare(0)
        assert_dots_follow(sample.crop, sample.keypoints, sample.params.flip)


def test_flip_swaps_left_and_right() -> None:
    img = dot_image()
    kpts = np.concatenate([LAYOUT, np.full((17, 1), 2.0)], axis=1).astype(np.float32)
    params = CropParams(np.array([180.0, 200.0], np.float32), np.array([300.0, 400.0], np.float32), 0.0, True)
    mat = crop_matrix(params, (192, 256), IMAGE_W)
    out = transform_keypoints(kpts, mat, COCO_17.flip_index)
    plain = transform_keypoints(kpts, crop_matrix(dataclasses.replace(params, flip=False), (192, 256), IMAGE_W))
    for left, right in COCO_17.flip_pairs:
        # a mirrored frontal person is again frontal: left joints stay on the image right
        assert out[left, 0] > out[right, 0]
        # and the output "left" joint is the mirror image of the input "right" joint about the crop
        # centre, which the lineage geometry puts at x = W / 2 (hence MSRA's 1-pixel flip-test shift)
        assert out[left, 0] == pytest.approx(192 - plain[right, 0], abs=1e-3)
        assert out[left, 1] == pytest.approx(plain[right, 1], abs=1e-3)
    crop = warp_image(img, mat, (192, 256))
    unflipped = warp_image(img, crop_matrix(dataclasses.replace(params, flip=False), (192, 256), IMAGE_W), (192, 256))
    diff = np.abs(crop[:, 1:].astype(int) - unflipped[:, ::-1][:, :-1].astype(int))
    assert diff.max() <= 1  # pixel column x of the flipped crop is column 192 - x of the plain one
    assert assert_dots_follow(crop, out, True) == 17


def test_encoded_target_peaks_at_keypoints(dot_dataset_factory) -> None:  # noqa: ANN001
    ds = dot_dataset_factory(SINGLE["full"], seed=3)
    for _ in range(5):
        item = ds[0]
        target, weight = item["target"].numpy(), item["target_weight"].numpy()
        # the image tensor is the normalised crop: its dots must be where the targets peak
        crop = denormalize_image(item["image"].numpy())
        for j in np.flatnonzero(weight > 0):
            peak = np.array(np.unravel_index(target[j].argmax(), target[j].shape)[::-1], dtype=np.float64)
            src = COCO_17.flip_index[j] if item["meta"].flipped else j
            found = find_dot(crop, PALETTE[src])
            if found is not None and 8 <= found[0] <= 183 and 8 <= found[1] <= 247:
                assert np.abs(peak * 4 - found).max() <= 3.0, (j, peak * 4, found)


def test_half_body_selects_upper_or_lower() -> None:
    kpts = np.concatenate([LAYOUT, np.full((17, 1), 2.0)], axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    centers = {tuple(np.round(half_body_crop(kpts, COCO_17.upper_body, 0.75, rng)[0])) for _ in range(20)}
    assert len(centers) == 2  # upper body and lower body
    center, scale = half_body_crop(kpts, COCO_17.upper_body, 0.75, rng)
    assert scale[0] / scale[1] == pytest.approx(0.75)
    few = kpts.copy()
    few[1:, 2] = 0  # a single labelled joint gives no box
    assert half_body_crop(few, COCO_17.upper_body, 0.75, rng) is None


def test_half_body_picks_upper_when_a_normal_draw_is_below_half() -> None:
    """The lineage: ``np.random.randn() < 0.5 and len(upper) > 2`` -> upper body, P = Phi(0.5) = 0.69."""
    kpts = np.concatenate([LAYOUT, np.full((17, 1), 2.0)], axis=1).astype(np.float32)
    upper_center = kpts[list(COCO_17.upper_body), :2].mean(axis=0)
    picks = []
    for seed in range(400):
        center, _ = half_body_crop(kpts, COCO_17.upper_body, 0.75, np.random.default_rng(seed))
        picks.append(bool(np.allclose(center, upper_center)))
        assert picks[-1] == (np.random.default_rng(seed).standard_normal() < 0.5)  # the same draw decides
    assert 0.64 < np.mean(picks) < 0.74  # 0.69, not a fair coin


def test_normalize_roundtrip_and_imagenet_stats() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    out = normalize_image(rgb)
    assert out.shape == (3, 8, 6) and out.dtype == np.float32
    assert out[0, 0, 0] == pytest.approx((rgb[0, 0, 0] / 255 - 0.485) / 0.229, abs=1e-5)
    assert out[2, 3, 4] == pytest.approx((rgb[3, 4, 2] / 255 - 0.406) / 0.225, abs=1e-5)
    np.testing.assert_array_equal(denormalize_image(out), rgb)
    np.testing.assert_allclose(normalize_image(rgb[..., ::-1].copy(), bgr=True), out)


def test_a_batch_of_crops_is_normalised_exactly_as_each_crop() -> None:
    """Inference crops (a batch, pipeline.crops.warp_crops) and training crops (one at a time) share
    one normalisation: the same float32 bits either way."""
    from fasterpose.pipeline.crops import warp_crops

    batch = np.random.default_rng(1).integers(0, 256, (3, 8, 6, 3), dtype=np.uint8)
    out = normalize_image(batch)
    assert out.shape == (3, 3, 8, 6) and out.dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(out[i], normalize_image(batch[i]))
        np.testing.assert_array_equal(normalize_image(batch, bgr=True)[i], normalize_image(batch[i], bgr=True))
    image = batch[0]
    crop = warp_crops(image, np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]]), (6, 8))  # the identity warp
    np.testing.assert_array_equal(crop[0], normalize_image(image))


def test_seeded_augmentation_is_reproducible(dot_dataset_factory, tmp_path: Path) -> None:  # noqa: ANN001
    a = [dot_dataset_factory(AugmentConfig(), seed=5)[0]["image"] for _ in range(1)]
    b = [dot_dataset_factory(AugmentConfig(), seed=5)[0]["image"] for _ in range(1)]
    c = [dot_dataset_factory(AugmentConfig(), seed=6)[0]["image"] for _ in range(1)]
    assert (a[0] == b[0]).all() and not (a[0] == c[0]).all()
