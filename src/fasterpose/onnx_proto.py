"""The ``metadata_props`` of an ``.onnx`` file, read from its protobuf bytes with no package at all.

An ONNX file is one serialized ``ModelProto``. Its ``metadata_props`` (field 14) are
``StringStringEntryProto`` messages (``key`` = field 1, ``value`` = field 2); every other field is
skipped by its length without being read, so a 100 MB graph costs a few seeks. This lets an install
with OpenVINO alone (which reads ONNX itself) or with no runtime yet find the config a model carries,
without the ``onnx`` package or an ONNX Runtime session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

METADATA_PROPS = 14
GRAPH = 7
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class OnnxProtoError(ValueError):
    """The bytes are not a well-formed ONNX ModelProto (truncated, corrupt, or another kind of file)."""


def _varint(fh: BinaryIO) -> int | None:
    """One base-128 varint, or None at a clean end of file."""
    result = shift = 0
    while True:
        byte = fh.read(1)
        if not byte:
            if shift:
                raise OnnxProtoError("the file ends inside a field header (truncated)")
            return None
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
        shift += 7
        if shift > 63:
            raise OnnxProtoError("a field header is not a valid varint (corrupt)")


def _fields(fh: BinaryIO, end: int) -> dict[int, list[tuple[int, int, bytes]]]:
    """Top-level fields up to ``end`` as ``{number: [(start, stop, payload)]}`` for ``metadata_props``
    (payload read; start/stop: the field's bytes, tag included) and ``graph`` (payload not read)."""
    wanted: dict[int, list[tuple[int, int, bytes]]] = {METADATA_PROPS: [], GRAPH: []}
    while fh.tell() < end:
        start = fh.tell()
        tag = _varint(fh)
        if tag is None:
            break
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise OnnxProtoError("field number 0 (not a protobuf message)")
        if wire == _VARINT:
            if _varint(fh) is None:
                raise OnnxProtoError("the file ends inside a value (truncated)")
            continue
        size = {_FIXED64: 8, _FIXED32: 4}.get(wire)
        if size is None:
            if wire != _BYTES:
                raise OnnxProtoError(f"wire type {wire} is not used by ONNX (corrupt)")
            size = _varint(fh)
            if size is None:
                raise OnnxProtoError("the file ends inside a field header (truncated)")
        if fh.tell() + size > end:
            raise OnnxProtoError(f"field {number} needs {size} bytes, the file has {end - fh.tell()} left (truncated)")
        if number == METADATA_PROPS:
            wanted[number].append((start, fh.tell() + size, fh.read(size)))
        else:
            if number == GRAPH:
                wanted[GRAPH].append((start, fh.tell() + size, b""))
            fh.seek(size, os.SEEK_CUR)
    return wanted


def _entry(data: bytes) -> tuple[str, str]:
    import io

    fields: dict[int, str] = {}
    fh = io.BytesIO(data)
    while fh.tell() < len(data):
        tag = _varint(fh)
        if tag is None or tag & 7 != _BYTES:
            raise OnnxProtoError("a metadata entry is not a key/value pair (corrupt)")
        size = _varint(fh) or 0
        raw = fh.read(size)
        if len(raw) != size:
            raise OnnxProtoError("a metadata entry is cut short (corrupt)")
        fields[tag >> 3] = raw.decode("utf-8", errors="replace")
    return fields.get(1, ""), fields.get(2, "")


def _read(path: str | os.PathLike[str]) -> dict[int, list[tuple[int, int, bytes]]]:
    p = Path(path)
    with p.open("rb") as fh:
        return _fields(fh, p.stat().st_size)


def metadata_entries(path: str | os.PathLike[str]) -> list[tuple[str, str, int, int]]:
    """``(key, value, start, stop)`` of each metadata_props entry in file order; start/stop are the
    entry's byte span in the file (what :mod:`fasterpose.integrity` leaves out of the content hash).
    :class:`OnnxProtoError` when the bytes are not well-formed protobuf."""
    return [(*_entry(raw), start, stop) for start, stop, raw in _read(path)[METADATA_PROPS]]


def onnx_metadata_props(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{key: value}`` of the model's metadata_props; :class:`OnnxProtoError` when the file is no ONNX model."""
    fields = _read(path)
    if not fields[GRAPH]:
        raise OnnxProtoError("no graph in the file (not an ONNX model)")
    return dict(_entry(raw) for _, _, raw in fields[METADATA_PROPS])
