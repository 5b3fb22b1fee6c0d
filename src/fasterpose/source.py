"""The source tree this package runs from: its git commit (a standard-library leaf)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(short: bool = False) -> str | None:
    """The git commit of the checkout holding this package (full hash, or git's short form with
    ``short``); None outside a checkout or without git."""
    cmd = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
