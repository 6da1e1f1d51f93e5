"""Checkpoints: ``mk.save(model.state_dict(), path)`` and ``model.load_state_dict(mk.load(path))``.

Two formats, chosen by the file's suffix, neither with pickle (loading a checkpoint can
never run code hidden inside it):

- ``.npz``: a plain NumPy archive — a zip with one ``name.npy`` per array — readable by
  ``numpy.load`` anywhere (``load`` also reads one under another suffix, as ``numpy.savez``'s
  files may be; ``save`` writes only the two suffixes, so that ``student.pt`` is never a zip
  that ``torch.load`` then fails on);
- ``.safetensors``: the format of the PyTorch / Hugging Face ecosystem (a JSON header of
  names, dtypes, shapes and offsets, then the raw bytes), written and read by the
  ``safetensors`` package (``pip install safetensors``, in the ``deploy`` extra). minikd's
  state-dict names are PyTorch's for the same architecture, so
  ``torch_model.load_state_dict(safetensors.torch.load_file(path))`` takes a minikd
  checkpoint as it is (``docs/deploy.md``). The format holds numbers and booleans only (no
  strings, dates or complex numbers) and has no checksum of its own: minikd stores a
  SHA-256 of the arrays in the header's metadata and checks it on load, so a flipped bit is
  found (files from other tools, without it, are read unchecked; a file whose header says
  minikd wrote it must have it). The format is little-endian: a big-endian array is saved
  as the little-endian array it is read back as.

**Name → array, and nothing else.** A checkpoint maps string names to arrays of numbers,
booleans, strings or dates; whatever could not come back unchanged is refused when saving
(a name ending in ``.npy`` — ``"a"`` and ``"a.npy"`` would both be stored as ``a.npy`` —, a
non-string name, a value that is not an array or Tensor, an object or structured array) and
whatever is not such an array is refused when loading (a member that is not ``.npy``).

**Damage is reported, never half-read.** A truncated, empty or bit-flipped file raises
:class:`CheckpointError` naming the file and what is wrong with it: the zip's CRC-32 of every
member is checked, and each ``.npy`` header must describe exactly the bytes that follow it.

Writing is atomic: the archive goes to a temporary file in the same folder, which is
renamed over the target (``os.replace``) only once it is complete. A crash or an
error mid-write leaves the previous file (or no file), never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import backend
from .tensor import Tensor

#: dtype kinds a checkpoint holds: bool, ints, floats, complex, strings, bytes, datetimes
_KINDS = "biufcUSMm"
#: what a damaged archive can make zipfile / the .npy reader raise
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, NotImplementedError,
           OverflowError, KeyError, IndexError, RuntimeError, OSError)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: empty, not an ``.npz`` archive, truncated,
    damaged (a CRC or header mismatch), or holding something other than name → array.
    A ``ValueError``, so ``except ValueError`` catches it too."""


def _as_numpy(name, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    if not (isinstance(value, np.ndarray) or backend.get_array_module(value) is not np):
        raise TypeError(f"save: entry {name!r} is a {type(value).__name__}; a checkpoint holds arrays or Tensors "
                        f"only (wrap it: np.asarray(value))")
    a = backend.to_numpy(value)
    if a.dtype.hasobject:
        raise TypeError(f"save: entry {name!r} holds Python objects (dtype {a.dtype}); only numeric arrays can be "
                        f"saved without pickle")
    if a.dtype.kind not in _KINDS:
        raise TypeError(f"save: entry {name!r} has the structured dtype {a.dtype}; a checkpoint holds plain arrays "
                        f"of numbers, booleans, strings or dates (save each field under its own name)")
    return a


def _check_name(name) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"save: every key must be a non-empty string; got {name!r}")
    if name.endswith(".npy"):
        raise ValueError(f"save: key {name!r} ends in '.npy'; each array is stored as '<key>.npy', so {name!r} "
                         f"and {name[:-4]!r} would be the same entry — rename it")
    if "\x00" in name:
        raise ValueError(f"save: key {name!r} contains a NUL character, which a zip member name cannot hold")


def _path(path, op) -> str:
    """``path`` as a string: a str or an os.PathLike (a ``pathlib.Path``); TypeError naming ``op`` else."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{op}: path must be a file name (a str or a pathlib.Path); got {path!r}")
    return os.fspath(path)


def save(state_dict, path, compress: bool = False) -> None:
    """Write ``state_dict`` (a mapping name → array or Tensor) to ``path``: a ``.safetensors``
    file or an ``.npz`` archive, by the name's suffix (see the module docstring).

    Names may contain dots (``"conv1.weight"``). ``compress=True`` deflates the arrays of an
    ``.npz`` (smaller file, slower). The write is atomic (see the module docstring).

    Raises TypeError for a ``state_dict`` that is not a mapping, a key that is not a
    non-empty string, a value that is not an array or Tensor, or an object/structured
    array, or (``.safetensors``) an array of strings, dates, complex numbers or long doubles;
    ValueError for a key that could not round-trip (ending in ``.npy``, or holding a NUL; in a
    ``.safetensors`` file, ``__metadata__``, the format's own key), or for
    ``compress=True`` with ``.safetensors``, or for a ``path`` ending in neither ``.npz`` nor
    ``.safetensors`` (``.pt``, ``.onnx``: other formats); ImportError naming the package when
    ``safetensors`` is not installed; FileNotFoundError when the target's folder does not
    exist; IsADirectoryError when ``path`` is a folder. Nothing is written then.
    """
    if not isinstance(state_dict, Mapping):
        hint = " (pass model.state_dict())" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save expects a mapping name → array; got {type(state_dict).__name__}{hint}")
    if not isinstance(compress, (bool, np.bool_)):
        raise TypeError(f"save: compress must be True or False; got {compress!r}")
    arrays = OrderedDict()
    for name, value in state_dict.items():
        _check_name(name)
        arrays[name] = _as_numpy(name, value)

    path = _path(path, "save")
    suffix = os.path.splitext(path)[1]
    if suffix.lower() not in (".npz", ".safetensors"):
        raise ValueError(f"save: {path!r} should end in .npz (a NumPy archive) or .safetensors; got "
                         f"{suffix or 'no suffix'!r}. minikd writes no other format (a .pt file would be expected "
                         f"to be PyTorch's pickle; for PyTorch, save .safetensors: docs/deploy.md)")
    if _is_safetensors(path):
        if compress:
            raise ValueError("save: compress=True applies to .npz archives; a .safetensors file stores raw bytes")
        write = _safetensors_writer(arrays)
    else:
        def write(f):
            # what numpy.savez does, written out so that any key (even "file") is allowed
            mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(f, "w", compression=mode, allowZip64=True) as zf:
                for name, a in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, a, allow_pickle=False)
    _write_atomic(path, write)


def _write_atomic(path: str, write, op: str = "save", what: str = "the checkpoint's") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``;
    ``op`` and ``what`` name the caller and its file in the errors."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{op}: the folder {folder!r} of {path!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{op}: {path!r} is a folder; give {what} file name")
    # same folder as the target: os.replace is only atomic within one file system
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- safetensors

#: the metadata key of minikd's checksum in a .safetensors header
CHECKSUM_KEY = "minikd.sha256"


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors")


def _safetensors(op: str):
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{op}: .safetensors files need the 'safetensors' package: pip install safetensors "
                          f"(or the deploy extra: pip install -e \".[deploy]\")") from None
    return safetensors


def _checksum(arrays) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.require(arrays[name], requirements="C")
        h.update(f"{name}\x00{a.dtype.str}\x00{a.shape}\x00".encode())
        h.update(a.tobytes())
    return h.hexdigest()


#: the dtypes of the safetensors format that NumPy has (its header's names); the format's others
#: (BF16, F8_E4M3, F8_E5M2, ...) have no NumPy dtype
_SAFETENSORS_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
                       "U32": "uint32", "I32": "int32", "U64": "uint64", "I64": "int64", "F16": "float16",
                       "F32": "float32", "F64": "float64"}


def _safetensors_writer(arrays):
    st = _safetensors("save")
    kept = {np.dtype(d) for d in _SAFETENSORS_DTYPES.values()}
    for name, a in arrays.items():
        if name == "__metadata__":  # the header's own key: a tensor of that name makes an unreadable file
            raise ValueError("save: key '__metadata__' is reserved by the .safetensors format (it holds the "
                             "header's metadata); rename the entry, or save to .npz")
        if a.dtype.newbyteorder("=") not in kept:
            raise TypeError(f"save: entry {name!r} has dtype {a.dtype}; a .safetensors file holds booleans, "
                            f"integers of 8 to 64 bits and float16/32/64 only — save to .npz, or convert it")
    # the format is little-endian: a big-endian array is stored (and checksummed) as the little-endian
    # array it is read back as
    contiguous = {name: np.require(a, dtype=a.dtype.newbyteorder("<"), requirements="C") for name, a in arrays.items()}
    data = st.numpy.save(contiguous, metadata={CHECKSUM_KEY: _checksum(contiguous), "producer": "minikd"})
    return lambda f: f.write(data)


def _header_dtypes(data: bytes) -> dict:
    """name → the dtype its header gives, read from a .safetensors file's bytes whose header
    ``safe_open`` has already accepted (8 bytes of length, then JSON)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return {name: entry["dtype"] for name, entry in header.items() if name != "__metadata__"}


def _load_safetensors(path: str) -> OrderedDict:
    st = _safetensors("load")
    with open(path, "rb") as f:
        data = f.read()
    try:
        with st.safe_open(path, framework="numpy") as f:  # the header's metadata (checks the header too)
            metadata = f.metadata() or {}
        for name, dtype in _header_dtypes(data).items():
            if dtype not in _SAFETENSORS_DTYPES:
                raise CheckpointError(f"load: entry {name!r} of {path!r} has the dtype {dtype}, which NumPy (and so "
                                      f"minikd) does not have; convert it where it was written (in PyTorch: "
                                      f"tensor.float()) and save again")
        # by name: the package hands the arrays back in a different order each run
        # (and safe_open's get_tensor would turn a 0-d array into shape (1,))
        state = OrderedDict(sorted(st.numpy.load(data).items()))
    except st.SafetensorError as e:
        raise CheckpointError(f"load: {path!r} is not a readable .safetensors file (damaged or truncated: {e})") \
            from None
    expected = metadata.get(CHECKSUM_KEY)
    if expected is None and metadata.get("producer") == "minikd":
        raise CheckpointError(f"load: {path!r} is damaged: minikd wrote it ('producer': 'minikd'), but the SHA-256 "
                              f"it saves with the arrays is gone from the header, so they cannot be checked")
    if expected is not None and _checksum(state) != expected:
        raise CheckpointError(f"load: {path!r} is damaged: its arrays do not match the SHA-256 saved with them")
    return state


def _umask() -> int:
    mask = os.umask(0)  # the only way to read the umask is to set it, then restore it
    os.umask(mask)
    return mask


def load(path) -> OrderedDict:
    """Read a checkpoint written by :func:`save` (or ``numpy.savez``, or any ``.safetensors``
    writer, PyTorch's included): an OrderedDict name → NumPy array, in the order they were
    saved (``.npz``) or by name (``.safetensors``). Never unpickles anything. The format
    follows the suffix, as in :func:`save`.

    Raises FileNotFoundError when there is no file at ``path`` (IsADirectoryError for a
    folder), and :class:`CheckpointError` (a ValueError) naming ``path`` when the file is
    empty, is not an ``.npz`` archive (a text file, a single ``.npy`` array, an ONNX model,
    a safetensors file under another suffix: the message says which), is truncated
    or damaged (a bad CRC-32, a ``.npy`` header that does not match its data), or holds a
    member that is not a ``.npy`` array, an object array (it would need pickle), a
    structured array, or the same name twice; for ``.safetensors``, when its header or size
    is damaged, its arrays do not match minikd's checksum (or a file minikd wrote has lost
    it), an entry has a dtype NumPy lacks (bfloat16, float8: the message names the entry), or
    it is a zip (an ``.npz`` under that suffix). Other I/O errors (permissions)
    pass unchanged.
    """
    path = _path(path, "load")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path!r} is a folder, not a checkpoint file")
    if _is_safetensors(path):
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"load: {path!r} is empty (0 bytes), not a checkpoint — was its write or copy "
                                  f"interrupted?")
        with open(path, "rb") as f:
            if f.read(2) == b"PK":
                raise CheckpointError(f"load: {path!r} is a zip archive (an .npz checkpoint?), not a .safetensors "
                                      f"file: the format follows the suffix, so rename it to end in .npz")
        return _load_safetensors(path)
    with open(path, "rb") as f:  # an unreadable file (permissions) raises its own OSError
        head = f.read(9)
        if not head:
            raise CheckpointError(f"load: {path!r} is empty (0 bytes), not a checkpoint — was its write or copy "
                                  f"interrupted?")
        if head.startswith(b"\x93NUMPY"):
            raise CheckpointError(f"load: {path!r} holds a single array (a .npy file), not an .npz archive of "
                                  f"named arrays")
        f.seek(0)
        try:
            archive = zipfile.ZipFile(f)
        except _DAMAGE as e:
            if head.startswith(b"PK"):
                raise CheckpointError(f"load: {path!r} is a damaged or truncated .npz archive: its zip directory "
                                      f"cannot be read ({type(e).__name__}: {e})") from None
            raise CheckpointError(_not_a_zip(path, head)) from None
        state = OrderedDict()
        with archive:
            _check_entry_count(path, f, archive)
            for info in archive.infolist():
                name = _member_name(path, info, state)
                state[name] = _read_member(path, archive, info, name)
    return state


def _not_a_zip(path: str, head: bytes) -> str:
    """Why a file read as .npz is not one, and what it may be instead (``head``: its first 9 bytes)."""
    why = f"load: {path!r} is not a NumPy .npz archive (it does not start as a zip file)"
    if len(head) == 9 and head[8:9] == b"{":     # 8 bytes of header length, then the JSON header
        return why + "; it looks like a .safetensors file: rename it to end in .safetensors"
    if os.path.splitext(path)[1].lower() == ".onnx":
        return why + "; it is an ONNX model, not a checkpoint: run it with onnxruntime, or read it with onnx.load"
    return why + "; mk.load reads .npz archives and .safetensors files"


def _check_entry_count(path, f, archive) -> None:
    """The zip's end record says how many members it holds; zipfile does not compare that
    with the directory it read, so a damaged member comment length (which swallows the
    entries after it) would silently drop arrays."""
    end_record = getattr(zipfile, "_EndRecData", None)  # the standard library's own reader of that record
    if end_record is None:
        return
    try:
        expected = end_record(f)[zipfile._ECD_ENTRIES_TOTAL]
    except _DAMAGE:
        expected = None
    if expected != len(archive.infolist()):
        raise CheckpointError(f"load: {path!r} is a damaged .npz archive: its end record lists {expected} members, "
                              f"its directory {len(archive.infolist())}")


def _member_name(path, info, state) -> str:
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"load: member {info.filename!r} of {path!r} is not a .npy array; a checkpoint holds "
                              f"only named arrays (name.npy), refusing it")
    name = info.filename[:-4]
    if name in state:
        raise CheckpointError(f"load: {path!r} holds the entry {name!r} twice; refusing to pick one")
    return name


def _read_member(path, archive, info, name) -> np.ndarray:
    """One ``name.npy`` member as an array: header checked against the member's size, data
    read in full (which makes zipfile check its CRC-32)."""
    def damaged(what):
        return CheckpointError(f"load: entry {name!r} of {path!r} is damaged ({what}); the file is corrupt or "
                               f"truncated")

    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise damaged(f".npy format version {version[0]}.{version[1]}, which minikd does not read")
            if dtype.hasobject:
                raise CheckpointError(f"load: entry {name!r} of {path!r} is an object array (dtype {dtype}): it "
                                      f"cannot be read without pickle; refusing it")
            if dtype.kind not in _KINDS:
                raise CheckpointError(f"load: entry {name!r} of {path!r} is a structured array (dtype {dtype}); a "
                                      f"checkpoint holds plain arrays, refusing it")
            count = math.prod(shape)
            expected = member.tell() + count * dtype.itemsize
            if expected != info.file_size:
                raise damaged(f"its header describes {shape} {dtype} = {expected} bytes, the member holds "
                              f"{info.file_size}")
            array = np.empty(count, dtype=dtype)
            if dtype.itemsize:
                buffer, filled = array.view(np.uint8), 0
                while filled < buffer.size:
                    n = member.readinto(buffer[filled:])
                    if not n:
                        raise damaged(f"its data ends after {filled} of {buffer.size} bytes")
                    filled += n
            if member.read(1):
                raise damaged("data beyond what its header describes")
    except CheckpointError:
        raise
    except _DAMAGE as e:
        raise damaged(f"{type(e).__name__}: {e}") from None
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


__all__ = ["CheckpointError", "load", "save"]
