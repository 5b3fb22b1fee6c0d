"""Keypoint layouts given as data -> :class:`~fasterpose.keypoints.KeypointSpec`.

A layout is resolved from, in this order:

1. ``data.layout`` in the config (an inline :class:`~fasterpose.config.LayoutConfig`; training
   writes the fully resolved layout there, so checkpoints and exported files carry it);
2. ``data.keypoints``: a built-in name (``coco17``, ``mpii16``) or a layout YAML file with the
   :class:`~fasterpose.config.LayoutConfig` keys.

Joint names and the skeleton may instead come from the dataset's own COCO ``categories`` entry
(``keypoints``: names; ``skeleton``: 1-based index pairs, the COCO convention). Flip pairs default
to the ``left_*`` / ``right_*`` name pairs; OKS sigmas default to :data:`DEFAULT_SIGMA` with a
warning that AP is then not comparable to published numbers. Every bad entry raises
:class:`LayoutError` naming the file (or config key) and the entry.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fasterpose.config import Config, ConfigError, DataConfig, LayoutConfig, _build, shipped_path
from fasterpose.keypoints import BUILTIN_LAYOUTS, COCO_17, KeypointSpec, get_spec

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
        return _build(LayoutConfig, data, "")  # type: ignore[no-any-return]
    except ConfigError as exc:
        raise LayoutError(f"{p}: {exc} (joints are referred to by name in a layout file)") from None


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
    missing = [n for n in names if n.startswith("left_") and "right_" + n[5:] in names
               and not {n, "right_" + n[5:]} & paired]  # fmt: skip
    if missing and (source + name + " flip") not in _warned:
        _warned.add(source + name + " flip")
        log.warning(
            "%s: layout %s: flip_pairs leaves %d left_/right_ twins unpaired (%s): a horizontal flip will not swap "
            "them; list them in flip_pairs, or leave flip_pairs out to pair every left_/right_ name",
            source, name, len(missing), ", ".join(f"{n}/right_{n[5:]}" for n in missing),
        )  # fmt: skip


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
                source, name, DEFAULT_SIGMA,
            )  # fmt: skip
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


def annotation_files(data: DataConfig) -> list[Path]:
    """The COCO-format annotation files of the config that exist (train first), for their categories."""
    if data.dataset not in ("coco", "synthpose"):
        return []
    root = Path(data.root)
    return [p for p in (root / data.train_ann, root / data.val_ann) if p.is_file()]


def _with_category(layout: LayoutConfig, source: str, ann_files: list[Path]) -> KeypointSpec:
    """Build the spec, taking names / skeleton the layout lacks from the first annotation file's category."""
    category, category_source = None, ""
    if not layout.keypoints or not layout.skeleton:
        for ann in ann_files[:1]:
            category = read_coco_categories(ann, layout.category, skeleton=not layout.skeleton)
            category_source = str(ann)
    return build_spec(layout, source, category, category_source)


def load_layout(value: str, ann_file: str | os.PathLike[str] | None = None) -> KeypointSpec:
    """A built-in name or a layout file; names it lacks come from ``ann_file``'s categories."""
    if value in BUILTIN_LAYOUTS:
        return get_spec(value)
    path = find_layout_file(value)
    anns = [Path(ann_file)] if ann_file is not None and Path(ann_file).is_file() else []
    return _with_category(load_layout_file(path), str(path), anns)


def _resolve(data: DataConfig) -> tuple[KeypointSpec, LayoutConfig | None]:
    if data.layout is not None:
        layout, source = data.layout, "config data.layout"
    elif data.keypoints in BUILTIN_LAYOUTS:
        return get_spec(data.keypoints), None
    else:
        path = find_layout_file(data.keypoints, data.root)
        layout, source = load_layout_file(path), str(path)
    return _with_category(layout, source, annotation_files(data)), layout


def resolve_layout(data: DataConfig) -> KeypointSpec:
    """The keypoint layout a data config describes (see the module docstring)."""
    return _resolve(data)[0]


def check_num_keypoints(cfg: Config) -> int:
    """The layout's joint count; a ``model.num_keypoints`` that contradicts it is a :class:`ConfigError`."""
    spec = resolve_layout(cfg.data)
    n = cfg.model.num_keypoints
    if n is not None and n != spec.num_keypoints:
        raise ConfigError(
            f"model.num_keypoints is {n} but the keypoint layout {spec.name} ({spec.source}) has "
            f"{spec.num_keypoints} joints; drop model.num_keypoints (it follows the layout) or fix the layout"
        )
    return spec.num_keypoints


def resolve_config_layout(cfg: Config) -> Config:
    """``cfg`` with the layout written out in full (``data.layout``, unless built in) and
    ``model.num_keypoints`` set from it, so the config alone rebuilds the model anywhere."""
    spec, layout = _resolve(cfg.data)
    n = check_num_keypoints(cfg)
    data = cfg.data if layout is None else dataclasses.replace(cfg.data, layout=spec_to_layout(spec, layout.category))
    return dataclasses.replace(cfg, data=data, model=dataclasses.replace(cfg.model, num_keypoints=n))


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
