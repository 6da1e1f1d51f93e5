"""Damaged checkpoint files: every truncation and every single-bit flip of a checkpoint either
raises mk.CheckpointError naming the file, or (a flipped bit in a field nothing reads, such
as a timestamp) loads exactly what was saved — never a raw zipfile/EOF error, never other
arrays."""

import os
import zipfile

import numpy as np
import pytest

import minikd as mk


def _state():
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7, dtype=np.int64)}


def _same(loaded, state):
    return list(loaded) == list(state) and all(
        loaded[k].dtype == v.dtype and loaded[k].shape == v.shape and np.array_equal(loaded[k], v)
        for k, v in state.items())


@pytest.fixture(params=[False, True], ids=["stored", "deflated"])
def checkpoint(request, tmp_path):
    path = tmp_path / "model.npz"
    mk.save(_state(), path, compress=request.param)
    return path, path.read_bytes()


def test_an_empty_file_is_reported_as_empty(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(mk.CheckpointError, match=r"load: '.*empty.npz' is empty \(0 bytes\)"):
        mk.load(path)


def test_every_truncation_raises_a_checkpoint_error_naming_the_file(checkpoint, tmp_path):
    _, raw = checkpoint
    damaged = tmp_path / "cut.npz"
    for n in range(len(raw)):
        damaged.write_bytes(raw[:n])
        with pytest.raises(mk.CheckpointError, match="cut.npz") as err:
            mk.load(damaged)
        assert "empty" in str(err.value) if n == 0 else any(
            w in str(err.value) for w in ("damaged", "truncated", "not a NumPy .npz archive")), (n, err.value)
    # the classic one: half a file
    damaged.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mk.CheckpointError, match=r"'.*cut.npz' is a damaged or truncated .npz archive"):
        mk.load(damaged)


def test_every_single_bit_flip_raises_or_loads_the_same_arrays(checkpoint, tmp_path):
    _, raw = checkpoint
    damaged = tmp_path / "flipped.npz"
    raised = same = 0
    for i in range(len(raw)):
        for bit in range(8):
            data = bytearray(raw)
            data[i] ^= 1 << bit
            damaged.write_bytes(data)
            try:
                loaded = mk.load(damaged)
            except mk.CheckpointError as e:
                assert "flipped.npz" in str(e), e
                raised += 1
            else:
                assert _same(loaded, _state()), (i, bit, loaded)
                same += 1
    assert raised > same > 0  # most flips are detected; some land in fields nothing reads (times, versions)


def test_a_flipped_bit_in_the_array_data_is_a_crc_error_naming_the_entry(tmp_path):
    path = tmp_path / "crc.npz"
    mk.save(_state(), path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w.npy")
    offset = raw.index(b"w.npy", info.header_offset) + len("w.npy") + len(info.extra) + info.file_size - 1
    raw[offset] ^= 0x01  # the last byte of w's data: a valid .npy still, but not what was written
    path.write_bytes(raw)
    with pytest.raises(mk.CheckpointError, match=r"entry 'w' of '.*crc.npz' is damaged \(BadZipFile: Bad CRC-32"):
        mk.load(path)


def test_a_damaged_directory_that_hides_members_is_detected(tmp_path):
    """zipfile does not compare the member count of the end record with the directory: a
    flipped bit in a member's comment length swallows the members after it."""
    path = tmp_path / "hidden.npz"
    mk.save(_state(), path)
    raw = bytearray(path.read_bytes())
    first = raw.index(b"PK\x01\x02")  # the central directory entry of the first member
    raw[first + 33] ^= 0x01           # its comment length (bytes 32-33) grows by 256
    path.write_bytes(raw)
    with pytest.raises(mk.CheckpointError, match=r"end record lists 2 members, its directory 1"):
        mk.load(path)


def test_a_text_file_and_a_single_array_are_named_for_what_they_are(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not arrays")
    with pytest.raises(mk.CheckpointError, match=r"'.*notes.npz' is not a NumPy .npz archive"):
        mk.load(text)
    single = tmp_path / "w.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(mk.CheckpointError, match="single array"):
        mk.load(single)
    assert os.path.getsize(single) > 0
