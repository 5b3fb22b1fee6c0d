"""Weights files (``export --format weights``): identical heatmaps to the checkpoint, loadable by Predictor,
``eval`` and ``train`` (``model.weights=``), much smaller than a checkpoint, clear errors.

ResNet-18 cut at stride 16, 64x64 input, random weights with BatchNorm statistics that are not the init.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fasterpose.cli import main as cli_main
from fasterpose.config import Config, apply_overrides, config_from_dict, config_to_dict, dump_config
from fasterpose.deploy.models import load_model_file
from fasterpose.deploy.predictor import Predictor
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.engine.train import build_optimizer
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import WeightsFileError, is_weights_file, read_weights, save_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(root: str = "unused") -> Config:
    return config_from_dict(
        {
            "model": {"backbone": "resnet18", "pretrained": False, "feature_index": -2},
            "data": {
                "dataset": "synthpose",
                "root": root,
                "train_ann": "annotations/person_keypoints_train.json",
                "train_images": "train",
                "val_ann": "annotations/person_keypoints_val.json",
                "val_images": "val",
                "input_size": [64, 64],
                "heatmap_size": [16, 16],
                "sigma": 1.0,
                "num_workers": 0,
            },
            "train": {"device": "cpu", "epochs": 1, "batch_size": 4, "eval_every": 0},
            "eval": {"batch_size": 8},
        }
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint with Adam state, of a model whose weights and BN statistics are not the init."""
    torch.manual_seed(0)
    cfg = tiny_config()
    model = PoseModel.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model.train()(torch.randn(4, 3, 64, 64))  # moves the BatchNorm running statistics
    optimizer = build_optimizer(model, cfg.train)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    path = tmp_path_factory.mktemp("ckpt") / "last.pth"
    return save_checkpoint(
        path,
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config_to_dict(cfg), "epoch": 1},
    )


@pytest.fixture(scope="module")
def weights(checkpoint: Path) -> Path:
    assert cli_main(["export", "--checkpoint", str(checkpoint), "--format", "weights"]) == 0
    out = checkpoint.with_suffix(".safetensors")
    assert is_weights_file(out) and not is_weights_file(checkpoint)
    return out


def test_identical_heatmaps_and_smaller(checkpoint: Path, weights: Path) -> None:
    from_ckpt, cfg_a = load_model_file(checkpoint)
    from_weights, cfg_b = load_model_file(weights)
    assert cfg_a == cfg_b
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(from_ckpt(x), from_weights(x))
    assert weights.stat().st_size < 0.4 * checkpoint.stat().st_size  # no Adam moments
    state, _ = read_weights(weights)
    assert set(state) == set(from_ckpt.state_dict())  # tensors only: BN buffers included, nothing else


def test_predictor_and_half(checkpoint: Path, weights: Path, tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)
    a = Predictor(checkpoint, runtime="torch")(image)[0]
    b = Predictor(weights, runtime="torch")(image)[0]
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert (
        cli_main(
            [
                "export",
                "--checkpoint",
                str(weights),
                "--format",
                "weights",
                "--half",
                "--out",
                str(tmp_path / "h.safetensors"),
            ]
        )
        == 0
    )
    half, _ = load_model_file(tmp_path / "h.safetensors")
    full, _ = load_model_file(weights)
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * weights.stat().st_size
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(half(x), full(x), atol=5e-3, rtol=0)


def test_fine_tune_from_weights(weights: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``model.weights=FILE`` starts from the file; another keypoint count re-initialises only the head."""
    cfg = apply_overrides(tiny_config(), [f"model.weights={weights}"])
    start = PoseModel.from_config(cfg)
    ref, _ = load_model_file(weights)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in start.state_dict().items())
    five = apply_overrides(cfg, [])
    five = config_from_dict(
        {
            **config_to_dict(five),
            "data": {
                **config_to_dict(five)["data"],
                "layout": {
                    "name": "five",
                    "keypoints": ["a", "b", "c", "d", "e"],
                    "flip_pairs": [],
                    "sigmas": [0.05] * 5,
                },
            },
        }
    )
    with caplog.at_level(logging.WARNING, logger="fasterpose.models.weights_file"):
        other = PoseModel.from_config(five)
    assert "start from scratch" in caplog.text
    assert torch.equal(other.state_dict()["backbone.body.conv1.weight"], ref.state_dict()["backbone.body.conv1.weight"])
    assert other.state_dict()["head.conv.weight"].shape[0] == 5 * 16
    # no reading of model.weights when rebuilding for a checkpoint (pretrained=False)
    gone = apply_overrides(tiny_config(), ["model.weights=/nonexistent/w.safetensors"])
    PoseModel.from_config(gone, pretrained=False)


def test_eval_command_takes_a_weights_file(weights: Path, tmp_path: Path) -> None:
    from fasterpose.data.synthpose import generate

    root = tmp_path / "synth"
    generate(root, 0, 2, seed=5, min_people=1, max_people=1)
    config = tmp_path / "c.yaml"
    dump_config(tiny_config(str(root)), config)
    out = tmp_path / "eval"
    assert cli_main(["eval", str(config), "--checkpoint", str(weights), "--out", str(out)]) == 0
    metrics = json.loads(next(out.glob("*metrics_val_gt.json")).read_text())["metrics"]
    assert 0.0 <= metrics["AP"] <= 1.0


def test_bad_weights_files(tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(WeightsFileError, match="not a FasterPose weights file"):
        read_weights(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 50)
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        read_weights(junk)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(WeightsFileError, match="cannot read its tensors"):
        read_weights(cut)
    model, cfg = load_model_file(weights)
    wrong = save_weights(model, apply_overrides(cfg, ["model.feature_index=-1"]), tmp_path / "wrong.safetensors")
    with pytest.raises(WeightsFileError, match="weights do not match the model in the config"):
        load_model_file(wrong)
    assert cli_main(["export", "--checkpoint", str(weights), "--format", "weights", "--out", str(weights)]) == 1
    assert "would overwrite the input" in capsys.readouterr().err


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import fasterpose.atomic
    from fasterpose.deploy.onnx_export import export_onnx

    cfg = tiny_config()
    model = PoseModel.from_config(cfg, pretrained=False).eval()
    (tmp_path / "w.safetensors").write_bytes(b"earlier")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fasterpose.atomic.os, "fsync", full)
    with pytest.raises(OSError, match=r"w\.safetensors: the disk is full"):
        save_weights(model, cfg, tmp_path / "w.safetensors")
    with pytest.raises(OSError, match=r"m\.onnx: the disk is full"):
        export_onnx(model, tmp_path / "m.onnx", cfg.data.input_size, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]  # no temporary, no half file
    assert (tmp_path / "w.safetensors").read_bytes() == b"earlier"


@pytest.mark.parametrize(
    ("backbone", "input_order"),
    [("resnet18", "rgb"), ("resnet18", "bgr"), ("efficientvit_m0", "rgb")],  # efficientvit: constant buffers
)
def test_a_model_built_for_loading_takes_every_tensor_from_the_file(
    tmp_path: Path, backbone: str, input_order: str
) -> None:
    """PoseModel.for_loading skips the random init; what the state dict does not hold (BGR constants, a timm
    backbone's attention-bias indices) must still be right, so the loaded model computes what was saved."""
    torch.manual_seed(0)
    cfg = apply_overrides(tiny_config(), [f"model.backbone={backbone}", f"model.input_order={input_order}"])
    model = PoseModel.from_config(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_weights(model, cfg, tmp_path / "m.safetensors")
    loaded, _ = load_model_file(path)
    assert not [n for n, t in [*loaded.named_parameters(), *loaded.named_buffers()] if t.is_meta]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
