"""How many data-loading workers to start: ``data.num_workers``, capped at the CPUs this process may use.

The paper configs ask for 4 workers; on a 2-core machine PyTorch's DataLoader would warn about it at
every epoch. The cap applies once, with one info line naming the key, and never raises a request.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
_reported: set[tuple[int, int]] = set()


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def capped_workers(requested: int, key: str = "data.num_workers") -> int:
    """``requested`` workers, or the usable CPU count when that is smaller (said once per value)."""
    cpus = usable_cpus()
    if requested <= cpus:
        return requested
    if (requested, cpus) not in _reported:
        _reported.add((requested, cpus))
        log.info("%s=%d but this machine has %d usable CPU cores: using %d workers", key, requested, cpus, cpus)
    return cpus
