"""Array backends: NumPy on ``"cpu"``, CuPy on ``"cuda"``.

Every op receives raw arrays and asks this module for their namespace ``xp``
(``numpy`` or ``cupy``), so one piece of op code runs on both devices. Only this
module and ``minikd/kernels`` know which device they are on.
"""

from __future__ import annotations

import numpy as np

try:  # CuPy is the optional ``gpu`` extra; everything works without it.
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that finds no CUDA driver
    _cupy = None

DEVICES = ("cpu", "cuda")


def cuda_available() -> bool:
    """True when CuPy is importable and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def get_array_module(a):
    """The array namespace of ``a``: ``cupy`` for CuPy arrays, else ``numpy``."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    return np


def device_of(a) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` otherwise."""
    return "cuda" if get_array_module(a) is not np else "cpu"


def xp_for(device: str):
    """The array namespace that holds data on ``device``."""
    device = check_device(device)
    if device == "cuda":
        if not cuda_available():
            raise RuntimeError("device 'cuda' asked for, but CuPy with a CUDA device is not available "
                               "(install the 'gpu' extra on a machine with an NVIDIA GPU)")
        return _cupy
    return np


def check_device(device) -> str:
    device = str(device)
    if device.startswith("cuda"):
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


def to_device(a, device: str):
    """Return ``a`` as an array on ``device`` (no copy when already there)."""
    device = check_device(device)
    if device == device_of(a):
        return a
    if device == "cuda":
        return xp_for("cuda").asarray(a)
    return _cupy.asnumpy(a)


def to_numpy(a) -> np.ndarray:
    """A NumPy copy (or view) of any backend array, for printing, saving and tests."""
    if get_array_module(a) is np:
        return np.asarray(a)
    return _cupy.asnumpy(a)


def scatter_add(a, index, values):
    """``a[index] += values`` where repeated indices add up (NumPy's ``add.at``)."""
    if get_array_module(a) is np:
        np.add.at(a, index, values)
    else:
        import cupyx

        cupyx.scatter_add(a, index, values)
