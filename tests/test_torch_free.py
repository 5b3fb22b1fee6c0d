"""The runtime install: ``Predictor``, ``fasterpose predict`` and ``fasterpose eval --model`` on
``.onnx`` / ``.xml`` files never import torch (run in a subprocess where importing torch fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import tiny_model
from fasterpose.config import Config, apply_overrides, dump_config
from fasterpose.deploy.export import export_model
from fasterpose.deploy.predictor import Predictor
from fasterpose.models.pose_model import PoseModel

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = tiny_model()
BLOCKER = """
import sys
BLOCKED = ("torch", "torchvision", "timm")
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test (a runtime install has no torch)")
        return None
sys.meta_path.insert(0, BlockTorch())
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker does not block torch")
"""
CHECK = """
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("TORCH-FREE OK")
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fasterpose.data.synthpose import generate

    data = tmp_path_factory.mktemp("torchfree_data")  # generated: the test needs no ../shared/data
    generate(data, 2, 2, seed=0, min_people=1, max_people=2)
    cfg = apply_overrides(
        Config(),
        [
            *TINY,
            f"data.root={data}",
            "data.val_ann=annotations/person_keypoints_val.json",
            "data.val_images=val",
            "eval.max_images=2",
        ],
    )
    torch.manual_seed(0)
    model = PoseModel.from_config(cfg).eval()
    torch.nn.init.normal_(model.head.conv.weight, std=0.05)
    root = tmp_path_factory.mktemp("torchfree")
    config = root / "cfg.yaml"
    dump_config(cfg, config)
    image = root / "photo.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((120, 90, 3)) * 255).astype(np.uint8))
    return {
        "onnx": export_model(model, cfg, root / "m.onnx", "onnx"),
        "xml": export_model(model, cfg, root / "m.xml", "openvino"),
        "config": config,
        "image": image,
        "root": root,
    }


def run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code + CHECK], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def test_predictor_on_onnx_and_xml_without_torch(exported: dict[str, Path]) -> None:
    boxes = [[5, 10, 50, 90, 0.9], [30, 5, 40, 100, 0.7]]
    code = f"""
import json
from fasterpose import Predictor
out = {{}}
models = {{"onnx": {str(exported["onnx"])!r}, "xml": {str(exported["xml"])!r}}}
for kind, model in models.items():
    people = Predictor(model)({str(exported["image"])!r}, {boxes})
    out[kind] = [p.keypoints.tolist() for p in people]
print(json.dumps(out))
"""
    proc = run_without_torch(code, exported["root"])
    assert proc.returncode == 0 and "TORCH-FREE OK" in proc.stdout, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-2])
    for kind in ("onnx", "xml"):
        ref = Predictor(exported[kind])(str(exported["image"]), boxes)  # here torch is importable: same answer
        np.testing.assert_allclose(np.array(got[kind]), np.stack([p.keypoints for p in ref]), atol=1e-5)


def test_predict_and_eval_commands_without_torch(exported: dict[str, Path]) -> None:
    root = exported["root"]
    code = f"""
from fasterpose.cli import main
assert main(["predict", "--checkpoint", {str(exported["onnx"])!r}, {str(exported["image"])!r}, "--whole-image",
             "--json", "pred.json", "--out", "drawn"]) == 0
for kind in ("onnx", "xml"):
    model = {str(exported["onnx"])!r} if kind == "onnx" else {str(exported["xml"])!r}
    assert main(["eval", {str(exported["config"])!r}, "--model", model, "--out", kind, "--json", "--no-progress"]) == 0
"""
    proc = run_without_torch(code, root)
    assert proc.returncode == 0 and "TORCH-FREE OK" in proc.stdout, proc.stderr[-3000:]
    assert len(json.loads((root / "pred.json").read_text())) == 1 and (root / "drawn" / "photo.png").is_file()
    for kind, runtime in (("onnx", "onnxruntime"), ("xml", "openvino")):
        metrics = json.loads((root / kind / f"m_{runtime}_fp32_metrics_val_gt.json").read_text())
        assert metrics["runtime"] == runtime and "AP" in metrics["metrics"]


def test_the_blocker_catches_a_torch_import(exported: dict[str, Path]) -> None:
    """The check can fail: a checkpoint (torch) path under the blocker is an import error, not a pass."""
    ckpt = exported["root"] / "x.pth"
    ckpt.write_bytes(b"not used")
    proc = run_without_torch(f"from fasterpose import Predictor\nPredictor({str(ckpt)!r})\n", exported["root"])
    assert proc.returncode != 0 and "blocked" in proc.stderr
