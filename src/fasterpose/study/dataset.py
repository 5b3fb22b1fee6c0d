"""Generate the study's SynthPose copies unless an identical copy is already there."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fasterpose.study.manifest import DatasetSpec, StudyError

log = logging.getLogger(__name__)


@dataclass
class DatasetInfo:
    """What a study trained or evaluated on (stored in the results)."""

    dir: str
    seed: int
    train: int
    val: int
    knobs: dict[str, Any] = field(default_factory=dict)
    generated: bool = False
    seconds: float | None = None
    oracle_ap: float | None = None


def ensure_dataset(spec: DatasetSpec, directory: Path | None = None, workers: int = 1) -> DatasetInfo:
    """Generate ``spec``'s SynthPose into ``directory`` (default ``spec.dir``) unless an identical one is there.

    One implementation for the study and the quickstart: :func:`fasterpose.data.synthpose.ensure`. A
    folder that holds a different SynthPose is a :class:`StudyError` (never silently overwritten).
    """
    from fasterpose.data.synthpose import SynthPoseMismatch, ensure

    directory = Path(directory or spec.dir)
    try:
        made = ensure(directory, spec.num_train, spec.num_val, spec.seed, spec.knobs, workers=workers)
    except SynthPoseMismatch as exc:
        raise StudyError(f"{exc} (the study's dataset; --dataset-dir picks another folder)") from None
    return DatasetInfo(
        str(directory),
        spec.seed,
        spec.num_train,
        spec.num_val,
        dict(made.knobs),
        made.generated,
        made.seconds if made.generated else None,
    )
