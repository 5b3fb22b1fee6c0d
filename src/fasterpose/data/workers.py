"""Data-loading worker processes: how many to start, and the allocator setting each one runs with.

``data.num_workers`` is capped at the CPUs this process may use: the paper configs ask for 4
workers; on a 2-core machine PyTorch's DataLoader would warn about it at every epoch. The cap
applies once, with one info line naming the key, and never raises a request.

:func:`keep_freed_memory` stops glibc from handing a worker's freed image buffers back to the
system after every sample: with its default (dynamic) thresholds a COCO training sample took about
216 minor page faults, 1 ms of system time per 7 ms sample on a 2-core Xeon (``scripts/bench_data.py``).
It changes where memory comes from, never what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # blocks up to this size come from the heap (glibc's own dynamic maximum)
TRIM_THRESHOLD = 64 << 20  # free memory kept at the heap top before it is returned to the system


def keep_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MiB in the process heap for reuse (glibc only); True when set.

    Fixes glibc's mmap threshold at 32 MiB and its trim threshold at 64 MiB, so decoded images,
    crops and tensors are carved from memory the process already touched instead of fresh pages
    (a page fault per 4 KiB). A worker then keeps at most 64 MiB of freed memory. Called by
    :func:`fasterpose.data.dataset.seed_worker` in every DataLoader worker; elsewhere (no glibc)
    it does nothing and returns False.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
