"""SynthPose: valid COCO output, determinism, honest visibility, left/right semantics."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fasterpose.data.synthpose import body as body_mod
from fasterpose.data.synthpose import generate, preview
from fasterpose.data.synthpose.draw import KEYPOINT_PARTS, OCCLUDER_LABEL, PARTS_PER_PERSON, Look, build_person
from fasterpose.data.synthpose.render import SynthPoseKnobs, compose, render_sample
from fasterpose.keypoints import COCO_17

SPLITS = {"train": 6, "val": 4}
LIMB_JOINTS = (7, 8, 9, 10, 13, 14, 15, 16)  # visibility decided by the label map alone


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthpose")
    stats = generate(root, SPLITS["train"], SPLITS["val"], seed=3)
    return root, stats


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("split", list(SPLITS))
def test_valid_coco(dataset: tuple[Path, dict], split: str) -> None:
    root, stats = dataset
    coco = COCO(str(root / "annotations" / f"person_keypoints_{split}.json"))
    assert len(coco.getImgIds()) == SPLITS[split] == stats[split]["images"]
    cat = coco.loadCats(1)[0]
    assert cat["name"] == "person" and tuple(cat["keypoints"]) == COCO_17.names
    assert [tuple(e) for e in cat["skeleton"]] == [(a + 1, b + 1) for a, b in COCO_17.skeleton]
    ann_ids = coco.getAnnIds()
    assert len(set(ann_ids)) == len(ann_ids) == stats[split]["people"]
    for img_id in coco.getImgIds():
        info = coco.imgs[img_id]
        image = cv2.imread(str(root / split / info["file_name"]))
        assert image is not None and image.shape == (info["height"], info["width"], 3)
        assert 320 <= max(image.shape[:2]) <= 640
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        assert 1 <= len(anns) <= 4
        for ann in anns:
            assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and ann["area"] > 0
            kps = np.asarray(ann["keypoints"], float).reshape(17, 3)
            assert set(np.unique(kps[:, 2])) <= {0.0, 1.0, 2.0}
            assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
            assert np.all(kps[kps[:, 2] == 0, :2] == 0)
            x, y, w, h = ann["bbox"]
            assert x >= 0 and y >= 0 and x + w <= info["width"] and y + h <= info["height"]
            assert ann["area"] <= w * h
            lab = kps[kps[:, 2] > 0]
            assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= info["width"] - 1))
            assert np.all((lab[:, 1] >= 0) & (lab[:, 1] <= info["height"] - 1))
            assert np.all((lab[:, 0] >= x - 2) & (lab[:, 0] <= x + w + 2))
            assert np.all((lab[:, 1] >= y - 2) & (lab[:, 1] <= y + h + 2))
            assert ann["segmentation"] and all(len(poly) >= 6 for poly in ann["segmentation"])


def test_ground_truth_scores_perfect_ap(dataset: tuple[Path, dict]) -> None:
    """COCOeval accepts the files: the ground truth submitted as results scores AP 1."""
    root, _ = dataset
    gt = COCO(str(root / "annotations" / "person_keypoints_val.json"))
    results = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt.loadAnns(gt.getAnnIds())
        if a["num_keypoints"] > 0
    ]
    ev = COCOeval(gt, gt.loadRes(results), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_deterministic_bytes(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = dataset
    generate(tmp_path / "same", SPLITS["train"], SPLITS["val"], seed=3, workers=2)
    assert _files(tmp_path / "same") == _files(root)
    generate(tmp_path / "other", SPLITS["train"], SPLITS["val"], seed=4)
    a, b = _files(root), _files(tmp_path / "other")
    assert a.keys() == b.keys()
    assert a["annotations/person_keypoints_val.json"] != b["annotations/person_keypoints_val.json"]
    assert all(a[k] != b[k] for k in a if k.endswith(".jpg"))


def test_knobs_validated_and_effective(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown knob.*occluder_probability"):
        generate(tmp_path, 1, 0, seed=0, occluder_probability=0.5)
    with pytest.raises(ValueError, match="max_people"):
        SynthPoseKnobs(max_people=0)
    for i in range(4):
        s = render_sample(1, "train", i, SynthPoseKnobs(max_people=1, occluder_prob=0.0))
        assert len(s.people) == 1 and not np.any(s.labels == OCCLUDER_LABEL)
    easy = SynthPoseKnobs(occluder_prob=1.0, clutter=2.0, difficulty=0.0).effective()
    assert (easy.occluder_prob, easy.clutter, easy.noise, easy.difficulty) == (0.0, 0.0, 0.0, 1.0)


def test_visibility_matches_label_map() -> None:
    """v=2 exactly where the keypoint's pixel shows a part of this person that carries it; limb
    joints are v=1 exactly where it does not (face, shoulders and hips may also turn away)."""
    knobs = SynthPoseKnobs(occluder_prob=1.0, max_people=4, min_people=2)
    causes = {"occluder": 0, "other_person": 0, "self": 0}
    for i in range(12):
        s = render_sample(7, "val", i, knobs)
        for p in s.people:
            for k, (x, y, v) in enumerate(p.keypoints):
                if v == 0:
                    continue
                lab = int(s.labels[int(round(y)), int(round(x))])
                own = 0 < lab < OCCLUDER_LABEL and (lab - 1) // PARTS_PER_PERSON == p.slot
                ok = own and (lab - 1) % PARTS_PER_PERSON in KEYPOINT_PARTS[k]
                if v == 2:
                    assert ok, (i, p.slot, COCO_17.names[k], lab)
                elif k in LIMB_JOINTS:
                    assert not ok, (i, p.slot, COCO_17.names[k], lab)
                if v == 1 and not ok:
                    causes["occluder" if lab == OCCLUDER_LABEL else "self" if own else "other_person"] += 1
    assert all(n > 0 for n in causes.values()), causes


def _person(yaw: float, offset: tuple[float, float], template: str = "t_pose", scale: float = 200.0):
    angles = body_mod.TEMPLATES[body_mod.TEMPLATE_NAMES.index(template)]
    body = body_mod.pose_body(angles, body_mod.Shape())
    look = Look(
        skin=(120, 160, 210),
        shirt=(200, 40, 40),
        pants=(40, 160, 40),
        shoes=(20, 20, 20),
        hair=(20, 20, 20),
        long_sleeves=False,
        shorts=False,
        hair_style=1,
        stripes=None,
        outline=False,
    )
    return build_person(body, body_mod.view_rotation(yaw, 0.0, 0.0), scale, np.array([*offset, 0.0]), look), look


@pytest.mark.parametrize("yaw", [0.0, 180.0, 90.0])
def test_left_right_and_facing(yaw: float) -> None:
    person, _ = _person(yaw, (200.0, 150.0), "t_pose" if yaw != 90.0 else "stand")
    image = np.full((300, 400, 3), 128, np.uint8)
    (ann,), _ = compose(image, [person], {})
    kp, names = ann.keypoints, COCO_17.names
    x = {n: kp[i, 0] for i, n in enumerate(names)}
    v = {n: int(kp[i, 2]) for i, n in enumerate(names)}
    pairs = ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    if yaw == 0.0:  # facing the camera: the person's left is on the image right, face visible
        assert all(x[f"left_{j}"] > x[f"right_{j}"] for j in pairs)
        assert v["nose"] == v["left_eye"] == v["right_eye"] == 2
    elif yaw == 180.0:  # back to the camera: mirrored, eyes and nose turned away, ears seen
        assert all(x[f"left_{j}"] < x[f"right_{j}"] for j in pairs)
        assert v["nose"] == v["left_eye"] == v["right_eye"] == 1
        assert v["left_ear"] == v["right_ear"] == 2
    else:  # profile facing image right, arms down: the right side faces the camera
        assert x["nose"] > x["left_ear"]
        assert (v["right_eye"], v["right_ear"], v["right_shoulder"]) == (2, 2, 2)
        assert (v["left_eye"], v["left_ear"], v["left_shoulder"]) == (1, 1, 1)


def test_occluder_hides_keypoint_pixels() -> None:
    """A box over the left wrist: the wrist becomes v=1 and its pixel is the box's colour, while
    an uncovered joint stays v=2 and shows the person's clothing."""
    person, look = _person(0.0, (200.0, 160.0))
    wrist = person.keypoints[9, :2]
    box = np.array([wrist + d for d in ((-12, -12), (12, -12), (12, 12), (-12, 12))])
    image = np.full((320, 400, 3), 128, np.uint8)
    (ann,), labels = compose(image, [person], {0: [("poly", box, (10, 220, 240))]})
    kp = ann.keypoints
    assert kp[9, 2] == 1 and kp[10, 2] == 2 and kp[13, 2] == 2
    wx, wy = np.rint(kp[9, :2]).astype(int)
    assert tuple(image[wy, wx]) == (10, 220, 240) and labels[wy, wx] == OCCLUDER_LABEL
    kx, ky = np.rint(kp[13, :2]).astype(int)
    assert tuple(image[ky, kx]) == look.pants


def test_preview_sheet(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = dataset
    sheet = preview(root, "val", n=4, path=tmp_path / "sheet.png", cols=2, tile=64)
    assert sheet.shape == (128, 128, 3)
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == sheet.shape
    stats = json.loads((root / "annotations" / "person_keypoints_val.json").read_text())["info"]["synthpose"]
    assert stats["seed"] == 3


def test_preview_draws_with_visualize(dataset: tuple[Path, dict]) -> None:
    from fasterpose.visualize import LEFT_COLOR, RIGHT_COLOR

    sheet = preview(dataset[0], "val", n=4, cols=2, tile=128)
    for rgb in (LEFT_COLOR, RIGHT_COLOR):
        bgr = np.array(rgb[::-1], np.uint8)
        assert (sheet == bgr).all(axis=-1).sum() >= 4, f"no joint drawn in visualize's colour {rgb}"


def test_ensure_generates_once_and_refuses_a_different_dataset(tmp_path: Path) -> None:
    from fasterpose.data import synthpose

    root = tmp_path / "sp"
    knobs = {"max_people": 1, "occluder_prob": 0.0}
    first = synthpose.ensure(root, 3, 2, seed=5, knobs=knobs)
    assert first.generated and synthpose.holds(root, 3, 2, 5, knobs)
    before = _files(root)
    again = synthpose.ensure(root, 3, 2, seed=5, knobs=dict(knobs))
    assert not again.generated and _files(root) == before
    for args, kw in [((3, 2, 6), knobs), ((4, 2, 5), knobs), ((3, 2, 5), {"max_people": 2})]:
        with pytest.raises(synthpose.SynthPoseMismatch) as info:
            synthpose.ensure(root, *args, knobs=kw)
        assert str(root) in str(info.value) and "different SynthPose" in str(info.value)
    assert _files(root) == before  # never overwritten
    lost = next((root / "val").iterdir())
    lost.unlink()
    assert not synthpose.holds(root, 3, 2, 5, knobs)
    assert synthpose.ensure(root, 3, 2, seed=5, knobs=knobs).generated and _files(root) == before


# SHA-256 over (relative path, bytes) of every file `generate` writes, per CPU class: the generator's
# float64 maths runs through numpy kernels chosen per instruction set, so the digests hold for the class
# they were taken on (taken with the generator of commit de0debf)
PINNED_SHA256 = {
    "amx": {
        "fixture": "2c8d799a0d570c4a9f7e89a0668cdd0053e27281b10c1aca8647dbe6b5b35dc1",
        "hard": "dc5fdde99975ed064e3ec8401254cd6dd3cf625d4a59b8e6b4eb0c0b0538919d",
        "study": "77f76e44ee839b6533d8c0b0a816fcdfc147490b2f8e08a87a8a42424500284e",
    },
}
STUDY_KNOBS = {  # configs/study/study.yaml's dataset knobs
    "min_people": 1,
    "max_people": 1,
    "occluder_prob": 0.0,
    "clutter": 0.0,
    "noise": 0.0,
    "blur_prob": 0.0,
    "truncation_prob": 0.0,
    "pose_variation": 0.15,
    "difficulty": 1.0,
    "scale_range": (0.4, 0.95),
    "thickness_range": (0.75, 1.35),
    "image_size": (192, 320),
    "jpeg_quality": 90,
    "antialias": True,
}


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for name, data in _files(root).items():
        h.update(name.encode() + b"\0" + data)
    return h.hexdigest()


def test_bytes_pinned(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    """Same seed and knobs, same bytes as the generator wrote when these digests were taken: the study's
    dataset must not change when the generator gets faster."""
    from fasterpose.bench.provenance import cpu_class

    pinned = PINNED_SHA256.get(cpu_class())
    if pinned is None:
        pytest.skip(f"no SynthPose digests pinned for CPU class {cpu_class()!r}")
    generate(tmp_path / "hard", 5, 2, seed=11, max_people=6, occluder_prob=0.7, difficulty=1.5, antialias=False)
    generate(tmp_path / "study", 6, 3, seed=0, **STUDY_KNOBS)
    got = {"fixture": _tree_sha256(dataset[0]), "hard": _tree_sha256(tmp_path / "hard")}
    got["study"] = _tree_sha256(tmp_path / "study")
    assert got == pinned
