"""Keypoint layouts: the one home of joint names, flip pairs, OKS sigmas, skeleton and joint weights.

One :class:`KeypointSpec` per keypoint layout. Dataset parsers, transforms, the codec, the
evaluators and the drawing code read everything layout-specific from a spec. ``coco17`` and
``mpii16`` are built in; any other layout is data, a :class:`LayoutConfig` (a YAML file with its
keys, or a config's ``data.layout``), completed by the dataset's COCO ``categories`` entry
(``keypoints``: names; ``skeleton``: 1-based index pairs, the COCO convention) and turned into a
spec by :func:`build_spec`. Flip pairs default to the ``left_*`` / ``right_*`` name pairs; OKS
sigmas default to :data:`DEFAULT_SIGMA` with a warning that AP is then not comparable to
published numbers. Every bad entry raises :class:`LayoutError` naming the file (or config key)
and the entry. Which layout a config names is decided once, by :func:`fasterpose.experiment.resolve`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fasterpose.schema import ConfigError, build_dataclass


@dataclass(frozen=True)
class KeypointSpec:
    """A keypoint layout.

    Attributes:
        name: layout name (``"coco17"``, ``"mpii16"``).
        names: joint names, index order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        sigmas: per-joint OKS sigmas (COCO convention); used by OKS-NMS and COCOeval.
        skeleton: limbs as (i, j) index pairs, for drawing.
        upper_body: joint indices counted as upper body (half-body augmentation).
        joint_weights: per-joint loss weights (HRNet's ``USE_DIFFERENT_JOINTS_WEIGHT``).
        source: where the layout came from (a file, ``built-in``), named in error messages.
        default_sigmas: the sigmas are a stated default, not the dataset's own (AP not comparable).
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    joint_weights: tuple[float, ...] = field(default=())
    source: str = "built-in"
    default_sigmas: bool = False

    def __post_init__(self) -> None:
        k = len(self.names)
        where = f"{self.source}: layout {self.name}"
        if k == 0:
            raise ValueError(f"{where}: no joints")
        if len(set(self.names)) != k:
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"{where}: joint names repeat: {dup}")
        if len(self.sigmas) != k:
            raise ValueError(f"{where}: sigmas: {len(self.sigmas)} values for {k} joints")
        if self.joint_weights and len(self.joint_weights) != k:
            raise ValueError(f"{where}: joint_weights: {len(self.joint_weights)} values for {k} joints")
        for entry, pairs in (("flip_pairs", self.flip_pairs), ("skeleton", self.skeleton)):
            for i, (a, b) in enumerate(pairs):
                if not (0 <= a < k and 0 <= b < k):
                    raise ValueError(f"{where}: {entry}[{i}]: joint index out of range 0..{k - 1} in ({a}, {b})")
        flipped = [j for pair in self.flip_pairs for j in pair]
        if len(set(flipped)) != len(flipped):
            raise ValueError(f"{where}: flip_pairs: a joint appears in more than one pair")
        if any(not 0 <= j < k for j in self.upper_body):
            raise ValueError(f"{where}: upper_body: joint index out of range 0..{k - 1}")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` such that ``flipped[:, j] = original[:, p[j]]`` after a mirror."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def weights(self) -> np.ndarray:
        """Per-joint loss weights, shape (K,); ones when the layout defines none."""
        if not self.joint_weights:
            return np.ones(self.num_keypoints, dtype=np.float32)
        return np.asarray(self.joint_weights, dtype=np.float32)


@dataclass(frozen=True)
class LayoutConfig:
    """A keypoint layout written as data (the schema of a layout YAML and of ``data.layout``).

    Joints are referred to by name everywhere. Empty / None fields come from the dataset's COCO
    ``categories`` entry (``keypoints``, ``skeleton``) or take defaults (see :func:`build_spec`).
    """

    name: str = ""
    keypoints: tuple[str, ...] = ()  # joint names in annotation order
    skeleton: tuple[tuple[str, str], ...] = ()  # limbs, for drawing
    flip_pairs: tuple[tuple[str, str], ...] | None = None  # None: derived from left_* / right_* names
    sigmas: tuple[float, ...] = ()  # per-joint OKS sigmas; empty: a stated default (AP not comparable)
    joint_weights: tuple[float, ...] = ()  # per-joint loss weights (data.use_joint_weights); empty: ones
    upper_body: tuple[str, ...] = ()  # half-body augmentation's upper body; empty: no half-body crops
    category: str | None = None  # the COCO category holding the keypoints; None: the only one that has any


COCO_17 = KeypointSpec(
    name="coco17",
    names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    upper_body=tuple(range(11)),
    joint_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5),
)

MPII_16 = KeypointSpec(
    name="mpii16",
    names=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    # MPII has no OKS sigmas; these are the values mmpose uses for OKS-based NMS on MPII.
    sigmas=(
        0.089,
        0.083,
        0.107,
        0.107,
        0.083,
        0.089,
        0.026,
        0.026,
        0.026,
        0.026,
        0.062,
        0.072,
        0.179,
        0.179,
        0.072,
        0.062,
    ),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (7, 12),
        (12, 11),
        (11, 10),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
    joint_weights=(1.5, 1.2, 1.0, 1.0, 1.2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.5, 1.2, 1.0, 1.0, 1.2, 1.5),
)

_SPECS = {s.name: s for s in (COCO_17, MPII_16)}


BUILTIN_LAYOUTS = tuple(_SPECS)


def get_spec(name: str) -> KeypointSpec:
    """Look a built-in layout up by name (``coco17`` or ``mpii16``); :func:`load_layout` also reads layout files."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint layout {name!r}; valid: {sorted(_SPECS)}") from None


# ---------------------------------------------------------------- layouts given as data
log = logging.getLogger(__name__)
DEFAULT_SIGMA = round(float(np.mean(COCO_17.sigmas)), 3)  # 0.067, the mean of COCO's 17 sigmas
_warned: set[str] = set()
_Category = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
_category_cache: dict[tuple[str, int, int, str | None, bool], _Category | None] = {}


class LayoutError(ValueError):
    """A keypoint layout that cannot be used; the message names the file and the entry."""


def load_layout_file(path: str | os.PathLike[str]) -> LayoutConfig:
    """Read a layout YAML (the keys of :class:`LayoutConfig`; ``name`` defaults to the file stem)."""
    p = Path(path)
    if not p.is_file():
        raise LayoutError(f"layout file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LayoutError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise LayoutError(
            f"{p}: a layout file is a mapping with keys {[f.name for f in dataclasses.fields(LayoutConfig)]}"
        )
    data.setdefault("name", p.stem)
    try:
        return build_dataclass(LayoutConfig, data, "")  # type: ignore[no-any-return]
    except ConfigError as exc:
        raise LayoutError(f"{p}: {exc} (joints are referred to by name in a layout file)") from None


def keypoint_category(data: Any, source: str, category: str | None = None) -> tuple[int, dict[str, Any]] | None:
    """``(index, entry)`` of the COCO category that lists keypoint names; None when none does.

    With ``category`` the entry of that name; otherwise the only category with keypoints.
    """
    cats = data.get("categories") if isinstance(data, dict) else None
    if cats is None:
        return None
    if not isinstance(cats, list):
        raise LayoutError(f"{source}: 'categories' must be a list")
    with_kpts = [(i, c) for i, c in enumerate(cats) if isinstance(c, dict) and c.get("keypoints")]
    if category is not None:
        named = [(i, c) for i, c in enumerate(cats) if isinstance(c, dict) and c.get("name") == category]
        if not named:
            names = [c.get("name") for c in cats if isinstance(c, dict)]
            raise LayoutError(f"{source}: no category named {category!r} (categories: {names})")
        return named[0] if named[0][1].get("keypoints") else None
    if len(with_kpts) > 1:
        names = [c.get("name") for _, c in with_kpts]
        raise LayoutError(f"{source}: several categories list keypoints ({names}); set `category` in the layout")
    return with_kpts[0] if with_kpts else None


def layout_from_coco_categories(
    data: Any, source: str, category: str | None = None, skeleton: bool = True
) -> _Category | None:
    """Joint names and skeleton (as name pairs) from a COCO dict's ``categories``; None if it has none.

    The COCO skeleton is 1-based: ``[16, 14]`` joins joints 15 and 13 (0-based). ``skeleton=False``
    skips it (a layout that gives its own).
    """
    found = keypoint_category(data, source, category)
    if found is None:
        return None
    i, cat = found
    where = f"{source}: categories[{i}]"
    raw = cat["keypoints"]
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise LayoutError(f"{where}.keypoints: expected a list of joint names, got {str(raw)[:120]}")
    names = tuple(raw)
    k = len(names)
    limbs: list[tuple[str, str]] = []
    for j, pair in enumerate((cat.get("skeleton") or []) if skeleton else []):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(v, int) for v in pair)):
            raise LayoutError(f"{where}.skeleton[{j}]: expected two joint numbers, got {pair!r}")
        for v in pair:
            if not 1 <= v <= k:
                hint = "; this one looks 0-based" if v == 0 else ""
                raise LayoutError(
                    f"{where}.skeleton[{j}]: index {v} out of range 1..{k} (COCO skeletons are 1-based{hint}; "
                    f"give `skeleton` by joint names in the layout file to override it)"
                )
        limbs.append((names[pair[0] - 1], names[pair[1] - 1]))
    return names, tuple(limbs)


def read_coco_categories(
    ann_file: str | os.PathLike[str], category: str | None = None, skeleton: bool = True
) -> _Category | None:
    """:func:`layout_from_coco_categories` of an annotation file (cached per file version)."""
    p = Path(ann_file)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, category, skeleton)
    if key not in _category_cache:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LayoutError(f"{p}: cannot read the annotation file for its keypoint names ({exc})") from None
        _category_cache[key] = layout_from_coco_categories(data, str(p), category, skeleton)
    return _category_cache[key]


def derive_flip_pairs(names: tuple[str, ...], source: str) -> tuple[tuple[str, str], ...]:
    """``(left_x, right_x)`` for every ``left_x`` name; a ``left_``/``right_`` joint without its twin is an error."""
    pairs = []
    for n in names:
        for own, other in (("left_", "right_"), ("right_", "left_")):
            if n.startswith(own) and other + n[len(own) :] not in names:
                raise LayoutError(
                    f"{source}: joint {n!r} has no {other + n[len(own) :]!r} to swap with under a flip; "
                    f"give `flip_pairs` explicitly (an empty list for none)"
                )
        if n.startswith("left_"):
            pairs.append((n, "right_" + n[len("left_") :]))
    return tuple(pairs)


def _warn_unpaired(names: Sequence[str], flip: Sequence[tuple[str, str]], source: str, name: str) -> None:
    """Warn when explicit ``flip_pairs`` leave out ``left_x`` / ``right_x`` twins (a flip would not swap them)."""
    paired = {j for pair in flip for j in pair}
    missing = [
        n for n in names if n.startswith("left_") and "right_" + n[5:] in names and not {n, "right_" + n[5:]} & paired
    ]
    if missing and (source + name + " flip") not in _warned:
        _warned.add(source + name + " flip")
        log.warning(
            "%s: layout %s: flip_pairs leaves %d left_/right_ twins unpaired (%s): a horizontal flip will not swap "
            "them; list them in flip_pairs, or leave flip_pairs out to pair every left_/right_ name",
            source,
            name,
            len(missing),
            ", ".join(f"{n}/right_{n[5:]}" for n in missing),
        )


def build_spec(
    layout: LayoutConfig,
    source: str,
    category: _Category | None = None,
    category_source: str = "",
) -> KeypointSpec:
    """Turn a layout (+ the dataset's category names/skeleton) into a validated spec."""
    name = layout.name or "custom"
    names = layout.keypoints
    if category is not None:
        if names and tuple(names) != category[0]:
            diff = next((i for i, (a, b) in enumerate(zip(names, category[0], strict=False)) if a != b), None)
            at = f"first difference at joint {diff}" if diff is not None else "different counts"
            raise LayoutError(
                f"{source}: keypoints ({len(names)} joints) differ from {category_source}'s category keypoints "
                f"({len(category[0])} joints), {at}"
            )
        names = category[0]
    if not names:
        raise LayoutError(
            f"{source}: layout {name} has no joint names: list `keypoints` in it, or use an annotation file "
            f"whose categories entry lists them"
        )
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise LayoutError(f"{source}: keypoints: joint names repeat")

    def idx(joint: str, entry: str) -> int:
        if joint not in index:
            raise LayoutError(f"{source}: {entry}: {joint!r} is not a joint of layout {name} (joints: {list(names)})")
        return index[joint]

    flip = layout.flip_pairs if layout.flip_pairs is not None else derive_flip_pairs(tuple(names), source)
    skeleton = layout.skeleton or (category[1] if category is not None else ())
    flip_idx = tuple((idx(a, f"flip_pairs[{i}]"), idx(b, f"flip_pairs[{i}]")) for i, (a, b) in enumerate(flip))
    for i, (a, b) in enumerate(flip_idx):
        if a == b:
            raise LayoutError(f"{source}: flip_pairs[{i}]: a joint cannot swap with itself ({names[a]!r})")
    skel_where = "skeleton" if layout.skeleton else f"{category_source} skeleton"
    skel_idx = tuple((idx(a, f"{skel_where}[{i}]"), idx(b, f"{skel_where}[{i}]")) for i, (a, b) in enumerate(skeleton))
    upper = tuple(idx(j, f"upper_body[{i}]") for i, j in enumerate(layout.upper_body))
    sigmas = tuple(layout.sigmas)
    if not sigmas:
        sigmas = (DEFAULT_SIGMA,) * len(names)
        if source + name not in _warned:
            _warned.add(source + name)
            log.warning(
                "%s: layout %s gives no OKS sigmas; using %s for every joint (the mean of COCO's 17). OKS-NMS and "
                "AP use them: AP is then not comparable to published numbers for this dataset",
                source,
                name,
                DEFAULT_SIGMA,
            )
    elif any(not s > 0 for s in sigmas):
        raise LayoutError(f"{source}: sigmas: every OKS sigma must be > 0, got {list(sigmas)}")
    elif any(s > 1 for s in sigmas):
        j = next(i for i, s in enumerate(sigmas) if s > 1)
        raise LayoutError(
            f"{source}: sigmas[{j}] ({names[j]!r}) is {sigmas[j]:g}: an OKS sigma is a fraction of the person's "
            f"scale, at most 1 (COCO's lie between 0.025 and 0.107); did you mean {sigmas[j] / 1000:g}?"
        )
    if layout.flip_pairs:  # given, and not the empty list that says "no flip pairs" on purpose
        _warn_unpaired(names, flip, source, name)
    if any(w < 0 for w in layout.joint_weights):
        raise LayoutError(f"{source}: joint_weights: weights must be >= 0, got {list(layout.joint_weights)}")
    try:
        return KeypointSpec(
            name=name,
            names=tuple(names),
            flip_pairs=flip_idx,
            sigmas=sigmas,
            skeleton=skel_idx,
            upper_body=upper,
            joint_weights=tuple(layout.joint_weights),
            source=source,
            default_sigmas=not layout.sigmas,
        )
    except ValueError as exc:
        raise LayoutError(str(exc)) from None


def spec_to_layout(spec: KeypointSpec, category: str | None = None) -> LayoutConfig:
    """The complete layout of a spec, by names (what training writes to ``data.layout``)."""
    n = spec.names
    return LayoutConfig(
        name=spec.name,
        keypoints=n,
        skeleton=tuple((n[a], n[b]) for a, b in spec.skeleton),
        flip_pairs=tuple((n[a], n[b]) for a, b in spec.flip_pairs),
        sigmas=() if spec.default_sigmas else spec.sigmas,
        joint_weights=spec.joint_weights,
        upper_body=tuple(n[j] for j in spec.upper_body),
        category=category,
    )


def spec_from_layout(layout: LayoutConfig, source: str, ann_files: list[Path]) -> KeypointSpec:
    """Build the spec, taking names / skeleton the layout lacks from the first annotation file's category."""
    category, category_source = None, ""
    if not layout.keypoints or not layout.skeleton:
        for ann in ann_files[:1]:
            category = read_coco_categories(ann, layout.category, skeleton=not layout.skeleton)
            category_source = str(ann)
    return build_spec(layout, source, category, category_source)


def check_annotation_layout(spec: KeypointSpec, ann_file: str | os.PathLike[str], category: str | None = None) -> None:
    """A layout given as data must name the joints the annotation file's category lists, in its order."""
    if spec.source == "built-in" or not Path(ann_file).is_file():
        return
    found = read_coco_categories(ann_file, category)
    if found is not None and found[0] != spec.names:
        raise LayoutError(
            f"{ann_file}: its category lists joints {list(found[0])}, but the layout {spec.name} ({spec.source}) "
            f"has {list(spec.names)}: a model trained on one would mislabel the other"
        )
