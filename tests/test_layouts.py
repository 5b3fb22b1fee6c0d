"""Keypoint layouts as data: YAML + COCO categories -> KeypointSpec, defaults, and the errors for bad layouts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import simple_keypoints, write_coco
from fasterpose.config import ConfigError, DataConfig, LayoutConfig, config_from_dict, dump_config, load_config
from fasterpose.data.dataset import TopDownDataset
from fasterpose.experiment import experiment_of, load_layout, resolve
from fasterpose.keypoints import (
    COCO_17,
    DEFAULT_SIGMA,
    LayoutError,
    build_spec,
    check_annotation_layout,
    layout_from_coco_categories,
    spec_to_layout,
)

HAND = ("wrist", "left_tip", "right_tip", "left_base", "right_base")


def write_ann(path: Path, names: list[str], skeleton: list[list[int]] | None = None, name: str = "hand") -> Path:
    cat: dict[str, Any] = {"id": 1, "name": name, "keypoints": names}
    if skeleton is not None:
        cat["skeleton"] = skeleton
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [cat]}))
    return path


def write_layout(path: Path, **entries: Any) -> Path:
    path.write_text(yaml.safe_dump(entries))
    return path


def test_coco_category_entry_gives_coco17_exactly() -> None:
    """The 1-based COCO skeleton and left/right names reproduce the built-in layout."""
    cat = {
        "id": 1,
        "name": "person",
        "keypoints": list(COCO_17.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_17.skeleton],
    }
    found = layout_from_coco_categories({"categories": [{"id": 2, "name": "car"}, cat]}, "x.json")
    assert found is not None
    spec = build_spec(LayoutConfig(name="c", sigmas=COCO_17.sigmas), "l.yaml", found, "x.json")
    assert spec.names == COCO_17.names
    assert spec.skeleton == COCO_17.skeleton
    assert spec.flip_pairs == COCO_17.flip_pairs  # derived from left_* / right_*
    assert np.array_equal(spec.flip_index, COCO_17.flip_index)


def test_yaml_plus_annotation_categories(tmp_path: Path) -> None:
    write_ann(tmp_path / "annotations" / "train.json", list(HAND), [[1, 2], [1, 3], [2, 4]])
    layout = write_layout(
        tmp_path / "hand.yaml",
        sigmas=[0.05, 0.02, 0.02, 0.03, 0.03],
        upper_body=["wrist"],
        joint_weights=[1, 2, 2, 1, 1],
    )
    data = DataConfig(root=str(tmp_path), train_ann="annotations/train.json", keypoints=str(layout))
    spec = experiment_of(data).spec
    assert (spec.name, spec.names, spec.num_keypoints) == ("hand", HAND, 5)
    assert spec.skeleton == ((0, 1), (0, 2), (1, 3))
    assert spec.flip_pairs == ((1, 2), (3, 4))
    assert spec.flip_index.tolist() == [0, 2, 1, 4, 3]
    assert spec.upper_body == (0,) and spec.weights.tolist() == [1, 2, 2, 1, 1]
    assert spec.sigmas == (0.05, 0.02, 0.02, 0.03, 0.03) and not spec.default_sigmas
    # explicit flip pairs win over the names
    other = write_layout(tmp_path / "o.yaml", flip_pairs=[["left_tip", "right_base"]], sigmas=[0.05] * 5)
    assert experiment_of(
        DataConfig(root=str(tmp_path), train_ann="annotations/train.json", keypoints=str(other))
    ).spec.flip_pairs == ((1, 4),)


def test_resolved_layout_travels_in_the_config(tmp_path: Path) -> None:
    """Training writes the whole layout into data.layout: the dumped config needs no annotation file."""
    ann = write_ann(tmp_path / "a.json", list(HAND), [[1, 2]])
    layout = write_layout(tmp_path / "hand.yaml", sigmas=[0.05] * 5)
    cfg = config_from_dict({"data": {"root": str(tmp_path), "train_ann": "a.json", "keypoints": str(layout)}})
    assert resolve(cfg).num_keypoints == 5
    resolved = resolve(cfg).cfg
    assert resolved.model.num_keypoints == 5 and resolved.data.layout is not None
    dump_config(resolved, tmp_path / "run.yaml")
    ann.unlink()
    layout.unlink()
    again = load_config(tmp_path / "run.yaml")
    spec = experiment_of(again.data).spec
    assert spec.names == HAND and spec.skeleton == ((0, 1),) and spec.flip_pairs == ((1, 2), (3, 4))
    with pytest.raises(ConfigError, match=r"model.num_keypoints=17 disagrees with data.layout.keypoints, which has 5"):
        config_from_dict(
            {
                "model": {"num_keypoints": 17},
                "data": {"layout": {"name": "hand", "keypoints": list(HAND), "sigmas": [0.05] * 5}},
            }
        )
    # a layout file is counted when resolved
    with pytest.raises(ConfigError, match=r"model.num_keypoints is 17 but the keypoint layout hand .* has 5 joints"):
        hand = write_layout(tmp_path / "hand.yaml", keypoints=list(HAND), sigmas=[0.05] * 5)
        resolve(config_from_dict({"model": {"num_keypoints": 17}, "data": {"keypoints": str(hand)}}))


def test_builtin_layouts_stay(tmp_path: Path) -> None:
    cfg = config_from_dict({"data": {"keypoints": "mpii16"}})
    assert experiment_of(cfg.data).spec.num_keypoints == 16
    out = resolve(cfg).cfg
    assert out.data.layout is None and out.model.num_keypoints == 16
    with pytest.raises(ConfigError, match="model.num_keypoints=17 disagrees with data.keypoints=mpii16"):
        config_from_dict({"model": {"num_keypoints": 17}, "data": {"keypoints": "mpii16"}})
    with pytest.raises(ConfigError, match="data.keypoints=coco18: neither a built-in layout"):
        config_from_dict({"data": {"keypoints": "coco18"}})


def test_default_sigmas_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    layout = write_layout(tmp_path / "nosig.yaml", keypoints=list(HAND))
    with caplog.at_level(logging.WARNING, logger="fasterpose.keypoints"):
        spec = load_layout(str(layout))
    assert spec.sigmas == (DEFAULT_SIGMA,) * 5 and spec.default_sigmas
    assert spec_to_layout(spec).sigmas == ()  # a written-out layout keeps saying "no sigmas of its own"
    assert "gives no OKS sigmas" in caplog.text and "not comparable to published numbers" in caplog.text


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"flip_pairs": [["left_tip", "left_thumb"]]}, r"nosuch.yaml: flip_pairs\[0\]: 'left_thumb' is not a joint"),
        ({"sigmas": [0.05] * 4}, r"nosuch.yaml: layout nosuch: sigmas: 4 values for 5 joints"),
        ({"joint_weights": [1.0] * 6}, r"nosuch.yaml: layout nosuch: joint_weights: 6 values for 5 joints"),
        ({"skeleton": [["wrist", "elbow"]]}, r"nosuch.yaml: skeleton\[0\]: 'elbow' is not a joint"),
        ({"upper_body": ["head"]}, r"nosuch.yaml: upper_body\[0\]: 'head' is not a joint"),
        ({"sigmas": [0.05, 0, 0.1, 0.1, 0.1]}, r"nosuch.yaml: sigmas: every OKS sigma must be > 0"),
        ({"flip_pairs": [["wrist", "wrist"]]}, r"flip_pairs\[0\]: a joint cannot swap with itself"),
        (
            {"flip_pairs": [[1, 2]]},
            r"nosuch.yaml: flip_pairs: expected a string, got 1 \(joints are referred to by name",
        ),
        ({"keypoints": ["wrist", "left_tip"]}, r"nosuch.yaml: joint 'left_tip' has no 'right_tip'"),
        ({"keypoints": ["a", "b", "a"]}, r"nosuch.yaml: keypoints: joint names repeat"),
        ({"colour": "red"}, r"nosuch.yaml: unknown config key colour"),
    ],
)
def test_bad_layout_files(tmp_path: Path, entries: dict[str, Any], message: str) -> None:
    entries = {"keypoints": list(HAND), **entries}
    layout = write_layout(tmp_path / "nosuch.yaml", **entries)
    with pytest.raises(LayoutError, match=message):
        load_layout(str(layout))


@pytest.mark.parametrize(
    ("skeleton", "message"),
    [
        (
            [[1, 2], [5, 6]],
            r"a.json: categories\[0\].skeleton\[1\]: index 6 out of range 1..5 \(COCO skeletons are 1-based",
        ),
        ([[0, 1]], r"skeleton\[0\]: index 0 out of range 1..5 \(COCO skeletons are 1-based; this one looks 0-based"),
        ([[1, "b"]], r"a.json: categories\[0\].skeleton\[0\]: expected two joint numbers"),
    ],
)
def test_bad_category_skeleton(tmp_path: Path, skeleton: list[list[Any]], message: str) -> None:
    ann = write_ann(tmp_path / "a.json", list(HAND), skeleton)
    layout = write_layout(tmp_path / "l.yaml", sigmas=[0.05] * 5)
    with pytest.raises(LayoutError, match=message):
        load_layout(str(layout), ann)
    # a skeleton by names in the layout file overrides the category's
    fixed = write_layout(tmp_path / "f.yaml", sigmas=[0.05] * 5, skeleton=[["wrist", "left_tip"]])
    assert load_layout(str(fixed), ann).skeleton == ((0, 1),)


def test_layout_and_dataset_must_agree(tmp_path: Path) -> None:
    ann = write_ann(tmp_path / "a.json", list(HAND))
    renamed = write_layout(
        tmp_path / "r.yaml",
        keypoints=["wrist", "left_tip", "right_tip", "left_base", "thumb"],
        flip_pairs=[],
        sigmas=[0.05] * 5,
    )
    with pytest.raises(LayoutError, match=r"r.yaml: keypoints \(5 joints\) differ from .*a.json's category .* joint 4"):
        load_layout(str(renamed), ann)
    complete = LayoutConfig(name="r", keypoints=("a", "b", "c", "d", "e"), skeleton=(("a", "b"),), flip_pairs=())
    spec = build_spec(complete, "config data.layout")
    with pytest.raises(LayoutError, match=r"a.json: its category lists joints .* but the layout r"):
        check_annotation_layout(spec, ann)
    check_annotation_layout(COCO_17, ann)  # built-in layouts are not checked against category names
    with pytest.raises(LayoutError, match=r"data.keypoints: 'nope.yaml' is neither a built-in layout"):
        experiment_of(DataConfig(keypoints="nope.yaml", root=str(tmp_path)))
    two = {
        "images": [],
        "categories": [{"id": 1, "name": "a", "keypoints": ["x"]}, {"id": 2, "name": "b", "keypoints": ["y"]}],
    }
    with pytest.raises(LayoutError, match=r"several categories list keypoints \(\['a', 'b'\]\); set `category`"):
        layout_from_coco_categories(two, "t.json")
    assert layout_from_coco_categories(two, "t.json", category="b") == (("y",), ())


def test_dataset_follows_the_layout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The dataset takes flip pairs and weights from a layout file; no upper_body turns half-body off."""
    write_coco(tmp_path, [{"bbox": [30, 10, 60, 70], "keypoints": simple_keypoints(40, 20)}])
    names = [f"k{j}" for j in range(17)]
    layout = write_layout(tmp_path / "k.yaml", flip_pairs=[["k1", "k2"]], sigmas=[0.05] * 17, joint_weights=[2.0] * 17)
    cfg = config_from_dict(
        {
            "data": {
                "root": str(tmp_path),
                "train_ann": "annotations/person_keypoints_train.json",
                "train_images": "train",
                "keypoints": str(layout),
                "input_size": [32, 32],
                "heatmap_size": [8, 8],
                "use_joint_weights": True,
            }
        }
    )
    with caplog.at_level(logging.WARNING, logger="fasterpose.data.dataset"):
        ds = TopDownDataset.from_config(cfg, "train", train=True)
    assert ds.spec.names == tuple(names) and ds.spec.flip_pairs == ((1, 2),)
    assert (
        ds.augment is not None and ds.augment.half_body_prob == 0.0 and "half-body augmentation is off" in caplog.text
    )
    assert ds[0]["target_weight"].max() == 2.0
    renamed = write_layout(tmp_path / "r.yaml", keypoints=[f"j{j}" for j in range(17)], sigmas=[0.05] * 17)
    cfg2 = config_from_dict(
        {
            "data": {
                **{k: v for k, v in cfg.data.__dict__.items() if k in ("root", "train_ann")},
                "train_images": "train",
                "keypoints": str(renamed),
            }
        }
    )
    with pytest.raises(LayoutError, match=r"r.yaml: keypoints \(17 joints\) differ from .*person_keypoints_train.json"):
        TopDownDataset.from_config(cfg2, "train", train=True)
