"""Where ``predict`` writes, and the rules that keep it from destroying anything.

* No ``out``: a new numbered folder, ``runs/predict``, ``runs/predict2``, ... (the first that does
  not exist), holding the drawn images (or ``<video>_pose.mp4``), ``results.json`` and
  ``results_summary.json``.
* ``out`` a folder: the same files in it. ``out`` an image file (single-image source) or a video
  file (video source): that one file; results JSON only with ``json``.
* ``save=False``: no drawings and no folder; only an explicit ``json`` is written.

Refused before any work: an output folder that is the source, contains it or lies inside it; an
existing file this run would write (unless ``overwrite``). JSON is written atomically (temp file in
the same folder, then rename), so a killed run never leaves half a results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fasterpose import atomic
from fasterpose.deploy.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Source

DEFAULT_BASE = Path("runs") / "predict"


class OutputError(ValueError):
    """An output that would overwrite the source or an earlier file."""


def numbered_dir(base: Path = DEFAULT_BASE) -> Path:
    """``base``, else ``base2``, ``base3``, ...: the first that does not exist."""
    if not base.exists():
        return base
    n = 2
    while (candidate := base.with_name(f"{base.name}{n}")).exists():
        n += 1
    return candidate


def check_outside_source(out: Path, source: Path) -> None:
    """Refuse an output folder that is the source, contains it, or lies inside a source folder."""
    o, s = out.resolve(), source.resolve()
    if o == s or s.is_relative_to(o) or (source.is_dir() and o.is_relative_to(s)):
        raise OutputError(
            f"output folder {out} is, contains or lies inside the source {source}: predict never writes "
            "next to its inputs; pass another --out (or none: a new runs/predict folder)"
        )


@dataclass
class OutputPlan:
    """The files one run writes; :meth:`claim` refuses any that already exists unless ``overwrite``."""

    folder: Path | None = None
    single_file: Path | None = None
    json_path: Path | None = None
    summary_path: Path | None = None
    overwrite: bool = False
    created: set[Path] = field(default_factory=set)

    def claim(self, path: Path) -> Path:
        if path.exists() and path not in self.created and not self.overwrite:
            raise OutputError(f"{path} exists and was not written by this run; pass --overwrite or another --out")
        self.created.add(path)
        return path

    def image_path(self, name: str) -> Path | None:
        return self.single_file or (self.folder / name if self.folder else None)

    def video_path(self, stem: str) -> Path | None:
        return self.single_file or (self.folder / f"{stem}_pose.mp4" if self.folder else None)

    def write_image(self, name: str, rgb: np.ndarray) -> None:
        path = self.image_path(name)
        if path is None:
            return
        self.claim(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(path.suffix or ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OutputError(f"{path}: OpenCV cannot encode this image format")
        atomic.atomic_write_bytes(path, data.tobytes(), what="drawing")

    def write_json(self, path: Path | None, text: str) -> None:
        if path is not None:
            atomic.atomic_write_text(self.claim(path), text, what="results")


def plan_outputs(
    source: Source, source_path: str, out: str | None, json_path: str | None, save: bool, overwrite: bool
) -> OutputPlan:
    """The output plan for one run, checked before any work (see the module docstring)."""
    if not save and out:
        raise OutputError("--no-save keeps nothing; it cannot be combined with --out")
    plan = OutputPlan(overwrite=overwrite, json_path=Path(json_path) if json_path else None)
    src = None if source_path.isdigit() and not Path(source_path).exists() else Path(source_path)
    if save:
        target = Path(out) if out else numbered_dir()
        single = target.suffix.lower() in (IMAGE_SUFFIXES if source.kind == "images" else VIDEO_SUFFIXES)
        if single and len(source.paths) > 1:
            raise OutputError(f"--out {target} is one file, but the source {source_path} holds {len(source.paths)}")
        if single:
            plan.single_file = target
        else:
            plan.folder = target
            plan.json_path = plan.json_path or target / "results.json"
        if src is not None and not single:
            check_outside_source(target, src)
        elif src is not None and target.resolve() == src.resolve():
            raise OutputError(f"--out {target} is the source file itself; predict never writes over its input")
    if plan.json_path is not None:
        plan.summary_path = plan.json_path.with_name(f"{plan.json_path.stem}_summary.json")
        if src is not None and src.is_dir() and plan.json_path.resolve().is_relative_to(src.resolve()):
            raise OutputError(f"--json {plan.json_path} lies inside the source folder {src}; write it elsewhere")
    _check_existing(plan, source)
    return plan


def _check_existing(plan: OutputPlan, source: Source) -> None:
    """Refuse up front when a file this run would write already exists (unless overwrite)."""
    if plan.overwrite:
        return
    planned = [plan.json_path, plan.summary_path]
    if source.kind == "images":
        planned += [plan.image_path(p.name) for p in source.paths]
    else:
        planned.append(plan.video_path(source.name))
    existing = [p for p in planned if p is not None and p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}{more} already exist(s); pass --overwrite or another --out / --json")
