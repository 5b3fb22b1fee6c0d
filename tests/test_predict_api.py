"""The Python API: boxes in xywh or xyxy, and the Results object a Predictor call returns."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from fasterpose.deploy.predictor import Predictor
from fasterpose.deploy.results import Results
from test_predict import BrightSpot, spot_image, tiny_cfg

ROOT = Path(__file__).resolve().parents[1]
SPOTS = [(60, 70), (230, 150)]
XYWH = [[30, 20, 60, 120, 0.9], [200, 60, 70, 140, 0.8]]
XYXY = [[30, 20, 90, 140, 0.9], [200, 60, 270, 200, 0.8]]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(BrightSpot(), tiny_cfg("loss.name=mse"), runtime="torch")


def test_xyxy_and_xywh_give_the_same_keypoints(predictor: Predictor) -> None:
    img = spot_image(SPOTS)
    a = predictor(img, XYWH)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a correct xyxy box must not warn
        b = predictor(img, XYXY, box_format="xyxy")
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_allclose(b.boxes, np.array(XYWH)[:, :4])
    assert np.abs(b.keypoints - np.array(SPOTS)[:, None]).max() < 8.0
    with pytest.warns(UserWarning):
        misread = predictor(img, XYXY)  # the same numbers read as xywh are other boxes
    assert np.abs(misread.boxes - a.boxes).max() > 50


def test_a_misread_box_warns_naming_the_fix(predictor: Predictor) -> None:
    img = spot_image(SPOTS)
    with pytest.warns(UserWarning, match="box_format='xyxy'.*--box-format xyxy"):
        predictor(img, XYXY)  # xyxy boxes given as xywh reach far outside the 320x240 image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(img, XYWH)


def test_results_object(predictor: Predictor, tmp_path: Path) -> None:
    img = spot_image(SPOTS)
    res = predictor(img, XYWH)
    assert isinstance(res, Results) and len(res) == 2
    assert res.keypoints.shape == (2, 17, 2) and res.scores.shape == (2, 17)
    assert res.boxes.shape == (2, 4) and res.person_scores.shape == (2,)
    np.testing.assert_array_equal(res.keypoints[1], res[1].xy)
    assert [p.score for p in res] == pytest.approx(res.person_scores.tolist())
    assert len(res[:1]) == 1 and isinstance(res[:1], Results)
    coco = json.loads(res.to_json(image_id=5))
    assert [e["image_id"] for e in coco] == [5, 5] and len(coco[0]["keypoints"]) == 51
    drawn = res.plot()
    assert drawn.shape == img.shape and (drawn != img).any()
    top = float(res.scores.max())
    assert (res.plot(threshold=top, boxes=False) == img).all()  # every joint at or under the threshold: not drawn
    assert (res.plot(threshold=top - 1e-3, boxes=False) != img).any()
    assert (res.plot(show_scores=True) != drawn).any()
    out = res.save(tmp_path / "drawn.png")
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB), drawn)
    with pytest.raises(FileExistsError, match="drawn.png"):
        res.save(out)
    empty = predictor(img, np.zeros((0, 4)))
    assert empty.keypoints.shape == (0, 17, 2) and empty.to_coco() == [] and (empty.plot() == img).all()
    kept = predictor.suppress(res)
    assert isinstance(kept, Results) and len(kept) == 2


def _snippet(doc: Path) -> str:
    text = doc.read_text()
    m = re.search(r"<!-- snippet: results -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"{doc}: no python block after <!-- snippet: results -->"
    return m.group(1)


def test_docs_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Results snippet of docs/deployment.md runs as written, on a tiny checkpoint and a photo."""
    import torch

    from fasterpose.engine.checkpoint import save_checkpoint
    from fasterpose.models.pose_model import PoseModel

    cfg = tiny_cfg()
    torch.manual_seed(0)
    (tmp_path / "runs" / "quickstart").mkdir(parents=True)
    save_checkpoint(
        tmp_path / "runs" / "quickstart" / "last.pth",
        {"model": PoseModel.from_config(cfg).state_dict(), "config": cfg, "epoch": 0},
    )
    cv2.imwrite(str(tmp_path / "photo.jpg"), spot_image(SPOTS))
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(_snippet(ROOT / "docs" / "deployment.md"), "deployment.md", "exec"), scope)
    assert (tmp_path / "drawn.jpg").is_file() and json.loads((tmp_path / "people.json").read_text())
