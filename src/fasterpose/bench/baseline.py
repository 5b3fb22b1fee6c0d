"""The package as it was at another git revision, importable beside the current one (old-vs-new timing).

On a shared machine the same code runs 1.5-2x slower from one minute to the next, so a speed-up is
only shown by timing old and new code interleaved in one process. :func:`import_baseline` extracts
``src/fasterpose`` at a revision (``git archive``) into a temporary folder under another top-level
name (default ``fasterpose_base``), rewrites the package's own absolute imports to that name, and
imports it. Only modules whose dependencies are plain imports work this way (no entry points, no
package data looked up by distribution name); the data pipeline and SynthPose are such modules.
What is process-wide (the allocator settings a data worker makes) needs separate processes instead:
:func:`interleave` runs old and new as two child processes timed block by block in alternation.
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


def interleave(command: Callable[[str], list[str]], blocks: int, timeout: float = 900.0) -> dict[str, Any]:
    """Time ``old`` and ``new`` in two live processes, one block at a time in alternation (old, new, new, old...).

    ``command(variant)`` starts a process that speaks :func:`serve_blocks`' protocol. Separate
    processes measure what is process-wide (allocator settings, import-time state) as each revision
    has it; blocks of a fraction of a second, alternated, let load drift hit both alike. Returns
    ``{"old": [block seconds...], "new": [...], "final": {variant: its closing object}}``.
    """
    procs = {
        v: subprocess.Popen(command(v), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        for v in ("old", "new")
    }

    def ask(variant: str, line: str) -> dict[str, Any]:
        proc = procs[variant]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        reply = proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"the {variant} process ended (exit code {proc.wait(timeout)})")
        return json.loads(reply)  # type: ignore[no-any-return]

    times: dict[str, Any] = {"old": [], "new": []}
    try:
        for v in procs:
            ask(v, "ready")  # imported and warmed up
        for b in range(blocks):
            for v in ("new", "old") if b % 2 else ("old", "new"):
                times[v].append(ask(v, "block")["seconds"])
        times["final"] = {v: ask(v, "end") for v in procs}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout)
    return times


def serve_blocks(setup: Callable[[], Any], block: Callable[[Any], float], end: Callable[[Any], dict[str, Any]]) -> None:
    """A child of :func:`interleave`: ``setup()`` once (on ``ready``), then one ``block(state)`` (its CPU
    seconds) per ``block`` line, and ``end(state)`` (a JSON object) on ``end``; one JSON line per reply."""
    state = None
    for line in sys.stdin:
        command = line.strip()
        if command == "ready":
            state = setup()
            reply: dict[str, Any] = {}
        elif command == "block":
            reply = {"seconds": block(state)}
        else:
            print(json.dumps(end(state)), flush=True)
            return
        print(json.dumps(reply), flush=True)


def compare_old_new(
    script: str | Path, opts: list[str], blocks: int, per_block: int, unit: str, revision: str
) -> dict[str, Any]:
    """``script --child old|new *opts --baseline revision`` timed by :func:`interleave`: per-core rates of
    ``unit`` (its children count ``per_block`` of them a block and end with ``faults_per_<unit>`` and
    ``sha256``), page faults, the old / new ratios and whether both made the same bytes."""

    def command(variant: str) -> list[str]:
        return [sys.executable, str(script), "--child", variant, *opts, "--baseline", revision]

    t = interleave(command, blocks)
    final = t["final"]
    return {
        "revision": revision,
        f"{unit}s_per_block": per_block,
        **{f"{v}_{unit}s_per_second_per_core": round(per_block * len(t[v]) / sum(t[v]), 1) for v in ("old", "new")},
        **{f"{v}_page_faults_per_{unit}": round(final[v][f"faults_per_{unit}"], 1) for v in ("old", "new")},
        **ratio_summary(t["old"], t["new"]),
        "same_bytes": final["old"]["sha256"] == final["new"]["sha256"],
    }


def ratio_summary(old: list[float], new: list[float]) -> dict[str, Any]:
    """Ratios old / new of paired block timings (above 1: the new code is faster): median, quartiles, totals."""
    ratios = sorted(o / n for o, n in zip(old, new, strict=True))
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "cpu_ratio_old_over_new_median": round(statistics.median(ratios), 3),
        "cpu_ratio_old_over_new_quartiles": [round(q[0], 3), round(q[2], 3)],
        "cpu_ratio_old_over_new_of_totals": round(sum(old) / sum(new), 3),
        "blocks": len(ratios),
    }
