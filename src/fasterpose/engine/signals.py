"""Graceful stop on SIGINT / SIGTERM: the first signal asks the loop to stop, a second Ctrl-C aborts."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class StopRequest:
    """Set by a signal handler; the training loop polls ``requested`` between iterations."""

    requested: bool = False


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """While inside, SIGINT/SIGTERM set ``requested`` (finish the iteration, checkpoint, exit) and a
    second SIGINT raises ``KeyboardInterrupt``. Previous handlers are restored on exit. Outside the
    main thread (where Python cannot install handlers) the request simply never fires."""
    stop = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.requested = True
        log.warning("%s received: stopping after this iteration (Ctrl-C again to abort)", signal.Signals(signum).name)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield stop
        return
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
