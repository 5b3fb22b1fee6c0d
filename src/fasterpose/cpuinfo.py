"""This machine's CPU as ``/proc/cpuinfo`` describes it: the one reader (standard library only), asked by
the benchmark provenance (CPU model and class) and the bf16 check (:mod:`fasterpose.runtimes.device`)."""

from __future__ import annotations

from pathlib import Path


def read_cpuinfo() -> dict[str, str] | None:
    """The first processor's ``key: value`` lines of /proc/cpuinfo (None where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor only
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (x86 ``flags``, ARM ``Features``); None where /proc/cpuinfo is absent."""
    info = read_cpuinfo()
    if info is None:
        return None
    return frozenset((info.get("flags") or info.get("Features") or "").split())
