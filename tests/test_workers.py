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
