"""Where and when a benchmark figure was measured: one block every benchmark JSON carries.

A figure in the docs is only worth its machine, its date and its load: the same script gives 2x
different absolute timings on a loaded 2-core box, and a CPU without bf16 or VNNI changes which
runtime wins. :func:`provenance` records those facts (no torch import: it runs in the torch-free
install too).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

from fasterpose import cpuinfo
from fasterpose.source import git_commit

# the instruction-set flags that decide CPU speed of fp32 / bf16 / int8 inference (from /proc/cpuinfo)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


# instruction-set classes, fastest first: the first whose flags the CPU has is its class
CPU_CLASSES = (
    ("amx", ("amx_bf16", "amx_int8")),
    ("avx512_bf16_vnni", ("avx512_bf16", "avx512_vnni")),
    ("avx512", ("avx512f",)),
    ("avx2", ("avx2",)),
)


def cpu_class(flags: set[str] | list[str] | tuple[str, ...] | None = None) -> str:
    """The CPU's instruction-set class: ``amx`` (AMX tiles), ``avx512_bf16_vnni`` (AVX-512 with BF16 or
    VNNI, no AMX), ``avx512``, ``avx2``, or ``unknown`` (none of these, or no /proc/cpuinfo).

    ``flags``: /proc/cpuinfo flag names (default: this machine's). Which runtime is fastest, and
    whether bf16 / int8 have hardware behind them, changes between these classes.
    """
    have = set((cpuinfo.read_cpuinfo() or {}).get("flags", "").split()) if flags is None else set(flags)
    return next((name for name, needs in CPU_CLASSES if have & set(needs)), "unknown")


def cpu_name() -> str:
    """The CPU's model name (e.g. ``AMD EPYC 7B13``), or what :mod:`platform` knows."""
    return (cpuinfo.read_cpuinfo() or {}).get("model name") or platform.processor() or platform.machine()


def cpu_facts() -> dict[str, Any]:
    """CPU model, vendor family/model numbers, the flags of :data:`CPU_FLAGS` it has, and visible cores."""
    info = cpuinfo.read_cpuinfo() or {}
    flags = set(info.get("flags", "").split())
    return {
        "cpu": cpu_name(),
        "vendor": info.get("vendor_id"),
        "family": int(info["cpu family"]) if info.get("cpu family", "").isdigit() else None,
        "model": int(info["model"]) if info.get("model", "").isdigit() else None,
        "flags": [f for f in CPU_FLAGS if f in flags],
        "class": cpu_class(flags),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "arch": platform.machine(),
    }


def load_average() -> float | None:
    """1-minute load average (None where unknown): above the core count, other jobs shared the CPU."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _command_line() -> str:
    """This process's command line as a user would type it (``fasterpose ...`` for the console script)."""
    name = Path(sys.argv[0]).name
    if name == "fasterpose":
        return " ".join(["fasterpose", *sys.argv[1:]])
    return " ".join(["python", *sys.argv])


def provenance(command: str | None = None) -> dict[str, Any]:
    """Date (UTC), command line, commit, machine facts and the load average when measuring started.

    Call it before measuring and :func:`finish` after, so the load at both ends is in the JSON.
    """
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command or _command_line(),
        "commit": git_commit(short=True),
        "machine": cpu_facts(),
        "python": platform.python_version(),
        "load_average_start": load_average(),
    }


def finish(block: dict[str, Any]) -> dict[str, Any]:
    """``block`` with the end time's load average added (returns the same dict)."""
    block["load_average_end"] = load_average()
    return block


def emit(report: dict[str, Any], out: str | os.PathLike[str] | None, indent: int = 2) -> str:
    """Print ``report`` as JSON and, when ``out`` is given, write it there (atomically); returns the text."""
    import json

    from fasterpose.atomic import atomic_write_text

    text = json.dumps(report, indent=indent)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out), text + "\n")
    return text
