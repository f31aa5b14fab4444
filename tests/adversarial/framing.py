"""The Allocator's snapshot framing written out by hand from its documented layout, so
that the adversarial tests can corrupt a header or an array and re-frame it with a valid
length and CRC-32 without going through splitlab's own codec."""

from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np

MAGIC = b"SPLITLAB-ALLOCATOR\n"


def unpack(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The documented layout: MAGIC | u64 header length | JSON | float64 arrays | CRC-32."""
    (length,) = struct.unpack("<Q", blob[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    header = json.loads(blob[start : start + length])
    payload = blob[start + length : -4]
    arrays = {}
    for name, spec in header.pop("arrays").items():
        count = math.prod(spec["shape"])
        flat = np.frombuffer(payload, dtype="<f8", count=count, offset=spec["offset"])
        arrays[name] = flat.reshape(spec["shape"]).copy()
    return header, arrays


def pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """Re-frame a (mutated) header and arrays with a correct length and CRC-32."""
    layout, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype="<f8")
        layout[name] = {"offset": offset, "shape": list(data.shape)}
        chunks.append(data.tobytes())
        offset += data.nbytes
    text = json.dumps({**header, "arrays": layout}).encode()  # NaN allowed: hostile input
    body = MAGIC + struct.pack("<Q", len(text)) + text + b"".join(chunks)
    return body + struct.pack("<I", zlib.crc32(body))


def leaves(node, path=()):
    """Paths to every value of a JSON document (the first two entries of each list)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:2]):
            yield from leaves(value, (*path, index))


def set_leaf(document, path, value):
    """Replace the value at ``path`` (a tuple of keys and indices) in place."""
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
