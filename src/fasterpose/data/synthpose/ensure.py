"""``ensure``: generate SynthPose into a folder unless an identical copy is already there.

Identity is what the annotation files record: format version, seed, knobs (knobs added to the
generator after a copy was made count as their defaults) and the number of images per split, with
every image file present. A folder holding a *different* SynthPose (or other files named like it)
is an error, never silently overwritten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fasterpose.data.synthpose.render import SynthPoseKnobs
from fasterpose.data.synthpose.writer import FORMAT_VERSION, generate

log = logging.getLogger(__name__)


class SynthPoseMismatch(ValueError):
    """The folder holds a SynthPose made with other parameters (or something else)."""


@dataclass(frozen=True)
class EnsureResult:
    """What :func:`ensure` found or made. ``seconds``: generation time (0 when nothing was generated)."""

    directory: Path
    num_train: int
    num_val: int
    seed: int
    knobs: dict[str, Any] = field(default_factory=dict)  # every knob, defaults filled in (JSON values)
    generated: bool = False
    seconds: float = 0.0


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _found(directory: Path, split: str) -> tuple[dict[str, Any], int, bool] | None:
    """(recorded SynthPose info, image count, all image files present) of one split, if annotated."""
    ann = directory / "annotations" / f"person_keypoints_{split}.json"
    if not ann.is_file():
        return None
    try:
        coco = json.loads(ann.read_text())
        info = dict(coco.get("info") or {})
        images = [str(i["file_name"]) for i in coco.get("images", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SynthPoseMismatch(
            f"{ann}: not a readable SynthPose annotation file ({exc}); delete the folder or pass another one"
        ) from None
    complete = all((directory / split / name).is_file() for name in images)
    return {"version": info.get("version"), **dict(info.get("synthpose") or {})}, len(images), complete


def holds(
    directory: str | Path, num_train: int, num_val: int, seed: int, knobs: Mapping[str, Any] | None = None
) -> bool:
    """Whether ``directory`` holds exactly this SynthPose, every file present. False when there is
    none (or a copy of these parameters lost files); :class:`SynthPoseMismatch` when it holds another."""
    root = Path(directory)
    want = _plain(asdict(SynthPoseKnobs.from_kwargs(**dict(knobs or {}))))
    defaults = _plain(asdict(SynthPoseKnobs()))
    complete = True
    for split, count in (("train", int(num_train)), ("val", int(num_val))):
        found = _found(root, split)
        if found is None:
            complete = False
            continue
        info, n, files_ok = found
        saved = {**defaults, **(info.get("knobs") or {})}
        if (info.get("version"), info.get("seed"), saved, n) != (FORMAT_VERSION, int(seed), want, count):
            raise SynthPoseMismatch(
                f"{root}: holds a different SynthPose ({split}: version {info.get('version')}, seed "
                f"{info.get('seed')}, {n} images) than asked for (version {FORMAT_VERSION}, seed {seed}, "
                f"{count} images, knobs {dict(knobs or {})}); pass another folder or delete this one"
            )
        complete = complete and files_ok
    return complete


def ensure(
    directory: str | Path,
    num_train: int,
    num_val: int,
    seed: int,
    knobs: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> EnsureResult:
    """SynthPose in ``directory`` with these parameters: kept when :func:`holds` says it is there,
    generated otherwise. Raises :class:`SynthPoseMismatch` when the folder holds a different one."""
    root = Path(directory)
    want = _plain(asdict(SynthPoseKnobs.from_kwargs(**dict(knobs or {}))))
    result = EnsureResult(root, int(num_train), int(num_val), int(seed), want)
    if holds(root, num_train, num_val, seed, knobs):
        return result
    log.info("generating SynthPose (seed %d, %d train / %d val images) into %s", seed, num_train, num_val, root)
    stats = generate(root, int(num_train), int(num_val), int(seed), workers=workers, **dict(knobs or {}))
    return EnsureResult(root, int(num_train), int(num_val), int(seed), want, True, float(stats["seconds"]))
