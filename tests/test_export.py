"""Export: self-contained ONNX (DepthToSpace LHR, dynamic batch), OpenVINO IR, bf16 and INT8 parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy.export import export_model
from fasterpose.deploy.metadata import read_metadata
from fasterpose.deploy.onnx_export import onnx_op_types
from fasterpose.deploy.parity import parity_report
from fasterpose.deploy.predictor import Predictor
from fasterpose.deploy.runtimes import OnnxRuntimeRunner, OpenVinoRunner
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.crops import as_rgb_image, crop_people
from fasterpose.pipeline.torch_runner import TorchRunner
from fasterpose.runtimes.device import has_bf16

TINY = tiny_model((64, 96))


@pytest.fixture(scope="module")
def tiny() -> tuple[PoseModel, Config]:
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    # a trained head is far from its N(0, 0.001) init: widen it so the heatmaps carry real structure
    torch.nn.init.normal_(model.head.conv.weight, std=0.05)
    return model, cfg


def crops(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 96, 64)).astype(np.float32)


def test_onnx_is_one_file_with_depth_to_space_and_dynamic_batch(tiny: tuple[PoseModel, Config], tmp_path: Path):
    model, cfg = tiny
    path = export_model(model, cfg, tmp_path / "m.onnx", "onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # weights inside, no external data
    ops = onnx_op_types(path)
    assert ops[-1] == "DepthToSpace"  # the LHR's pixel shuffle
    import onnx

    d2s = onnx.load(str(path)).graph.node[-1]
    assert {a.name: a for a in d2s.attribute}["mode"].s == b"CRD"
    file_cfg, precision = read_metadata(path)
    assert file_cfg == cfg and precision == "fp32"
    x = crops(3)
    ref = TorchRunner(model, channels_last=False)(x)
    for runner in (OnnxRuntimeRunner(path), OpenVinoRunner(path)):
        for batch in (1, 3):  # dynamic batch axis
            out = runner(x[:batch])
            assert out.shape == (batch, 17, 24, 16)
            assert np.abs(out - ref[:batch]).max() < 1e-4


def test_openvino_ir_fp32_parity(tiny: tuple[PoseModel, Config], tmp_path: Path):
    model, cfg = tiny
    path = export_model(model, cfg, tmp_path / "m.xml", "openvino")
    assert (tmp_path / "m.bin").is_file()
    assert read_metadata(path) == (cfg, "fp32")
    report = parity_report(model, cfg, path, "fp32", crops(4))
    assert report["openvino"]["max_abs"] < 1e-4
    assert report["openvino"]["kpt_px_mean"] == 0.0
    pred = Predictor(path)  # config from the file, OpenVINO runtime
    assert pred.runtime == "openvino" and pred.runner.precision == "fp32"


def _real_crops(cfg: Config, shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Person crops of coco_mini val (12 people) and whole-image calibration crops of 6 train images."""
    coco = shared_data / "coco_mini"
    ann = json.loads((coco / "annotations" / "person_keypoints_val2017_mini.json").read_text())
    files = {im["id"]: im["file_name"] for im in ann["images"]}
    people = [a for a in ann["annotations"] if a["num_keypoints"] > 0 and a["bbox"][2] > 8][:12]
    val = np.concatenate(
        [
            crop_people(as_rgb_image(coco / "val2017" / files[a["image_id"]]), [a["bbox"]], cfg.data.input_size)[0]
            for a in people
        ]
    )
    calib = np.concatenate(
        [
            crop_people(as_rgb_image(p), None, cfg.data.input_size)[0]
            for p in sorted((coco / "train2017").glob("*.jpg"))[:6]
        ]
    )
    return val, calib


def _assert_close_to_fp32(model: PoseModel, cfg: Config, path: Path, precision: str, val: np.ndarray, runtimes):
    """Close to fp32 relative to the heatmaps' spread, yet really a different precision."""
    spread = float(TorchRunner(model, channels_last=False)(val).std())
    report = parity_report(model, cfg, path, precision, val, runtimes)
    assert report
    for r in report.values():
        assert r["max_abs"] > 0  # really a different precision
        assert r["mean_abs"] < 0.1 * spread, (precision, r, spread)
        assert np.isfinite(r["kpt_px_mean"])


def test_int8_on_real_val_crops(tiny: tuple[PoseModel, Config], tmp_path: Path, shared_data: Path):
    """INT8 (QDQ ONNX, on ONNX Runtime and OpenVINO) on real person crops."""
    model, cfg = tiny
    val, calib = _real_crops(cfg, shared_data)
    int8 = export_model(model, cfg, tmp_path / "int8.onnx", "onnx", "int8", calib=calib)
    assert "QuantizeLinear" in onnx_op_types(int8) and read_metadata(int8)[1] == "int8"
    _assert_close_to_fp32(model, cfg, int8, "int8", val, ["onnxruntime", "openvino"])


@pytest.mark.skipif(not has_bf16(), reason="this CPU has no bf16 (OpenVINO reports no BF16 capability)")
def test_bf16_on_real_val_crops(tiny: tuple[PoseModel, Config], tmp_path: Path, shared_data: Path):
    """The bf16 OpenVINO IR on real person crops (without bf16 OpenVinoRunner refuses it: test_predict.py)."""
    model, cfg = tiny
    val, _ = _real_crops(cfg, shared_data)
    bf16 = export_model(model, cfg, tmp_path / "bf16.xml", "openvino", "bf16")
    _assert_close_to_fp32(model, cfg, bf16, "bf16", val, None)


def test_export_command(tiny: tuple[PoseModel, Config], tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model, cfg = tiny
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(ckpt, {"model": model.state_dict(), "config": cfg, "epoch": 0})
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == str(tmp_path / "run" / "best.onnx")
    assert report["parity"]["onnxruntime"]["max_abs"] < 1e-4 and report["parity"]["openvino"]["max_abs"] < 1e-4
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--precision", "int8"]) == 1
    assert "--calib" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--precision", "bf16"]) == 1
    assert "openvino" in capsys.readouterr().err


def test_latency_bench_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The latency bench runs every runtime on two configs and reports floor-relative rows."""
    root = Path(__file__).resolve().parents[1]
    configs = [str(root / "configs" / f"{n}_r50_256x192.yaml") for n in ("fasterpose", "simplebaseline")]
    out = tmp_path / "lat.json"
    argv = ["bench", "latency", "--configs", *configs, "--runtimes", "torch,onnxruntime,openvino,onnxruntime-int8"]
    argv += ["--batches", "1,2", "--runs", "2", "--warmup", "1", "--peak-size", "256", "--threads", "1"]
    argv += ["--out", str(out), "--set", *TINY]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert len(report["rows"]) == 2 * 4 * 2
    int8_peak = report["peak_gflops"]["int8"]
    assert set(report["peak_detail"]["int8"]) >= {"onnxruntime conv1x1", "openvino conv1x1"}
    fp32_kernels = {"torch mm", "torch conv1x1", "onnxruntime matmul", "openvino conv1x1", "openvino conv3x3"}
    assert set(report["peak_detail"]["fp32"]) >= fp32_kernels  # every runtime's own kernels
    every = [v for d in report["peak_detail"].values() for v in d.values()]
    assert int8_peak == pytest.approx(max(every), abs=0.06) and report["peak_kernel"]["int8"].split()[0] in (
        "torch",
        "onnxruntime",
        "openvino",
    )
    assert report["peak_conditions"] == {"interleaved_with_rows": True, "threads": 1, "runs": 2}
    for row in report["rows"]:
        assert row["ms_min"] <= row["ms_median"] <= row["ms_max"]
        key = "int8" if row["precision"] == "int8" else "fp32"
        assert row["floor_ms"] > 0 and row["peak_gflops"] == round(report["peak_gflops"][key], 1)
        assert row["peak_kernel"] == report["peak_kernel"][key]
        if key == "int8":  # the INT8 floor, beside the fp32 one
            assert row["floor_ms"] == pytest.approx(
                row["fp32_floor_ms"] * report["peak_gflops"]["fp32"] / int8_peak, rel=0.02
            )
    assert {c["runtime"] for c in report["comparisons"]} == {"torch", "onnxruntime", "openvino", "onnxruntime-int8"}
    assert all(c["mac_ratio"] > 0 for c in report["comparisons"])
    assert report["fastest_fp32"] in ("torch", "onnxruntime", "openvino")
    assert report["auto"]["auto"] in ("onnxruntime", "openvino") and isinstance(report["auto"]["agrees"], bool)
    out = capsys.readouterr().out
    assert "fastest exact" in out and "true-MAC ratio" in out and "auto on this CPU" in out
