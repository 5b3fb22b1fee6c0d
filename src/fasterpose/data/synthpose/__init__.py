"""SynthPose, the built-in pose dataset: procedurally drawn people written as a COCO-format dataset.

    generate(out_dir, num_train, num_val, seed, **knobs)  write it (see :mod:`.writer`)
    ensure(out_dir, num_train, num_val, seed, knobs)      the same, unless an identical copy is there
    holds(out_dir, num_train, num_val, seed, knobs)       whether an identical copy is there
    preview(out_dir, split, n, path)                      a contact sheet with the skeletons

Modules: ``body`` (the skeleton and its pose), ``prims`` (drawing primitives), ``draw`` (people),
``scene`` (backgrounds, occluders, camera effects), ``render`` (one image, :class:`SynthPoseKnobs`),
``writer`` (the COCO files), ``ensure``.
"""

from __future__ import annotations

from fasterpose.data.synthpose.ensure import EnsureResult, SynthPoseMismatch, ensure, holds
from fasterpose.data.synthpose.render import SynthPoseKnobs
from fasterpose.data.synthpose.writer import FORMAT_VERSION, category, generate, image_id_for, preview

__all__ = [
    "FORMAT_VERSION",
    "EnsureResult",
    "SynthPoseKnobs",
    "SynthPoseMismatch",
    "category",
    "ensure",
    "generate",
    "holds",
    "image_id_for",
    "preview",
]
