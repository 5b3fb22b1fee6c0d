"""Person boxes in xywh / xyxy and the detector files that carry them (fasterpose.boxes)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from fasterpose.boxes import BoxFileError, BoxTable, as_xywh, format_warning

XYWH = [[10.0, 20.0, 30.0, 60.0, 0.9]]
XYXY = [[10.0, 20.0, 40.0, 80.0, 0.9]]


def test_xyxy_and_xywh_describe_the_same_box() -> None:
    a, sa = as_xywh(XYWH, "xywh")
    b, sb = as_xywh(XYXY, "xyxy")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    c, sc = as_xywh([XYXY[0][:4]], "xyxy")
    np.testing.assert_array_equal(c, a)
    assert sc.tolist() == [1.0]


def test_bad_boxes_are_refused() -> None:
    with pytest.raises(ValueError, match="box_format"):
        as_xywh(XYWH, "cxcywh")
    with pytest.raises(ValueError, match=r"\(P, 4\)"):
        as_xywh([[1, 2, 3]], "xywh")
    with pytest.raises(ValueError, match="NaN"):
        as_xywh([[1, 2, float("nan"), 4]], "xywh")


def test_misread_format_warns_with_the_fix() -> None:
    # two people in a 200x160 image given as xyxy; read as xywh they reach far outside the image
    xyxy = [[100, 40, 190, 150], [20, 30, 90, 155]]
    msg = format_warning(xyxy, (200, 160), "xywh")
    assert msg is not None and "--box-format xyxy" in msg and "2 of 2" in msg
    assert format_warning(xyxy, (200, 160), "xyxy") is None
    # xywh boxes read as xyxy: x2 < x1
    xywh = [[100, 40, 60, 100]]
    msg = format_warning(xywh, (200, 160), "xyxy")
    assert msg is not None and "--box-format xywh" in msg
    assert format_warning(xywh, (200, 160), "xywh") is None


def _write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_coco_detections_keep_person_category_and_threshold(tmp_path: Path) -> None:
    dets = [
        {"image_id": 785, "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.9},
        {"image_id": 785, "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.1},
        {"image_id": 785, "category_id": 3, "bbox": [0, 0, 50, 50], "score": 0.99},
    ]
    table = BoxTable.load(_write(tmp_path, "d.json", dets), threshold=0.5)
    boxes = table.lookup("000000000785.jpg", 785)
    assert boxes is not None and boxes.tolist() == [[10, 20, 30, 60, pytest.approx(0.9)]]
    assert table.lookup("b.jpg", 7) is None
    assert table.unmatched_warning() is None


def test_file_name_map_in_xyxy(tmp_path: Path) -> None:
    table = BoxTable.load(_write(tmp_path, "m.json", {"a.jpg": XYXY}), box_format="xyxy")
    np.testing.assert_allclose(table.lookup("a.jpg"), np.asarray(XYWH, np.float32))


def test_ultralytics_and_mmdetection_outputs(tmp_path: Path) -> None:
    ultra = [
        {"name": "person", "class": 0, "confidence": 0.9, "box": {"x1": 10, "y1": 20, "x2": 40, "y2": 80}},
        {"name": "dog", "class": 16, "confidence": 0.95, "box": {"x1": 0, "y1": 0, "x2": 9, "y2": 9}},
    ]
    t = BoxTable.load(_write(tmp_path, "u.json", ultra))
    np.testing.assert_allclose(t.lookup("any.jpg"), np.asarray(XYWH, np.float32))
    t.check_single_image(1)
    with pytest.raises(BoxFileError, match="one image"):
        t.check_single_image(3)
    t2 = BoxTable.load(_write(tmp_path, "u2.json", {"a.jpg": ultra}))
    np.testing.assert_allclose(t2.lookup("a.jpg"), np.asarray(XYWH, np.float32))

    mmdet = {"labels": [0, 2], "scores": [0.9, 0.99], "bboxes": [[10, 20, 40, 80], [0, 0, 50, 50]]}
    t3 = BoxTable.load(_write(tmp_path, "mm.json", mmdet))
    np.testing.assert_allclose(t3.lookup("x.jpg"), np.asarray(XYWH, np.float32))
    preds = tmp_path / "preds"
    preds.mkdir()
    _write(preds, "photo.json", mmdet)
    t4 = BoxTable.load(preds)
    np.testing.assert_allclose(t4.lookup("photo.jpg"), np.asarray(XYWH, np.float32))


def test_xywh_file_read_as_xyxy_warns_before_its_boxes_are_dropped(tmp_path: Path) -> None:
    # xywh numbers with x > w: read as xyxy, x2 < x1, so the boxes would vanish without a word
    f = _write(tmp_path, "dets.json", {"a.jpg": [[100, 40, 60, 100, 0.9], [120, 30, 50, 90, 0.8]]})
    with pytest.warns(UserWarning, match=r"dets\.json: 2 of 2 boxes .* dropped .*--box-format xywh"):
        table = BoxTable.load(f, box_format="xyxy")
    assert len(table.lookup("a.jpg")) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right format: no warning, both boxes kept
        assert len(BoxTable.load(f, box_format="xywh").lookup("a.jpg")) == 2
    # one degenerate box among valid xyxy boxes: counted, no format advice
    g = _write(tmp_path, "few.json", {"a.jpg": [[10, 20, 40, 80], [10, 20, 40, 80], [5, 5, 5, 9]]})
    with pytest.warns(UserWarning, match=r"few\.json: 1 of 3 boxes") as rec:
        BoxTable.load(g, box_format="xyxy")
    assert "--box-format" not in str(rec[0].message)


def test_unmatched_keys_warn_and_bad_entries_are_named(tmp_path: Path) -> None:
    table = BoxTable.load(_write(tmp_path, "m.json", {"other.jpg": XYWH}))
    assert table.lookup("a.jpg", 1) is None
    msg = table.unmatched_warning()
    assert msg is not None and "m.json" in msg and "'other.jpg'" in msg
    with pytest.raises(BoxFileError, match=r"bad\.json.*entry 1 score.*not a finite number"):
        BoxTable.load(
            _write(
                tmp_path,
                "bad.json",
                [
                    {"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
                    {"image_id": 1, "bbox": [1, 2, 3, 4], "score": "high"},
                ],
            )
        )
    with pytest.raises(BoxFileError, match=r"inf\.json.*not finite"):
        BoxTable.load(_write(tmp_path, "inf.json", {"a.jpg": [[1, 2, 3, 4, float("inf")]]}))
    with pytest.raises(BoxFileError, match=r"'a\.jpg'\[0\]"):
        BoxTable.load(_write(tmp_path, "short.json", {"a.jpg": [[1, 2, 3]]}))
