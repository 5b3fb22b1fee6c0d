"""Whether a runner's model fits a config (:func:`check_model_fits`), before any work.

The ``Runner`` interface and its implementations (torch, ONNX Runtime, OpenVINO) live in
:mod:`fasterpose.runtimes`; the names are importable from here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fasterpose.runtimes.base import PRECISIONS, RUNTIMES, Runner, check_images, default_num_threads

if TYPE_CHECKING:
    from fasterpose.config import Config
    from fasterpose.keypoints import KeypointSpec

__all__ = ["PRECISIONS", "RUNTIMES", "Runner", "check_images", "check_model_fits", "default_num_threads"]


def _declared(runner: object) -> tuple[tuple[int | None, ...] | None, list[str] | None]:
    """The input shape (None for a dynamic axis) and output names a runner's model file declares."""
    return getattr(runner, "input_shape", None), getattr(runner, "output_names", None)


def _joint_hint(k: int) -> str:
    from fasterpose.keypoints import BUILTIN_LAYOUTS, get_spec

    names = [n for n in BUILTIN_LAYOUTS if get_spec(n).num_keypoints == k]
    return f"data.keypoints={names[0]}" if names else f"data.keypoints=<a layout file of {k} joints>"


def _check_input(source: str, shape: tuple[int | None, ...], w: int, h: int) -> None:
    if len(shape) != 4 or shape[1] not in (3, None):
        raise ValueError(f"{source}: the model's input has shape {list(shape)}; FasterPose feeds (batch, 3, H, W)")
    mh, mw = shape[2], shape[3]
    if (mw is not None and mw != w) or (mh is not None and mh != h):
        raise ValueError(
            f"{source}: the model takes {mw}x{mh} crops (width x height), the config has data.input_size=[{w}, {h}]: "
            f"pass data.input_size=[{mw}, {mh}] (with data.heatmap_size to match) or the model's own config"
        )


def check_model_fits(runner: Runner, cfg: Config, spec: KeypointSpec) -> None:
    """The model behind ``runner`` and ``cfg`` (whose layout is ``spec``) agree, before any work: one output,
    the crop size, the joint count and the heatmap size; one plain ``ValueError`` naming the model file for each.

    Input size and output count come from what an exported file declares; the joint count and the
    heatmap size from one batch of zeros run through the model (a file that declares a fixed batch
    gets that batch). A model whose crop size differs is refused rather than adapted: its heatmap size,
    its codec and what its accuracy means all follow the size it was trained at."""
    source = getattr(runner, "source", None) or "the model"
    w, h = (int(v) for v in cfg.data.input_size)
    shape, outputs = _declared(runner)
    if outputs is not None and len(outputs) != 1:
        raise ValueError(
            f"{source}: the model has {len(outputs)} outputs ({', '.join(outputs[:6])}); FasterPose runs "
            f"models with one output, the heatmaps (batch, joints, height, width)"
        )
    if shape is not None:
        _check_input(source, shape, w, h)
    batch = shape[0] if shape is not None and shape[0] is not None else 1
    out = np.asarray(runner(np.zeros((batch, 3, h, w), np.float32)))
    if out.ndim != 4:
        raise ValueError(f"{source}: the model outputs shape {list(out.shape)}; FasterPose reads (batch, K, h, w)")
    k, oh, ow = (int(v) for v in out.shape[1:])
    if k != spec.num_keypoints:
        raise ValueError(
            f"{source}: the model has {k} joints, the config's layout {spec.name} has {spec.num_keypoints}: "
            f"pass the model's own config or {_joint_hint(k)}"
        )
    hw, hh = (int(v) for v in cfg.data.heatmap_size)
    if (oh, ow) != (hh, hw):
        raise ValueError(
            f"{source}: the model outputs {ow}x{oh} heatmaps (width x height), the config has data.heatmap_size="
            f"[{hw}, {hh}]: pass data.heatmap_size=[{ow}, {oh}] or the model's own config"
        )
