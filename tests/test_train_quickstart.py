"""``fasterpose quickstart``: a miniature run of every step in seconds, and the real one on request.

The full quickstart (2000 SynthPose images, 5 minutes of training on 2 CPU cores, ~7 minutes in
all) is too long for the suite; set ``FASTERPOSE_FULL_QUICKSTART=1`` to run it as a test:
``FASTERPOSE_FULL_QUICKSTART=1 pytest tests/test_train_quickstart.py -k full -s``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from fasterpose.cli import main

TINY = ["model.feature_index=-2", "data.input_size=[64,64]", "data.heatmap_size=[16,16]", "data.sigma=1.0",
        "data.num_workers=0", "train.epochs=1", "train.batch_size=4", "train.warmup_iters=0"]  # fmt: skip


def test_quickstart_miniature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = tmp_path / "synthpose", tmp_path / "runs" / "quickstart"
    args = ["quickstart", "--data", str(data), "--out", str(out), "--num-train", "6", "--num-val", "3",
            "--workers", "1", "--no-progress", *TINY]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0
        first = capsys.readouterr().out
        assert main(args) == 0  # second run: data kept, training redone from scratch
        second = capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)
    assert "generating SynthPose" in first and "not regenerating" in second
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0 and metrics["epochs"] == 1 and metrics["train_status"] == "finished"
    for name in ("metrics.json", "training_curve.png", "predictions.png", "last.pth", "results_val_gt.json"):
        assert (out / name).is_file(), name
        assert str(out / name) in second or name in ("results_val_gt.json",), name
    ends = [json.loads(line) for line in (out / "metrics.jsonl").open() if '"end"' in line]
    assert len(ends) == 1  # the second run started a fresh log


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FASTERPOSE_FULL_QUICKSTART") != "1",
                    reason="the full quickstart takes ~7 minutes; set FASTERPOSE_FULL_QUICKSTART=1")  # fmt: skip
def test_full_quickstart_reaches_ap(tmp_path: Path) -> None:
    out = tmp_path / "quickstart"
    assert main(["quickstart", "--data", str(tmp_path / "synthpose"), "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print(json.dumps(metrics, indent=1))
    assert metrics["train_seconds"] <= 5 * 60 + 30  # the budget, plus the last step and checkpoint
    assert 0.6 <= metrics["AP"] < 0.95, metrics["AP"]
