"""Typed experiment configuration: frozen dataclasses, YAML load/dump and ``a.b=value`` overrides.

One YAML file describes one experiment completely (no inheritance). Unknown keys are errors that
list the valid ones. Only ``from_config`` constructors read these objects; numeric code receives
plain arguments.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet50"  # any timm model name, or "lpn50" / "litehrnet18"
    pretrained: bool = True  # ImageNet init (timm download, or `weights` file); falls back to random
    weights: str | None = None  # local ImageNet state dict (torchvision or timm layout)
    head: str = "lhr"  # "lhr" | "deconv" | "lpn"
    num_deconv: int = 0  # SimpleBaseline deconvs before the final layer (deconv head)
    deconv_filters: int = 256
    deconv_kernel: int = 4
    final_layer: str = "conv"  # deconv head: "conv" (1x1) or "lhr" (remaining upscale)
    heatmap_stride: int = 4  # input pixels per heatmap pixel
    feature_index: int = -1  # which backbone stage feeds the head (-1: the last)
    num_keypoints: int | None = None  # None: the keypoint layout's count; a number must match it
    prior: float = 0.01  # initial sigmoid probability for heads trained with a sigmoid loss


@dataclass(frozen=True)
class AugmentConfig:
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # more than this many visible joints
    padding: float = 1.25


@dataclass(frozen=True)
class LayoutConfig:
    """A keypoint layout written as data (the schema of a layout YAML and of ``data.layout``).

    Joints are referred to by name everywhere. Empty / None fields come from the dataset's COCO
    ``categories`` entry (``keypoints``, ``skeleton``) or take defaults (see ``fasterpose.layouts``).
    """

    name: str = ""
    keypoints: tuple[str, ...] = ()  # joint names in annotation order
    skeleton: tuple[tuple[str, str], ...] = ()  # limbs, for drawing
    flip_pairs: tuple[tuple[str, str], ...] | None = None  # None: derived from left_* / right_* names
    sigmas: tuple[float, ...] = ()  # per-joint OKS sigmas; empty: a stated default (AP not comparable)
    joint_weights: tuple[float, ...] = ()  # per-joint loss weights (data.use_joint_weights); empty: ones
    upper_body: tuple[str, ...] = ()  # half-body augmentation's upper body; empty: no half-body crops
    category: str | None = None  # the COCO category holding the keypoints; None: the only one that has any


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "coco"  # "coco" | "mpii" | "synthpose"
    root: str = "data/coco"
    train_ann: str = "annotations/person_keypoints_train2017.json"
    train_images: str = "train2017"
    val_ann: str = "annotations/person_keypoints_val2017.json"
    val_images: str = "val2017"
    det_file: str | None = None  # person detections (COCO results format) for validation
    det_score_threshold: float = 0.0
    # `fasterpose eval CONFIG --split test-dev`: an image-info file (images, no annotations), its images and
    # the person detections to crop; writes the COCO server's results file without scoring
    test_ann: str | None = "annotations/image_info_test-dev2017.json"
    test_images: str = "test2017"
    test_det_file: str | None = None
    keypoints: str = "coco17"  # a built-in layout (coco17, mpii16) or a layout YAML file (see LayoutConfig)
    layout: LayoutConfig | None = None  # an inline layout (wins over `keypoints`); training writes the resolved one
    input_size: tuple[int, int] = (192, 256)  # (W, H)
    heatmap_size: tuple[int, int] = (48, 64)  # (w, h)
    sigma: float = 2.0
    encoding: str = "msra"  # "msra" | "unbiased"
    use_joint_weights: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    skip_bad_images: bool = False
    num_workers: int = 2


@dataclass(frozen=True)
class LossConfig:
    name: str = "rce"  # "rce" | "mse" | "ce_onehot" | "ce_mask"
    alpha: float = 0.7
    gamma: float = 1.0
    positive_threshold: float = math.exp(-4.5)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 140
    batch_size: int = 32  # per process; the paper's 128 is the global batch
    optimizer: str = "adam"  # "adam" | "adamw" | "sgd"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_steps: tuple[int, ...] = (90, 120)
    lr_factor: float = 0.1
    warmup_iters: int = 0
    grad_clip: float | None = None
    amp: bool = True  # autocast on CUDA only
    amp_dtype: str = "bfloat16"  # "bfloat16" | "float16" (float16 adds a GradScaler)
    channels_last: bool = True  # NHWC memory format: faster oneDNN convolutions on CPU (fp32 and bf16) and tensor cores
    cpu_amp: bool = False  # bfloat16 autocast on CPU, used only where the CPU has native bf16 (AVX512-BF16/AMX)
    sync_bn: bool = False
    seed: int = 0
    eval_every: int = 10  # epochs; 0 disables evaluation during training
    checkpoint_every: int = 1
    out_dir: str = "runs/experiment"
    max_minutes: float | None = None  # wall-clock budget for the whole run
    log_every: int = 20
    device: str = "auto"  # "auto" | "cpu" | "cuda"


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 32
    flip_test: bool = True
    dark: bool = False
    use_gt_boxes: bool = True  # False: use data.det_file
    in_vis_threshold: float = 0.2  # joints above this score enter the person rescoring
    oks_nms_threshold: float = 0.9
    max_images: int | None = None


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigError(ValueError):
    """A configuration that cannot be loaded: unknown key, wrong type, bad file."""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = _field_types(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in valid]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s}; valid keys{' of ' + where if where else ''}: "
            + ", ".join(valid)
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config`; missing keys take their defaults, unknown keys raise."""
    return typing.cast(Config, _build(Config, data, ""))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        return v

    return typing.cast(dict[str, Any], conv(cfg))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> (["train", "lr"], 0.01). Values are parsed as YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    return path, yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a new config with ``a.b=value`` overrides applied (validated like the YAML)."""
    data = config_to_dict(cfg)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                valid = ", ".join(k for k in node if isinstance(node[k], dict)) if isinstance(node, dict) else ""
                raise ConfigError(
                    f"unknown config section {'.'.join(path[: i + 1])!r} in override {text!r}; valid sections: {valid}"
                )
            node = node[part]
        if path[-1] not in node:
            raise ConfigError(
                f"unknown config key {'.'.join(path)!r} in override {text!r}; valid keys: " + ", ".join(node)
            )
        node[path[-1]] = value
    return config_from_dict(data)


CHECKOUT_ROOT = Path(__file__).resolve().parents[2]  # the source checkout: configs/ lives beside src/


def shipped_path(relative: str | Path) -> Path:
    """``relative`` (e.g. ``configs/quickstart.yaml``) where it exists: as given (the current folder),
    else in the source checkout, so the shipped configs are found from any working directory; as
    given when neither has it (the caller reports the missing path)."""
    p = Path(relative)
    if p.exists() or p.is_absolute():
        return p
    in_checkout = CHECKOUT_ROOT / p
    return in_checkout if in_checkout.exists() else p


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML experiment file, then apply overrides."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    data.setdefault("name", p.stem)
    try:
        cfg = config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    return apply_overrides(cfg, overrides)


def dump_config(cfg: Config, path: str | Path | None = None) -> str:
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    if path is not None:
        Path(path).write_text(text)
    return text
