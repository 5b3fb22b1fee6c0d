"""Generate the study's SynthPose copies unless an identical copy is already there."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import DatasetSpec, StudyError

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

    Identity = the seed, knobs and image counts recorded in the annotation files. A folder that
    holds a different SynthPose is an error (never silently overwritten).
    """
    from fasterpose.data.synthpose import SynthPoseKnobs, generate

    directory = Path(directory or spec.dir)
    counts = {"train": spec.num_train, "val": spec.num_val}
    want = json.loads(json.dumps(SynthPoseKnobs.from_kwargs(**spec.knobs).__dict__))
    defaults = json.loads(json.dumps(SynthPoseKnobs().__dict__))
    found = {}
    for split in counts:
        ann = directory / "annotations" / f"person_keypoints_{split}.json"
        if ann.is_file():
            coco = json.loads(ann.read_text())
            found[split] = (coco.get("info", {}).get("synthpose", {}), len(coco.get("images", [])))
    info = DatasetInfo(str(directory), spec.seed, spec.num_train, spec.num_val, want)
    if found:
        for split, (saved_info, n) in found.items():
            # knobs added to the generator after this copy was made count as their defaults
            saved = {**defaults, **(saved_info.get("knobs") or {})}
            if saved_info.get("seed") != spec.seed or saved != want or n != counts[split]:
                raise StudyError(
                    f"{directory}: holds a different SynthPose ({split}: seed {saved_info.get('seed')}, {n} images) "
                    f"than the study asks for (seed {spec.seed}, {counts[split]} images, knobs {spec.knobs}); "
                    f"pass another --dataset-dir or delete that folder"
                )
        if len(found) == len(counts):
            return info
    log.info(
        "generating SynthPose (seed %d, %d train / %d val images) into %s",
        spec.seed,
        spec.num_train,
        spec.num_val,
        directory,
    )
    stats = generate(directory, spec.num_train, spec.num_val, spec.seed, workers=workers, **spec.knobs)
    info.generated, info.seconds = True, stats.get("seconds")
    return info
