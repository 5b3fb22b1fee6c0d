"""``fasterpose quickstart``: a miniature run of every step in seconds, and the real one on request.

The miniature runs use the real command with a tiny SynthPose and a tiny model (a few seconds each);
the full quickstart (6000 SynthPose images, the fixed schedule of configs/quickstart.yaml) is too long
for the suite: ``FASTERPOSE_FULL_QUICKSTART=1 pytest tests/test_train_quickstart.py -k full -s``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fasterpose.cli import main
from fasterpose.config import shipped_path

TINY = [
    "model.feature_index=-2",
    "data.input_size=[64,64]",
    "data.heatmap_size=[16,16]",
    "data.sigma=1.0",
    "data.num_workers=0",
    "train.epochs=2",
    "train.lr_steps=[1]",
    "train.batch_size=4",
    "train.warmup_iters=0",
    "train.eval_every=1",
]
CONFIG = str(shipped_path("configs/quickstart.yaml").resolve())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh current folder (the quickstart's runs/ are relative to it), one torch thread."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)


def quickstart(*extra: str) -> int:
    return main(
        [
            "quickstart",
            "--config",
            CONFIG,
            "--data",
            "synthpose",
            "--num-train",
            "10",
            "--num-val",
            "3",
            "--workers",
            "1",
            "--threads",
            "1",
            "--no-progress",
            *extra,
            *TINY,
        ]
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_quickstart_miniature(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quickstart() == 0
    out_text = capsys.readouterr().out
    out = Path("runs") / "quickstart"
    assert "generating SynthPose" in out_text and f"run folder: {out}" in out_text
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0 and metrics["train_status"] == "finished"
    # the fixed schedule: 10 images in batches of 4 -> 3 batches (none of one sample) x 2 epochs, all done
    assert metrics["steps"] == metrics["steps_planned"] == 6 and metrics["schedule_complete"] is True
    assert metrics["time_budget_minutes"] is None and metrics["epochs"] == 2
    # the metrics name the checkpoint they score; it is the one the drawings and the last evaluation used
    assert metrics["checkpoint"] == "last.pth" and metrics["best"]["checkpoint"] == "best.pth"
    assert "last.pth" in metrics["checkpoints"] and "best.pth" in metrics["checkpoints"]
    last_eval = [json.loads(line) for line in (out / "metrics.jsonl").open() if '"eval"' in line][-1]
    assert last_eval["step"] == 6 and last_eval["AP"] == metrics["AP"]
    for name in ("metrics.json", "training_curve.png", "predictions.png", "last.pth", "best.pth"):
        assert (out / name).is_file(), name
        assert str(out / name) in out_text, name
    assert "ETA: " in out_text and "s/step over steps" in out_text and "training ends in" in out_text
    assert "of last.pth" in out_text and "best.pth: AP" in out_text


def test_second_quickstart_keeps_the_first(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quickstart() == 0
    first = Path("runs") / "quickstart"
    kept = {name: digest(first / name) for name in ("last.pth", "best.pth", "metrics.json", "predictions.png")}
    (first / "last.onnx").write_bytes(b"an export of the first run")
    capsys.readouterr()
    assert quickstart() == 0  # data kept, a new numbered folder
    second_text = capsys.readouterr().out
    assert "not regenerating" in second_text and "run folder: runs/quickstart2" in second_text
    assert {name: digest(first / name) for name in kept} == kept
    assert (first / "last.onnx").read_bytes() == b"an export of the first run"
    assert (Path("runs") / "quickstart2" / "last.pth").is_file()
    assert quickstart() == 0
    assert (Path("runs") / "quickstart3" / "metrics.json").is_file()
    assert {name: digest(first / name) for name in kept} == kept


def test_out_holding_a_run_is_refused_without_overwrite(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quickstart("--out", "mine") == 0
    before = digest(Path("mine") / "last.pth")
    capsys.readouterr()
    assert quickstart("--out", "mine") == 1  # a user error: one line, no traceback
    err = capsys.readouterr().err
    assert "mine already holds a run" in err and "leave out --out" in err and "Traceback" not in err
    assert digest(Path("mine") / "last.pth") == before


def test_overwrite_replaces_the_earlier_run_and_its_exports(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quickstart() == 0
    first = Path("runs") / "quickstart"
    (first / "last.onnx").write_bytes(b"stale export")
    (first / "notes.txt").write_text("mine")
    (first / "last_week_notes.txt").write_text("mine too")
    old_log = (first / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert quickstart("--overwrite", "train.seed=1") == 0
    text = capsys.readouterr().out
    assert "run folder: runs/quickstart\n" in text and not (Path("runs") / "quickstart2").exists()
    assert "deleted the earlier run's files" in text and "last.onnx" in text
    assert not (first / "last.onnx").exists() and (first / "notes.txt").read_text() == "mine"
    assert (first / "last_week_notes.txt").read_text() == "mine too"  # a user file named like an export
    assert (first / "metrics.jsonl").read_text() != old_log  # a fresh log, not appended to
    assert sum('"end"' in line for line in (first / "metrics.jsonl").open()) == 1


def test_time_budget_is_opt_in_and_reported(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quickstart("--minutes", "1e-6") == 0  # stops before the first step: the metrics say so
    text = capsys.readouterr().out
    metrics = json.loads((Path("runs") / "quickstart" / "metrics.json").read_text())
    assert metrics["time_budget_minutes"] == 1e-6 and metrics["train_status"] == "time_budget"
    assert metrics["schedule_complete"] is False and metrics["steps"] < metrics["steps_planned"]
    assert "the schedule did not finish" in text


def test_shipped_config_has_no_time_budget() -> None:
    from fasterpose.config import load_config

    cfg = load_config(CONFIG)
    assert cfg.train.max_minutes is None
    assert max(cfg.train.lr_steps) < cfg.train.epochs  # the learning-rate drop happens inside the schedule


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FASTERPOSE_FULL_QUICKSTART") != "1",
    reason="the full quickstart takes minutes; set FASTERPOSE_FULL_QUICKSTART=1",
)
def test_full_quickstart_reaches_ap(tmp_path: Path) -> None:
    out = tmp_path / "quickstart"
    assert main(["quickstart", "--data", str(tmp_path / "synthpose"), "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print(json.dumps(metrics, indent=1))
    assert metrics["schedule_complete"] and metrics["steps"] == metrics["steps_planned"]
    assert 0.6 <= metrics["AP"] < 0.95, metrics["AP"]
