"""The study manifest (``study.yaml``): dataset, regimes, arms, groups and claims, parsed into frozen dataclasses.

Layout::

    title: str
    dataset: {dir, seed, num_train, num_val, knobs: {...}}      # the study's SynthPose
    regimes:                                                   # optional; default: one regime "scratch"
      <name>: {label, note, early_epoch, overrides: [a.b=v, ...],
               pretrain: {config: file.yaml, label, dataset: {dir, seed, num_train, num_val, knobs}}}
    arms: {<name>: {config: file.yaml, label: str, max_seeds: int (optional)}}
    groups: [{key, title, kind: table|convergence|grid, arms: [...], paper_ap: {arm: AP}, note}]
    claims: [{text, kind: better|not_worse|equal, metric: final|best|auc|early, arms: [a, b, ...],
              test: superiority|non-inferiority|equivalence, direction: greater|two-sided, margin: AP}]
    early_epoch: int                                           # default for the regimes

Every arm runs in every regime: the regime's ``overrides`` are applied on top of the arm's YAML, and a
regime with ``pretrain`` first trains that config once per seed on its own (disjoint) SynthPose, then
starts every arm of that seed from the pretrained backbone with a fresh head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MANIFEST = "study.yaml"
GROUP_KINDS = ("table", "convergence", "grid")
CLAIM_KINDS = ("better", "not_worse", "equal")
# the test and direction each kind is judged by (fasterpose.study.claims), declared with the claim
CLAIM_TESTS = {
    "better": ("superiority", "greater"),
    "not_worse": ("non-inferiority", "greater"),
    "equal": ("equivalence", "two-sided"),
}
METRICS = ("final", "best", "auc", "early")


class StudyError(ValueError):
    """A study folder, dataset or results file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class DatasetSpec:
    """A SynthPose copy: folder, generator seed, image counts and pinned generator knobs."""

    dir: str
    seed: int = 0
    num_train: int = 1000
    num_val: int = 100
    knobs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arm:
    """One experimental condition: a complete config trained over several seeds."""

    name: str
    config_path: Path
    label: str
    max_seeds: int | None = None


@dataclass(frozen=True)
class Group:
    """Arms shown together (one table or figure)."""

    key: str
    title: str
    arms: tuple[str, ...]
    kind: str = "table"
    paper_ap: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """A statement of the paper, tested over seeds: ``arms[0]`` vs ``arms[1]`` (or all ``arms`` for equal)."""

    text: str
    arms: tuple[str, ...]
    kind: str = "better"
    metric: str = "final"
    margin: float = 1.0  # AP percent: the equivalence / non-inferiority margin (not_worse, equal)


@dataclass(frozen=True)
class Pretrain:
    """The pretraining of a regime: one run of ``config_path`` per seed on ``dataset``."""

    config_path: Path
    dataset: DatasetSpec
    label: str = ""


@dataclass(frozen=True)
class Regime:
    """How every arm is trained: overrides on the arm's YAML, and an optional pretrained backbone."""

    name: str
    label: str
    overrides: tuple[str, ...] = ()
    early_epoch: int = 1
    pretrain: Pretrain | None = None
    note: str = ""


@dataclass(frozen=True)
class Study:
    """A parsed study folder (see the module docstring for the manifest)."""

    root: Path
    title: str
    dataset: DatasetSpec
    arms: dict[str, Arm]
    groups: tuple[Group, ...]
    claims: tuple[Claim, ...]
    regimes: dict[str, Regime]

    def seeds_for(self, arm: str, seeds: int) -> list[int]:
        """Seeds 0..n-1 of ``arm``: ``seeds`` capped by the arm's ``max_seeds``."""
        cap = self.arms[arm].max_seeds
        return list(range(min(seeds, cap) if cap else seeds))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{where}: expected a mapping, got {value!r}")
    return value


def _dataset(data: Any, where: str, default_dir: str) -> DatasetSpec:
    d = _mapping(data, where)
    unknown = sorted(set(d) - {"dir", "seed", "num_train", "num_val", "knobs"})
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}; valid: dir, seed, num_train, num_val, knobs")
    return DatasetSpec(
        str(d.get("dir", default_dir)),
        int(d.get("seed", 0)),
        int(d.get("num_train", 1000)),
        int(d.get("num_val", 100)),
        dict(_mapping(d.get("knobs"), f"{where}.knobs")),
    )


def _config_file(root: Path, name: Any, where: str) -> Path:
    path = root / str(name)
    if not path.is_file():
        raise StudyError(f"{where} names {path}, which does not exist")
    return path


def _regimes(root: Path, path: Path, data: dict[str, Any], early: int) -> dict[str, Regime]:
    raw = data.get("regimes")
    if raw is None:
        return {"scratch": Regime("scratch", "from random init", early_epoch=early)}
    regimes: dict[str, Regime] = {}
    for name, spec in _mapping(raw, f"{path}: regimes").items():
        where = f"{path}: regime {name!r}"
        spec = _mapping(spec, where)
        pre = None
        if spec.get("pretrain") is not None:
            p = _mapping(spec["pretrain"], f"{where}.pretrain")
            if "config" not in p:
                raise StudyError(f"{where}.pretrain needs a 'config' file")
            pre = Pretrain(
                _config_file(root, p["config"], f"{where}.pretrain"),
                _dataset(p.get("dataset"), f"{where}.pretrain.dataset", f"data/synthpose_{name}_pretrain"),
                str(p.get("label", "")),
            )
        overrides = spec.get("overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise StudyError(f"{where}.overrides: expected a list of 'a.b=value' strings, got {overrides!r}")
        regimes[str(name)] = Regime(
            str(name),
            str(spec.get("label", name)),
            tuple(overrides),
            int(spec.get("early_epoch", early)),
            pre,
            str(spec.get("note", "")).strip(),
        )
    if not regimes:
        raise StudyError(f"{path}: regimes is empty")
    return regimes


def _choice(value: Any, valid: tuple[str, ...], where: str) -> str:
    if value not in valid:
        raise StudyError(f"{where}: must be one of {', '.join(valid)}, got {value!r}")
    return str(value)


def _claim_margin(c: dict[str, Any], where: str) -> float:
    """The claim's margin (AP percent, default 1.0); ``test`` / ``direction``, when given, must match the kind."""
    kind = c.get("kind", "better")
    declared = {
        "test": c.get("test", CLAIM_TESTS.get(kind, ("", ""))[0]),
        "direction": c.get("direction", CLAIM_TESTS.get(kind, ("", ""))[1]),
    }
    if kind in CLAIM_TESTS and (declared["test"], declared["direction"]) != CLAIM_TESTS[kind]:
        raise StudyError(
            f"{where}: kind {kind!r} is tested by {CLAIM_TESTS[kind]} (test, direction), "
            f"got {(declared['test'], declared['direction'])}"
        )
    margin = c.get("margin", 1.0)
    if not isinstance(margin, int | float) or isinstance(margin, bool) or not margin > 0:
        raise StudyError(f"{where}.margin: expected a positive number of AP points, got {margin!r}")
    return float(margin)


def load_study(root: str | Path) -> Study:
    """Parse ``root/study.yaml`` and check that every referenced arm and config exists."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise StudyError(f"{root}: no {MANIFEST} (the study manifest) in this folder")
    try:
        data = _mapping(yaml.safe_load(path.read_text()), str(path))
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from exc
    arms: dict[str, Arm] = {}
    for name, spec in _mapping(data.get("arms"), f"{path}: arms").items():
        if not isinstance(spec, dict) or "config" not in spec:
            raise StudyError(f"{path}: arm {name!r} needs a mapping with a 'config' file")
        cfg_path = _config_file(root, spec["config"], f"{path}: arm {name!r}")
        arms[str(name)] = Arm(str(name), cfg_path, str(spec.get("label", name)), spec.get("max_seeds"))
    if not arms:
        raise StudyError(f"{path}: no arms")
    groups: list[Group] = []
    claims: list[Claim] = []
    for i, g in enumerate(data.get("groups") or []):
        where = f"{path}: group {g.get('key', i)!r}"
        groups.append(
            Group(
                str(g["key"]),
                str(g.get("title", g["key"])),
                tuple(g.get("arms", [])),
                _choice(g.get("kind", "table"), GROUP_KINDS, f"{where}.kind"),
                {str(k): float(v) for k, v in _mapping(g.get("paper_ap"), f"{where}.paper_ap").items()},
                str(g.get("note", "")).strip(),
            )
        )
    for c in data.get("claims") or []:
        where = f"{path}: claim {c.get('text')!r}"
        claims.append(
            Claim(
                str(c["text"]),
                tuple(c.get("arms", [])),
                _choice(c.get("kind", "better"), CLAIM_KINDS, f"{where}.kind"),
                _choice(c.get("metric", "final"), METRICS, f"{where}.metric"),
                _claim_margin(c, where),
            )
        )
    named = [(g.key, g.arms) for g in groups] + [(c.text, c.arms) for c in claims]
    for label, names in named:
        missing = [a for a in names if a not in arms]
        if missing:
            raise StudyError(f"{path}: {label!r} names unknown arm(s) {missing}")
    early = int(data.get("early_epoch", 1))
    dataset = _dataset(data.get("dataset"), f"{path}: dataset", "data/synthpose_study")
    regimes = _regimes(root, path, data, early)
    for r in regimes.values():
        if r.pretrain is not None and r.pretrain.dataset.seed == dataset.seed:
            raise StudyError(
                f"{path}: regime {r.name!r} pretrains on SynthPose seed {dataset.seed}, the study's own "
                "seed: the pretraining set must be disjoint (give it another seed)"
            )
        if r.pretrain is not None and Path(r.pretrain.dataset.dir) == Path(dataset.dir):
            raise StudyError(f"{path}: regime {r.name!r} pretrains in the study's dataset folder {dataset.dir}")
    return Study(root, str(data.get("title", root.name)), dataset, arms, tuple(groups), tuple(claims), regimes)
