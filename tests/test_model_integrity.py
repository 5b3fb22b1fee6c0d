"""Model files carry a content hash checked at load; a model and a config that disagree are one plain error.

Every kind of model file FasterPose writes (``.pth``, ``.safetensors``, ``.onnx``, OpenVINO ``.xml`` +
``.bin``, at fp32, int8 and bf16) is refused, in one line naming the file, once a byte of it changes,
a tensor is zeroed or another model's ``.bin`` sits beside the ``.xml``; a file we did not write
loads with one line saying it is unverified. A model whose joints, crop size, heatmap size or
outputs differ from the config's is refused before any work (:func:`check_model_fits`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_model
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy import export as export_module
from fasterpose.deploy.metadata import set_onnx_metadata
from fasterpose.deploy.models import open_runner
from fasterpose.deploy.onnx_export import onnx_bytes
from fasterpose.engine.checkpoint import CheckpointError, save_checkpoint
from fasterpose.integrity import IntegrityError, verify_exported
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import WeightsFileError, save_weights
from fasterpose.pipeline.topdown import TopDownPipeline

TINY = tiny_model()
KINDS = ["pth", "safetensors", "onnx", "xml"]


def _cfg(*extra: str) -> Config:
    return apply_overrides(Config(), [*TINY, *extra])


def _write_all(folder: Path, cfg: Config, seed: int) -> dict[str, Path]:
    torch.manual_seed(seed)
    model = PoseModel.from_config(cfg).eval()
    return {
        "pth": save_checkpoint(folder / "m.pth", {"model": model.state_dict(), "config": cfg}),
        "safetensors": save_weights(model, cfg, folder / "m.safetensors"),
        "onnx": export_module.export_model(model, cfg, folder / "m.onnx", "onnx"),
        "xml": export_module.export_model(model, cfg, folder / "m.xml", "openvino"),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A COCO-17 model in every file kind."""
    return _write_all(tmp_path_factory.mktemp("coco17"), _cfg(), 0)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Another COCO-17 model (other weights, so a same-size .bin) in every file kind."""
    return _write_all(tmp_path_factory.mktemp("other"), _cfg(), 1)


@pytest.fixture(scope="module")
def mpii(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 16-joint (MPII layout) model in every file kind."""
    return _write_all(tmp_path_factory.mktemp("mpii16"), _cfg("data.keypoints=mpii16"), 0)


def _copy(src: Path, dest: Path) -> Path:
    dest.write_bytes(src.read_bytes())
    if src.suffix == ".xml":
        dest.with_suffix(".bin").write_bytes(src.with_suffix(".bin").read_bytes())
    return dest


def _open(path: Path) -> None:
    runner, cfg = open_runner(path, runtime="torch" if path.suffix in (".pth", ".safetensors") else "auto")
    TopDownPipeline.from_config(cfg, runner)


def _flip_weight_byte(path: Path, tensor: np.ndarray) -> None:
    """Flip one bit in the middle of ``tensor``'s stored bytes inside ``path``."""
    data = bytearray(path.read_bytes())
    at = bytes(data).find(tensor.tobytes()[:64])
    assert at > 0, f"{path.name}: the tensor's bytes are stored as they are"
    data[at + 41] ^= 0x10
    path.write_bytes(bytes(data))


def _head_weight(path: Path) -> np.ndarray:
    """The stored bytes of one head tensor of the model the file holds (fp32)."""
    torch.manual_seed(0)
    state = PoseModel.from_config(_cfg()).state_dict()
    name = next(k for k in state if k.startswith("head.") and k.endswith("weight") and state[k].numel() > 64)
    return state[name].numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_byte_in_each_model_file_is_refused_in_one_line(
    files: dict[str, Path], tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _copy(files[kind], tmp_path / f"damaged.{kind}")
    _open(damaged)  # intact copy: loads
    target = damaged.with_suffix(".bin") if kind == "xml" else damaged
    _flip_weight_byte(target, _head_weight(files[kind]))
    errors = (IntegrityError, CheckpointError, WeightsFileError)
    with pytest.raises(errors, match="content hash mismatch") as info:
        _open(damaged)
    assert str(target) in str(info.value) and "expected " in str(info.value) and ", got " in str(info.value)
    config = tmp_path / "cfg.yaml"
    config.write_text(f"data:\n  input_size: [32, 64]\n  heatmap_size: [8, 16]\n  root: {tmp_path}\n")
    assert main(["eval", str(config), "--model", str(damaged), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("error:")] == [err[-1]] and "content hash mismatch" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_zeroed_tensor_in_a_weights_file_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    damaged = _copy(files["safetensors"], tmp_path / "zeroed.safetensors")
    tensor = _head_weight(files["safetensors"])
    data = bytearray(damaged.read_bytes())
    at = bytes(data).find(tensor.tobytes())
    data[at : at + tensor.nbytes] = bytes(tensor.nbytes)  # one head tensor all zeros
    damaged.write_bytes(bytes(data))
    with pytest.raises(WeightsFileError, match="weights content hash mismatch"):
        _open(damaged)


def test_edited_xml_and_another_models_bin_are_refused(
    files: dict[str, Path], other: dict[str, Path], tmp_path: Path
) -> None:
    xml = _copy(files["xml"], tmp_path / "swapped.xml")
    bin_of_other = other["xml"].with_suffix(".bin").read_bytes()
    assert len(bin_of_other) == xml.with_suffix(".bin").stat().st_size  # same size, other weights
    xml.with_suffix(".bin").write_bytes(bin_of_other)
    with pytest.raises(IntegrityError, match="another model") as info:
        _open(xml)
    assert str(xml.with_suffix(".bin")) in str(info.value)

    edited = _copy(files["xml"], tmp_path / "edited.xml")
    text = edited.read_text()
    edited.write_text(text.replace('name="images"', 'name="imagez"', 1))  # an edit OpenVINO reads happily
    with pytest.raises(IntegrityError, match="model content hash mismatch") as info:
        _open(edited)
    assert str(edited) in str(info.value)


def test_int8_and_bf16_exports_are_sealed(files: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = _cfg()
    model = PoseModel.from_config(cfg).eval()
    calib = np.random.default_rng(0).normal(size=(4, 3, 64, 32)).astype(np.float32)
    int8 = export_module.export_model(model, cfg, tmp_path / "m_int8.onnx", "onnx", "int8", calib)
    bf16 = export_module.export_model(model, cfg, tmp_path / "m_bf16.xml", "openvino", "bf16")
    for path in (int8, bf16):
        assert verify_exported(path) is True
        target = path.with_suffix(".bin") if path.suffix == ".xml" else path
        data = bytearray(target.read_bytes())
        data[len(data) // 3] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match="content hash mismatch"):
            verify_exported(path)


def test_foreign_onnx_loads_with_an_unverified_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import onnx

    cfg = _cfg()
    proto = onnx.load_from_string(onnx_bytes(PoseModel.from_config(cfg).eval(), cfg.data.input_size))
    set_onnx_metadata(proto, cfg, "fp32")
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(proto, str(foreign))  # written by onnx itself: no FasterPose hash
    with caplog.at_level(logging.WARNING):
        _open(foreign)
    lines = [r.getMessage() for r in caplog.records if "unverified" in r.getMessage()]
    assert len(lines) == 1 and str(foreign) in lines[0] and "\n" not in lines[0]


@pytest.mark.parametrize("kind", KINDS)
def test_joint_count_mismatch_is_one_plain_error(mpii: dict[str, Path], kind: str) -> None:
    """A 16-joint model with a COCO-17 config (was IndexError / operands could not be broadcast)."""
    runtime = "torch" if kind in ("pth", "safetensors") else "auto"
    runner, cfg = open_runner(mpii[kind], _cfg(), runtime=runtime)
    with pytest.raises(ValueError, match="the model has 16 joints, the config's layout coco17 has 17") as info:
        TopDownPipeline.from_config(cfg, runner)
    assert str(mpii[kind]) in str(info.value) and "data.keypoints=mpii16" in str(info.value)


@pytest.mark.parametrize("kind", ["pth", "onnx"])
def test_joint_count_mismatch_through_eval_is_one_line(
    mpii: dict[str, Path], tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(f"data:\n  input_size: [32, 64]\n  heatmap_size: [8, 16]\n  root: {tmp_path}\n")
    assert main(["eval", str(config), "--model", str(mpii[kind]), "--out", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "the model has 16 joints" in err[-1] and str(mpii[kind]) in err[-1]
    assert "Traceback" not in "\n".join(err)


def _foreign_onnx(path: Path, module: nn.Module, size: tuple[int, int], dynamic: bool, outputs: int = 1) -> Path:
    names = [f"out{i}" for i in range(outputs)]
    axes = {"images": {0: "batch"}, **{n: {0: "batch"} for n in names}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the input-shape check
        torch.onnx.export(
            module.eval(),
            (torch.zeros(1, 3, size[1], size[0]),),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=names,
            dynamic_axes=axes,
        )
    return path


class _FiveOutputs(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.model(x)
        return y, y + 1, y.mean(1), y.amax(1), y.sum()


def test_foreign_onnx_outputs_input_size_and_fixed_batch(tmp_path: Path) -> None:
    cfg = _cfg()
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    five = _foreign_onnx(tmp_path / "five.onnx", _FiveOutputs(model), (32, 64), True, outputs=5)
    runner, _ = open_runner(five, cfg)
    with pytest.raises(ValueError, match="the model has 5 outputs") as info:
        TopDownPipeline.from_config(cfg, runner)
    assert str(five) in str(info.value)

    wide = _foreign_onnx(tmp_path / "wide.onnx", model, (64, 64), True)
    runner, _ = open_runner(wide, cfg)
    with pytest.raises(ValueError, match=r"takes 64x64 crops .* data.input_size=\[32, 64\]") as info:
        TopDownPipeline.from_config(cfg, runner)
    assert str(wide) in str(info.value) and "data.input_size=[64, 64]" in str(info.value)

    fixed = _foreign_onnx(tmp_path / "batch1.onnx", model, (32, 64), False)
    runner, _ = open_runner(fixed, cfg)
    pipe = TopDownPipeline.from_config(cfg, runner)  # accepted: run one crop at a time
    crops = np.random.default_rng(0).normal(size=(3, 3, 64, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(crops)).numpy()
    np.testing.assert_allclose(pipe.runner(crops), expected, atol=1e-4)


def test_config_and_annotations_joint_count_mismatch_through_eval_is_one_line(
    mpii: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 16-joint model with its own 16-joint config, on COCO-17 annotations: refused naming the file."""
    import json

    from fasterpose.keypoints import get_spec

    names = list(get_spec("coco17").names)
    ann = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [1, 1, 30, 60],
                "area": 1800.0,
                "iscrowd": 0,
                "num_keypoints": 1,
                "keypoints": [5, 5, 2] + [0, 0, 0] * 16,
            }
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}],
    }
    (tmp_path / "val.json").write_text(json.dumps(ann))
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"data:\n  root: {tmp_path}\n  val_ann: val.json\n  val_images: .\n  keypoints: mpii16\n"
        "  input_size: [32, 64]\n  heatmap_size: [8, 16]\n"
    )
    assert main(["eval", str(config), "--model", str(mpii["pth"]), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and str(tmp_path / "val.json") in err[-1]
    assert "lists 17 keypoint names, the keypoint layout has 16" in err[-1] and "Traceback" not in "\n".join(err)


def test_damaged_export_cache_entry_is_made_again(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fasterpose.deploy.export_cache import cache_dir
    from fasterpose.user_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    open_runner(files["pth"], runtime="onnxruntime")
    (entry,) = cache_dir().glob("*.onnx")
    assert verify_exported(entry) is True
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x01
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        runner, cfg = open_runner(files["pth"], runtime="onnxruntime")
    assert any(
        "content hash mismatch" in r.getMessage() and "exporting it again" in r.getMessage() for r in caplog.records
    )
    TopDownPipeline.from_config(cfg, runner)
    assert verify_exported(entry) is True  # made afresh, sealed
