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
    cfg = apply_overrides(
        Config(),
        [
            "train.lr=0.01",
            "data.input_size=[96,128]",
            "model.weights=/x.pth",
            "train.grad_clip=null",
            "data.augment.flip=false",
        ],
    )
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


# ---------------------------------------------------------------- validation at load: one line naming the key


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("loss.name=rse", ["loss.name", "rce, mse, ce_onehot, ce_mask"]),
        ("model.head=lhrr", ["model.head", "lhr, deconv, lpn"]),
        ("data.dataset=cocoo", ["data.dataset", "coco, mpii, synthpose"]),
        ("train.optimizer=adamm", ["train.optimizer", "adam, adamw, sgd"]),
        ("data.encoding=udp", ["data.encoding", "msra, unbiased"]),
        ("train.batch_size=0", ["train.batch_size=0", "positive"]),
        ("train.batch_size=-4", ["train.batch_size=-4", "positive"]),
        ("data.box_padding=0", ["data.box_padding=0", "greater than 0"]),
        ("data.input_size=[0,0]", ["data.input_size=[0, 0]", "positive"]),
        ("data.input_size=[-192,256]", ["data.input_size=[-192, 256]", "positive"]),
        (
            "data.heatmap_size=[24,32]",
            ["data.heatmap_size=[24, 32]", "data.input_size=[192, 256]", "model.heatmap_stride=4", "[48, 64]"],
        ),
        ("data.input_size=[90,128]", ["data.input_size=[90, 128]", "not a multiple of model.heatmap_stride=4"]),
        ("model.num_keypoints=16", ["model.num_keypoints=16", "data.keypoints=coco17", "17 joints"]),
        ("train.lr=[1", ["train.lr", "not valid YAML"]),
        ("train.device=gpu", ["train.device=gpu", "cuda"]),
    ],
)
def test_bad_values_are_refused_at_load_naming_the_key(override: str, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), [override])
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    for name in names:
        assert name in message, (name, message)


def test_yaml_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  name: rse\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: loss\.name: 'rse' is not one of"):
        load_config(path)
    path.write_text("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: duplicate key 'lr' \(line 4\)"):
        load_config(path)
    path.write_text("data:\n  input_size: [64, 64]\n  heatmap_size: [32, 32]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "c.yaml: data.heatmap_size=[32, 32] disagrees with data.input_size=[64, 64] / model.heatmap_stride=4" in str(
        info.value
    )
    assert load_config(path, ["model.heatmap_stride=2"]).data.heatmap_size == (32, 32)
    assert load_config(path, ["data.input_size=[96,96]", "data.heatmap_size=[24,24]"]).data.heatmap_size == (24, 24)


def test_heatmap_size_follows_input_size_unless_given(tmp_path: Path) -> None:
    assert apply_overrides(Config(), ["data.input_size=[96,128]"]).data.heatmap_size == (24, 32)
    assert apply_overrides(Config(), ["model.heatmap_stride=2"]).data.heatmap_size == (96, 128)
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  input_size: [64, 128]\n")
    assert load_config(path).data.heatmap_size == (16, 32)
    with pytest.raises(ConfigError, match=r"data.heatmap_size=\[8, 8\] disagrees"):
        apply_overrides(Config(), ["data.input_size=[64,64]", "data.heatmap_size=[8,8]"])


def test_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n  weight_decay: 5E-4\n")
    cfg = load_config(path, ["train.max_minutes=2e1"])
    assert cfg.train.lr == 1e-3 and cfg.train.weight_decay == 5e-4 and cfg.train.max_minutes == 20.0
    import yaml

    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"  # PyYAML's own loader is untouched


def test_old_augment_padding_migrates_to_box_padding(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("data:\n  augment:\n    padding: 1.5\n")
    cfg = load_config(path)
    assert cfg.data.box_padding == 1.5 and "data.box_padding" in caplog.text
    assert apply_overrides(Config(), ["data.augment.padding=1.3"]).data.box_padding == 1.3


def test_feature_index_out_of_range_names_the_key() -> None:
    from fasterpose.models.backbones import build_backbone

    with pytest.raises(ValueError, match=r"model\.feature_index=7 is out of range for resnet18.*-5\.\.4"):
        build_backbone("resnet18", feature_index=7)
    assert build_backbone("resnet18", feature_index=-5).stride == 2
