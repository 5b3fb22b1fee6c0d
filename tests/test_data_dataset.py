"""TopDownDataset contract, image reading, and every kind of bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fasterpose.codec import HeatmapCodec
from fasterpose.config import AugmentConfig, Config, DataConfig
from fasterpose.data import (
    ImageReadError,
    PersonRecord,
    SampleError,
    SampleMeta,
    TopDownDataset,
    build_records,
    parse_coco_keypoints,
    read_image,
    seed_worker,
)
from fasterpose.keypoints import COCO_17

CODEC = HeatmapCodec((48, 64), (12, 16), 1.0)


def make_record(path: Path | str, box: tuple[float, float, float, float] = (20, 10, 60, 80)) -> PersonRecord:
    kpts = np.zeros((17, 3), np.float32)
    kpts[:, 0] = np.linspace(25, 75, 17)
    kpts[:, 1] = np.linspace(15, 85, 17)
    kpts[:, 2] = 2
    return PersonRecord(str(path), 7, np.array(box, np.float32), kpts, annotation_id=3)


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "ok.jpg"
    img = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


# ----------------------------------------------------------------------------- contract
def test_item_layout_and_collate(jpeg: Path) -> None:
    ds = TopDownDataset([make_record(jpeg)] * 4, COCO_17, CODEC, augment=AugmentConfig(), seed=1)
    item = ds[0]
    assert set(item) == {"image", "target", "target_weight", "meta"}
    assert item["image"].shape == (3, 64, 48) and item["image"].dtype == torch.float32
    assert item["target"].shape == (17, 16, 12) and item["target_weight"].shape == (17,)
    meta = item["meta"]
    assert isinstance(meta, SampleMeta) and meta.image_id == 7 and meta.keypoints.shape == (17, 3)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch["image"].shape == (4, 3, 64, 48)
    assert isinstance(batch["meta"], SampleMeta)
    assert batch["meta"].center.shape == (4, 2) and batch["meta"].flipped.shape == (4,)
    assert batch["meta"].index.tolist() == [0, 1, 2, 3]


def test_evaluation_mode_is_deterministic_and_centred(jpeg: Path) -> None:
    ds = TopDownDataset([make_record(jpeg)], COCO_17, CODEC, augment=None)
    a, b = ds[0], ds[0]
    assert torch.equal(a["image"], b["image"]) and a["meta"].rotation == 0.0 and not a["meta"].flipped
    # box (20, 10, 60, 80): centre (50, 50), aspect 0.75 -> 60x80, padded 1.25 -> 75x100
    np.testing.assert_allclose(a["meta"].center, [50, 50])
    np.testing.assert_allclose(a["meta"].scale, [75, 100])


def test_joint_weights(jpeg: Path) -> None:
    ds = TopDownDataset([make_record(jpeg)], COCO_17, CODEC, use_joint_weights=True)
    w = ds[0]["target_weight"].numpy()
    np.testing.assert_allclose(w[w > 0], COCO_17.weights[w > 0])
    assert w.max() == pytest.approx(1.5)


def test_workers_get_distinct_reproducible_streams(jpeg: Path) -> None:
    ds = TopDownDataset([make_record(jpeg)] * 4, COCO_17, CODEC, augment=AugmentConfig(), seed=0)

    def run() -> torch.Tensor:
        gen = torch.Generator().manual_seed(123)
        loader = DataLoader(ds, batch_size=1, num_workers=2, worker_init_fn=seed_worker, generator=gen)
        return torch.cat([b["meta"].scale for b in loader])

    first, second = run(), run()
    assert torch.equal(first, second)
    assert not torch.equal(first[0], first[1])  # worker 0 and worker 1 draw different augmentations


def test_one_augmentation_policy_per_sample_and_epoch(jpeg: Path) -> None:
    """Sample i of epoch e draws from one generator seeded by (seed, e, i): the same crop alone, after
    other samples, in a DataLoader worker, and through the training loop's EpochSamples."""
    from fasterpose.engine.sampling import EpochSamples

    ds = TopDownDataset([make_record(jpeg)] * 4, COCO_17, CODEC, augment=AugmentConfig(), seed=3)
    alone = ds.item(2, 1)["image"]
    for i in (0, 1, 3):
        ds.item(i, 1)
    assert torch.equal(ds.item(2, 1)["image"], alone)  # nothing carried over from earlier samples
    assert torch.equal(EpochSamples(ds, 1)[2]["image"], alone)
    assert not torch.equal(ds.item(2, 0)["image"], alone)  # another epoch, other crops
    ds.epoch = 1
    loader = DataLoader(ds, batch_size=1, num_workers=2, worker_init_fn=seed_worker, shuffle=False)
    assert torch.equal([b["image"][0] for b in loader][2], alone)  # loaded by the second worker


def test_from_config(tiny_coco: tuple[Path, Path]) -> None:
    ann, _ = tiny_coco
    cfg = Config(
        data=DataConfig(
            root=str(ann.parent.parent),
            train_ann="annotations/person_keypoints_train.json",
            train_images="train",
            input_size=(48, 64),
            heatmap_size=(12, 16),
            skip_bad_images=True,
        )
    )
    train = TopDownDataset.from_config(cfg, "train", train=True)
    assert len(train) == 2 and train.augment is not None and train.skip_bad_images
    assert train[1]["image"].shape == (3, 64, 48)
    val = TopDownDataset.from_config(
        Config(data=DataConfig(**{**cfg.data.__dict__, "val_ann": cfg.data.train_ann, "val_images": "train"})),
        "val",
        train=False,
    )
    assert val.augment is None and not val.skip_bad_images


# ----------------------------------------------------------------------------- image reading
def test_read_grayscale_rgba_and_16bit(tmp_path: Path) -> None:
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    out = read_image(tmp_path / "gray.png")
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], gray)

    bgra = np.zeros((20, 30, 4), np.uint8)
    bgra[..., 2] = 200  # red in BGR order
    bgra[..., 3] = 7  # alpha is dropped, not blended
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    out = read_image(tmp_path / "rgba.png")
    assert out.shape == (20, 30, 3) and tuple(out[0, 0]) == (200, 0, 0)  # RGB order

    deep = np.full((20, 30, 3), 65535, np.uint16)
    deep[:, :10] = 32768
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    out = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out[0, 0, 0] == 128 and out[0, 20, 0] == 255

    deep_gray = np.full((20, 30), 4096, np.uint16)
    cv2.imwrite(str(tmp_path / "deep_gray.png"), deep_gray)
    assert read_image(tmp_path / "deep_gray.png").shape == (20, 30, 3)


def test_dataset_accepts_unusual_image_formats(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((100, 120), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "rgba.png"), np.full((100, 120, 4), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((100, 120, 3), 30000, np.uint16))
    records = [make_record(tmp_path / n) for n in ("gray.png", "rgba.png", "deep.png")]
    ds = TopDownDataset(records, COCO_17, CODEC, augment=AugmentConfig())
    for i in range(3):
        assert torch.isfinite(ds[i]["image"]).all()


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("missing.jpg", None, "image file not found"),
        ("empty.jpg", b"", "empty"),
        ("corrupt.jpg", b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20 + b"\xff\xd9", "cannot decode"),
        ("cut.jpg", b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20, "truncated JPEG"),
        ("text.png", b"hello", "cannot decode"),
    ],
)
def test_bad_image_errors_name_the_file(tmp_path: Path, name: str, content: bytes | None, pattern: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=pattern) as info:
        read_image(path)
    assert isinstance(info.value, ValueError) and str(path) in str(info.value) and info.value.path == str(path)
    ds = TopDownDataset([make_record(path)], COCO_17, CODEC)
    with pytest.raises(ImageReadError, match=name):
        ds[0]


def test_truncated_jpeg_is_detected(jpeg: Path, tmp_path: Path) -> None:
    data = jpeg.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(cut)) is not None  # OpenCV alone would silently return a half-grey image
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        read_image(cut)


def test_skip_bad_images_replaces_and_counts(jpeg: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"garbage")
    records = [make_record(bad), make_record(jpeg), make_record(tmp_path / "gone.jpg")]
    ds = TopDownDataset(records, COCO_17, CODEC, augment=AugmentConfig(), skip_bad_images=True, seed=0)
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in (0, 1, 2, 0)]
    assert all(it["meta"].index == 1 for it in items)  # the only readable record stands in
    assert ds.bad_images >= 3 and ds.bad_image_paths == {str(bad), str(tmp_path / "gone.jpg")}
    assert "broken.jpg" in caplog.text and "gone.jpg" in caplog.text
    assert caplog.text.count("broken.jpg") == 1  # warned once per file

    all_bad = TopDownDataset([make_record(bad)], COCO_17, CODEC, skip_bad_images=True)
    with pytest.raises(SampleError, match="unreadable images in a row.*broken.jpg"):
        all_bad[0]


def test_unexpected_failure_names_sample_and_file(jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = TopDownDataset([make_record(jpeg)], COCO_17, CODEC)

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("something deep")

    monkeypatch.setattr(ds.codec, "encode", boom)
    with pytest.raises(SampleError, match=r"sample 0: .*ok\.jpg \(annotation 3\): KeyError"):
        ds[0]


# ----------------------------------------------------------------------------- bad boxes and keypoints
@pytest.mark.parametrize("box", [(10, 10, 0, 50), (10, 10, 40, -5), (10, 10, float("nan"), 5)])
def test_zero_or_negative_box_is_a_clear_error(jpeg: Path, box: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match=r"ok\.jpg \(annotation 3\): box must have positive finite"):
        TopDownDataset([make_record(jpeg, box)], COCO_17, CODEC)


def test_keypoints_outside_the_image(jpeg: Path) -> None:
    record = make_record(jpeg)
    record.keypoints[0, :2] = (-500, 40)  # far left of the image
    record.keypoints[1, :2] = (80, 5000)  # far below
    # (half-body off: a half-body crop is centred on the joints, wherever they are)
    ds = TopDownDataset([record], COCO_17, CODEC, augment=AugmentConfig(half_body_prob=0.0), seed=0)
    for _ in range(10):
        item = ds[0]
        weight = item["target_weight"].numpy()
        flipped = item["meta"].flipped
        out = [COCO_17.flip_index[j] if flipped else j for j in (0, 1)]
        assert weight[out].sum() == 0 and item["target"][out].sum() == 0
        assert weight.sum() > 5


def test_wrong_keypoint_shape(jpeg: Path) -> None:
    record = make_record(jpeg)
    record.keypoints = record.keypoints[:5]
    with pytest.raises(ValueError, match=r"ok\.jpg.*\(5, 3\).*coco17"):
        TopDownDataset([record], COCO_17, CODEC)


# ----------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_coco_samples(shared_data: Path) -> None:
    root = shared_data / "coco_mini"
    records = parse_coco_keypoints(root / "annotations/person_keypoints_train2017_mini.json", root / "train2017")
    codec = HeatmapCodec((192, 256), (48, 64), 2.0)
    train = TopDownDataset(records, COCO_17, codec, augment=AugmentConfig(), seed=0)
    val = TopDownDataset(records, COCO_17, codec)
    for i in range(0, len(records), 5):
        for ds in (train, val):
            item = ds[i]
            assert item["image"].shape == (3, 256, 192) and torch.isfinite(item["image"]).all()
    # evaluation crops keep every labelled joint of a GT box on the map
    labelled = sum(int((r.keypoints[:, 2] > 0).sum()) for r in records)
    kept = sum(int((val[i]["target_weight"] > 0).sum()) for i in range(len(val)))
    assert kept >= 0.95 * labelled


@pytest.mark.real_data
def test_real_mpii_samples(shared_data: Path) -> None:
    cfg = DataConfig(
        dataset="mpii",
        keypoints="mpii16",
        root=str(shared_data / "mpii_mini"),
        train_ann="mpii_mini.json",
        train_images="images",
        input_size=(256, 256),
        heatmap_size=(64, 64),
    )
    from fasterpose.keypoints import MPII_16

    ds = TopDownDataset(build_records(cfg, "train"), MPII_16, HeatmapCodec((256, 256), (64, 64), 2.0))
    for i in range(len(ds)):
        item = ds[i]
        labelled = (ds.records[i].keypoints[:, 2] > 0).sum()
        assert item["target"].shape == (16, 64, 64) and int((item["target_weight"] > 0).sum()) == labelled


def test_synthpose_through_the_coco_path(tmp_path: Path) -> None:
    synthpose = pytest.importorskip("fasterpose.data.synthpose", reason="SynthPose generator not in this build")
    synthpose.generate(tmp_path, 3, 2, 0)
    cfg = Config(
        data=DataConfig(
            dataset="synthpose",
            root=str(tmp_path),
            train_ann="annotations/person_keypoints_train.json",
            train_images="train",
            val_ann="annotations/person_keypoints_val.json",
            val_images="val",
            input_size=(48, 64),
            heatmap_size=(12, 16),
        )
    )
    for split, train in (("train", True), ("val", False)):
        ds = TopDownDataset.from_config(cfg, split, train=train)
        assert len(ds) >= 1
        item = ds[0]
        assert item["image"].shape == (3, 64, 48) and item["target_weight"].sum() > 0
