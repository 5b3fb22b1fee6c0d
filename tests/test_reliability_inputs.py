"""Damaged images in every reader, inputs never overwritten, detections checked, ranges and plain errors.

Each test breaks one promise of ``docs/reliability.md`` if the behaviour it names breaks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import simple_keypoints, tiny_model, write_coco
from fasterpose.cli import main
from fasterpose.config import Config, apply_overrides, dump_config
from fasterpose.data.image_io import ImageReadError, decode_image, decode_warnings, read_image
from fasterpose.engine.checkpoint import save_checkpoint
from fasterpose.models.pose_model import PoseModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = tiny_model()


def smooth_jpeg(seed: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (size[1], size[0], 3)).astype(np.uint8), (7, 7), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


def damage(data: bytes) -> bytes:
    """Bit rot in the middle of the entropy-coded data; the end marker stays, OpenCV decodes it anyway."""
    mid = len(data) // 2
    out = data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 40]) + data[mid + 40 :]
    assert cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR) is not None  # OpenCV alone says nothing
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Config]:
    """Four 160x120 images with two people each (train = val), a config pointing at them."""
    root = tmp_path_factory.mktemp("set")
    people = [
        {"image_id": i, "bbox": bbox, "keypoints": simple_keypoints(x, y)}
        for i in range(1, 5)
        for bbox, x, y in (([30, 10, 60, 70], 40, 20), ([80, 40, 50, 60], 85, 45))
    ]
    ann, images = write_coco(root, people, num_images=4, name="val")
    for i in range(1, 5):
        (images / f"{i:012d}.jpg").write_bytes(smooth_jpeg(i))
    cfg = apply_overrides(
        Config(),
        [
            *TINY,
            f"data.root={root}",
            f"data.train_ann={ann.relative_to(root)}",
            "data.train_images=val",
            f"data.val_ann={ann.relative_to(root)}",
            "data.val_images=val",
            "data.num_workers=0",
        ],
    )
    return root, cfg


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, dataset: tuple[Path, Config]) -> tuple[Path, Path]:
    """(config YAML, checkpoint) of a random tiny model for the dataset."""
    _, cfg = dataset
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("model")
    ckpt = save_checkpoint(
        root / "run_a" / "last.pth", {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg}
    )
    config = root / "cfg.yaml"
    dump_config(cfg, config)
    return config, ckpt


def damaged_copy(dataset: tuple[Path, Config], tmp_path: Path) -> tuple[Config, Path]:
    """The dataset in ``tmp_path`` with image 2 damaged: (config, damaged file)."""
    root, cfg = dataset
    import shutil

    shutil.copytree(root, tmp_path / "set")
    bad = tmp_path / "set" / "val" / "000000000002.jpg"
    bad.write_bytes(damage(bad.read_bytes()))
    return apply_overrides(cfg, [f"data.root={tmp_path / 'set'}"]), bad


# ---- image integrity ---------------------------------------------------------------------------------


def test_read_image_refuses_a_damaged_jpeg_naming_the_file_and_prints_no_raw_libjpeg_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(smooth_jpeg())
    bad.write_bytes(damage(smooth_jpeg()))
    capfd.readouterr()  # what damage()'s own OpenCV decode printed
    assert read_image(good).shape == (120, 160, 3)
    with pytest.raises(ImageReadError, match=r"bad\.jpg: damaged JPEG, it decodes only in part \(libjpeg: Corrupt"):
        read_image(bad)
    png = cv2.imencode(".png", np.full((40, 30, 3), 7, np.uint8))[1].tobytes()
    (tmp_path / "bad.png").write_bytes(png[: len(png) // 2] + bytes(b ^ 1 for b in png[len(png) // 2 :]))
    with pytest.raises(ImageReadError, match=r"bad\.png: cannot decode image.*\(libpng: "):
        read_image(tmp_path / "bad.png")
    err = capfd.readouterr().err
    assert "Corrupt JPEG" not in err and "libpng error" not in err  # only our line, with the file's name
    _, warnings = decode_warnings(damage(smooth_jpeg()), bad)  # data check's listing still sees the words
    assert warnings and warnings[0].startswith("Corrupt JPEG data")


def test_decodes_in_threads_run_at_once_and_each_file_gets_its_own_verdict(capfd: pytest.CaptureFixture[str]) -> None:
    """Eval's reading threads decode side by side: a damaged JPEG among clean ones is refused with its own
    name, every clean one decodes, no libjpeg line reaches stderr, and another line printed on fd 2 while
    the decodes run (a progress bar, a log line quoting libjpeg) is passed on exactly once."""
    good = [smooth_jpeg(seed) for seed in range(4)]
    bad = damage(smooth_jpeg(9))
    items = [(f"{i}.jpg", bad if i % 7 == 3 else good[i % 4]) for i in range(84)]
    capfd.readouterr()
    done = threading.Event()

    def chatter() -> None:  # C-level writes to fd 2 while decodes are in flight
        for k in range(20):
            os.write(2, f"progress {k}\n".encode())
            time.sleep(0.002)
        os.write(2, b"WARNING skipped x.jpg: damaged JPEG (libjpeg: Corrupt JPEG data: quoted)\n")
        done.set()

    def one(item: tuple[str, bytes]) -> tuple[tuple[int, ...] | None, str | None]:
        try:
            return decode_image(item[1], item[0]).shape, None
        except ImageReadError as exc:
            return None, str(exc)

    talker = threading.Thread(target=chatter)
    talker.start()
    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(one, items * 3))
    talker.join()
    assert done.is_set()
    for (name, data), (shape, error) in zip(items * 3, out, strict=True):
        if data is bad:
            assert shape is None and error is not None and error.startswith(f"{name}: damaged JPEG"), error
        else:
            assert shape == (120, 160, 3) and error is None, (name, error)
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("Corrupt JPEG")] == []
    assert [err.count(f"progress {k}\n") for k in range(20)] == [1] * 20
    assert err.count("(libjpeg: Corrupt JPEG data: quoted)") == 1


def test_a_decode_that_finds_no_file_descriptor_fails_alone_and_the_next_ones_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pointing fd 2 at the capture file needs a spare descriptor: when there is none (EMFILE) that decode
    fails with the OS error, fd 2 is left as it was, and later decodes (alone or side by side) still run
    instead of waiting forever on a capture left marked busy."""
    import errno

    import fasterpose.data.image_io as image_io

    clean, bad = smooth_jpeg(3), damage(smooth_jpeg(4))
    real_dup = os.dup
    before = os.fstat(2)

    for data, fails_at in ((clean, 1), (bad, 2)):  # side by side; then alone (a damaged file's second decode)
        calls = []

        def no_descriptor(fd: int, fails_at: int = fails_at, calls: list[int] = calls) -> int:
            calls.append(fd)
            if len(calls) == fails_at:
                raise OSError(errno.EMFILE, "Too many open files")
            return real_dup(fd)

        monkeypatch.setattr(image_io.os, "dup", no_descriptor)
        with pytest.raises(OSError, match="Too many open files"):
            image_io.decode_image(data, "x.jpg")
        monkeypatch.setattr(image_io.os, "dup", real_dup)
        assert len(calls) == fails_at
        assert os.path.samestat(os.fstat(2), before)
        shapes: list[tuple[int, ...]] = []

        def one(out: list[tuple[int, ...]] = shapes) -> None:
            out.append(image_io.decode_image(clean, "y.jpg").shape)

        # daemon threads with a deadline: a hang here is the bug, and must not hang the suite
        workers = [threading.Thread(target=one, daemon=True) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=20)
        assert shapes == [(120, 160, 3)] * 4, "decodes after the failed one never ran"
        with pytest.raises(ImageReadError, match="damaged JPEG"):
            image_io.decode_image(bad, "bad.jpg")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_while_threads_decode_gets_the_real_stderr() -> None:
    """While decodes run in threads fd 2 points at the capture file; a child forked then (a DataLoader
    worker) must write to the real stderr, not into its parent's capture file."""
    import fasterpose.data.image_io as image_io

    clean = smooth_jpeg(5, (400, 300))
    image_io.decode_image(clean, "first.jpg")  # the capture file exists from here on
    assert image_io._capture is not None
    capture = os.fstat(image_io._capture.fd)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            image_io.decode_image(clean, "x.jpg")

    threads = [threading.Thread(target=spin) for _ in range(2)]
    for t in threads:
        t.start()
    codes = []
    try:
        for _ in range(6):
            pid = os.fork()
            if pid == 0:  # the child: 3 when its fd 2 is the parent's capture file
                os._exit(3 if os.path.samestat(os.fstat(2), capture) else 0)
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert codes == [0] * 6


def test_eval_refuses_a_set_with_a_damaged_jpeg_unless_skip_bad_images_which_lists_it(
    dataset: tuple[Path, Config], model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, bad = damaged_copy(dataset, tmp_path)
    config, ckpt = model
    args = ["eval", str(config), "--model", str(ckpt), f"data.root={cfg.data.root}", "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: damaged JPEG" in err and "--skip-bad-images" in err
    assert not (tmp_path / "o1").exists() or not list((tmp_path / "o1").glob("*metrics*"))  # no score written
    assert main([*args, "--out", str(tmp_path / "o2"), "--skip-bad-images", "--json"]) == 0
    out = capsys.readouterr().out
    assert "NOT SCORED: 1 damaged or unreadable images (2 people)" in out and f"{bad}: damaged JPEG" in out
    metrics = json.loads(next((tmp_path / "o2").glob("*metrics_val_gt.json")).read_text())
    assert [b["file"] for b in metrics["bad_images"]] == [str(bad)] and metrics["people_not_scored"] == 2
    assert metrics["people"] == 6  # the other three images' people were scored


def test_training_data_follows_skip_bad_images_for_a_damaged_jpeg(
    dataset: tuple[Path, Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fasterpose.data.dataset import TopDownDataset

    cfg, bad = damaged_copy(dataset, tmp_path)
    strict = TopDownDataset.from_config(cfg, "train", train=True)
    index = next(i for i, r in enumerate(strict.records) if r.image_path == str(bad))
    with pytest.raises(ImageReadError, match="damaged JPEG") as info:
        strict[index]
    assert info.value.path == str(bad)
    lenient = TopDownDataset.from_config(apply_overrides(cfg, ["data.skip_bad_images=true"]), "train", train=True)
    with caplog.at_level(logging.WARNING):
        sample = lenient[index]
    assert sample["meta"].image_id != 2 and lenient.bad_image_paths == {str(bad)}
    assert f"skipping unreadable image {bad} (damaged JPEG" in caplog.text


def test_the_decoded_image_cache_gives_the_same_samples_and_is_never_stale(
    dataset: tuple[Path, Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """data.image_cache=disk: byte-identical training samples, each image decoded once; an edited image,
    a damaged or foreign entry and a damaged JPEG are never served from the cache."""
    import shutil

    from fasterpose.data.dataset import TopDownDataset

    root, cfg = dataset
    shutil.copytree(root, tmp_path / "set")
    cfg = apply_overrides(cfg, [f"data.root={tmp_path / 'set'}"])
    folder = tmp_path / "cache"
    plain = TopDownDataset.from_config(cfg, "train", train=True)
    on = apply_overrides(cfg, ["data.image_cache=disk", f"data.image_cache_dir={folder}"])
    cached = TopDownDataset.from_config(on, "train", train=True)
    cache = cached.image_cache
    assert (
        plain.image_cache is None
        and cache is not None
        and TopDownDataset.from_config(on, "val", False).image_cache is None
    )

    def same(i: int, epoch: int = 0) -> bool:
        a, b = plain.item(i, epoch), cached.item(i, epoch)
        return torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])

    assert all(same(i, epoch) for epoch in (0, 1) for i in range(len(plain)))
    assert (cache.misses, cache.hits) == (4, 2 * len(plain) - 4)  # 4 images, each decoded once
    assert len(list(folder.rglob("*.npy"))) == 4
    first = next(i for i, r in enumerate(plain.records) if r.image_path.endswith("000000000001.jpg"))
    image = Path(plain.records[first].image_path)
    old_entry = cache.entry(image)
    image.write_bytes(smooth_jpeg(77))  # the same file edited: new pixels, never the old entry's
    assert cache.entry(image) != old_entry and same(first) and len(list(folder.rglob("*.npy"))) == 5
    for junk in (b"not an array", None):  # cut short / a foreign array: decoded again, replaced
        entry = cache.entry(image)
        if junk is None:
            np.save(entry, np.zeros((3, 3), np.uint8))
        else:
            entry.write_bytes(junk)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert same(first)
        assert "decoded-image cache" in caplog.text and str(entry) in caplog.text
        assert np.load(entry).shape == (120, 160, 3)
    second = next(i for i, r in enumerate(plain.records) if r.image_path.endswith("000000000002.jpg"))
    bad = Path(plain.records[second].image_path)
    bad.write_bytes(damage(bad.read_bytes()))
    with pytest.raises(ImageReadError, match="damaged JPEG"):
        cached.item(second, 0)
    assert not cache.entry(bad).exists()


def test_a_cache_that_cannot_be_written_is_reported_once_and_training_goes_on(
    dataset: tuple[Path, Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import fasterpose.data.image_cache as image_cache
    from fasterpose.data.dataset import TopDownDataset

    _, cfg = dataset
    tries: list[Path] = []

    def full_disk(path: Path, write: object, what: str = "file") -> Path:
        tries.append(Path(path))
        raise OSError(f"cannot write {what} {path}: the disk is full (no space left on device)")

    monkeypatch.setattr(image_cache, "atomic_write", full_disk)
    on = apply_overrides(cfg, ["data.image_cache=disk", f"data.image_cache_dir={tmp_path / 'cache'}"])
    cached, plain = TopDownDataset.from_config(on, "train", True), TopDownDataset.from_config(cfg, "train", True)
    with caplog.at_level(logging.WARNING):
        for i in range(len(plain)):
            assert torch.equal(cached.item(i, 0)["image"], plain.item(i, 0)["image"])
    assert len(tries) == 1 and caplog.text.count("the disk is full") == 1 and "goes on decoding" in caplog.text


def test_predict_skips_and_lists_a_damaged_jpeg_in_a_folder(model: tuple[Path, Path], tmp_path: Path) -> None:
    _, ckpt = model
    src = tmp_path / "imgs"
    src.mkdir()
    for i, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        (src / name).write_bytes(smooth_jpeg(i))
    (src / "b.jpg").write_bytes(damage((src / "b.jpg").read_bytes()))
    res = tmp_path / "r.json"
    argv = ["predict", "--checkpoint", str(ckpt), "--runtime", "torch", str(src), "--whole-image"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--json", str(res)]) == 0
    assert sorted({r["file_name"] for r in json.loads(res.read_text())}) == ["a.jpg", "c.jpg"]
    skipped = json.loads((tmp_path / "r_summary.json").read_text())["skipped"]
    assert [s["file"] for s in skipped] == ["b.jpg"] and "damaged JPEG" in skipped[0]["error"]


# ---- detections checked as predict checks them --------------------------------------------------------


def _det_file(root: Path, name: str, xyxy: bool) -> Path:
    ann = json.loads((root / "annotations" / "person_keypoints_val.json").read_text())
    dets = []
    for a in ann["annotations"]:
        x, y, w, h = a["bbox"]
        dets.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "score": 0.9,
                "bbox": [x, y, x + w, y + h] if xyxy else [x, y, w, h],
            }
        )
    path = root / name
    path.write_text(json.dumps(dets))
    return path


def test_eval_det_and_test_dev_refuse_xyxy_detections_naming_the_fix(
    dataset: tuple[Path, Config], model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = dataset
    config, ckpt = model
    xyxy = _det_file(root, "dets_xyxy.json", xyxy=True)
    _det_file(root, "dets_xywh.json", xyxy=False)
    args = ["eval", str(config), "--model", str(ckpt), "--no-progress", "--device", "cpu", "--out", str(tmp_path)]
    assert main([*args, "--det", "data.det_file=dets_xyxy.json"]) == 1
    err = capsys.readouterr().err
    assert f"{xyxy}: 4 of 8 detection boxes do not fit their image as [x, y, width, height]" in err
    assert "convert them to [x1, y1, x2 - x1, y2 - y1]" in err
    test_dev = ["--split", "test-dev", "data.test_ann=annotations/person_keypoints_val.json", "data.test_images=val"]
    assert main([*args, *test_dev, "data.test_det_file=dets_xyxy.json"]) == 1
    assert "4 of 8 detection boxes do not fit" in capsys.readouterr().err
    assert not list(tmp_path.glob("*test-dev*"))  # no server file written from misread boxes
    assert main([*args, "--det", "data.det_file=dets_xywh.json"]) == 0  # the same boxes as xywh are scored
    assert main([*args, *test_dev, "data.test_det_file=dets_xywh.json"]) == 0


def test_a_few_xyxy_like_detections_warn_and_boxes_outside_the_image_are_dropped(
    dataset: tuple[Path, Config], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fasterpose.data.coco import parse_coco_detections

    root, _ = dataset
    ann = root / "annotations" / "person_keypoints_val.json"
    dets = [{"image_id": i, "bbox": [30, 10, 60, 70], "score": 0.9} for i in range(1, 5)]
    dets += [{"image_id": 1, "bbox": [80, 40, 130, 100], "score": 0.9}]  # one xyxy-looking box of five
    dets += [{"image_id": 2, "bbox": [5058, 40, 50, 60], "score": 0.9}]  # nowhere on the 160x120 image
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dets))
    with caplog.at_level(logging.WARNING):
        records = parse_coco_detections(path, ann, root / "val")
    assert len(records) == 5 and all(r.box[0] < 160 for r in records)
    assert "1 of 5 detection boxes do not fit their image as [x, y, width, height]" in caplog.text
    assert "dropped 1 detections entirely outside their image" in caplog.text


def test_predictor_skips_a_box_entirely_outside_the_image_with_a_warning() -> None:
    from fasterpose.deploy.predictor import Predictor
    from test_predict import tiny_cfg

    torch.manual_seed(0)
    cfg = tiny_cfg()
    predictor = Predictor(PoseModel.from_config(cfg).eval(), cfg, runtime="torch")
    img = np.zeros((120, 160, 3), np.uint8)
    with pytest.warns(UserWarning, match=r"1 of 2 boxes lie entirely outside the 160x120 image and are skipped"):
        people = predictor(img, [[10, 10, 50, 80], [5058, 10, 50, 80]])
    assert len(people) == 1 and float(people[0].box[0]) == 10.0


# ---- inputs are never outputs; evaluations never replace each other ------------------------------------


def test_predict_json_onto_its_model_or_boxes_is_refused_even_with_overwrite(
    model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = model
    img = tmp_path / "a.jpg"
    img.write_bytes(smooth_jpeg())
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[10, 10, 50, 80]]}))
    before = ckpt.read_bytes(), boxes.read_bytes()
    base = ["predict", "--checkpoint", str(ckpt), "--runtime", "torch", str(img), "--no-save", "--overwrite"]
    assert main([*base, "--whole-image", "--json", str(ckpt)]) == 1
    assert f"{ckpt}: the output would overwrite the input model" in capsys.readouterr().err
    assert main([*base, "--boxes", str(boxes), "--json", str(boxes)]) == 1
    assert "would overwrite the input boxes file" in capsys.readouterr().err
    assert (ckpt.read_bytes(), boxes.read_bytes()) == before


def test_two_models_of_one_name_and_two_datasets_never_replace_each_others_eval_files(
    dataset: tuple[Path, Config], model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ckpt = model
    other = tmp_path / "run_b" / "last.pth"
    other.parent.mkdir()
    torch.manual_seed(1)
    save_checkpoint(other, {"model": PoseModel.from_config(dataset[1]).state_dict(), "config": dataset[1]})
    out = tmp_path / "evals"
    common = ["--no-progress", "--device", "cpu", "--out", str(out)]
    assert main(["eval", str(config), "--model", str(ckpt), *common]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["last_metrics_val_gt.json", "last_results_val_gt.json"]
    assert main(["eval", str(config), "--model", str(other), *common]) == 1  # same names, another model
    err = capsys.readouterr().err
    assert "holds the evaluation of model" in err and str(ckpt) in err and "--out DIR to keep both" in err
    assert main(["eval", str(config), "--model", str(ckpt), *common, "eval.max_images=2"]) == 1  # other data
    assert "max_images None" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # the first evaluation untouched
    assert main(["eval", str(config), "--model", str(ckpt), *common]) == 0  # the same evaluation again: fine
    assert main(["eval", str(config), "--model", str(other), *common[:-1], str(tmp_path / "evals_b")]) == 0
    assert (out / "last_metrics_val_gt.json").is_file() and (
        tmp_path / "evals_b" / "last_metrics_val_gt.json"
    ).is_file()
    both = [
        json.loads(p.read_text())["evaluated"]["model"]
        for p in (out, tmp_path / "evals_b")
        for p in [p / "last_metrics_val_gt.json"]
    ]
    assert both == [str(ckpt.resolve()), str(other.resolve())]


def test_safetensors_and_pth_of_one_stem_keep_apart_eval_files(
    model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, ckpt = model
    folder = tmp_path / "m"
    folder.mkdir()
    pth = folder / "last.pth"
    pth.write_bytes(ckpt.read_bytes())
    assert main(["export", "--checkpoint", str(pth), "--format", "weights"]) == 0
    for m in (pth, folder / "last.safetensors"):
        assert main(["eval", str(config), "--model", str(m), "--no-progress", "--device", "cpu"]) == 0
    names = sorted(p.name for p in folder.glob("*_val_gt.json"))
    assert names == [
        "last_metrics_val_gt.json",
        "last_results_val_gt.json",
        "last_safetensors_metrics_val_gt.json",
        "last_safetensors_results_val_gt.json",
    ]


def test_eval_into_an_unwritable_folder_is_refused_before_any_prediction(
    model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fasterpose.pipeline.evaluate as ev

    config, ckpt = model
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("predicted before the output folder was checked")

    monkeypatch.setattr(ev, "_predict", never)
    assert main(["eval", str(config), "--model", str(ckpt), "--no-progress", "--out", str(blocker / "out")]) == 1
    assert f"cannot write the results folder {blocker / 'out'}" in capsys.readouterr().err


# ---- numeric options range-checked; a failed study run fails the command --------------------------------


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["predict", "x.jpg", "--checkpoint", "m.onnx", "--threshold", "nan"], "--threshold", "nan"),
        (["predict", "x.jpg", "--checkpoint", "m.onnx", "--det-threshold", "2"], "--det-threshold", "2"),
        (["predict", "x.mp4", "--checkpoint", "m.onnx", "--max-frames", "0"], "--max-frames", "0"),
        (["predict", "x.mp4", "--checkpoint", "m.onnx", "--smooth-min-cutoff", "0"], "--smooth-min-cutoff", "0"),
        (["predict", "x.mp4", "--checkpoint", "m.onnx", "--smooth-beta", "-1"], "--smooth-beta", "-1"),
        (["eval", "c.yaml", "--model", "m.pth", "--workers", "-2"], "--workers", "-2"),
        (["export", "--checkpoint", "m.pth", "--format", "onnx", "--calib-limit", "0"], "--calib-limit", "0"),
        (["study", "configs/study", "--seeds", "0"], "--seeds", "0"),
        (["study", "configs/study", "--jobs", "inf"], "--jobs", "inf"),
        (["data", "synthpose", "out", "--train", "-5"], "--train", "-5"),  # 0 is allowed (no val images)
        (["data", "show", "c.yaml", "--n", "1.5"], "--n", "1.5"),
        (["quickstart", "--workers", "0"], "--workers", "0"),
        (["quickstart", "--num-val", "0"], "--num-val", "0"),
        (["bench", "latency", "m.onnx", "--runs", "0"], "--runs", "0"),
    ],
)
def test_numeric_options_are_range_checked_naming_option_and_value(
    argv: list[str],
    option: str,
    value: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # should a check break, the command's relative outputs land here, not in docs/
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}" in err and f"got '{value}'" in err and "must be" in err


def test_a_study_with_a_failed_run_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from types import SimpleNamespace

    import fasterpose.study as study

    def fake_execute(failed: int):  # type: ignore[no-untyped-def]
        return lambda *a, **k: (
            SimpleNamespace(invocation=SimpleNamespace(trained=3, failed=failed)),
            tmp_path / "r.md",
        )

    monkeypatch.setattr(study, "load_study", lambda d: object())
    monkeypatch.setattr(study, "execute", fake_execute(1))
    assert main(["study", str(tmp_path), "--out", str(tmp_path)]) == 1
    assert "1 run(s) FAILED" in capsys.readouterr().out
    monkeypatch.setattr(study, "execute", fake_execute(0))
    assert main(["study", str(tmp_path), "--out", str(tmp_path)]) == 0


# ---- plain messages ---------------------------------------------------------------------------------------


def test_disk_full_while_predict_writes_names_the_file_and_leaves_no_temporary_file(
    model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    import fasterpose.atomic as atomic

    _, ckpt = model
    img = tmp_path / "a.jpg"
    img.write_bytes(smooth_jpeg())

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "out"
    argv = ["predict", "--checkpoint", str(ckpt), "--runtime", "torch", str(img), "--whole-image", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{out / 'a.jpg'}" in err and "the disk is full" in err and len(err.strip().splitlines()) == 1
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_an_onnx_file_without_its_suffix_is_named_as_onnx_not_as_pickled_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    buf = io.BytesIO()
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (torch.zeros(1, 3, 8, 8),), buf, dynamo=False)
    model_file = tmp_path / "model"
    model_file.write_bytes(buf.getvalue())
    img = tmp_path / "a.jpg"
    img.write_bytes(smooth_jpeg())
    assert main(["predict", "--checkpoint", str(model_file), str(img), "--whole-image", "--no-save"]) == 1
    err = capsys.readouterr().err
    assert "is an ONNX model" in err and "model.onnx" in err and "pickled" not in err


def test_export_refuses_a_weights_file_named_onnx_and_half_for_onnx(
    model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ckpt = model
    out = tmp_path / "w.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "weights", "--out", str(out)]) == 1
    assert "--format weights writes a .safetensors file" in capsys.readouterr().err and not out.exists()
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--half", "--out", str(out)]) == 1
    assert "--half stores float16 weights files" in capsys.readouterr().err and not out.exists()


def test_image_ids_and_box_keys_follow_the_documented_rules(model: tuple[Path, Path], tmp_path: Path) -> None:
    _, ckpt = model
    src = tmp_path / "imgs"
    src.mkdir()
    for i, name in enumerate(("000000000785.jpg", "785.jpg", "b.jpg")):
        (src / name).write_bytes(smooth_jpeg(i))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"785": [[10, 10, 50, 80, 0.9], [70, 20, 40, 60, 0.9]]}))
    res = tmp_path / "r.json"
    argv = ["predict", "--checkpoint", str(ckpt), "--runtime", "torch", str(src), "--boxes", str(boxes)]
    assert main([*argv, "--no-save", "--json", str(res), "--no-nms"]) == 0
    got = json.loads(res.read_text())
    # 785 matches 000000000785.jpg by its image id and 785.jpg (id 786: 785 is taken) by its stem; b.jpg has none
    assert {r["file_name"]: r["image_id"] for r in got} == {"000000000785.jpg": 785, "785.jpg": 786}
    assert len(got) == 4  # two boxes each
    from fasterpose.deploy.sources import image_ids, open_source

    paths = open_source(str(src)).paths
    named = [(p.name, i) for p, (i, _) in zip(paths, image_ids(paths), strict=True)]
    assert named == [("000000000785.jpg", 785), ("785.jpg", 786), ("b.jpg", 787)]


def test_empty_results_file_says_so(
    dataset: tuple[Path, Config], tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root, _ = dataset
    empty = tmp_path / "results.json"
    empty.write_text("[]")
    ann = root / "annotations" / "person_keypoints_val.json"
    with caplog.at_level(logging.WARNING):
        assert main(["eval-results", str(empty), "--ann", str(ann)]) == 0
    assert f"{empty} holds no results (an empty list)" in caplog.text
    assert "NO RESULTS" in capsys.readouterr().out


def _layout(tmp_path: Path, **extra: object) -> Path:
    import yaml

    names = ["nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    data = {"name": "seven", "keypoints": names, "sigmas": [0.05] * 7, **extra}
    path = tmp_path / "seven.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_layout_sigma_above_one_is_refused_and_partial_flip_pairs_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fasterpose.experiment import load_layout
    from fasterpose.keypoints import LayoutError

    with pytest.raises(LayoutError, match=r"sigmas\[0\] \('nose'\) is 79: .* at most 1 .*did you mean 0.079"):
        load_layout(str(_layout(tmp_path, sigmas=[79, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])))
    with caplog.at_level(logging.WARNING):
        spec = load_layout(str(_layout(tmp_path, flip_pairs=[["left_shoulder", "right_shoulder"]])))
    assert spec.flip_pairs == ((3, 4),)
    assert "flip_pairs leaves 2 left_/right_ twins unpaired (left_eye/right_eye, left_hip/right_hip)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_layout(str(_layout(tmp_path, flip_pairs=[])))  # an empty list: no flip pairs, on purpose
    assert "unpaired" not in caplog.text


def test_use_joint_weights_without_joint_weights_is_an_error(dataset: tuple[Path, Config], tmp_path: Path) -> None:
    import yaml

    from fasterpose.data.dataset import TopDownDataset

    _, cfg = dataset
    layout = tmp_path / "k17.yaml"
    layout.write_text(yaml.safe_dump({"name": "k17", "sigmas": [0.05] * 17, "flip_pairs": []}))
    plain = apply_overrides(cfg, [f"data.keypoints={layout}"])
    assert len(TopDownDataset.from_config(plain, "train", train=False)) == 8
    with pytest.raises(ValueError, match="data.use_joint_weights=true, but layout k17 gives no joint_weights"):
        TopDownDataset.from_config(apply_overrides(plain, ["data.use_joint_weights=true"]), "train", train=True)


def test_data_show_and_bench_latency_never_write_over_their_inputs(
    dataset: tuple[Path, Config], model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = dataset
    config, ckpt = model
    image = root / "val" / "000000000001.jpg"
    ann = root / "annotations" / "person_keypoints_val.json"
    before = image.read_bytes(), ann.read_bytes(), config.read_bytes()
    for out, what in ((image, "image"), (ann, "annotation file"), (config, "config")):
        assert main(["data", "show", str(config), "--n", "1", "--out", str(out)]) == 1
        assert f"would overwrite the input {what}" in capsys.readouterr().err
    assert main(["bench", "latency", "--configs", str(config), "--checkpoint", str(ckpt), "--out", str(ckpt)]) == 1
    assert "would overwrite the input checkpoint" in capsys.readouterr().err
    assert (image.read_bytes(), ann.read_bytes(), config.read_bytes()) == before
