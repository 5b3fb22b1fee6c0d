"""A training run's folder: claimed by one run at a time, never silently reused, written crash-safely.

:meth:`RunFolder.claim` (used by :func:`fasterpose.engine.train.train`) checks the folder can be
written before any work, takes a lock file (``.lock``: pid and host of the owner; a lock left by a
dead process on this host is taken over with a warning), deletes the temporary files a killed save
left, repairs a metrics log cut mid-line, and refuses a folder that already holds a run unless the
run resumes it or ``overwrite`` was asked for (which deletes that run's files, and only those).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fasterpose.atomic import (
    append_line,
    atomic_write_text,
    drop_partial_line,
    refuse_inputs,
    remove_stale_temps,
)

log = logging.getLogger(__name__)

LOCK = ".lock"
METRICS = "metrics.jsonl"
# What a run writes; the first three mean "this folder holds a run" (the last two: earlier names).
RUN_FILES = (
    "last.pth",
    "best.pth",
    METRICS,
    "config.yaml",
    "training_curve.png",
    "results_val_gt.json",
    "metrics_val_gt.json",
    "results_val_det.json",
    "metrics_val_det.json",
    "results_val.json",
    "metrics_val.json",
)


class RunFolderError(ValueError):
    """The run folder cannot be used: it holds another run, is locked, or is not writable."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class RunFolder:
    """``path``: the folder; ``writer``: whether this process writes it (rank 0 only under DDP); ``what``:
    what holds such a folder and ``elsewhere`` how to avoid it, for the lock's error message."""

    path: Path
    writer: bool = True
    what: str = "training run"
    elsewhere: str = "choose another train.out_dir"

    @classmethod
    @contextmanager
    def claim(
        cls,
        path: str | os.PathLike[str],
        resume: bool,
        overwrite: bool = False,
        writer: bool = True,
        what: str = "training run",
        elsewhere: str = "choose another train.out_dir",
        inputs: dict[str, str | None] | None = None,
    ) -> Iterator[RunFolder]:
        """The folder, locked for this run while inside; see the module docstring.

        ``inputs``: what the run reads (``{"model.weights": path}``); a run file that is one of them is
        refused, even with ``overwrite`` (the run would delete or replace its own input)."""
        folder = cls(Path(path), writer, what, elsewhere)
        if not writer:
            yield folder
            return
        refuse_inputs([folder.path / name for name in RUN_FILES], dict(inputs or {}), option="train.out_dir")
        folder._make_writable()
        folder._lock()
        try:
            removed = remove_stale_temps(folder.path)
            if removed:
                log.warning("removed %d temporary file(s) an interrupted save left in %s", len(removed), folder.path)
            if drop_partial_line(folder.path / METRICS):
                log.warning("%s ended in a cut line (a killed write): dropped it", folder.path / METRICS)
            if not resume:
                folder._refuse_or_clear(overwrite)
            yield folder
        finally:
            folder._unlock()

    def _make_writable(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"train.out_dir {self.path} is a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create the run folder {self.path}: {exc.strerror or exc}") from exc
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunFolderError(f"the run folder {self.path} is not writable (permission denied)")

    def _lock(self) -> None:
        lock = self.path / LOCK
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                self._handle_existing_lock(lock)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(mine)
            return
        raise RunFolderError(f"{lock}: could not take the lock (another run keeps taking it)")

    def _handle_existing_lock(self, lock: Path) -> None:
        try:
            owner = json.loads(lock.read_text() or "{}")
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            pid, host = -1, socket.gethostname()  # unreadable or half-written: treat as stale
        if host != socket.gethostname():
            raise RunFolderError(
                f"{self.path} is locked by a run on host {host} (pid {pid}); if that run is gone, delete {lock}"
            )
        if pid > 0 and _pid_alive(pid):
            raise RunFolderError(
                f"{self.path} is in use by another {self.what} (pid {pid}, lock file {lock}); wait for it to "
                f"finish or {self.elsewhere}"
            )
        log.warning("%s: stale lock of a process that no longer runs (pid %d): taking it over", lock, pid)
        lock.unlink(missing_ok=True)

    def _unlock(self) -> None:
        lock = self.path / LOCK
        with contextlib.suppress(OSError, ValueError):
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()

    def _refuse_or_clear(self, overwrite: bool) -> None:
        held = [name for name in RUN_FILES[:3] if (self.path / name).exists()]
        if not held:
            return
        if not overwrite:
            raise RunFolderError(
                f"{self.path} already holds a run ({', '.join(held)}): pass --resume to continue it, "
                f"--overwrite to replace it, or choose another train.out_dir"
            )
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        log.warning("--overwrite: deleted the earlier run's files in %s", self.path)

    def write_text(self, name: str, text: str) -> None:
        """Atomically write ``name`` (writer only)."""
        if self.writer:
            atomic_write_text(self.path / name, text, what="run file")

    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON object to ``metrics.jsonl`` (writer only)."""
        if self.writer:
            append_line(self.path / METRICS, json.dumps(record))
