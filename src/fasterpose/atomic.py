"""Crash-safe file writes: a temporary file beside the target, fsync, then one rename.

A process killed mid-write leaves the previous file intact and, at worst, one hidden temporary
``.<name>.<token>.tmp`` beside it; :func:`remove_stale_temps` deletes those on the next start.
Temporary files are created with mode 0666 minus the user's umask, so the result has the same
permissions as a file written with ``open()`` (``tempfile.mkstemp`` would make it 0600).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def _write_error(exc: BaseException, dest: Path, what: str) -> OSError:
    """A one-line error naming ``dest``; the disk-full case says so in words."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(exc):
        reason = "the disk is full (no space left on device); free some space or write to another disk"
    else:
        reason = str(exc) or exc.__class__.__name__
    err = OSError(f"cannot write {what} {dest}: {reason} (any earlier {dest.name} is intact)")
    err.errno = code
    return err


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], what: str = "file") -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, fsync it, rename it to ``path``.

    Any error (disk full, permission, a failing ``write``) removes the temporary file and raises an
    ``OSError`` whose message names ``path`` and ``what`` it is; the previous file stays as it was.
    """
    dest = Path(path)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.tmp"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    except OSError as exc:
        raise _write_error(exc, dest, what) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        raise _write_error(exc, dest, what) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


@contextlib.contextmanager
def atomic_files(dests: list[Path], what: str = "file") -> Iterator[Path]:
    """Write several files that belong together (an OpenVINO ``.xml`` + ``.bin``): yield a hidden
    temporary folder beside ``dests[0]``; the caller writes each file there under its final name, and
    on success each is fsynced and renamed over its destination, in the order given (the entry file
    last; errors name it). On any error the folder is removed and the destinations are as they were."""
    first = Path(dests[-1])
    tmp = first.parent / f".{first.name}.{secrets.token_hex(6)}.tmp"
    try:
        first.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise _write_error(exc, first, what) from exc
    try:
        yield tmp
        for dest in dests:
            staged = tmp / Path(dest).name
            with open(staged, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(staged, dest)
    except OSError as exc:
        raise _write_error(exc, first, what) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _writer(data: bytes) -> Callable[[BinaryIO], None]:
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return write


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, what: str = "file") -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, _writer(data), what)


def atomic_write_text(path: str | os.PathLike[str], text: str, what: str = "file") -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, _writer(text.encode()), what)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single ``write`` (O_APPEND): a crash can cut at most this last line,
    which :func:`drop_partial_line` removes on the next start."""
    data = (line.rstrip("\n") + "\n").encode()
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _write_error(exc, p, "log") from exc


def drop_partial_line(path: str | os.PathLike[str]) -> bool:
    """Cut a line-oriented file back to its last complete line; True if something was cut."""
    p = Path(path)
    if not p.is_file():
        return False
    data = p.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    keep = data[: data.rfind(b"\n") + 1]
    atomic_write(p, _writer(keep), "log")
    return True


class InputOverwriteError(ValueError):
    """An output path that is one of the command's inputs (refused even with ``--overwrite``)."""


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # a hard link or another spelling
    except OSError:
        return False


def model_input_files(model: str | os.PathLike[str] | None) -> list[Path]:
    """The files a model path stands for: an OpenVINO ``.xml`` and its ``.bin``, else the file itself."""
    if model is None:
        return []
    from fasterpose.runtimes.suffixes import model_files

    return model_files(model)


def refuse_inputs(
    outputs: list[Path | None], inputs: dict[str, list[Path] | Path | str | None], option: str = "--out"
) -> None:
    """Raise :class:`InputOverwriteError` when an output is one of the inputs (the same file).

    Args:
        outputs: the paths a command would write (None entries are ignored).
        inputs: what each input is (``"model"``, ``"boxes file"``) -> its path or paths.
        option: the option to change, for the message.
    """
    for out in outputs:
        if out is None:
            continue
        for what, paths in inputs.items():
            if paths is None:
                continue
            for path in paths if isinstance(paths, list) else [Path(paths)]:
                if _same_file(Path(out), Path(path)):
                    raise InputOverwriteError(
                        f"{out}: the output would overwrite the input {what} {path}; pass another {option} "
                        "(an input is never replaced, even with --overwrite)"
                    )


def check_writable_folder(folder: str | os.PathLike[str], what: str = "output") -> None:
    """Create ``folder`` if needed and write a probe file there: an unwritable or read-only output is
    found before any work, not after it (``os.access`` alone says yes to root on a read-only mount)."""
    d = Path(folder)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".write-probe.{secrets.token_hex(6)}.tmp"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise OSError(f"cannot write the {what} folder {d}: {exc.strerror or exc}; pass another --out") from None


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files an interrupted :func:`atomic_write` left in ``folder``."""
    d = Path(folder)
    if not d.is_dir():
        return []
    stale = [p for p in d.iterdir() if TEMP_PATTERN.match(p.name)]
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale
