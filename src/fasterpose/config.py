"""Typed experiment configuration: frozen dataclasses, YAML load/dump and ``a.b=value`` overrides.

One YAML file describes one experiment completely (no inheritance). Everything is checked at load,
each error one line naming the key: unknown keys (the valid ones listed), types, choices (``Literal``
fields list their values), ranges, and the keys that must agree with each other
(``data.heatmap_size`` = ``data.input_size`` / ``model.heatmap_stride``; ``model.num_keypoints`` =
the joints of the keypoint layout, or null to follow it). YAML is read with YAML 1.2 numbers
(``1e-3`` is a float) and duplicate keys are errors. Only ``from_config`` constructors read these objects; numeric code
receives plain arguments.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fasterpose.keypoints import BUILTIN_LAYOUTS, LayoutConfig, get_spec
from fasterpose.schema import ConfigError, build_dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet50"  # any timm model name, or "lpn50" / "litehrnet18"
    pretrained: bool = True  # ImageNet init (timm download, or `weights` file); falls back to random
    weights: str | None = None  # local ImageNet state dict (torchvision or timm layout)
    head: Literal["lhr", "deconv", "lpn", "pooled"] = "lhr"  # pooled: GAP + linear (x, y), head-neutral pretraining
    num_deconv: int = 0  # SimpleBaseline deconvs before the final layer (deconv head)
    deconv_filters: int = 256
    deconv_kernel: int = 4
    final_layer: Literal["conv", "lhr"] = "conv"  # deconv head: 1x1 conv, or LHR for the remaining upscale
    lr_extra_convs: int = 0  # lhr head: (3x3 conv + BN + ReLU) x n at low resolution before the LHR
    heatmap_stride: int = 4  # input pixels per heatmap pixel
    feature_index: int = -1  # which backbone stage feeds the head (-1: the last)
    num_keypoints: int | None = None  # None: the keypoint layout's count; a number must equal it
    prior: float = 0.01  # initial sigmoid probability for heads trained with a sigmoid loss
    # channel order the weights were trained on; the pipeline always feeds RGB with ImageNet mean/std, and a
    # "bgr" model (Microsoft / HRNet SimpleBaseline weights, `fasterpose convert`) re-orders inside its forward
    input_order: Literal["rgb", "bgr"] = "rgb"


@dataclass(frozen=True)
class AugmentConfig:
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # more than this many visible joints


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["coco", "mpii", "synthpose"] = "coco"
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
    heatmap_size: tuple[int, int] = (48, 64)  # (w, h) = input_size / model.heatmap_stride
    box_padding: float = 1.25  # person box -> crop: box enlarged by this factor (training and inference)
    sigma: float = 2.0
    encoding: Literal["msra", "unbiased"] = "msra"
    use_joint_weights: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    skip_bad_images: bool = False
    num_workers: int = 2
    # training images decoded once and kept as arrays (fasterpose.data.image_cache): "none" or "disk"
    image_cache: Literal["none", "disk"] = "none"
    image_cache_dir: str | None = None  # default: <user cache>/decoded ($FASTERPOSE_CACHE_DIR, ~/.cache/fasterpose)


@dataclass(frozen=True)
class LossConfig:
    name: Literal["rce", "mse", "ce_onehot", "ce_mask", "centroid"] = "rce"  # centroid: for head pooled
    alpha: float = 0.7
    gamma: float = 1.0
    positive_threshold: float = 0.01  # positive pixel for alpha (RCE) and the CE mask: target >= this
    ce_weighted: bool = False  # CE comparators: weight positives/negatives alpha / 1 - alpha (off: plain Eq. 1)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 140
    batch_size: int = 32  # per process; the paper's 128 is the global batch
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_steps: tuple[int, ...] = (90, 120)
    lr_factor: float = 0.1
    warmup_iters: int = 0
    # head warm-up for fine-tuning: the first n epochs train the backbone at lr x head_warmup_backbone_lr
    # (0: its weights frozen, its BN statistics still adapt), the head at the full rate
    head_warmup_epochs: int = 0
    head_warmup_backbone_lr: float = 0.0
    grad_clip: float | None = None
    amp: bool = True  # autocast on CUDA only
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"  # float16 adds a GradScaler
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


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Configs (and checkpoints) written before ``augment.padding`` became ``data.box_padding``."""
    data_section = data.get("data")
    augment = data_section.get("augment") if isinstance(data_section, dict) else None
    if isinstance(augment, dict) and "padding" in augment:
        data_section = dict(data_section)  # type: ignore[arg-type]
        augment = dict(augment)
        padding = augment.pop("padding")
        if "box_padding" in data_section and data_section["box_padding"] != padding:
            raise ConfigError("data.augment.padding (old name) and data.box_padding disagree; keep data.box_padding")
        data_section.setdefault("box_padding", padding)
        data_section["augment"] = augment
        data = {**data, "data": data_section}
        log.warning(
            "config key data.augment.padding is now data.box_padding (it sizes the crop at inference "
            "too): read it as data.box_padding=%s; rename it in the YAML",
            padding,
        )
    return data


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and :func:`validate` a :class:`Config`; missing keys take their defaults, unknown keys raise."""
    cfg = typing.cast(Config, build_dataclass(Config, _migrate(data), ""))
    validate(cfg)
    return cfg


def _bad(key: str, value: Any, need: str) -> ConfigError:
    shown = list(value) if isinstance(value, tuple) else value
    return ConfigError(f"{key}={json_like(shown)}: {need}")


def json_like(value: Any) -> str:
    """A value as a user would type it in an override (``[0, 0]``, ``null``, ``true``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _check_ranges(cfg: Config) -> None:
    m, d, t, e = cfg.model, cfg.data, cfg.train, cfg.eval
    at_least: list[tuple[str, Any, float]] = [
        ("train.batch_size", t.batch_size, 1), ("eval.batch_size", e.batch_size, 1), ("train.epochs", t.epochs, 0),
        ("train.log_every", t.log_every, 1), ("train.checkpoint_every", t.checkpoint_every, 1),
        ("train.eval_every", t.eval_every, 0), ("train.warmup_iters", t.warmup_iters, 0),
        ("data.num_workers", d.num_workers, 0), ("model.heatmap_stride", m.heatmap_stride, 1),
        ("model.num_keypoints", m.num_keypoints, 1), ("model.num_deconv", m.num_deconv, 0),
    ]  # fmt: skip
    for key, value, low in at_least:
        if value is not None and value < low:
            raise _bad(key, value, f"must be {'a positive integer' if low == 1 else 'zero or more'}")
    positive = [
        ("train.lr", t.lr),
        ("train.lr_factor", t.lr_factor),
        ("data.sigma", d.sigma),
        ("data.box_padding", d.box_padding),
        ("train.grad_clip", t.grad_clip),
        ("train.max_minutes", t.max_minutes),
        ("eval.max_images", e.max_images),
    ]
    for key, value in positive:
        if value is not None and not value > 0:
            raise _bad(key, value, "must be greater than 0")
    for key, size in (("data.input_size", d.input_size), ("data.heatmap_size", d.heatmap_size)):
        if min(size) <= 0:
            raise _bad(key, size, "width and height must be positive")
    probabilities = [
        ("data.augment.rotation_prob", d.augment.rotation_prob),
        ("data.augment.half_body_prob", d.augment.half_body_prob),
        ("loss.alpha", cfg.loss.alpha),
    ]
    for key, value in probabilities:
        if not 0.0 <= value <= 1.0:
            raise _bad(key, value, "must be between 0 and 1")
    if any(s < 0 for s in t.lr_steps):
        raise _bad("train.lr_steps", t.lr_steps, "epochs must be zero or more")
    if t.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?", t.device):
        raise _bad("train.device", t.device, "must be auto, cpu, cuda or cuda:N")


def validate(cfg: Config) -> None:
    """Ranges, and the keys that must agree with each other; a one-line :class:`ConfigError` naming them."""
    _check_ranges(cfg)
    m, d = cfg.model, cfg.data
    # A layout file (or names taken from the annotations) is counted when resolved: fasterpose.experiment.
    joints, source = None, f"data.keypoints={d.keypoints}"
    if d.layout is not None:
        joints, source = (len(d.layout.keypoints) or None), "data.layout.keypoints"
    elif d.keypoints in BUILTIN_LAYOUTS:
        joints = get_spec(d.keypoints).num_keypoints
    elif not d.keypoints.endswith((".yaml", ".yml")):
        raise ConfigError(
            f"data.keypoints={d.keypoints}: neither a built-in layout ({', '.join(BUILTIN_LAYOUTS)}) "
            f"nor a layout YAML file (.yaml)"
        )
    if joints is not None and m.num_keypoints is not None and m.num_keypoints != joints:
        raise ConfigError(
            f"model.num_keypoints={m.num_keypoints} disagrees with {source}, which has {joints} "
            f"joints: set model.num_keypoints={joints} or drop it (it follows the layout)"
        )
    s = m.heatmap_stride
    if d.input_size[0] % s or d.input_size[1] % s:
        raise ConfigError(f"data.input_size={list(d.input_size)} is not a multiple of model.heatmap_stride={s}")
    expected = [d.input_size[0] // s, d.input_size[1] // s]
    if list(d.heatmap_size) != expected:
        raise ConfigError(
            f"data.heatmap_size={list(d.heatmap_size)} disagrees with data.input_size={list(d.input_size)} / "
            f"model.heatmap_stride={s}: set data.heatmap_size={expected}"
        )


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        return v

    return typing.cast(dict[str, Any], conv(cfg))


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-3``, not only ``1.0e-3``) and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1}): each key once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Parse YAML with :class:`_Loader`; raises ``yaml.YAMLError`` or :class:`ConfigError`."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> (["train", "lr"], 0.01). Values are parsed as YAML scalars."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        return path, read_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise ConfigError(f"override {key.strip()}: the value {raw!r} is not valid YAML ({problem})") from None


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a new config with ``a.b=value`` overrides applied (validated like the YAML)."""
    return config_from_dict(_override_dict(config_to_dict(cfg), overrides))


def _override_dict(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...], heatmap_given: bool = True
) -> dict[str, Any]:
    """``data`` with the overrides set; sections and keys must exist in the defaults.

    ``data.heatmap_size`` follows ``data.input_size`` / ``model.heatmap_stride`` unless it is given
    where they are (``heatmap_given`` for ``data``, or among the overrides when those set either).
    """
    defaults = config_to_dict(Config())
    data = _merge(defaults, data)
    keys = [".".join(parse_override(text)[0]) for text in overrides]
    if "data.heatmap_size" in keys:
        heatmap_given = True
    elif {"data.input_size", "model.heatmap_stride"} & set(keys):
        heatmap_given = False
    data = _set_overrides(data, overrides)
    if not heatmap_given:
        _derive_heatmap_size(data)
    return data


def _derive_heatmap_size(data: dict[str, Any]) -> None:
    """Set ``data.heatmap_size`` = ``data.input_size`` / ``model.heatmap_stride`` when both are sane."""
    if not (isinstance(data.get("data"), dict) and isinstance(data.get("model"), dict)):
        return
    size, stride = data["data"].get("input_size"), data["model"].get("heatmap_stride")
    ok = isinstance(stride, int) and stride > 0 and isinstance(size, list | tuple) and len(size) == 2
    if ok and all(isinstance(v, int) and v > 0 and v % stride == 0 for v in size):
        data["data"]["heatmap_size"] = [size[0] // stride, size[1] // stride]


def _set_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        if path == ["data", "augment", "padding"]:
            log.warning("data.augment.padding is now data.box_padding: setting data.box_padding=%s", value)
            path = ["data", "box_padding"]
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
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section (keys only in ``top`` kept, for the unknown-key error)."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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
        data = read_yaml(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    data.setdefault("name", p.stem)
    try:
        given = isinstance(data.get("data"), dict) and "heatmap_size" in data["data"]
        return config_from_dict(_override_dict(_migrate(data), overrides, heatmap_given=given))
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def dump_config(cfg: Config, path: str | Path | None = None) -> str:
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    if path is not None:
        from fasterpose.atomic import atomic_write_text

        atomic_write_text(path, text, "config")
    return text
