"""resolve(cfg) -> Experiment: layout spec, codec, split files and metric kind, decided once; a network
is built from the config alone (no annotation file read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from fasterpose import keypoints
from fasterpose.config import ConfigError, config_from_dict
from fasterpose.experiment import SplitFiles, model_num_keypoints, resolve
from fasterpose.keypoints import COCO_17, MPII_16
from fasterpose.models.pose_model import PoseModel

HAND = ["wrist", "left_tip", "right_tip", "left_base", "right_base"]
TINY_MODEL = {"backbone": "resnet18", "pretrained": False, "feature_index": -2}


def test_coco_default() -> None:
    exp = resolve(config_from_dict({"data": {"root": "/d/coco"}}))
    assert exp.spec is COCO_17 and exp.num_keypoints == 17
    assert exp.metric == "oks_ap" and exp.primary_metric == "AP" and exp.coco_format
    assert exp.cfg.model.num_keypoints == 17 and exp.cfg.data.layout is None  # a built-in layout stays a name
    root = Path("/d/coco")
    assert exp.split("train") == SplitFiles(root / "annotations/person_keypoints_train2017.json", root / "train2017")
    assert exp.split("val") == SplitFiles(root / "annotations/person_keypoints_val2017.json", root / "val2017")
    assert exp.split("test-dev").annotations == root / "annotations/image_info_test-dev2017.json"
    assert exp.split("test-dev").images == root / "test2017" and exp.split("test-dev").detections is None
    assert (exp.codec.input_size, exp.codec.heatmap_size, exp.codec.encoding) == ((192, 256), (48, 64), "msra")


def test_detection_files_belong_to_their_split() -> None:
    data = {"root": "/r", "det_file": "dets/val.json", "test_det_file": "dets/test.json"}
    exp = resolve(config_from_dict({"data": data, "eval": {"dark": True}}))
    assert exp.split("train").detections is None
    assert exp.split("val").detections == Path("/r/dets/val.json")
    assert exp.split("test-dev").detections == Path("/r/dets/test.json")
    assert exp.codec.dark


def test_mpii_is_scored_by_pckh() -> None:
    data = {
        "dataset": "mpii",
        "keypoints": "mpii16",
        "root": "/m",
        "train_ann": "annot/train.json",
        "val_ann": "annot/valid.json",
        "train_images": "images",
        "val_images": "images",
        "test_ann": None,
    }
    exp = resolve(config_from_dict({"data": data}))
    assert exp.spec is MPII_16 and exp.metric == "pckh" and exp.primary_metric == "Mean" and not exp.coco_format
    assert list(exp.splits) == ["train", "val"]  # no test-dev without data.test_ann
    assert exp.split("val") == SplitFiles(Path("/m/annot/valid.json"), Path("/m/images"))
    with pytest.raises(ValueError, match="data.test_ann is not set"):
        exp.split("test-dev")
    with pytest.raises(ValueError, match="split must be one of train, val, got 'test'"):
        exp.split("test")


def test_synthpose_is_scored_by_oks_ap() -> None:
    exp = resolve(config_from_dict({"data": {"dataset": "synthpose", "root": "/s"}}))
    assert exp.metric == "oks_ap" and exp.primary_metric == "AP" and exp.coco_format and exp.spec is COCO_17


def test_custom_layout_yaml_with_names_from_the_annotations(tmp_path: Path) -> None:
    """The layout file gives sigmas; the joint names and skeleton come from the annotation file's category,
    and the Experiment's config carries the whole layout (the model file needs no annotation file)."""
    ann = tmp_path / "annotations" / "train.json"
    ann.parent.mkdir()
    cat = {"id": 1, "name": "hand", "keypoints": HAND, "skeleton": [[1, 2], [1, 3]]}
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": [cat]}))
    layout = tmp_path / "hand.yaml"
    layout.write_text(yaml.safe_dump({"sigmas": [0.05] * 5}))
    data = {"root": str(tmp_path), "train_ann": "annotations/train.json", "keypoints": str(layout)}
    cfg = config_from_dict({"data": data})
    with pytest.raises(
        ConfigError, match="model.num_keypoints is not set .* takes its joint names from the annotation"
    ):
        model_num_keypoints(cfg)
    exp = resolve(cfg)
    assert exp.spec.names == tuple(HAND) and exp.spec.skeleton == ((0, 1), (0, 2)) and exp.metric == "oks_ap"
    assert exp.cfg.model.num_keypoints == 5 and model_num_keypoints(exp.cfg) == 5
    assert exp.cfg.data.layout is not None and exp.cfg.data.layout.keypoints == tuple(HAND)
    ann.unlink()
    again = resolve(exp.cfg).spec  # the written-out layout resolves alone
    assert (again.names, again.skeleton, again.sigmas, again.flip_pairs) == (
        exp.spec.names,
        exp.spec.skeleton,
        exp.spec.sigmas,
        exp.spec.flip_pairs,
    )


def test_a_wrong_config_names_the_key(tmp_path: Path) -> None:
    layout = tmp_path / "hand.yaml"
    layout.write_text(yaml.safe_dump({"keypoints": HAND, "sigmas": [0.05] * 5}))
    cfg = config_from_dict({"model": {"num_keypoints": 17}, "data": {"keypoints": str(layout)}})
    with pytest.raises(ConfigError, match=r"model.num_keypoints is 17 but the keypoint layout hand .* has 5 joints"):
        resolve(cfg)
    with pytest.raises(ValueError, match=r"data.keypoints: 'nope.yaml' is neither a built-in layout"):
        resolve(config_from_dict({"data": {"keypoints": "nope.yaml", "root": str(tmp_path)}}))


def test_building_a_network_reads_no_annotation_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config whose annotation files do not exist builds its network: the joint count comes from the config."""

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("building a network read an annotation file")

    monkeypatch.setattr(keypoints, "read_coco_categories", no_read)
    layout = tmp_path / "hand.yaml"
    layout.write_text(yaml.safe_dump({"keypoints": HAND, "sigmas": [0.05] * 5}))  # no skeleton: names only
    data = {
        "root": str(tmp_path / "missing"),
        "keypoints": str(layout),
        "input_size": [64, 64],
        "heatmap_size": [16, 16],
    }
    cfg = config_from_dict({"model": TINY_MODEL, "data": data})
    assert not (tmp_path / "missing").exists()
    net = PoseModel.from_config(cfg)
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 5, 16, 16)
    # a layout without names builds once model.num_keypoints says the count, and the annotations are not opened
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "annotations").mkdir()
    (tmp_path / "missing" / "annotations" / "person_keypoints_train2017.json").write_text("not json")
    layout.write_text(yaml.safe_dump({"sigmas": [0.05] * 5}))
    named = config_from_dict({"model": {**TINY_MODEL, "num_keypoints": 5}, "data": data})
    assert PoseModel.from_config(named)(torch.zeros(1, 3, 64, 64)).shape == (1, 5, 16, 16)
