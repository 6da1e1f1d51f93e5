"""The IDX file format of MNIST, read with every header field checked.

An IDX file is a big-endian header followed by raw data::

    bytes 0-1   0x00 0x00
    byte  2     type code (0x08 = unsigned byte)
    byte  3     number of dimensions D
    then D × 4-byte big-endian sizes, then the values in C order.

So MNIST's images start with magic ``0x00000803`` (ubyte, 3 dims: N, 28, 28) and its
labels with ``0x00000801`` (ubyte, 1 dim: N). Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXError(ValueError):
    """An IDX file that is truncated, corrupt, or not what was expected."""


def read_idx(path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a NumPy array, checking magic and lengths."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip's truncated/corrupt stream
        raise IDXError(f"{path}: cannot be read as {'gzip' if path.endswith('.gz') else 'a file'} ({e}); "
                       "the file is probably truncated or corrupt — delete it and provide it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise IDXError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; an IDX file starts with "
                       "00 00, a type code (08 for unsigned bytes) and the number of dimensions")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise IDXError(f"{path}: has {ndim} dimensions in its header; expected {expect_ndim} "
                       f"(magic 0x{raw[:4].hex()}, expected 0x0000080{expect_ndim})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header ({len(raw)} bytes, needs {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise IDXError(f"{path}: holds {len(raw)} bytes, but its header {shape} of {dtype} needs {expected}; "
                       "the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
