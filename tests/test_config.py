"""Config: YAML round trip, overrides, clear errors for unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from fasterpose.config import Config, ConfigError, apply_overrides, dump_config, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_every_shipped_config_loads_and_round_trips(tmp_path: Path) -> None:
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert len(paths) >= 20
    for path in paths:
        cfg = load_config(path)
        assert cfg.name == path.stem
        out = tmp_path / path.name
        dump_config(cfg, out)
        assert load_config(out) == cfg


def test_overrides_are_typed() -> None:
    cfg = apply_overrides(Config(), ["train.lr=0.01", "data.input_size=[96,128]", "model.weights=/x.pth",
                                     "train.grad_clip=null", "data.augment.flip=false"])
    assert cfg.train.lr == 0.01 and cfg.data.input_size == (96, 128)
    assert cfg.model.weights == "/x.pth" and cfg.train.grad_clip is None and cfg.data.augment.flip is False
    assert isinstance(apply_overrides(Config(), ["train.lr=1"]).train.lr, float)


def test_unknown_key_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lrr'.*valid keys: epochs, batch_size"):
        apply_overrides(Config(), ["train.lrr=1"])
    with pytest.raises(ConfigError, match="valid sections"):
        apply_overrides(Config(), ["trian.lr=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  backbone: resnet18\n  hed: lhr\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*model.hed.*valid keys of model: backbone"):
        load_config(bad)


def test_type_errors_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(Config(), ["train.epochs=1.5"])
    with pytest.raises(ConfigError, match="expected 2 values"):
        apply_overrides(Config(), ["data.input_size=[1,2,3]"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Config(), ["train.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_shipped_path_finds_checkout_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fasterpose.config import CHECKOUT_ROOT, shipped_path

    monkeypatch.chdir(tmp_path)
    assert shipped_path("configs/quickstart.yaml") == CHECKOUT_ROOT / "configs" / "quickstart.yaml"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quickstart.yaml").write_text("name: mine\n")
    assert shipped_path("configs/quickstart.yaml") == Path("configs/quickstart.yaml")  # the current folder wins
    assert shipped_path("configs/nope.yaml") == Path("configs/nope.yaml")  # as given, for the caller's error
