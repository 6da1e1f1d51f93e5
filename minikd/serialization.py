"""Checkpoints: ``mk.save(model.state_dict(), path)`` and ``model.load_state_dict(mk.load(path))``.

The file is a plain NumPy ``.npz`` archive — a zip with one ``name.npy`` per array —
readable by ``numpy.load`` anywhere, with no pickle: loading a checkpoint can never run
code hidden inside it.

Writing is atomic: the archive goes to a temporary file in the same folder, which is
renamed over the target (``os.replace``) only once it is complete. A crash or an
error mid-write leaves the previous file (or no file), never a half-written one.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from . import backend
from .tensor import Tensor


def _as_numpy(name, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    a = backend.to_numpy(value) if hasattr(value, "shape") else np.asarray(value)
    if a.dtype.hasobject:
        raise TypeError(f"save: entry {name!r} holds Python objects (dtype {a.dtype}); only numeric arrays can be "
                        f"saved without pickle")
    return a


def save(state_dict, path, compress: bool = False) -> None:
    """Write ``state_dict`` (a mapping name → array or Tensor) to the ``.npz`` file ``path``.

    Names may contain dots (``"conv1.weight"``). ``compress=True`` deflates the arrays
    (smaller file, slower). The write is atomic (see the module docstring).
    """
    if not isinstance(state_dict, Mapping):
        hint = " (pass model.state_dict())" if hasattr(state_dict, "state_dict") else ""
        raise TypeError(f"save expects a mapping name → array; got {type(state_dict).__name__}{hint}")
    arrays = OrderedDict()
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: every key must be a non-empty string; got {name!r}")
        arrays[name] = _as_numpy(name, value)

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    # same folder as the target: os.replace is only atomic within one file system
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            # what numpy.savez does, written out so that any key (even "file") is allowed
            mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(f, "w", compression=mode, allowZip64=True) as zf:
                for name, a in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, a, allow_pickle=False)
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


def _umask() -> int:
    mask = os.umask(0)  # the only way to read the umask is to set it, then restore it
    os.umask(mask)
    return mask


def load(path) -> OrderedDict:
    """Read a checkpoint written by :func:`save` (or ``numpy.savez``): an OrderedDict
    name → NumPy array, in the order they were saved. Never unpickles anything."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"load: {path!r} is not a NumPy .npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!r} holds a single array (a .npy file), not an .npz archive of named arrays")
    state = OrderedDict()
    with archive:
        for name in archive.files:
            try:
                state[name] = archive[name]
            except ValueError as e:  # an object array: loading it would need pickle
                raise ValueError(f"load: entry {name!r} of {path!r} cannot be read without pickle ({e}); "
                                 f"refusing it") from None
    return state


__all__ = ["load", "save"]
