"""Dataset inference end to end on the real mini sets: GT path, oracle, flip test, detector boxes, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fasterpose.cli import main
from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config, apply_overrides, dump_config
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.evaluation.coco import STAT_NAMES
from fasterpose.evaluation.predictions import PosePrediction
from fasterpose.keypoints import COCO_17
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.evaluate import EvalSet, build_eval_set, evaluate_on_dataset, score_predictions
from fasterpose.pipeline.topdown import TopDownPipeline, rescore
from fasterpose.pipeline.torch_runner import TorchRunner

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = DATA / "coco_mini"
MPII_MINI = DATA / "mpii_mini"
TINY = [
    "model.backbone=resnet18",
    "model.pretrained=false",
    "data.input_size=[32,64]",
    "data.heatmap_size=[8,16]",
    "data.num_workers=0",
    "eval.batch_size=16",
]


def coco_cfg(*overrides: str) -> Config:
    if not (COCO_MINI / "annotations" / "person_keypoints_val2017_mini.json").is_file():
        pytest.skip(f"real data not found at {COCO_MINI}")
    return apply_overrides(
        Config(),
        [
            f"data.root={COCO_MINI}",
            "data.val_ann=annotations/person_keypoints_val2017_mini.json",
            "data.val_images=val2017",
            "data.det_file=annotations/person_detections_val2017_mini.json",
            "data.num_workers=0",
            *overrides,
        ],
    )


class FlipSymmetric(nn.Module):
    """``g(x) + P mirror(g(mirror(x)))``: exactly equivariant to a mirror with joint permutation P."""

    def __init__(self, inner: nn.Module, flip_index: np.ndarray) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("perm", torch.as_tensor(flip_index, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mirrored = torch.flip(self.inner(torch.flip(x, dims=[3])), dims=[3])[:, self.perm]
        return self.inner(x) + mirrored


def model_heatmaps(
    model: nn.Module, x: torch.Tensor, codec: HeatmapCodec, flip_index: np.ndarray | None = None, sigmoid: bool = False
) -> np.ndarray:
    """The pipeline's heatmaps (sigmoid, flip-back average) of a torch model on crops ``x``."""
    runner = TorchRunner(model, channels_last=False)
    pipeline = TopDownPipeline(runner, codec, COCO_17, logits=sigmoid, flip_test=flip_index is not None)
    return pipeline.heatmaps(x.numpy())


def first(eval_set: EvalSet, n: int) -> EvalSet:
    """The first ``n`` records of an evaluation set."""
    return dataclasses.replace(
        eval_set, records=eval_set.records[:n], centers=eval_set.centers[:n], scales=eval_set.scales[:n]
    )


def tiny_model(cfg: Config) -> nn.Module:
    torch.manual_seed(0)
    return PoseModel.from_config(cfg).eval()


def test_ground_truth_as_predictions_scores_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = coco_cfg()
    dataset = build_eval_set(cfg)
    preds = []
    for i, r in enumerate(dataset.records):
        kp = r.keypoints.copy()
        kp[:, 2] = (kp[:, 2] > 0).astype(np.float32)  # joint score 1 where labelled
        center, scale = dataset.centers[i], dataset.scales[i]
        preds.append(PosePrediction(r.image_id, kp, 1.0, 1.0, center, scale, float(scale[0] * scale[1]), i))
    metrics, info = score_predictions(preds, cfg, dataset, out_dir=tmp_path)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)
    assert info["people_after_nms"] == len(preds) == 30  # OKS-NMS keeps every distinct person
    assert info["mean_oks_to_gt"] == pytest.approx(1.0)
    assert (
        main(["eval-results", info["results_file"], "--ann", str(Path(cfg.data.root) / cfg.data.val_ann), "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("overrides", "floor"),
    [
        ((), 0.95),  # default codec: msra, 64x48, quarter offset
        (("data.encoding=unbiased", "eval.dark=true"), 0.99),
    ],
)
def test_oracle_cli_on_coco_val(
    overrides: tuple[str, ...], floor: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = coco_cfg(*overrides)
    config = tmp_path / "cfg.yaml"
    dump_config(cfg, config)
    assert main(["eval", str(config), "--oracle", "--json", "--no-progress", "--out", str(tmp_path)]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["AP"] >= floor
    assert (tmp_path / "oracle_metrics_val_gt.json").is_file() and (tmp_path / "oracle_results_val_gt.json").is_file()


def test_flip_test_is_identity_for_an_equivariant_model_and_shift_follows_encoding() -> None:
    cfg = coco_cfg(*TINY, "data.encoding=unbiased")
    dataset = first(build_eval_set(cfg), 4)
    flip_index = COCO_17.flip_index
    torch.manual_seed(0)
    inner = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(3, 17, 5, padding=2)).eval()  # not equivariant itself
    sym = FlipSymmetric(inner, flip_index).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        h = sym(x)
        assert torch.equal(sym(torch.flip(x, dims=[3])), torch.flip(h, dims=[3])[:, torch.as_tensor(flip_index)])
    codec = HeatmapCodec.from_config(cfg)  # unbiased: flip_back has no shift
    for sigmoid in (False, True):
        plain = torch.sigmoid(h).numpy() if sigmoid else h.numpy()
        np.testing.assert_allclose(model_heatmaps(sym, x, codec, flip_index, sigmoid), plain, atol=1e-6)
    # through the dataset: identical keypoints with and without flip test
    on = evaluate_on_dataset(sym, cfg, dataset, progress=False, device="cpu").predictions
    off = evaluate_on_dataset(
        sym, apply_overrides(cfg, ["eval.flip_test=false"]), dataset, progress=False, device="cpu"
    ).predictions
    np.testing.assert_allclose(np.stack([p.keypoints for p in on]), np.stack([p.keypoints for p in off]), atol=1e-4)
    # a model that is not equivariant does change (the comparison can fail)
    raw_on = evaluate_on_dataset(inner, cfg, dataset, progress=False, device="cpu").predictions
    raw_off = evaluate_on_dataset(
        inner, apply_overrides(cfg, ["eval.flip_test=false"]), dataset, progress=False, device="cpu"
    ).predictions
    moved = np.stack([p.keypoints[:, :2] for p in raw_on]) - np.stack([p.keypoints[:, :2] for p in raw_off])
    assert np.abs(moved).max() > 1.0
    # MSRA: the flipped-back map of an equivariant model is the map shifted one pixel right
    msra = HeatmapCodec.from_config(apply_overrides(cfg, ["data.encoding=msra"]))
    shifted = h.numpy().copy()
    shifted[..., 1:] = h.numpy()[..., :-1]
    np.testing.assert_allclose(model_heatmaps(sym, x, msra, flip_index), 0.5 * (h.numpy() + shifted), atol=1e-6)


def test_detector_boxes_end_to_end(tmp_path: Path) -> None:
    cfg = coco_cfg(*TINY, "eval.use_gt_boxes=false", "loss.name=rce", "eval.flip_test=false")
    metrics = evaluate_on_dataset(tiny_model(cfg), cfg, build_eval_set(cfg), tmp_path, progress=False).metrics
    assert list(metrics) == list(STAT_NAMES)
    assert all(np.isfinite(v) and -1.0 <= v <= 1.0 for v in metrics.values())
    results = json.loads((tmp_path / "results_val_det.json").read_text())
    info = json.loads((tmp_path / "metrics_val_det.json").read_text())
    assert info["boxes"] == "det" and not (tmp_path / "results_val_gt.json").exists()
    assert info["people"] == 118 and 0 < len(results) == info["people_after_nms"] <= 118
    assert {r["image_id"] for r in results} <= {785, 40083, 196141, 197388}
    for r in results:  # person score = box score x mean joint score above 0.2
        s = np.asarray(r["keypoints"]).reshape(17, 3)[:, 2]
        assert 0.0 <= r["score"] <= 1.0 and (r["score"] == 0.0) == (not (s > 0.2).any())


def test_rescore_follows_the_lineage() -> None:
    assert rescore(np.array([0.1, 0.3, 0.5, 0.2]), 0.8, 0.2) == pytest.approx(0.8 * 0.4)
    assert rescore(np.array([0.1, 0.2]), 0.8, 0.2) == 0.0


def test_eval_cli_with_checkpoint_writes_beside_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = coco_cfg(*TINY, "loss.name=mse", "eval.max_images=4")
    ckpt = save_checkpoint(tmp_path / "run" / "last.pt", {"model": tiny_model(cfg).state_dict(), "config": cfg})
    config = tmp_path / "cfg.yaml"
    dump_config(cfg, config)
    assert (
        main(
            [
                "eval",
                str(config),
                "--checkpoint",
                str(ckpt),
                "eval.flip_test=false",
                "--device",
                "cpu",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert list(json.loads(out[-1]))[:10] == list(STAT_NAMES)
    assert (ckpt.parent / "last_results_val_gt.json").is_file() and (ckpt.parent / "last_metrics_val_gt.json").is_file()


def test_mpii_end_to_end(tmp_path: Path) -> None:
    if not (MPII_MINI / "mpii_mini.json").is_file():
        pytest.skip(f"real data not found at {MPII_MINI}")
    cfg = apply_overrides(
        Config(),
        [
            "data.dataset=mpii",
            f"data.root={MPII_MINI}",
            "data.val_ann=mpii_mini.json",
            "data.val_images=images",
            "data.keypoints=mpii16",
            "model.num_keypoints=16",
            "model.backbone=resnet18",
            "model.pretrained=false",
            "data.input_size=[64,64]",
            "data.heatmap_size=[16,16]",
            "data.num_workers=0",
        ],
    )
    metrics = evaluate_on_dataset(tiny_model(cfg), cfg, build_eval_set(cfg), tmp_path, progress=False).metrics
    assert set(metrics) >= {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    info = json.loads((tmp_path / "metrics_val_gt.json").read_text())
    assert info["head_size_source"] == "head_top_upper_neck"
    assert "Mean@0.1(HRNet)" in metrics and "0.11" in info["notes"]["Mean@0.1(HRNet)"]
    rows = json.loads((tmp_path / "results_val_gt.json").read_text())
    assert len(rows) == 5 and np.asarray(rows[0]["joints_matlab"]).shape == (16, 2)
    # eval.max_images: only the chosen images' people are scored (none counts as missed)
    small = apply_overrides(cfg, ["eval.max_images=2", "eval.flip_test=false"])
    metrics2 = evaluate_on_dataset(
        tiny_model(cfg), small, build_eval_set(small), tmp_path / "two", progress=False
    ).metrics
    assert json.loads((tmp_path / "two" / "metrics_val_gt.json").read_text())["people"] == 2
    assert all(0.0 <= v <= 100.0 for v in metrics2.values())
