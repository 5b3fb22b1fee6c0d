"""Shared pytest fixtures and helpers: the real-data folder, a tiny generated COCO-format dataset and the
tiny model the export, runtime and evaluation tests build."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# ONNX exports of torch files are cached (fasterpose.deploy.export_cache): never in the user's cache from tests
os.environ.setdefault("FASTERPOSE_CACHE_DIR", tempfile.mkdtemp(prefix="fasterpose-test-cache-"))


def tiny_model(input_size: tuple[int, int] = (32, 64)) -> list[str]:
    """Config overrides for the tiny test model: a random-init ResNet-18 at ``input_size`` (width,
    height) with heatmaps a quarter of it."""
    w, h = input_size
    return [
        "model.backbone=resnet18",
        "model.pretrained=false",
        f"data.input_size=[{w},{h}]",
        f"data.heatmap_size=[{w // 4},{h // 4}]",
    ]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (small real COCO and MPII sets); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it lives beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).

    Small CPU graphs run faster on one thread, and on a shared 2-core machine two threads contend and
    spin-wait. The previous count is restored afterwards.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_coco(
    root: Path,
    people: list[dict[str, Any]],
    image_size: tuple[int, int] = (160, 120),
    num_images: int = 1,
    name: str = "train",
) -> tuple[Path, Path]:
    """Write ``num_images`` random JPEGs and a COCO keypoint JSON listing ``people``.

    Each person dict needs ``bbox`` and ``keypoints`` (flat 51 numbers) and may set ``image_id``
    (default 1), ``iscrowd``, ``category_id``. Returns (annotation path, image folder).
    """
    images = root / name
    images.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    w, h = image_size
    entries = []
    for i in range(1, num_images + 1):
        file_name = f"{i:012d}.jpg"
        cv2.imwrite(str(images / file_name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        entries.append({"id": i, "file_name": file_name, "width": w, "height": h})
    anns = []
    for n, person in enumerate(people, start=1):
        kpts = list(person["keypoints"])
        anns.append(
            {
                "id": n,
                "image_id": person.get("image_id", 1),
                "category_id": person.get("category_id", 1),
                "iscrowd": person.get("iscrowd", 0),
                "bbox": person["bbox"],
                "area": 100.0,
                "keypoints": kpts,
                "num_keypoints": int(sum(1 for v in kpts[2::3] if v > 0)),
            }
        )
    data = {
        "images": entries,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(17)]}],
    }
    ann = root / "annotations" / f"person_keypoints_{name}.json"
    ann.write_text(json.dumps(data))
    return ann, images


def simple_keypoints(x0: float = 40, y0: float = 20, vis: int = 2) -> list[float]:
    """17 labelled joints laid out in a 4-column grid starting at (x0, y0), 12 px apart."""
    out: list[float] = []
    for j in range(17):
        out += [x0 + (j % 4) * 12, y0 + (j // 4) * 12, vis]
    return out


@pytest.fixture
def tiny_coco(tmp_path: Path) -> tuple[Path, Path]:
    """A one-image COCO dataset with two labelled people: (annotation path, image folder)."""
    people = [
        {"bbox": [30, 10, 60, 70], "keypoints": simple_keypoints(40, 20)},
        {"bbox": [80, 40, 50, 60], "keypoints": simple_keypoints(85, 45)},
    ]
    return write_coco(tmp_path, people)


NO_AUGMENT = {"scale_factor": 0.0, "rotation_factor": 0.0, "rotation_prob": 0.0, "flip": False, "half_body_prob": 0.0}


def coco_mini_fit(
    root: Path, out_dir: Path, epochs: int, train: dict[str, Any] | None = None, eval: dict[str, Any] | None = None
) -> Any:
    """The config of the real-data tests' small fit: a random-init ResNet-18 FasterPose (LHR + RCE) on
    ``root``'s coco_mini train, 64x96 input, no augmentation, on the CPU; ``train`` / ``eval`` add keys."""
    from fasterpose.config import config_from_dict

    return config_from_dict(
        {
            "name": "coco_mini_fit",
            "model": {"backbone": "resnet18", "pretrained": False, "feature_index": -2},
            "data": {
                "dataset": "coco",
                "root": str(root),
                "train_ann": "annotations/person_keypoints_train2017_mini.json",
                "train_images": "train2017",
                "val_ann": "annotations/person_keypoints_val2017_mini.json",
                "val_images": "val2017",
                "input_size": [64, 96],
                "heatmap_size": [16, 24],
                "sigma": 1.5,
                "encoding": "unbiased",
                "num_workers": 0,
                "augment": NO_AUGMENT,
            },
            "loss": {"name": "rce"},
            "train": {
                "epochs": epochs,
                "batch_size": 8,
                "lr": 2e-3,
                "warmup_iters": 10,
                "eval_every": 0,
                "out_dir": str(out_dir),
                "device": "cpu",
                **(train or {}),
            },
            "eval": eval or {},
        }
    )
