"""The snapshot codec and atomic files on their own (``splitlab.allocator.persistence``)."""

import binascii
import fcntl
import json
import os
import struct

import numpy as np
import pytest

from splitlab.allocator.persistence import (
    SNAPSHOT_FORMAT,
    as_int,
    atomic_write,
    checked_array,
    pack,
    remove_stale_temporaries,
    unpack,
)
from splitlab.errors import InvalidArgumentError

MAGIC = b"SPLITLAB-ALLOCATOR\n"


def _frame(document: dict, payload: bytes = b"") -> bytes:
    """A blob built by hand from the documented layout, with zlib-independent CRC-32."""
    text = json.dumps(document).encode()
    body = MAGIC + struct.pack("<Q", len(text)) + text + payload
    return body + struct.pack("<I", binascii.crc32(body))


def test_codec_round_trips_arrays_bit_for_bit():
    rng = np.random.default_rng(3)
    arrays = {
        "signed_zero": np.array([-0.0, 0.0]),
        "empty": np.empty((0, 3)),
        "cube": rng.normal(size=(2, 3, 4)),
        "extremes": np.array([5e-324, 1.7976931348623157e308, -1e-300, 2.0**53]),
    }
    header, restored = unpack(pack({"kind": "snapshot", "note": "x"}, arrays), "snapshot")
    assert header["kind"] == "snapshot" and header["note"] == "x"
    assert header["format"] == SNAPSHOT_FORMAT
    assert set(restored) == set(arrays)
    for name, array in arrays.items():
        assert restored[name].shape == array.shape
        assert restored[name].tobytes() == array.astype("<f8").tobytes()
        assert restored[name].flags.writeable  # a copy, not a view of the blob


def test_blob_layout_is_magic_length_header_arrays_crc():
    blob = pack({"kind": "delta"}, {"x": np.array([1.0, 2.0])})
    assert blob.startswith(MAGIC)
    (length,) = struct.unpack("<Q", blob[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    header = json.loads(blob[start : start + length])
    assert header["arrays"] == {"x": {"offset": 0, "shape": [2]}}
    assert blob[start + length : -4] == struct.pack("<2d", 1.0, 2.0)
    assert struct.unpack("<I", blob[-4:])[0] == binascii.crc32(blob[:-4])


def test_a_blob_built_by_hand_from_the_layout_is_read():
    payload = struct.pack("<3d", 1.5, -2.0, 4.0)
    document = {
        "format": SNAPSHOT_FORMAT,
        "kind": "delta",
        "arrays": {"v": {"offset": 0, "shape": [3]}},
    }
    _, arrays = unpack(_frame(document, payload), "delta")
    assert arrays["v"].tolist() == [1.5, -2.0, 4.0]


@pytest.mark.parametrize("position", [len(MAGIC) + 9, -20, -1])
def test_codec_refuses_a_bad_crc(position):
    blob = bytearray(pack({"kind": "snapshot"}, {"x": np.arange(4.0)}))
    blob[position] ^= 0x01
    with pytest.raises(InvalidArgumentError, match="checksum mismatch"):
        unpack(bytes(blob), "snapshot")


def test_codec_refuses_truncation_wrong_kind_and_unknown_formats():
    blob = pack({"kind": "snapshot"}, {"x": np.arange(4.0)})
    with pytest.raises(InvalidArgumentError, match="checksum mismatch"):
        unpack(blob[:-8], "snapshot")
    with pytest.raises(InvalidArgumentError, match="truncated"):
        unpack(MAGIC + b"\0", "snapshot")
    with pytest.raises(InvalidArgumentError, match="is a snapshot, not a delta"):
        unpack(blob, "delta")
    with pytest.raises(InvalidArgumentError, match="not a splitlab allocator"):
        unpack(b"PK\x03\x04" + blob, "snapshot")
    with pytest.raises(InvalidArgumentError, match="has format 99"):
        unpack(_frame({"format": 99, "kind": "snapshot", "arrays": {}}), "snapshot")
    with pytest.raises(InvalidArgumentError, match="has format 1"):  # format-1 deltas: no
        unpack(_frame({"format": 1, "kind": "delta", "arrays": {}}), "delta")
    overrun = {"format": 2, "kind": "delta", "arrays": {"v": {"offset": 8, "shape": [3]}}}
    with pytest.raises(InvalidArgumentError, match="runs past the end"):
        unpack(_frame(overrun, bytes(24)), "delta")


def test_field_checks_name_the_field():
    with pytest.raises(InvalidArgumentError, match=r"'state\.period' must be an integer"):
        as_int(True, "state.period")
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        checked_array({"a": np.array([np.nan])}, "a", (1,))
    with pytest.raises(InvalidArgumentError, match=r"has shape \(2,\), expected \(3,\)"):
        checked_array({"a": np.zeros(2)}, "a", (3,))
    with pytest.raises(InvalidArgumentError, match="whole numbers"):
        checked_array({"a": np.array([0.5])}, "a", (1,), whole=True)


def _temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".splitlab-tmp"))


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.snap"
    target.write_bytes(b"old")
    atomic_write(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"new" and _temporaries(tmp_path) == []


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "state.snap"
    target.write_bytes(b"old")

    def failing(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old" and _temporaries(tmp_path) == []


def test_atomic_write_needs_an_existing_directory(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "x.snap", lambda handle: None)


def test_stale_temporaries_are_removed_and_held_ones_kept(tmp_path):
    stale = tmp_path / ".x.snap.1-aa.splitlab-tmp"
    stale.write_bytes(b"killed writer")
    held = tmp_path / ".x.snap.2-bb.splitlab-tmp"
    held.write_bytes(b"live writer")
    other = tmp_path / "x.splitlab-tmp"  # not hidden: not one of ours
    other.write_bytes(b"")
    descriptor = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        assert remove_stale_temporaries(tmp_path) == [stale]
    finally:
        os.close(descriptor)
    assert sorted(os.listdir(tmp_path)) == sorted([held.name, other.name])
