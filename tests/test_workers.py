"""``data.num_workers`` above the machine's CPU count is capped with one info line, not a DataLoader warning."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

import fasterpose.engine.train as train_module
from fasterpose.config import apply_overrides
from fasterpose.data import workers


def test_capped_at_usable_cpus_with_one_info_line(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    monkeypatch.setattr(workers, "_reported", set())
    with caplog.at_level(logging.INFO, logger="fasterpose.data.workers"):
        assert workers.capped_workers(4) == 2 and workers.capped_workers(4) == 2
        assert workers.capped_workers(2) == 2 and workers.capped_workers(0) == 0
    lines = [r for r in caplog.records if r.name == "fasterpose.data.workers"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "data.num_workers=4" in lines[0].getMessage() and "2 usable CPU cores" in lines[0].getMessage()


def test_training_loader_uses_the_capped_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    from fasterpose.data.synthpose import generate
    from test_train import tiny_config

    generate(tmp_path / "data", 8, 2, seed=1, min_people=1, max_people=1)
    cfg = tiny_config(tmp_path / "data", tmp_path / "run", epochs=1)
    cfg = apply_overrides(cfg, ["data.num_workers=16"])
    monkeypatch.setattr(workers, "usable_cpus", lambda: 1)
    monkeypatch.setattr(workers, "_reported", set())
    seen: list[int] = []
    real = train_module.DataLoader

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["num_workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "DataLoader", spy)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="fasterpose.data"):
        warnings.simplefilter("always")
        train_module.train(cfg, progress=False)
    assert seen == [1]
    assert not [w for w in caught if "worker" in str(w.message)]
    assert "data.num_workers=16 but this machine has 1 usable CPU cores" in caplog.text


_FAULTS_SCRIPT = """
import hashlib, json, resource, sys
import cv2, numpy as np, torch
from fasterpose.codec import HeatmapCodec
from fasterpose.config import AugmentConfig
from fasterpose.data import TopDownDataset, parse_coco_keypoints
from fasterpose.data.workers import keep_freed_memory
from fasterpose.keypoints import COCO_17
cv2.setNumThreads(1); torch.set_num_threads(1)
tuned = keep_freed_memory() if sys.argv[2] == "tuned" else None
root = sys.argv[1]
records = parse_coco_keypoints(root + "/annotations/person_keypoints_train2017_mini.json", root + "/train2017")
ds = TopDownDataset(records, COCO_17, HeatmapCodec((192, 256), (48, 64), 2.0), augment=AugmentConfig(), seed=0)
for i in range(10):
    ds[i % len(ds)]
h, before = hashlib.sha256(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(80):
    item = ds[i % len(ds)]
    for key in ("image", "target", "target_weight"):
        h.update(item[key].numpy().tobytes())
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 80
print(json.dumps({"tuned": tuned, "faults": faults, "digest": h.hexdigest()}))
"""


@pytest.mark.real_data
def test_keep_freed_memory_removes_page_faults_not_bits(shared_data: Path) -> None:
    """Training samples of coco_mini: the allocator setting drops the per-sample page faults and leaves
    every image, target and weight byte as it was."""
    import json
    import subprocess
    import sys

    root = str(shared_data / "coco_mini")
    runs = {}
    for mode in ("default", "tuned"):
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS_SCRIPT, root, mode], capture_output=True, text=True, check=True, timeout=300
        )
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    if not runs["tuned"]["tuned"]:
        pytest.skip("no glibc mallopt here: keep_freed_memory does nothing")
    assert runs["tuned"]["digest"] == runs["default"]["digest"]
    if runs["default"]["faults"] < 20:
        pytest.skip(f"this allocator faults only {runs['default']['faults']:.1f} times per sample by default")
    assert runs["tuned"]["faults"] <= 0.25 * runs["default"]["faults"], runs
