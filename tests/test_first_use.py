"""First use as people expect it: arrays in BGR as OpenCV gives them, many-image sources, per-stage speed,
the box files people already have, one-line errors naming the extra to install, and the files we write."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fasterpose.boxes import BoxTable
from fasterpose.cli import main
from fasterpose.config import load_config
from fasterpose.deploy.predictor import Predictor
from fasterpose.onnx_proto import OnnxProtoError, onnx_metadata_props
from test_predict import BrightSpot, spot_image, tiny_cfg

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
RED, BLUE = (60, 70), (230, 150)  # (x, y) of a red and a blue spot, in a 320x240 image


class RedSpot(nn.Module):
    """Stub pose net whose heatmaps are red minus blue: every joint lands on the red spot of an RGB crop."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = F.avg_pool2d(x[:, 0:1] - x[:, 2:3], 4)
        return 10.0 * m.expand(-1, 17, -1, -1).contiguous()


def near(keypoints: np.ndarray, spot: tuple[int, int]) -> bool:
    """Every joint within 30 px of ``spot`` (whole-image crops are coarse: one heatmap pixel is ~20 px here;
    the two spots are 186 px apart)."""
    return bool(np.abs(keypoints - np.array(spot)).max() < 30.0)


def colour_image() -> np.ndarray:
    """RGB uint8 (240, 320, 3): a red spot at RED and a blue one at BLUE."""
    rgb = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(rgb, RED, 4, (255, 0, 0), -1)
    cv2.circle(rgb, BLUE, 4, (0, 0, 255), -1)
    return rgb


@pytest.fixture(scope="module")
def red() -> Predictor:
    return Predictor(RedSpot(), tiny_cfg("loss.name=mse"), runtime="torch")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("colour") / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR))
    return path


def test_arrays_are_bgr_as_opencv_reads_them(red: Predictor, photo: Path) -> None:
    from_path = red(photo).keypoints
    assert near(from_path, RED)  # the red spot, not the blue one
    np.testing.assert_array_equal(red(cv2.imread(str(photo))).keypoints, from_path)
    np.testing.assert_array_equal(red(colour_image(), channel_order="rgb").keypoints, from_path)
    swapped = red(colour_image()).keypoints  # an RGB array given as BGR: red and blue trade places
    assert near(swapped, BLUE)
    with pytest.raises(ValueError, match="channel_order"):
        red(colour_image(), channel_order="bgra")


def test_pil_images_are_read_as_rgb(red: Predictor, photo: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    with pil.open(photo) as im:
        np.testing.assert_array_equal(red(im).keypoints, red(photo).keypoints)
        np.testing.assert_array_equal(red(im.convert("RGBA")).keypoints, red(photo).keypoints)
        np.testing.assert_array_equal(red(im.convert("P")).keypoints, red(photo).keypoints)  # a palette image


def test_a_pil_image_is_turned_by_its_exif_orientation_as_its_path_is(red: Predictor, tmp_path: Path) -> None:
    """A phone photo stores its pixels sideways with an orientation tag: the path and the PIL image agree."""
    pil = pytest.importorskip("PIL.Image")
    upright = colour_image()  # what a viewer shows: 320 wide, red spot at RED
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # the pixels as a camera stores them, 240 wide
    exif = pil.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    photo = tmp_path / "phone.jpg"
    pil.fromarray(stored).save(photo, quality=95, exif=exif.tobytes())
    from_path = red(photo)
    assert from_path.image.shape == (240, 320, 3) and near(from_path.keypoints, RED)
    with pil.open(photo) as im:
        from_pil = red(im)
    assert from_pil.image.shape == (240, 320, 3) and near(from_pil.keypoints, RED)
    ops = pytest.importorskip("PIL.ImageOps")
    with pil.open(photo) as im:  # an image the user turned already has no tag left: not turned twice
        turned = red(ops.exif_transpose(im))
    np.testing.assert_array_equal(turned.keypoints, from_pil.keypoints)


def test_a_bad_image_in_a_list_is_named_by_its_place(red: Predictor) -> None:
    good = cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR)
    with pytest.raises(ValueError, match=r"item 1 of the list: image array must be uint8 of shape \(H, W, 3\)"):
        red([good, good[..., :2]])
    with pytest.raises(TypeError, match="item 2 of the list: an image is a numpy array, a PIL image or a path"):
        list(red.stream([good, good, 3.5]))


def test_a_list_a_folder_and_a_video_give_one_results_per_image(red: Predictor, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    bgr = cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR)
    for name in ("b.png", "a.png", "7.png"):
        cv2.imwrite(str(folder / name), bgr)
    one = red(bgr)
    listed = red([folder / "a.png", bgr, colour_image()], channel_order="bgr")
    assert [len(r) for r in listed] == [1, 1, 1] and listed[0].path == str(folder / "a.png") and listed[1].path is None
    np.testing.assert_array_equal(listed[0].keypoints, one.keypoints)
    np.testing.assert_array_equal(listed[1].keypoints, one.keypoints)
    assert near(listed[2].keypoints, BLUE)  # an RGB array in a BGR list: swapped
    assert [p.image_id for r in listed for p in r] == [0, 1, 2]
    in_folder = list(red.stream(folder))
    assert [Path(r.path or "").name for r in in_folder] == ["7.png", "a.png", "b.png"]
    assert [r[0].image_id for r in in_folder] == [7, 8, 9]  # numbered as `fasterpose predict` numbers them
    for r in in_folder:
        np.testing.assert_array_equal(r.keypoints, one.keypoints)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (320, 240))
    for _ in range(3):
        writer.write(bgr)
    writer.release()
    frames = red(video)
    assert isinstance(frames, list) and len(frames) == 3 and {r.path for r in frames} == {str(video)}
    assert [r[0].image_id for r in frames] == [0, 1, 2]
    for r in frames:  # frames go through OpenCV's BGR -> RGB like the images do (lossy codec: a few px)
        assert near(r.keypoints, RED)
    per_image = red([bgr, bgr], boxes=[[[30, 20, 60, 120]], [[200, 60, 70, 140], [30, 20, 60, 120]]])
    assert [len(r) for r in per_image] == [1, 2]
    with pytest.raises(ValueError, match="one per image"):
        red([bgr, bgr], boxes=[[[30, 20, 60, 120]]])


def test_stream_looks_up_a_boxes_file_as_predict_does(red: Predictor, tmp_path: Path) -> None:
    """Ids a boxes file is matched on come from file names (or frame indices), never list positions."""
    bgr = cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR)
    plain, coco = tmp_path / "plain", tmp_path / "coco"
    for folder, names in ((plain, ("a.png", "b.png")), (coco, ("000000000785.png",))):
        folder.mkdir()
        for name in names:
            cv2.imwrite(str(folder / name), bgr)
    dets = [
        {"image_id": i, "category_id": 1, "bbox": box, "score": 0.9}
        for i, box in ((0, [200, 60, 70, 140]), (1, [10, 10, 50, 50]), (785, [30, 20, 60, 120]))
    ]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    with pytest.warns(UserWarning, match="none of its 3 image keys"):  # a.png is not image 0, b.png not image 1
        assert [len(r) for r in red.stream(plain, det_file)] == [0, 0]
    listed = red([plain / "a.png", coco / "000000000785.png"], det_file)
    assert len(listed[0]) == 0 and [p.image_id for p in listed[1]] == [1]  # numbered by position ...
    np.testing.assert_allclose(listed[1].boxes, [[30, 20, 60, 120]])  # ... boxes of image 785 by its name
    np.testing.assert_allclose(red(coco, det_file)[0].boxes, [[30, 20, 60, 120]])
    stale = tmp_path / "map.json"
    stale.write_text(json.dumps({"zzz.png": [[1, 2, 3, 4]]}))
    with pytest.warns(UserWarning, match="none of its 1 image keys"):
        assert [len(r) for r in red(plain, stale)] == [0, 0]
    ultra = tmp_path / "one.json"  # ultralytics' output for one image
    ultra.write_text(
        json.dumps([{"name": "person", "class": 0, "confidence": 0.9, "box": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}}])
    )
    with pytest.raises(ValueError, match="boxes of one image"):
        red(plain, ultra)


def test_a_folder_skips_an_unreadable_image_with_a_warning_naming_it(red: Predictor, tmp_path: Path) -> None:
    from fasterpose.deploy.inputs import ImageSkippedWarning

    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR))
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(ImageSkippedWarning, match="c.jpg"):
        out = red(tmp_path)
    assert [Path(r.path or "").name for r in out] == ["a.png"]


def test_preprocess_time_includes_reading_the_image(
    red: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fasterpose.deploy.inputs as inputs
    import fasterpose.deploy.sources as sources

    def slow_read(path: object) -> np.ndarray:  # 0.25 s, far above the rest of preprocessing
        time.sleep(0.25)
        return colour_image()

    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR))
    monkeypatch.setattr(inputs, "as_rgb_image", slow_read)
    monkeypatch.setattr(sources, "as_rgb_image", slow_read)
    for results in (red(tmp_path / "a.png"), red([tmp_path / "a.png"])[0], red(tmp_path)[0]):
        assert results.speed["preprocess"] >= 250.0, results.speed


def test_results_have_xyxy_boxes_and_speed_per_stage() -> None:
    res = Predictor(BrightSpot(), tiny_cfg("loss.name=mse"), runtime="torch")(
        spot_image([(60, 70)]), [[30, 20, 60, 120, 0.9], [200, 60, 70, 140, 0.8]]
    )
    np.testing.assert_allclose(res.boxes_xyxy, [[30, 20, 90, 140], [200, 60, 270, 200]])
    np.testing.assert_allclose(res.boxes, [[30, 20, 60, 120], [200, 60, 70, 140]])
    assert set(res.speed) == {"preprocess", "inference", "postprocess"}
    assert all(v > 0 for v in res.speed.values()), res.speed
    assert res[:1].speed == res.speed


def test_the_person_detector_is_timed_as_its_own_stage() -> None:
    def slow_detector(img: np.ndarray) -> np.ndarray:  # 0.3 s, far above the rest of preprocessing
        time.sleep(0.3)
        return np.array([[30, 20, 60, 120, 0.9]], np.float32)

    pred = Predictor(BrightSpot(), tiny_cfg("loss.name=mse"), runtime="torch", detector=slow_detector)
    res = pred(spot_image([(60, 70)]))
    assert set(res.speed) == {"detect", "preprocess", "inference", "postprocess"}
    assert res.speed["detect"] >= 300.0
    assert 0 < res.speed["preprocess"] < 300.0, res.speed  # reading, colour, boxes, crops only
    given = pred(spot_image([(60, 70)]), [[30, 20, 60, 120, 0.9]])
    assert "detect" not in given.speed  # boxes given: the detector never ran


def test_a_coco_annotation_file_gives_its_person_boxes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann = {
        "images": [{"id": 3, "file_name": "val/a.jpg"}, {"id": 4, "file_name": "b.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},  # crowd: not a person box
            {"id": 3, "image_id": 4, "category_id": 2, "bbox": [1, 2, 30, 40], "iscrowd": 0},  # another category
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    }
    path = tmp_path / "person_keypoints_val.json"
    path.write_text(json.dumps(ann))
    with caplog.at_level(logging.INFO, logger="fasterpose.boxes"):
        table = BoxTable.load(path)
    assert [r.getMessage() for r in caplog.records if "COCO annotation file" in r.getMessage()] == [
        f"{path}: a COCO annotation file: using its 1 non-crowd person boxes (ground truth, score 1) of 2 images"
    ]
    np.testing.assert_array_equal(table.lookup("a.jpg"), [[10, 20, 30, 40, 1.0]])
    b = table.lookup("b.jpg")
    assert b is not None and b.shape == (0, 5)
    assert table.read_as is None  # the file's own xywh: --box-format does not apply


def test_predict_with_an_xyxy_map_ends_with_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from fasterpose.engine.checkpoint import save_checkpoint
    from fasterpose.models.pose_model import PoseModel

    cfg = tiny_cfg()
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pth"
    save_checkpoint(ckpt, {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg, "epoch": 0})
    folder = tmp_path / "imgs"
    folder.mkdir()
    boxes = {}
    for i in range(4):
        cv2.imwrite(str(folder / f"p{i}.png"), spot_image([(60, 70)]))
        boxes[f"p{i}.png"] = [[200, 60, 270, 200, 0.9], [180, 20, 300, 230, 0.8]]  # xyxy numbers
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no per-image Python warning
        rc = main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                str(folder),
                "--boxes",
                str(tmp_path / "boxes.json"),
                "--out",
                str(tmp_path / "out"),
                "--runtime",
                "torch",
            ]
        )
    err = capfd.readouterr().err
    assert rc == 0 and "UserWarning" not in err
    lines = [r.getMessage() for r in caplog.records if "--box-format xyxy" in r.getMessage()]
    assert len(lines) == 1 and "the boxes of 4 of 4 images" in lines[0], lines
    caplog.clear()
    rc = main(
        [
            "predict",
            "--checkpoint",
            str(ckpt),
            str(folder),
            "--boxes",
            str(tmp_path / "boxes.json"),
            "--box-format",
            "xyxy",
            "--out",
            str(tmp_path / "out2"),
            "--runtime",
            "torch",
        ]
    )
    assert rc == 0 and not [r for r in caplog.records if "--box-format" in r.getMessage()]


def test_onnx_metadata_is_read_without_any_package(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, doc_string="d" * 300)
    entries = {"fasterpose.config": json.dumps({"name": "é" * 200}), "fasterpose.precision": "bf16", "k": ""}
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    path = tmp_path / "m.onnx"
    data = model.SerializeToString()
    path.write_bytes(data)
    assert onnx_metadata_props(path) == entries
    for cut in (len(data) // 3, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(OnnxProtoError):
            onnx_metadata_props(path)
    path.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(OnnxProtoError):
        onnx_metadata_props(path)
    path.write_bytes(b"")
    with pytest.raises(OnnxProtoError, match="no graph"):
        onnx_metadata_props(path)


def test_weights_files_get_the_umask_permissions(tmp_path: Path) -> None:
    from fasterpose.models.pose_model import PoseModel
    from fasterpose.models.weights_file import save_weights

    cfg = tiny_cfg()
    old = os.umask(0o022)
    try:
        out = save_weights(PoseModel.from_config(cfg), cfg, tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # as open() would make it (mkstemp alone gives 0600)


def test_shipped_configs_use_no_deprecated_key(caplog: pytest.LogCaptureFixture) -> None:
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert any(p.name == "custom_keypoints_crowdpose14.yaml" for p in configs)  # the README's worked example
    for path in configs:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fasterpose.config"):
            load_config(path)
        assert not [r for r in caplog.records if "is now" in r.getMessage()], path


# --- installs without an extra, simulated: a package set to None in sys.modules is "not installed" ---

HIDE = """
import sys
import time
for name in {hidden!r}:
    sys.modules[name] = None  # `import name` raises ModuleNotFoundError, importlib.util.find_spec gives None
from fasterpose.cli import main
"""


def run_hidden(hidden: tuple[str, ...], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PYTHONPATH": str(SRC),
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "FASTERPOSE_CACHE_DIR": str(cwd / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-c", HIDE.format(hidden=hidden) + code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


TRAIN_EXTRA = ("torch", "torchvision", "timm", "safetensors", "matplotlib", "scipy")


def test_a_runtime_install_names_the_train_extra(tmp_path: Path) -> None:
    code = f"""
rc = main(["train", {str(ROOT / "configs" / "quickstart.yaml")!r}])
assert rc == 1, rc
rc = main(["export", "--checkpoint", "x.pth", "--format", "onnx"])
assert rc == 1, rc
"""
    proc = run_hidden(TRAIN_EXTRA, code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: training needs torch: pip install 'fasterpose[train]'",
        "error: export needs torch: pip install 'fasterpose[train]'",
    ], proc.stderr[-2000:]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fasterpose.deploy.export import export_model

    root = tmp_path_factory.mktemp("extras")
    cfg = tiny_cfg("loss.name=mse")
    image = root / "photo.png"
    cv2.imwrite(str(image), cv2.cvtColor(colour_image(), cv2.COLOR_RGB2BGR))
    return {"onnx": export_model(RedSpot().eval(), cfg, root / "m.onnx", "onnx"), "image": image, "root": root}


def test_an_openvino_only_install_runs_an_onnx_file(exported: dict[str, Path]) -> None:
    root = exported["root"]
    code = f"""
import json
from fasterpose import Predictor
p = Predictor({str(exported["onnx"])!r})
assert p.runtime == "openvino", p.runtime
print(json.dumps(p({str(exported["image"])!r}).keypoints.tolist()))
assert main(["predict", "--checkpoint", {str(exported["onnx"])!r}, {str(exported["image"])!r}, "--whole-image",
             "--json", "ov.json", "--no-save"]) == 0
import sys
import time
assert not [m for m in sys.modules if m.split(".")[0] in ("onnx", "onnxruntime", "torch") and sys.modules[m]]
"""
    proc = run_hidden(("onnx", "onnxruntime", *TRAIN_EXTRA), code, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.array(json.loads(proc.stdout.splitlines()[0]))
    assert near(got, RED)
    assert len(json.loads((root / "ov.json").read_text())) == 1


def test_no_runtime_names_the_runtime_extra(exported: dict[str, Path]) -> None:
    code = f"""
rc = main(["predict", "--checkpoint", {str(exported["onnx"])!r}, {str(exported["image"])!r}, "--whole-image",
           "--no-save", "--json", "none.json"])
assert rc == 1, rc
from fasterpose import Predictor
from fasterpose.extras import MissingExtraError
try:
    Predictor({str(exported["onnx"])!r}, runtime="openvino")
except MissingExtraError as exc:
    print(exc)
"""
    proc = run_hidden(("onnx", "onnxruntime", "openvino", *TRAIN_EXTRA), code, exported["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: running an exported .onnx / .xml model needs a runtime: pip install 'fasterpose[runtime]' "
        "(ONNX Runtime and OpenVINO; either alone is enough: pip install onnxruntime, or pip install openvino)"
    )
    assert "pip install 'fasterpose[runtime]'" in proc.stdout


def test_one_runtime_missing_names_it_and_the_other(exported: dict[str, Path]) -> None:
    code = f"""
from fasterpose import Predictor
try:
    Predictor({str(exported["onnx"])!r}, runtime="onnxruntime")
except ImportError as exc:
    print(exc)
"""
    proc = run_hidden(("onnxruntime",), code, exported["root"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == (
        "runtime 'onnxruntime' is not installed: pip install onnxruntime (or use runtime='openvino', which is)"
    )


def test_a_checkpoint_without_torch_names_the_train_extra(tmp_path: Path) -> None:
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"not read")
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), colour_image())
    code = f"""
rc = main(["predict", "--checkpoint", {str(ckpt)!r}, {str(image)!r}, "--whole-image", "--no-save", "--json", "j.json"])
assert rc == 1, rc
from fasterpose import Predictor
from fasterpose.extras import MissingExtraError
try:
    Predictor({str(ckpt)!r})
except MissingExtraError as exc:
    print(exc)
"""
    proc = run_hidden(TRAIN_EXTRA, code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'fasterpose[train]'" in proc.stderr and "unexpected" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.strip() == (
        f"{ckpt}: a torch model file (run an exported .onnx / .xml without torch), which needs torch: "
        "pip install 'fasterpose[train]'"
    )
