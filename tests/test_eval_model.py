"""``fasterpose eval --model`` on every model file kind, ``export --val``, INT8 calibration on person crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides, dump_config
from fasterpose.deploy.export import export_model
from fasterpose.deploy.quantize import dataset_calibration_crops
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.evaluation.coco import STAT_NAMES
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.crops import as_rgb_image, warp_crops
from fasterpose.pipeline.evaluate import build_eval_set

TINY = tiny_model()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path, Path, Path]:
    """A tiny model on coco_mini (val = train images, 2 of them): config YAML, checkpoint, weights file."""
    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco_mini"
    if not (data / "annotations" / "person_keypoints_val2017_mini.json").is_file():
        pytest.skip(f"real data not found at {data}")
    cfg = apply_overrides(
        Config(),
        [
            *TINY,
            f"data.root={data}",
            "data.train_ann=annotations/person_keypoints_train2017_mini.json",
            "data.train_images=train2017",
            "data.val_ann=annotations/person_keypoints_val2017_mini.json",
            "data.val_images=val2017",
            "data.num_workers=0",
            "eval.max_images=2",
        ],
    )
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    torch.nn.init.normal_(model.head.conv.weight, std=0.05)
    root = tmp_path_factory.mktemp("evalmodel")
    ckpt = save_checkpoint(root / "run" / "last.pt", {"model": model.state_dict(), "config": cfg})
    weights = root / "run" / "weights.pth"
    torch.save(model.state_dict(), weights)
    config = root / "cfg.yaml"
    dump_config(cfg, config)
    return cfg, config, ckpt, weights


def eval_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["eval", *argv, "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_model_accepts_checkpoint_weights_onnx_and_xml(
    setup: tuple[Config, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, ckpt, weights = setup
    from fasterpose.engine.checkpoint import load_model_from_checkpoint

    model, _ = load_model_from_checkpoint(ckpt)
    onnx = export_model(model, cfg, tmp_path / "m.onnx", "onnx")
    xml = export_model(model, cfg, tmp_path / "m.xml", "openvino")
    ref = eval_json(capsys, str(config), "--model", str(ckpt), "--out", str(tmp_path / "ck"), "--device", "cpu")
    assert list(ref)[:10] == list(STAT_NAMES) and (ref["runtime"], ref["precision"]) == ("torch", "fp32")
    assert 0.0 < float(ref["mean_oks_to_gt"]) < 1.0  # type: ignore[arg-type]  # continuous: AP of a random net is 0
    for path, runtime in ((weights, "torch"), (onnx, "onnxruntime"), (xml, "openvino")):
        got = eval_json(capsys, str(config), "--model", str(path), "--out", str(tmp_path / path.suffix[1:]))
        assert list(got)[:10] == list(STAT_NAMES) and got["runtime"] == runtime and got["precision"] == "fp32"
        for k in (*STAT_NAMES, "mean_oks_to_gt"):
            assert got[k] == pytest.approx(ref[k], abs=1e-4), (path, k)
    metrics = json.loads((tmp_path / "onnx" / "m_onnxruntime_fp32_metrics_val_gt.json").read_text())
    assert (metrics["runtime"], metrics["precision"], metrics["model"]) == ("onnxruntime", "fp32", str(onnx))
    assert list(metrics["metrics"]) == list(STAT_NAMES)
    checkpoint_metrics = json.loads((tmp_path / "ck" / "last_metrics_val_gt.json").read_text())
    assert list(checkpoint_metrics["metrics"]) == list(metrics["metrics"])  # same keys as checkpoint eval


def test_weights_file_without_matching_config_is_a_clear_error(
    setup: tuple[Config, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _, _, weights = setup
    other = tmp_path / "r34.yaml"
    dump_config(apply_overrides(cfg, ["model.backbone=resnet34"]), other)
    assert main(["eval", str(other), "--model", str(weights), "--no-progress"]) == 1
    assert "do not match" in capsys.readouterr().err


def test_calibration_crops_are_person_crops_of_the_dataset(setup: tuple[Config, Path, Path, Path]) -> None:
    cfg = setup[0]
    crops = dataset_calibration_crops(cfg, "train", limit=5, seed=0)
    eval_set = build_eval_set(apply_overrides(cfg, ["eval.max_images=100"]), "train")  # every train image
    assert crops.shape == (5, 3, 64, 32)
    chosen = np.sort(np.random.default_rng(0).choice(len(eval_set), size=5, replace=False))
    first = chosen[0]
    image = as_rgb_image(eval_set.records[first].image_path)
    expected = warp_crops(image, eval_set.centers[[first]], eval_set.scales[[first]], (32, 64))
    same_image = [i for i in chosen if eval_set.records[i].image_path == eval_set.records[first].image_path]
    assert same_image[0] == first
    np.testing.assert_array_equal(crops[0], expected[0])  # exactly what evaluation feeds the model


def test_export_val_prints_both_aps_and_int8_calibrates_on_person_crops(
    setup: tuple[Config, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, config, ckpt, _ = setup
    out = tmp_path / "int8.onnx"
    argv = ["export", "--checkpoint", str(ckpt), "--format", "onnx", "--precision", "int8", "--out", str(out)]
    assert main([*argv, "--val", str(config), "--calib-limit", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"].startswith("8 person crops of coco train")
    val = report["val"]
    assert (val["torch"]["runtime"], val["exported"]["precision"]) == ("torch", "int8")
    assert 0.0 <= val["torch"]["AP"] <= 1.0 and 0.0 <= val["exported"]["AP"] <= 1.0
    assert main([*argv, "--val", str(config), "--calib-limit", "8", "--overwrite"]) == 0  # same --out again
    text = capsys.readouterr().out
    assert "AP on" in text and "torch fp32" in text and "onnxruntime int8" in text


def test_eval_det_keeps_the_gt_box_files_and_says_what_the_detections_miss(
    setup: tuple[Config, Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``eval --det`` after a GT-box ``eval`` writes ``*_det.json`` beside the untouched ``*_gt.json``,
    and says how many images the detections file leaves without a box (4 of coco_mini's 19 have one)."""
    _, config, ckpt, _ = setup
    out = tmp_path / "out"
    eval_json(capsys, str(config), "--model", str(ckpt), "--out", str(out), "--device", "cpu")
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(files) == {"last_results_val_gt.json", "last_metrics_val_gt.json"}
    det_file = "data.det_file=annotations/person_detections_val2017_mini.json"
    eval_json(capsys, str(config), "--model", str(ckpt), "--out", str(out), "--det", det_file)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in files} == files  # byte-identical
    assert {p.name for p in out.iterdir()} == {*files, "last_results_val_det.json", "last_metrics_val_det.json"}
    assert json.loads((out / "last_metrics_val_det.json").read_text())["boxes"] == "det"
    assert "15 of the 19 images" in caplog.text and "no person detection" in caplog.text
