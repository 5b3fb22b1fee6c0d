"""The user cache folder, where FasterPose keeps what it can make again (ONNX exports, decoded images).

``$FASTERPOSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/fasterpose``, else ``~/.cache/fasterpose``: never beside
the user's own files. Deleting it (or a subfolder) loses nothing that is not made again on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "FASTERPOSE_CACHE_DIR"


def user_cache_root() -> Path:
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "fasterpose") if xdg else str(Path.home() / ".cache" / "fasterpose")
    return Path(root)
