"""Array backends: NumPy on ``"cpu"``, CuPy on ``"cuda"`` / ``"cuda:N"``.

Every op receives raw arrays and asks this module for their namespace ``xp``
(``numpy`` or ``cupy``), so one piece of op code runs on both devices. Only this
module and ``minikd/kernels`` know which device they are on.

**Device names.** ``"cpu"``; ``"cuda"`` (the current CUDA device, usually 0) or ``"cuda:N"``.
:func:`check_device` turns every accepted spelling into its canonical form (``"cuda"`` →
``"cuda:0"``), which is what ``Tensor.device`` reports.

**The default device** of the factories (``mk.tensor``, ``mk.zeros``, ``mk.randn``, ...) and
of new layers' parameters is ``"cpu"``, or the environment variable ``MINIKD_DEVICE`` (read on
import), or what :func:`set_default_device` sets.

**Other devices.** :func:`register_device` adds a backend by name: its array type, its
namespace and the two explicit copies (from and to the host). The test suite registers a
*stand-in* device this way — NumPy arrays behind a wrapper that refuses every implicit
conversion to the host, as CuPy does — so that a stray ``numpy`` call on tensor data fails in
CI on machines without a GPU (``tests/standin.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

try:  # CuPy is the optional ``gpu`` extra; everything works without it.
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that finds no CUDA driver
    _cupy = None

GPU_EXTRAS = ('pip install -e ".[gpu-cuda12]" (CUDA 12) or ".[gpu-cuda13]" (CUDA 13): CuPy wheels are built per '
              'CUDA major version, and nvidia-smi shows yours')


@dataclass(frozen=True)
class Device:
    """A registered backend: arrays of ``array_type`` live there and ``xp`` computes on them."""

    name: str
    xp: object
    array_type: type
    from_host: object   # (numpy array) -> array on this device (a copy)
    to_host: object     # (array) -> numpy array (a copy)
    sync: object = None  # () -> None: wait until queued work is done (None: nothing to wait for)


_REGISTRY: dict[str, Device] = {}


def register_device(name: str, xp, array_type: type, from_host, to_host, sync=None) -> None:
    """Make ``name`` a device: ``mk.tensor(x, device=name)``, ``t.to(name)``, ``model.to(name)``."""
    if not isinstance(name, str) or not name.isidentifier() or name in ("cpu", "cuda"):
        raise ValueError(f"register_device: the name must be a new identifier (not 'cpu' or 'cuda'); got {name!r}")
    _REGISTRY[name] = Device(name, xp, array_type, from_host, to_host, sync)


def unregister_device(name: str) -> None:
    _REGISTRY.pop(name, None)


# --------------------------------------------------------------------------- CUDA


def cuda_available() -> bool:
    """True when CuPy is importable and sees at least one CUDA device."""
    return cuda_device_count() > 0


def cuda_device_count() -> int:
    if _cupy is None:
        return 0
    try:
        return int(_cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def _cuda_index(device: str) -> int:
    """N of ``"cuda:N"``, after checking that CuPy is there and sees device N."""
    if _cupy is None:
        raise RuntimeError(f"device {device!r} needs CuPy, which is not installed: {GPU_EXTRAS}")
    count = cuda_device_count()
    if count == 0:
        raise RuntimeError(f"device {device!r}: CuPy is installed but finds no CUDA device (no NVIDIA GPU, or no "
                           f"driver)")
    index = int(device.split(":")[1])
    if index >= count:
        raise RuntimeError(f"device {device!r}: there is no CUDA device {index}; this machine has {count} "
                           f"(cuda:0 … cuda:{count - 1})")
    return index


# --------------------------------------------------------------------------- names


_default = "cpu"


def check_device(device) -> str:
    """The canonical name of ``device``: ``"cpu"``, ``"cuda:N"`` or a registered name.

    Raises ValueError for anything else (naming what is accepted). Whether a CUDA device
    exists is checked when an array is put there (:func:`xp_for`, :func:`to_device`).
    """
    if device is None:
        return _default
    name = str(device)
    if name == "cpu" or name in _REGISTRY:
        return name
    if name == "cuda":
        return f"cuda:{_current_cuda()}"
    if name.startswith("cuda:") and name[5:].isdigit():
        return f"cuda:{int(name[5:])}"
    extra = "".join(f", {n!r}" for n in _REGISTRY)
    raise ValueError(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'{extra}")


def _current_cuda() -> int:
    if _cupy is None or cuda_device_count() == 0:
        return 0
    return int(_cupy.cuda.Device().id)


def default_device() -> str:
    """Where factories and new layers put their arrays: ``"cpu"`` unless changed."""
    return _default


def set_default_device(device) -> str:
    """Set the default device (checked: a CUDA device must exist); returns the previous one."""
    global _default
    name = check_device(device)
    if name.startswith("cuda"):
        _cuda_index(name)
    previous, _default = _default, name
    return previous


def _default_from_environment() -> None:
    value = os.environ.get("MINIKD_DEVICE")
    if not value:
        return
    try:
        set_default_device(value)
    except (ValueError, RuntimeError) as e:
        raise RuntimeError(f"MINIKD_DEVICE={value!r}: {e}") from None


# --------------------------------------------------------------------------- arrays


def get_array_module(a):
    """The array namespace of ``a``: ``cupy`` for CuPy arrays, a registered device's ``xp``
    for its arrays, else ``numpy``."""
    if type(a) is np.ndarray:  # the common case first: one type check
        return np
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    for d in _REGISTRY.values():
        if isinstance(a, d.array_type):
            return d.xp
    return np


def device_of(a) -> str:
    """The canonical device of array ``a``: ``"cpu"``, ``"cuda:N"`` or a registered name."""
    if type(a) is np.ndarray:
        return "cpu"
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return f"cuda:{a.device.id}"
    for d in _REGISTRY.values():
        if isinstance(a, d.array_type):
            return d.name
    return "cpu"


def xp_for(device: str):
    """The array namespace that holds data on ``device`` (make arrays there inside :func:`on`)."""
    device = check_device(device)
    if device == "cpu":
        return np
    if device in _REGISTRY:
        return _REGISTRY[device].xp
    _cuda_index(device)
    return _cupy


def on(device):
    """A context in which new CuPy arrays are made on ``device`` (a no-op elsewhere)."""
    import contextlib

    device = check_device(device)
    if device.startswith("cuda"):
        index = _cuda_index(device)
        return _cupy.cuda.Device(index)
    return contextlib.nullcontext()


def to_device(a, device: str):
    """Return ``a`` as an array on ``device`` (no copy when already there)."""
    device = check_device(device)
    here = device_of(a)
    if device == here:
        return a
    host = to_numpy(a) if here != "cpu" else np.asarray(a)
    if device == "cpu":
        return host
    if device in _REGISTRY:
        return _REGISTRY[device].from_host(host)
    index = _cuda_index(device)
    with _cupy.cuda.Device(index):
        return _cupy.asarray(host)


def to_numpy(a) -> np.ndarray:
    """A NumPy copy (or view) of any backend array, for printing, saving and tests."""
    if type(a) is np.ndarray:
        return a
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy.asnumpy(a)
    for d in _REGISTRY.values():
        if isinstance(a, d.array_type):
            return d.to_host(a)
    return np.asarray(a)


def synchronize(device) -> None:
    """Wait until the work queued on ``device`` is done (for timing); nothing to wait for on the CPU."""
    device = check_device(device)
    if device.startswith("cuda"):
        index = _cuda_index(device)
        _cupy.cuda.Device(index).synchronize()
    elif device in _REGISTRY and _REGISTRY[device].sync is not None:
        _REGISTRY[device].sync()


def scatter_add(a, index, values):
    """``a[index] += values`` where repeated indices add up (NumPy's ``add.at``)."""
    xp = get_array_module(a)
    if xp is _cupy and _cupy is not None:
        import cupyx

        cupyx.scatter_add(a, index, values)
    else:
        xp.add.at(a, index, values)


_default_from_environment()
