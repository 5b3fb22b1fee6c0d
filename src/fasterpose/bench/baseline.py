"""The package as it was at another git revision, importable beside the current one (old-vs-new timing).

On a shared machine the same code runs 1.5-2x slower from one minute to the next, so a speed-up is
only shown by timing old and new code interleaved in one process. :func:`import_baseline` extracts
``src/fasterpose`` at a revision (``git archive``) into a temporary folder under another top-level
name (default ``fasterpose_base``), rewrites the package's own absolute imports to that name, and
imports it. Only modules whose dependencies are plain imports work this way (no entry points, no
package data looked up by distribution name); the data pipeline and SynthPose are such modules.
What is process-wide (the allocator settings a data worker makes) needs fresh processes instead:
:func:`alternate` runs old and new as alternating child processes.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "fasterpose"
# "fasterpose" as a module path: followed by ".name", or a whole word after "import " / "from "
_IMPORT_NAME = re.compile(rf"(?<![\w/.-]){PACKAGE}(?=\.[A-Za-z_])|(?:(?<=import )|(?<=from )){PACKAGE}\b(?!_)")


def rewrite_imports(source: str, name: str) -> str:
    """``source`` with the package's absolute module paths (``fasterpose.x``, ``import fasterpose``) renamed."""
    return _IMPORT_NAME.sub(name, source)


def import_baseline(
    rev: str, module: str = "", name: str = "fasterpose_base", repo: str | Path | None = None
) -> ModuleType:
    """Import ``src/fasterpose`` at git revision ``rev`` as the top-level package ``name``; return its ``module``.

    ``module`` is a dotted path inside the package (``"data.synthpose"``; empty: the package). The
    extracted tree lives in a temporary folder for the life of the process and is extracted once
    per process. Raises ``RuntimeError`` when the revision (or the repository) is not there.
    """
    target = f"{name}.{module}" if module else name
    if name in sys.modules:
        return importlib.import_module(target)
    root = Path(repo) if repo is not None else Path(__file__).resolve().parents[3]
    done = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", rev, f"src/{PACKAGE}"], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git archive {rev} src/{PACKAGE} failed: {done.stderr.decode(errors='replace').strip()}")
    folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / name
    (folder / "src" / PACKAGE).rename(package)
    for path in package.rglob("*.py"):
        path.write_text(rewrite_imports(path.read_text(), name))
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    return importlib.import_module(target)


def alternate(
    command: Callable[[str], list[str]], rounds: int, timeout: float = 900.0
) -> dict[str, list[dict[str, Any]]]:
    """Run ``command("old")`` and ``command("new")`` as fresh processes, ``rounds`` times each, alternating
    which goes first (old, new, new, old, ...); each must print one JSON object as its last line.

    Fresh processes measure what is process-wide (allocator settings, import-time state) as each
    revision has it; alternating them lets load drift hit both. Returns the parsed objects per variant.
    """
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for r in range(rounds):
        for variant in ("new", "old") if r % 2 else ("old", "new"):
            done = subprocess.run(command(variant), capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{variant} run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def ratio_summary(old: list[float], new: list[float]) -> dict[str, Any]:
    """Per-round ratios old / new of paired timings (above 1: the new code is faster), and their median."""
    ratios = [o / n for o, n in zip(old, new, strict=True)]
    return {
        "ratio_old_over_new_per_round": [round(x, 3) for x in ratios],
        "ratio_old_over_new_median": round(statistics.median(ratios), 3),
    }
