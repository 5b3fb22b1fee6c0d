"""Training-loop safety: an evaluation that fails keeps the epoch; a resume runs the missing evaluation;
a run folder already holding a run is refused by ``train`` itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fasterpose.engine import train as train_mod
from fasterpose.engine.checkpoint import load_checkpoint
from fasterpose.engine.run_folder import RunFolderError
from fasterpose.engine.train import train
from test_train import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fasterpose.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(root, 8, 3, seed=1, min_people=1, max_people=2)
    return root


def test_failed_evaluation_keeps_the_epoch_and_resume_evaluates(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    cfg = tiny_config(synth_root, run, epochs=1, eval_every=1)
    real = train_mod.evaluate_on_dataset

    def broken(*args: Any, **kwargs: Any) -> dict[str, float]:
        raise ValueError("val annotations: image 7 has string keypoints")

    monkeypatch.setattr(train_mod, "evaluate_on_dataset", broken)
    with pytest.raises(ValueError, match="string keypoints"):
        train(cfg, progress=False)
    saved = load_checkpoint(run / "last.pth")
    assert saved["epoch"] == 1 and saved["iteration"] == 0 and saved["history"]["evals"] == []
    assert not (run / ".lock").exists()  # released on the error

    monkeypatch.setattr(train_mod, "evaluate_on_dataset", lambda *a, **k: real(*a, **{**k, "progress": False}))
    resumed = train(cfg, resume=run / "last.pth", progress=False)
    assert resumed.status == "finished" and resumed.best_epoch == 1 and "AP" in resumed.last_metrics
    after = load_checkpoint(run / "last.pth")
    assert after["global_step"] == saved["global_step"]  # no training step redone
    assert len(after["history"]["evals"]) == 1 and after["best"]["epoch"] == 1
    kinds = [json.loads(line)["kind"] for line in (run / "metrics.jsonl").open()]
    assert kinds.count("eval") == 1 and kinds[-1] == "end"


def test_train_refuses_a_folder_with_a_run(synth_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"kind": "end"}\n')
    with pytest.raises(RunFolderError, match="already holds a run"):
        train(tiny_config(synth_root, run, epochs=1), progress=False)
    assert (run / "metrics.jsonl").read_text() == '{"kind": "end"}\n'


def test_overwrite_never_deletes_the_weights_the_run_starts_from(synth_root: Path, tmp_path: Path) -> None:
    import dataclasses

    from fasterpose.atomic import InputOverwriteError

    run = tmp_path / "run"
    run.mkdir()
    weights = run / "best.pth"
    weights.write_bytes(b"the model a fine-tune starts from")  # refused before it is read
    cfg = tiny_config(synth_root, run, epochs=1)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=str(weights)))
    with pytest.raises(InputOverwriteError, match="model.weights"):
        train(cfg, progress=False, overwrite=True)
    assert weights.read_bytes() == b"the model a fine-tune starts from"
    assert not (run / ".lock").exists()


def test_malformed_val_file_fails_before_the_first_epoch(synth_root: Path, tmp_path: Path) -> None:
    from fasterpose.config import apply_overrides
    from fasterpose.data.errors import AnnotationError

    val = json.loads((synth_root / "annotations" / "person_keypoints_val.json").read_text())
    val["annotations"][0]["keypoints"] = ["x"] * len(val["annotations"][0]["keypoints"])
    bad = tmp_path / "bad_val.json"
    bad.write_text(json.dumps(val))
    run = tmp_path / "run"
    cfg = apply_overrides(tiny_config(synth_root, run, epochs=1, eval_every=1), [f"data.val_ann={bad}"])
    with pytest.raises(AnnotationError, match="bad_val.json"):
        train(cfg, progress=False)
    assert not (run / "last.pth").exists()  # refused before any training step
