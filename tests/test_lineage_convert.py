"""``fasterpose convert``: published SimpleBaseline checkpoints become our models with the same heatmaps.

No lineage file is downloaded. The reference networks are written here from the SimpleBaseline paper's
description (Xiao et al. 2018): a ResNet of bottleneck blocks (stride on the 3x3 conv, as torchvision),
three 4x4 stride-2 deconvolutions of 256 filters (padding 1, no bias) each with BatchNorm and ReLU, and a
1x1 conv with bias to the joints. Each is built in the module layout its checkpoints are saved from:
flat (Microsoft / HRNet ``pose_resnet``), or ``backbone`` + ``head`` (mmpose 1.x) / ``keypoint_head``
(mmpose 0.x). Weights are random and so are the BatchNorm statistics; the saved state dict is converted
and our model's heatmaps are compared with the reference's on the same image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import simple_keypoints, write_coco
from fasterpose.cli import main as cli_main
from fasterpose.config import apply_overrides, dump_config, load_config
from fasterpose.data.transforms import normalize_image
from fasterpose.deploy.export import export_model
from fasterpose.deploy.models import load_model_file
from fasterpose.deploy.runtimes import OnnxRuntimeRunner
from fasterpose.models.lineage import LineageError, convert
from fasterpose.models.pose_model import PoseModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != 4 * width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, 4 * width, 1, stride, bias=False), nn.BatchNorm2d(4 * width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def add_resnet(module: nn.Module, depth: int) -> None:
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and four stages, as attributes of ``module``."""
    module.conv1, module.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
    cin = 64
    for i, (n, width) in enumerate(zip(BLOCKS[depth], (64, 128, 256, 512), strict=True)):
        blocks = []
        for b in range(n):
            blocks.append(Bottleneck(cin, width, 2 if b == 0 and i > 0 else 1))
            cin = 4 * width
        setattr(module, f"layer{i + 1}", nn.Sequential(*blocks))


def run_resnet(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = nn.functional.max_pool2d(torch.relu(m.bn1(m.conv1(x))), 3, 2, 1)
    return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def add_head(module: nn.Module, joints: int) -> None:
    layers: list[nn.Module] = []
    cin = 2048
    for _ in range(3):
        layers += [nn.ConvTranspose2d(cin, 256, 4, 2, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU()]
        cin = 256
    module.deconv_layers = nn.Sequential(*layers)
    module.final_layer = nn.Conv2d(256, joints, 1)


class PoseResNet(nn.Module):
    """Microsoft / HRNet layout: backbone and head attributes side by side."""

    def __init__(self, depth: int, joints: int = 17) -> None:
        super().__init__()
        add_resnet(self, depth)
        add_head(self, joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(run_resnet(self, x)))


class Part(nn.Module):
    pass


class MmposeModel(nn.Module):
    """mmpose layout: ``backbone`` and ``head`` (1.x) or ``keypoint_head`` (0.x) submodules."""

    def __init__(self, depth: int, head_name: str, joints: int = 17) -> None:
        super().__init__()
        self.backbone = Part()
        add_resnet(self.backbone, depth)
        self.head_name = head_name
        head = Part()
        add_head(head, joints)
        setattr(self, head_name, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = getattr(self, self.head_name)
        return head.final_layer(head.deconv_layers(run_resnet(self.backbone, x)))


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics that are not the init (affine and running mean/var)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.4 + 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def image_inputs(h: int = 64, w: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """One random photo as our pipeline feeds it (RGB) and as the Microsoft code fed it (OpenCV BGR,
    ImageNet mean/std applied channel by channel)."""
    rgb = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ours = torch.from_numpy(normalize_image(rgb))[None]
    bgr = rgb[..., ::-1].astype(np.float64) / 255.0
    msra = torch.from_numpy(((bgr - MEAN) / STD).transpose(2, 0, 1).astype(np.float32))[None]
    return ours, msra


def assert_same_heatmaps(ref: torch.Tensor, ours: torch.Tensor, tol: float = 1e-5) -> None:
    """max |difference| <= tol relative to the largest |heatmap value|."""
    assert ref.shape == ours.shape
    scale = float(ref.abs().max())
    assert scale > 0
    assert float((ref - ours).abs().max()) <= tol * scale


def save_layout(model: nn.Module, path: Path, layout: str) -> Path:
    state = model.state_dict()
    if layout == "msra_module":
        data: object = {f"module.{k}": v for k, v in state.items()}
    elif layout in ("mmpose1", "mmpose0"):
        meta = {"epoch": 210, "mmpose_version": "1.0.0", "dataset_meta": {"sigmas": np.full(17, 0.05)}}
        data = {"meta": meta, "state_dict": state}
    elif layout == "msra_wrapped":
        data = {"state_dict": state, "epoch": 140}
    else:
        data = state
    torch.save(data, path)
    return path


def reference(depth: int, layout: str, seed: int) -> nn.Module:
    if layout.startswith("msra"):
        return randomise(PoseResNet(depth), seed)
    return randomise(MmposeModel(depth, "head" if layout == "mmpose1" else "keypoint_head"), seed)


@pytest.mark.parametrize(
    ("depth", "layout"),
    [
        (50, "msra"),
        (50, "msra_module"),
        (50, "msra_wrapped"),
        (50, "mmpose1"),
        (50, "mmpose0"),
        (101, "mmpose1"),
        (152, "mmpose0"),
    ],
)
def test_converted_heatmaps_equal_the_reference(tmp_path: Path, depth: int, layout: str) -> None:
    ref = reference(depth, layout, seed=depth)
    src = save_layout(ref, tmp_path / f"pose_resnet_{depth}_384x288.pth", layout)
    if layout == "msra_module":  # the command and the file it writes (the others: the function it calls)
        out = tmp_path / "converted.safetensors"
        assert cli_main(["convert", str(src), "--out", str(out)]) == 0
        model, cfg = load_model_file(out)
    else:
        model, cfg, _ = convert(src)
    assert cfg.model.backbone == f"resnet{depth}" and cfg.model.head == "deconv"
    assert list(cfg.data.input_size) == [288, 384] and list(cfg.data.heatmap_size) == [72, 96]
    assert cfg.model.input_order == ("bgr" if layout.startswith("msra") else "rgb")
    ours_in, msra_in = image_inputs()
    with torch.no_grad():
        expected = ref(msra_in if layout.startswith("msra") else ours_in)
        assert_same_heatmaps(expected, model(ours_in))


def test_bgr_weights_need_the_reorder(tmp_path: Path) -> None:
    """Without the BGR re-ordering the Microsoft weights give other heatmaps (the check above can fail)."""
    ref = reference(50, "msra", seed=1)
    model, cfg, info = convert(save_layout(ref, tmp_path / "pose_resnet_50_256x192.pth", "msra"))
    assert info.layout == "msra" and list(cfg.data.input_size) == [192, 256]
    ours_in, msra_in = image_inputs()
    with torch.no_grad():
        expected = ref(msra_in)
        model.bgr = None
        assert float((expected - model(ours_in)).abs().max()) > 1e-3 * float(expected.abs().max())


def test_input_size_option_and_mpii(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = randomise(PoseResNet(50, joints=16), seed=2)
    src = save_layout(ref, tmp_path / "mpii_model.pth", "msra")
    assert cli_main(["convert", str(src), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_keypoints"] == 16 and report["input_size_hw"] == [256, 256]
    _, cfg = load_model_file(tmp_path / "mpii_model.safetensors")
    assert cfg.data.dataset == "mpii" and cfg.data.keypoints == "mpii16"
    assert cli_main(["convert", str(src), "--input-size", "384x288"]) == 1  # exists: not replaced
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["convert", str(src), "--input-size", "384x288", "--overwrite"]) == 0
    _, cfg = load_model_file(tmp_path / "mpii_model.safetensors")
    assert list(cfg.data.input_size) == [288, 384]
    assert cli_main(["convert", str(src), "--input-size", "250x190", "--out", str(tmp_path / "x.safetensors")]) == 1
    assert "multiples of 32" in capsys.readouterr().err


@pytest.fixture(scope="module")
def r50_state() -> dict[str, torch.Tensor]:
    return randomise(PoseResNet(50), seed=4).state_dict()


def test_partial_and_unknown_layouts_are_refused(
    tmp_path: Path, r50_state: dict[str, torch.Tensor], capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(state: object, name: str) -> str:
        path = tmp_path / name
        torch.save(state, path)
        assert cli_main(["convert", str(path)]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(path) in err
        return err

    partial = {k: v for k, v in r50_state.items() if not k.startswith("layer4.2.")}
    err = refused(partial, "partial.pth")
    assert "15 missing keys" in err and "layer4.2.bn1.weight" in err and "(9 more)" in err  # long list truncated
    extra = {**r50_state, "final_layer2.weight": torch.zeros(1), "deconv_layers.9.weight": torch.zeros(2)}
    err = refused(extra, "extra.pth")
    assert "unexpected keys" in err and "final_layer2.weight" in err and "deconv_layers.9.weight" in err
    mm = {("head." if k.startswith(("deconv", "final")) else "backbone.") + k: v for k, v in r50_state.items()}
    del mm["head.final_layer.bias"]
    err = refused({"state_dict": mm, "meta": {}}, "mm.pth")
    assert "mmpose1 layout" in err and "1 missing keys: head.final_layer.bias" in err
    err = refused({"fc.weight": torch.zeros(3), "conv1.weight": torch.zeros(3)}, "classifier.pth")
    assert "unknown key layout" in err and "fc.weight" in err
    shallow = {k: v for k, v in r50_state.items() if not k.startswith("layer3.5.")}
    assert "layer3 has 5 blocks" in refused(shallow, "shallow.pth")
    wide = {**r50_state, "final_layer.weight": torch.zeros(17, 128, 1, 1)}
    err = refused(wide, "wide.pth")
    assert "another shape" in err and "final_layer.weight (17, 128, 1, 1) vs (17, 256, 1, 1)" in err


class Payload:
    """A pickled class: loading it would need (and run) code."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("ran code",))


def test_pickles_that_need_code_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "meta": Payload()}, path)
    capsys.readouterr()
    assert cli_main(["convert", str(path)]) == 1
    captured = capsys.readouterr()
    assert "ran code" not in captured.out
    assert "refused" in captured.err and "builtins.print" in captured.err
    with pytest.raises(LineageError, match="not found"):
        convert(tmp_path / "absent.pth")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path, Path]:
    """A Microsoft-layout ResNet-50 reference, its .pth and our converted weights file (64x64 input)."""
    root = tmp_path_factory.mktemp("lineage")
    ref = randomise(PoseResNet(50), seed=5)
    src = save_layout(ref, root / "pose_resnet_50_64x64.pth", "msra")
    out = root / "r50.safetensors"
    assert cli_main(["convert", str(src), "--out", str(out)]) == 0
    return ref, src, out


def test_fasterpose_starts_from_the_converted_backbone(
    converted: tuple[nn.Module, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """``train configs/fasterpose_r50_256x192.yaml model.weights=converted``: backbone loaded, LHR head fresh."""
    _, _, weights = converted
    config = Path(__file__).resolve().parents[1] / "configs" / "fasterpose_r50_256x192.yaml"
    over = ["model.pretrained=false", "model.input_order=bgr"]
    torch.manual_seed(0)
    scratch = PoseModel.from_config(load_config(config, over))
    torch.manual_seed(0)
    with caplog.at_level("INFO", logger="fasterpose.models.pose_model"):
        model = PoseModel.from_config(load_config(config, [*over, f"model.weights={weights}"]))
    source, _ = load_model_file(weights)
    src_state, state, fresh = source.state_dict(), model.state_dict(), scratch.state_dict()
    body = [k for k in state if k.startswith("backbone.")]
    assert len(body) == 318 and all(torch.equal(state[k], src_state[k]) for k in body)
    assert not torch.equal(state["backbone.body.conv1.weight"], fresh["backbone.body.conv1.weight"])
    head = [k for k in state if k.startswith("head.")]
    assert head == ["head.conv.weight", "head.conv.bias"]  # the LHR, exactly as a fresh model starts
    assert all(torch.equal(state[k], fresh[k]) for k in head)
    line = next(r.getMessage() for r in caplog.records if "initialised the backbone" in r.getMessage())
    assert "(318 tensors)" in line and "deconv head (20 tensors)" in line and "head.conv.weight, head.conv.bias" in line
    with caplog.at_level("WARNING", logger="fasterpose.models.pose_model"):
        PoseModel.from_config(load_config(config, ["model.pretrained=false", f"model.weights={weights}"]))
    assert "set model.input_order=bgr" in caplog.text


def test_converted_file_runs_through_export_eval_and_predict(
    converted: tuple[nn.Module, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    ref, src, weights = converted
    onnx = tmp_path / "r50.onnx"
    model, cfg = load_model_file(weights)
    export_model(model, cfg, onnx, "onnx")  # what `fasterpose export --format onnx` writes
    ours_in, msra_in = image_inputs(64, 64)
    with torch.no_grad():
        expected = ref(msra_in)
    assert_same_heatmaps(expected, torch.from_numpy(OnnxRuntimeRunner(onnx)(ours_in.numpy())), tol=1e-4)
    # eval --model: the converted file, the lineage .pth itself (converted in memory) and the ONNX agree
    ann, images = write_coco(tmp_path, [{"bbox": [30, 10, 60, 70], "keypoints": simple_keypoints(40, 20)}], name="val")
    data = apply_overrides(
        cfg,
        [
            f"data.root={tmp_path}",
            f"data.val_ann={ann}",
            f"data.val_images={images}",
            "data.num_workers=0",
            "eval.use_gt_boxes=true",
        ],
    )
    config = tmp_path / "val.yaml"
    dump_config(data, config)
    results = []
    for i, (file, runtime) in enumerate(((weights, "torch"), (src, "torch"), (onnx, "onnxruntime"))):
        argv = [
            "eval",
            str(config),
            "--model",
            str(file),
            "--runtime",
            runtime,
            "--out",
            str(tmp_path / f"e{i}"),
            "--json",
            "--no-progress",
        ]
        assert cli_main(argv) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0]["AP"] == results[1]["AP"] and results[0]["mean_oks_to_gt"] == results[1]["mean_oks_to_gt"]
    assert results[2]["mean_oks_to_gt"] == pytest.approx(results[0]["mean_oks_to_gt"], abs=1e-4)
    # predict, from the weights file and from the .pth
    photo = next(images.iterdir())
    for i, file in enumerate((weights, src)):
        out = tmp_path / f"p{i}"
        argv = [
            "predict",
            str(photo),
            "--checkpoint",
            str(file),
            "--runtime",
            "torch",
            "--whole-image",
            "--out",
            str(out),
        ]
        assert cli_main(argv) == 0
        people = json.loads((out / "results.json").read_text())
        assert len(people) == 1 and len(people[0]["keypoints"]) == 51
    assert json.loads((tmp_path / "p0" / "results.json").read_text()) == people
    # export takes the .pth too: the weights file it writes is the converted one
    again = tmp_path / "again.safetensors"
    assert cli_main(["export", "--checkpoint", str(src), "--format", "weights", "--out", str(again)]) == 0
    a, b = load_model_file(again)[0].state_dict(), load_model_file(weights)[0].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
