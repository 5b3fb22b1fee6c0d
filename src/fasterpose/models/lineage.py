"""Published SimpleBaseline checkpoints of the lineage, mapped exactly onto our ``simplebaseline_*`` models.

Three key layouts are read (each possibly under ``state_dict``, and with a ``module.`` prefix):

``msra``     the Microsoft code and HRNet's repository (``pose_resnet_50_256x192.pth``): ``conv1.*``,
             ``bn1.*``, ``layer1..4.*``, ``deconv_layers.*``, ``final_layer.*``. Trained on BGR images
             (OpenCV, ``COLOR_RGB: false``), so the model gets ``model.input_order=bgr``.
``mmpose1``  mmpose 1.x ``td-hm_res*``: ``backbone.*``, ``head.deconv_layers.*``, ``head.final_layer.*``; RGB.
``mmpose0``  mmpose 0.x: ``backbone.*``, ``keypoint_head.deconv_layers.*``, ``keypoint_head.final_layer.*``; RGB.

Backbone keys are torchvision's ResNet names, which timm shares: ``conv1.weight`` becomes our
``backbone.body.conv1.weight``; ``deconv_layers.i`` becomes ``head.deconvs.i`` (same Sequential
positions: deconv, BN, ReLU per stage) and ``final_layer`` becomes ``head.final.conv``. The depth comes
from the number of blocks in ``layer3`` (6, 23, 36: ResNet-50, 101, 152), the keypoint count from
``final_layer`` (17: COCO, 16: MPII), the deconv stages from their tensors, the input size from the
file name (``256x192`` is height x width, the lineage's convention) or the caller. Any missing,
unexpected or misshapen tensor is refused, naming the keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fasterpose.config import Config, config_from_dict

RESNET_DEPTHS = {6: 50, 23: 101, 36: 152}  # blocks in layer3 -> depth
LAYOUTS = ("msra", "mmpose1", "mmpose0")
_HEAD_PREFIX = {"msra": "", "mmpose1": "head.", "mmpose0": "keypoint_head."}
_BACKBONE_PREFIX = {"msra": "", "mmpose1": "backbone.", "mmpose0": "backbone."}
_DEFAULT_SIZE = {17: (256, 192), 16: (256, 256)}  # (H, W): the lineage's COCO and MPII inputs
_NAME_SIZE = re.compile(r"(?<![0-9])([0-9]{2,4})x([0-9]{2,4})(?![0-9])")


class LineageError(ValueError):
    """A file that is not a SimpleBaseline checkpoint we can convert exactly."""


@dataclass(frozen=True)
class Lineage:
    """What a lineage checkpoint holds: its layout, network shape and our model's tensors."""

    layout: str
    depth: int
    num_keypoints: int
    num_deconv: int
    filters: int
    kernel: int
    state: dict[str, torch.Tensor]  # our keys (``backbone.body.*``, ``head.*``)
    source_keys: dict[str, str]  # our key -> the file's key, for error messages
    unexpected: tuple[str, ...] = ()  # the file's keys that are no key of its layout


def _names(keys: Iterable[str], limit: int = 6) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _safe_numpy_globals() -> list[Any]:
    """numpy arrays and scalars in a checkpoint's ``meta`` (mmpose's dataset info): plain data, no code."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / 1
    allowed: list[Any] = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    allowed += [
        (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and n != "ObjectDType"]
    return allowed


def load_state(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth`` (``torch.load(weights_only=True)``), unwrapped from ``state_dict`` and
    ``module.``. numpy arrays in its metadata are accepted; any other pickled class is refused unloaded."""
    p = Path(path)
    if not p.is_file():
        raise LineageError(f"checkpoint not found: {p}")
    try:
        data: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types here
        unsafe = _unsafe_globals(p)
        if unsafe is None:
            raise LineageError(
                f"{p}: not a readable torch checkpoint ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from None
        not_numpy = [g for g in unsafe if not g.startswith("numpy.")]
        if not_numpy:
            raise LineageError(
                f"{p}: refused: it pickles Python classes that could run code on load ({_names(not_numpy)}); "
                f"only tensors, plain values and numpy arrays are read"
            ) from None
        try:
            with torch.serialization.safe_globals(_safe_numpy_globals()):
                data = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc2:  # noqa: BLE001
            raise LineageError(
                f"{p}: refused: cannot be read weights-only ({str(exc2).splitlines()[-1][:200]})"
            ) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not data:
        raise LineageError(f"{p}: expected a state dict (or one under 'state_dict'), got {type(data).__name__}")
    not_tensors = [str(k) for k, v in data.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise LineageError(f"{p}: not a state dict of tensors: {_names(not_tensors)} are not tensors")
    return {str(k).removeprefix("module."): v for k, v in data.items()}


def _unsafe_globals(p: Path) -> list[str] | None:
    """The classes a pickle needs beyond weights-only's, or None when it is no torch checkpoint at all."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(p))
    except Exception:  # noqa: BLE001 - not a zip/pickle torch file
        return None


def detect_layout(keys: Iterable[str]) -> str | None:
    """``msra``, ``mmpose1`` or ``mmpose0`` from the key names; None when none of them."""
    keys = list(keys)
    if any(k.startswith("keypoint_head.") for k in keys):
        return "mmpose0"
    if any(k.startswith(("head.deconv_layers.", "head.final_layer.")) for k in keys) and any(
        k.startswith("backbone.") for k in keys
    ):
        return "mmpose1"
    if any(k.startswith(("deconv_layers.", "final_layer.")) for k in keys):
        return "msra"
    return None


def _our_key(key: str, layout: str) -> str | None:
    """The file's key as ours (None: not a key of this layout)."""
    head, body = _HEAD_PREFIX[layout], _BACKBONE_PREFIX[layout]
    if key.startswith(head + "deconv_layers."):
        return "head.deconvs." + key.removeprefix(head + "deconv_layers.")
    if key.startswith(head + "final_layer."):
        return "head.final.conv." + key.removeprefix(head + "final_layer.")
    rest = key.removeprefix(body)
    if (rest != key or not body) and rest.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")):
        return "backbone.body." + rest
    return None


def read_lineage(path: str | os.PathLike[str]) -> Lineage:
    """Classify a lineage checkpoint and rename its tensors to ours (shapes are checked by :func:`convert`)."""
    p = Path(path)
    raw = load_state(p)
    layout = detect_layout(raw)
    if layout is None:
        raise LineageError(
            f"{p}: unknown key layout: not a SimpleBaseline checkpoint of the Microsoft/HRNet code (conv1.*, "
            f"deconv_layers.*, final_layer.*) or of mmpose (backbone.*, head.* / keypoint_head.*); "
            f"its keys: {_names(raw)}"
        )
    state: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    unexpected: list[str] = []
    for key, value in raw.items():
        ours = _our_key(key, layout)
        if ours is None:
            unexpected.append(key)
        else:
            state[ours], source[ours] = value, key
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"backbone\.body\.layer3\.(\d+)\.", k))}
    final = state.get("head.final.conv.weight")
    deconvs = sorted(
        int(m.group(1))
        for k, v in state.items()
        if (m := re.fullmatch(r"head\.deconvs\.(\d+)\.weight", k)) and v.ndim == 4
    )
    problems = []
    depth = RESNET_DEPTHS.get(len(blocks))
    if depth is None:
        problems.append(f"layer3 has {len(blocks)} blocks (ResNet-50/101/152 have 6/23/36)")
    if final is None or final.ndim != 4:
        problems.append(f"no {_HEAD_PREFIX[layout]}final_layer.weight (a 1x1 conv)")
    if not deconvs:
        problems.append(f"no {_HEAD_PREFIX[layout]}deconv_layers.*.weight")
    if problems:
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
        raise LineageError(f"{p}: not a SimpleBaseline ResNet checkpoint ({layout} layout): {'; '.join(problems)}")
    assert final is not None and depth is not None
    first = state[f"head.deconvs.{deconvs[0]}.weight"]
    return Lineage(
        layout,
        depth,
        int(final.shape[0]),
        len(deconvs),
        int(first.shape[1]),
        int(first.shape[2]),
        state,
        source,
        tuple(unexpected),
    )


def input_size_from_name(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(H, W) from a lineage file name (``pose_resnet_50_256x192.pth``, ``..._coco-384x288-....pth``)."""
    m = _NAME_SIZE.search(Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_size(text: str) -> tuple[int, int]:
    """``256x192`` -> (256, 192): height x width, as the lineage's file names write it."""
    m = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", text)
    if not m:
        raise ValueError(f"input size {text!r}: expected HEIGHTxWIDTH, e.g. 256x192")
    return int(m.group(1)), int(m.group(2))


def lineage_config(info: Lineage, size_hw: tuple[int, int], name: str) -> Config:
    """Our config of the converted network: ``simplebaseline_r{depth}`` on COCO (17) or MPII (16), MSE heatmaps."""
    h, w = size_hw
    if h % 32 or w % 32 or h <= 0 or w <= 0:
        raise LineageError(f"input size {h}x{w}: height and width must be positive multiples of 32 (ResNet stride)")
    if info.num_keypoints == 17:
        data: dict[str, Any] = {"dataset": "coco", "keypoints": "coco17"}
    elif info.num_keypoints == 16:
        data = {
            "dataset": "mpii",
            "keypoints": "mpii16",
            "root": "data/mpii",
            "train_ann": "annot/train.json",
            "train_images": "images",
            "val_ann": "annot/valid.json",
            "val_images": "images",
            "test_ann": None,
            "test_images": "images",
        }
    else:
        raise LineageError(
            f"final_layer has {info.num_keypoints} output channels: converted checkpoints are COCO (17 joints) "
            f"or MPII (16 joints)"
        )
    return config_from_dict(
        {
            "name": name,
            "model": {
                "backbone": f"resnet{info.depth}",
                "pretrained": False,
                "head": "deconv",
                "num_deconv": info.num_deconv,
                "deconv_filters": info.filters,
                "deconv_kernel": info.kernel,
                "final_layer": "conv",
                "heatmap_stride": 4,
                "feature_index": -1,
                "num_keypoints": info.num_keypoints,
                "input_order": "bgr" if info.layout == "msra" else "rgb",
            },
            "data": {**data, "input_size": [w, h], "heatmap_size": [w // 4, h // 4]},
            "loss": {"name": "mse"},
            "train": {"out_dir": f"runs/{name}"},
        }
    )


def convert(path: str | os.PathLike[str], size_hw: tuple[int, int] | None = None) -> tuple[Any, Config, Lineage]:
    """The lineage checkpoint as our model (eval mode), its config and what was read.

    ``size_hw`` (height, width) overrides the size in the file name; without either, 256x192 (COCO) or
    256x256 (MPII), the lineage's defaults. The weights do not depend on it (the network is fully
    convolutional); it sets the crop the pipeline feeds.
    """
    from fasterpose.models.pose_model import PoseModel

    p = Path(path)
    info = read_lineage(p)
    size = size_hw or input_size_from_name(p) or _DEFAULT_SIZE.get(info.num_keypoints, (256, 192))
    name = f"simplebaseline_r{info.depth}_{size[0]}x{size[1]}" + ("" if info.num_keypoints == 17 else "_mpii")
    cfg = lineage_config(info, size, name)
    model = PoseModel.for_loading(cfg)  # no random init of tensors that are all replaced (seconds for a ResNet-152)
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: v for k, v in info.state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    extra = [*info.unexpected, *(info.source_keys[k] for k in state if k not in own)]
    shapes = [
        f"{info.source_keys[k]} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or extra or shapes:
        head, body = _HEAD_PREFIX[info.layout], _BACKBONE_PREFIX[info.layout]
        theirs = [_their_key(k, head, body) for k in missing]
        parts = [
            f"{len(theirs)} missing keys: {_names(theirs)}" if theirs else "",
            f"{len(extra)} unexpected keys: {_names(extra)}" if extra else "",
            f"{len(shapes)} tensors of another shape (file vs model): {_names(shapes, 3)}" if shapes else "",
        ]
        raise LineageError(
            f"{p}: incomplete or unknown SimpleBaseline ResNet-{info.depth} checkpoint ({info.layout} layout): "
            + "; ".join(x for x in parts if x)
        )
    full = {k: v.to(own[k].dtype) for k, v in state.items()}
    full.update({k: torch.zeros((), dtype=torch.long) for k in model.state_dict() if k.endswith("num_batches_tracked")})
    model.load_state_dict(full, strict=True)
    return model.eval(), cfg, info


def _their_key(ours: str, head: str, body: str) -> str:
    """Our key in the file's layout (for naming what is missing)."""
    if ours.startswith("head.deconvs."):
        return head + "deconv_layers." + ours.removeprefix("head.deconvs.")
    if ours.startswith("head.final.conv."):
        return head + "final_layer." + ours.removeprefix("head.final.conv.")
    return body + ours.removeprefix("backbone.body.")
