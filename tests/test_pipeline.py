"""One pipeline: the dataset evaluation path and ``Predictor`` give identical keypoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model
from fasterpose.config import Config, apply_overrides
from fasterpose.deploy.predictor import Predictor
from fasterpose.models.pose_model import PoseModel
from fasterpose.pipeline.evaluate import build_eval_set, evaluate_on_dataset
from fasterpose.pipeline.topdown import TopDownPipeline
from fasterpose.pipeline.torch_runner import TorchRunner

TINY = tiny_model((64, 96))


def coco_mini_cfg(shared_data: Path, *extra: str) -> Config:
    coco = shared_data / "coco_mini"
    return apply_overrides(
        Config(),
        [
            *TINY,
            f"data.root={coco}",
            "data.val_ann=annotations/person_keypoints_val2017_mini.json",
            "data.val_images=val2017",
            "data.det_file=annotations/person_detections_val2017_mini.json",
            "data.num_workers=0",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def model() -> PoseModel:
    cfg = apply_overrides(Config(), TINY)
    torch.manual_seed(0)
    net = PoseModel.from_config(cfg).eval()
    torch.nn.init.normal_(net.head.conv.weight, std=0.05)  # structured heatmaps, not the N(0, 0.001) init
    return net


@pytest.mark.parametrize("boxes", ["gt", "detector"])
def test_dataset_path_and_predictor_give_identical_keypoints(model: PoseModel, shared_data: Path, boxes: str) -> None:
    """Same image, same boxes, same runner: the evaluation path's keypoints are the Predictor's, bit for bit."""
    cfg = coco_mini_cfg(shared_data, f"eval.use_gt_boxes={boxes == 'gt'}", "eval.batch_size=64", "eval.max_images=1")
    eval_set = build_eval_set(cfg)
    assert len(eval_set) > 1 and len({r.image_path for r in eval_set.records}) == 1
    predictor = Predictor(model, cfg, runtime="torch", flip_test=cfg.eval.flip_test, batch_size=64)
    from_dataset = evaluate_on_dataset(
        TopDownPipeline.from_config(cfg, predictor.runner), cfg, eval_set, progress=False
    ).predictions

    record = eval_set.records[0]
    user_boxes = np.array([[*r.box, r.box_score] for r in eval_set.records], np.float32)
    from_predictor = predictor(record.image_path, user_boxes, image_id=record.image_id)

    assert len(from_dataset) == len(from_predictor) == len(eval_set)
    for a, b in zip(from_dataset, from_predictor, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.score == b.score and a.image_id == b.image_id
        np.testing.assert_array_equal(a.center, b.center)
        np.testing.assert_array_equal(a.scale, b.scale)


def test_cross_image_batches_match_per_image_prediction(model: PoseModel, shared_data: Path) -> None:
    """Evaluation batches crops across images; every image's keypoints still match the Predictor's."""
    cfg = coco_mini_cfg(shared_data, "eval.batch_size=8", "eval.flip_test=true")
    eval_set = build_eval_set(cfg)
    predictor = Predictor(model, cfg, runtime="torch", flip_test=True, batch_size=8)
    pipeline = TopDownPipeline.from_config(cfg, predictor.runner)
    preds = evaluate_on_dataset(pipeline, cfg, eval_set, num_workers=2, progress=False).predictions
    assert [p.index for p in preds] == list(range(len(eval_set)))
    for path in dict.fromkeys(r.image_path for r in eval_set.records):
        idx = [i for i, r in enumerate(eval_set.records) if r.image_path == path]
        boxes = np.array([[*eval_set.records[i].box, eval_set.records[i].box_score] for i in idx], np.float32)
        mine = predictor(path, boxes)
        got = np.stack([preds[i].keypoints for i in idx])
        # batch composition differs (8 crops across images vs one image's): float noise only
        np.testing.assert_allclose(got, np.stack([p.keypoints for p in mine]), atol=1e-3)


def test_a_changed_step_is_seen(model: PoseModel, shared_data: Path) -> None:
    """The comparison can fail: a Predictor with a different padding moves the keypoints."""
    cfg = coco_mini_cfg(shared_data, "eval.max_images=1")
    eval_set = build_eval_set(cfg)
    runner = TorchRunner(model, channels_last=False)
    from_dataset = evaluate_on_dataset(
        TopDownPipeline.from_config(cfg, runner), cfg, eval_set, progress=False
    ).predictions
    other = apply_overrides(cfg, ["data.augment.padding=1.5"])
    predictor = Predictor(model, other, runtime="torch", flip_test=True)
    boxes = np.array([[*r.box, r.box_score] for r in eval_set.records], np.float32)
    moved = predictor(eval_set.records[0].image_path, boxes)
    assert np.abs(np.stack([p.keypoints for p in moved]) - np.stack([p.keypoints for p in from_dataset])).max() > 1.0
