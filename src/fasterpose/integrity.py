"""Content hashes of the model files FasterPose writes, checked whenever one is loaded.

Every model file we write carries a SHA-256 of its content, and a load recomputes it before the file
is used: a damaged or edited file (a flipped byte, a zeroed tensor, another model's ``.bin``) is a
one-line :class:`IntegrityError` naming the file and the hash, never garbage keypoints. A file that
carries no hash (not written by FasterPose, or by a version before the hash) loads with one logged
line saying it is unverified.

=================  ==========================================================================
file               what is hashed, and where the hash is kept
=================  ==========================================================================
``.pth``           the model state dict's tensors (:func:`tensors_sha256`: name, dtype, shape,
                   bytes, sorted by name), under the checkpoint's ``model_sha256`` key
``.safetensors``   the same tensor hash, in the header's metadata (``tensors_sha256``)
``.onnx``          every byte of the file except the one ``metadata_props`` entry
                   ``fasterpose.sha256`` that holds the hash (written last in the file); the
                   check walks the protobuf's top-level fields (no ``onnx`` package, no runtime)
``.xml`` + ``.bin``  two hashes in one rt_info element ``<fasterpose><sha256 xml=".." bin=".."/>``:
                   of the ``.xml`` bytes without that element, and of the whole ``.bin``; the
                   check reads the files (no OpenVINO)
=================  ==========================================================================

Cost at load: one SHA-256 pass over the file (``scripts/bench_model_hash.py``). Torch is imported only
by :func:`tensors_sha256`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ONNX_HASH_KEY = "fasterpose.sha256"
_METADATA_PROPS = 14  # ModelProto.metadata_props
_CHUNK = 1 << 20
_IR_ELEMENT = re.compile(rb'<sha256 xml="([0-9a-f]{64})" bin="([0-9a-f]{64})" />')
_IR_ANCHOR = b"<fasterpose>"
_verified: dict[tuple[str, int, int, int, int], bool] = {}  # (path, size, mtime, bin size, bin mtime)
_warned: set[str] = set()


class IntegrityError(ValueError):
    """A model file whose content does not match the hash stored with it (damaged or edited)."""


def mismatch(path: str | os.PathLike[str], what: str, expected: str, got: str, fix: str) -> IntegrityError:
    """The one-line error: ``FILE: WHAT hash mismatch (file damaged or edited): expected .., got ..; FIX``."""
    return IntegrityError(
        f"{path}: {what} content hash mismatch (file damaged or edited since it was written): "
        f"expected {expected[:16]}..., got {got[:16]}...; {fix}"
    )


def unverified(path: str | os.PathLike[str], why: str) -> None:
    """Log, once per file, that ``path`` loads without a content check."""
    key = str(path)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s: unverified: %s, so damage to its weights cannot be detected", path, why)


def tensors_sha256(state: Mapping[str, Any]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict's tensors (sorted by name)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        if not isinstance(value, torch.Tensor):
            continue
        t = value.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _digest(path: Path, skip: tuple[int, int] | None = None) -> str:
    """SHA-256 of the file's bytes, leaving out the byte range ``skip`` = (start, end)."""
    h = hashlib.sha256()
    start, end = skip if skip is not None else (-1, -1)
    with path.open("rb", buffering=0) as fh:
        if skip is not None:
            left = start
            while left > 0:
                block = fh.read(min(_CHUNK, left))
                if not block:
                    break
                h.update(block)
                left -= len(block)
            fh.seek(end)
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


# ---------------------------------------------------------------- ONNX


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _entry_bytes(key: str, value: str) -> bytes:
    """One ``metadata_props`` field: tag, length, ``StringStringEntryProto(key, value)``."""
    k, v = key.encode(), value.encode()
    entry = b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(v)) + v
    return _varint(_METADATA_PROPS << 3 | 2) + _varint(len(entry)) + entry


def seal_onnx(model: bytes) -> bytes:
    """A serialized ONNX model with its content hash appended as the last ``metadata_props`` entry.

    Protobuf reads a repeated field's entries wherever they lie in the message, so the result is the
    same model with one more metadata entry; ``model`` must not carry one already."""
    return model + _entry_bytes(ONNX_HASH_KEY, hashlib.sha256(model).hexdigest())


def _onnx_hash_entry(path: Path) -> tuple[str, int, int] | None:
    """(stored hash, start, end) of the last ``fasterpose.sha256`` metadata entry, or None.

    Read by :func:`fasterpose.onnx_proto.metadata_entries` (other fields are skipped by their length).
    A file that is not well-formed protobuf gives None: the runtime then names what is wrong with it."""
    from fasterpose.onnx_proto import OnnxProtoError, metadata_entries

    try:
        entries = metadata_entries(path)
    except OnnxProtoError:
        return None
    found = [(value, start, stop) for key, value, start, stop in entries if key == ONNX_HASH_KEY]
    return found[-1] if found else None


def verify_onnx(path: str | os.PathLike[str]) -> bool:
    """Check an ``.onnx`` file's content hash: True when it matches, False (logged) when it has none."""
    p = Path(path)
    entry = _onnx_hash_entry(p)
    if entry is None:
        unverified(p, "it carries no FasterPose content hash (not written by fasterpose export)")
        return False
    expected, start, end = entry
    got = _digest(p, (start, end))
    if got != expected:
        raise mismatch(p, "model", expected, got, "re-export it with fasterpose export")
    return True


# ---------------------------------------------------------------- OpenVINO IR


def seal_openvino(xml_path: str | os.PathLike[str]) -> None:
    """Add the IR's content hashes (of the ``.xml`` and of its ``.bin``) to its rt_info, in place."""
    xml = Path(xml_path)
    text = xml.read_bytes()
    at = text.find(_IR_ANCHOR)
    if at < 0 or _IR_ELEMENT.search(text):
        raise ValueError(f"{xml}: no <fasterpose> rt_info to hold the content hash (or it has one already)")
    at += len(_IR_ANCHOR)
    element = b'<sha256 xml="%s" bin="%s" />' % (
        hashlib.sha256(text).hexdigest().encode(),
        _digest(xml.with_suffix(".bin")).encode(),
    )
    xml.write_bytes(text[:at] + element + text[at:])


def verify_openvino(xml_path: str | os.PathLike[str]) -> bool:
    """Check an IR's ``.xml`` and ``.bin`` against its hashes: True when both match, False (logged)
    when it carries none. A ``.bin`` of another model beside the ``.xml`` does not match."""
    xml = Path(xml_path)
    text = xml.read_bytes()
    found = _IR_ELEMENT.search(text)
    if found is None:
        unverified(xml, "it carries no FasterPose content hash (not written by fasterpose export)")
        return False
    got = hashlib.sha256(text[: found.start()] + text[found.end() :]).hexdigest()
    if got != found[1].decode():
        raise mismatch(xml, "model", found[1].decode(), got, "re-export it with fasterpose export")
    binary = xml.with_suffix(".bin")
    if not binary.is_file():
        return True  # OpenVINO names the missing file
    got = _digest(binary)
    if got != found[2].decode():
        raise mismatch(
            binary,
            f"weights (not the .bin {xml.name} was exported with: damaged, or another model's)",
            found[2].decode(),
            got,
            "re-export it with fasterpose export",
        )
    return True


def verify_exported(path: str | os.PathLike[str]) -> bool:
    """Check an ``.onnx`` or ``.xml`` (+ ``.bin``) once per process and file version (size, mtime)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return False  # the caller names the missing file
    from fasterpose.runtimes.suffixes import OPENVINO, exported_kind

    ir = exported_kind(p) == OPENVINO
    extra = (0, 0)
    if ir:
        b = p.with_suffix(".bin")
        extra = (b.stat().st_size, b.stat().st_mtime_ns) if b.is_file() else (-1, -1)
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, *extra)
    if key not in _verified:
        _verified[key] = verify_openvino(p) if ir else verify_onnx(p)
    return _verified[key]
