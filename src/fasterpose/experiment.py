"""An experiment resolved once: what a config means, built by :func:`resolve` and passed down.

:class:`Experiment` holds the config with its keypoint layout written out in full, the layout's
:class:`~fasterpose.keypoints.KeypointSpec`, the heatmap codec, each split's files and the metric
kind (COCO OKS AP or MPII PCKh). A command resolves its config once; the dataset, the evaluation
and the pipeline builders take the :class:`Experiment` (a plain :class:`~fasterpose.config.Config`
given to them is resolved on the spot, see :func:`experiment_of`).

The layout a config names is chosen here, in this order: ``data.layout`` (an inline
:class:`~fasterpose.keypoints.LayoutConfig`; training writes the fully resolved layout there, so
checkpoints and exported files carry it), then ``data.keypoints`` (a built-in name or a layout
YAML). Joint names and a skeleton the layout lacks come from the first COCO-format annotation file
of the config (train, then val). Building a network reads no annotation file: it takes the joint
count from :func:`model_num_keypoints`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fasterpose.codec import HeatmapCodec
from fasterpose.config import Config, ConfigError, DataConfig, shipped_path
from fasterpose.keypoints import (
    BUILTIN_LAYOUTS,
    KeypointSpec,
    LayoutConfig,
    LayoutError,
    get_spec,
    load_layout_file,
    spec_from_layout,
    spec_to_layout,
)

MetricKind = Literal["oks_ap", "pckh"]
SPLITS = ("train", "val", "test-dev")
COCO_FORMAT = ("coco", "synthpose")  # datasets whose annotation files are COCO keypoint files


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split, as paths under ``data.root``.

    Attributes:
        annotations: the ground truth (test-dev: its image-info file, no annotations).
        images: the image folder.
        detections: the person boxes to crop instead of the ground-truth boxes (val: ``data.det_file``,
            test-dev: ``data.test_det_file``); None when the config names none (train: always None).
    """

    annotations: Path
    images: Path
    detections: Path | None = None


def split_files(data: DataConfig, split: str) -> SplitFiles:
    """The files of ``split`` (``train``, ``val`` or ``test-dev``) a data config names."""
    root = Path(data.root)
    if split == "train":
        return SplitFiles(root / data.train_ann, root / data.train_images)
    if split == "val":
        return SplitFiles(root / data.val_ann, root / data.val_images, root / data.det_file if data.det_file else None)
    if split == "test-dev":
        if not data.test_ann:
            raise ValueError("data.test_ann is not set: the image-info file of the test split")
        det = root / data.test_det_file if data.test_det_file else None
        return SplitFiles(root / data.test_ann, root / data.test_images, det)
    raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def annotation_files(data: DataConfig) -> list[Path]:
    """The COCO-format annotation files of the config that exist (train first), for their categories."""
    if data.dataset not in COCO_FORMAT:
        return []
    return [p for p in (split_files(data, "train").annotations, split_files(data, "val").annotations) if p.is_file()]


def find_layout_file(value: str, data_root: str | os.PathLike[str] | None = None) -> Path:
    """``data.keypoints`` as a file: as given, under ``data.root``, or in the source checkout."""
    candidates = [Path(value)]
    if data_root is not None and not Path(value).is_absolute():
        candidates.append(Path(data_root) / value)
    candidates.append(shipped_path(value))
    for c in candidates:
        if c.is_file():
            return c
    raise LayoutError(
        f"data.keypoints: {value!r} is neither a built-in layout ({', '.join(BUILTIN_LAYOUTS)}) nor a layout "
        f"file (looked at {', '.join(str(c) for c in dict.fromkeys(candidates))})"
    )


def load_layout(value: str, ann_file: str | os.PathLike[str] | None = None) -> KeypointSpec:
    """A layout named outside a config (``eval-results --keypoints``): a built-in name or a layout file;
    names it lacks come from ``ann_file``'s categories."""
    if value in BUILTIN_LAYOUTS:
        return get_spec(value)
    path = find_layout_file(value)
    anns = [Path(ann_file)] if ann_file is not None and Path(ann_file).is_file() else []
    return spec_from_layout(load_layout_file(path), str(path), anns)


def _layout_of(data: DataConfig) -> tuple[LayoutConfig | None, str]:
    """The layout a data config names as data (None: a built-in one) and where it was given."""
    if data.layout is not None:
        return data.layout, "config data.layout"
    if data.keypoints in BUILTIN_LAYOUTS:
        return None, "built-in"
    path = find_layout_file(data.keypoints, data.root)
    return load_layout_file(path), str(path)


def model_num_keypoints(cfg: Config) -> int:
    """The network's joint count, from the config alone (no annotation file is read):
    ``model.num_keypoints``, else the layout's when it lists its joints (built in, ``data.layout`` or
    a layout file with ``keypoints``). A layout whose names come from the annotations needs
    ``model.num_keypoints``, which :func:`resolve` sets."""
    if cfg.model.num_keypoints is not None:
        return cfg.model.num_keypoints
    d = cfg.data
    if d.layout is None and d.keypoints in BUILTIN_LAYOUTS:
        return get_spec(d.keypoints).num_keypoints
    layout, source = _layout_of(d)
    if layout is not None and layout.keypoints:
        return len(layout.keypoints)
    raise ConfigError(
        f"model.num_keypoints is not set and the keypoint layout ({source}) takes its joint names from the "
        "annotation file: resolve the experiment first (fasterpose.experiment.resolve) or set model.num_keypoints"
    )


@dataclass(frozen=True)
class Experiment:
    """A config and what it means (see the module docstring); built by :func:`resolve`.

    Attributes:
        cfg: the config with ``data.layout`` written out in full (unless built in) and
            ``model.num_keypoints`` set, so the config alone rebuilds the model anywhere.
        spec: the keypoint layout.
        codec: the heatmap codec (``data.input_size``, ``heatmap_size``, ``sigma``, ``encoding``, ``eval.dark``).
        splits: split name -> its files (``train``, ``val``, and ``test-dev`` when ``data.test_ann`` is set).
        metric: ``oks_ap`` (COCOeval over OKS: COCO, SynthPose, custom layouts) or ``pckh`` (MPII).
    """

    cfg: Config
    spec: KeypointSpec
    codec: HeatmapCodec
    splits: dict[str, SplitFiles]
    metric: MetricKind

    @property
    def num_keypoints(self) -> int:
        return self.spec.num_keypoints

    @property
    def primary_metric(self) -> str:
        """The number that ranks models (and picks the best checkpoint): PCKh ``Mean`` or ``AP``."""
        return "Mean" if self.metric == "pckh" else "AP"

    @property
    def coco_format(self) -> bool:
        """The annotation files are COCO keypoint files (COCO, SynthPose)."""
        return self.cfg.data.dataset in COCO_FORMAT

    def split(self, name: str) -> SplitFiles:
        """The files of split ``name``; an unknown or absent split is a ``ValueError`` naming the others."""
        if name not in self.splits:
            if name == "test-dev":
                split_files(self.cfg.data, name)  # raises, naming data.test_ann
            raise ValueError(f"split must be one of {', '.join(self.splits)}, got {name!r}")
        return self.splits[name]


def resolve(cfg: Config) -> Experiment:
    """Resolve ``cfg`` once: its layout (reading a layout file and, for names it lacks, the COCO
    ``categories`` of the annotations), codec, split files and metric kind.

    Raises :class:`~fasterpose.keypoints.LayoutError` for a bad layout and
    :class:`~fasterpose.config.ConfigError` when ``model.num_keypoints`` contradicts the layout.
    """
    d = cfg.data
    layout, source = _layout_of(d)
    spec = get_spec(d.keypoints) if layout is None else spec_from_layout(layout, source, annotation_files(d))
    n = cfg.model.num_keypoints
    if n is not None and n != spec.num_keypoints:
        raise ConfigError(
            f"model.num_keypoints is {n} but the keypoint layout {spec.name} ({spec.source}) has "
            f"{spec.num_keypoints} joints; drop model.num_keypoints (it follows the layout) or fix the layout"
        )
    data = d if layout is None else dataclasses.replace(d, layout=spec_to_layout(spec, layout.category))
    resolved = dataclasses.replace(
        cfg, data=data, model=dataclasses.replace(cfg.model, num_keypoints=spec.num_keypoints)
    )
    splits = {s: split_files(d, s) for s in SPLITS if s != "test-dev" or d.test_ann}
    metric: MetricKind = "pckh" if d.dataset == "mpii" else "oks_ap"
    return Experiment(resolved, spec, HeatmapCodec.from_config(resolved), splits, metric)


def experiment_of(source: Experiment | Config | DataConfig) -> Experiment:
    """``source`` itself when already resolved, else :func:`resolve` of it (a ``DataConfig`` with the
    default model and evaluation settings). Commands resolve once and pass the :class:`Experiment`."""
    if isinstance(source, Experiment):
        return source
    return resolve(source if isinstance(source, Config) else Config(data=source))
