"""A stand-in device for CI: NumPy arrays that behave like a GPU's.

A CuPy array lives in GPU memory, and CuPy refuses everything that would silently bring it to
the host: ``numpy.asarray(gpu_array)``, a NumPy function called on it, arithmetic between it
and a NumPy array. minikd's op code must therefore use the array's namespace ``xp`` and never
``numpy`` on tensor data. On a machine without a GPU nothing would notice a mistake — so the
tests register this device, ``"standin"``:

- :class:`StandinArray` wraps a NumPy array. Its ``__array__``, ``__array_ufunc__`` and
  ``__array_function__`` raise: ``np.exp(a)``, ``np.asarray(a)``, ``np.concatenate([a])``
  fail as they would on a GPU array. Arithmetic with a NumPy array of one or more dimensions
  raises too (a host/device mix); Python numbers and NumPy scalars are fine.
- ``xp``, the :class:`StandinNamespace`, is NumPy's functions with the wrapping undone on
  the way in and redone on the way out (as ``cupy`` mirrors ``numpy``). Its ``asarray`` and
  ``array`` accept host arrays (an explicit upload, as ``cupy.asarray`` does); its other
  functions refuse them.
- Conversions to Python scalars (``float(a)``, ``a.item()``, ``bool(a)``) work, as on CuPy,
  but each is counted in :data:`HOST_SYNCS`: on a GPU each one waits for every queued kernel.
  So is everything else that makes CuPy wait for the GPU: indexing with a boolean mask
  (``a[mask] = v``: how many elements is data-dependent), functions whose output size depends
  on the data (``nonzero``, ``unique``, ...), and copies to the host (``backend.to_numpy``).
  ``HOST_SYNCS["where"]`` keeps the minikd line of each, so a test can say where a training
  step waits (one did: max pooling's forward, ``argmax[better] = k``, found on a real GPU).

It proves the CPU-independent half of the GPU path: the right namespace everywhere, no
hidden transfers. Speed, and CuPy's own differences from NumPy, need a real GPU.
"""

from __future__ import annotations

import operator
import types

import numpy as np

from minikd import backend

NAME = "standin"
HOST_SYNCS = {"count": 0, "where": []}  # what makes a GPU's host wait (see above), and the minikd lines

#: namespace functions whose output size depends on the data: CuPy must wait for the GPU to know it
_SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract", "setdiff1d", "intersect1d",
            "union1d", "bincount"}


def _count_sync(what: str) -> None:
    import traceback

    HOST_SYNCS["count"] += 1
    frames = [f for f in traceback.extract_stack()[:-2] if "/minikd/" in f.filename.replace("\\", "/")]
    if frames and len(HOST_SYNCS["where"]) < 20:
        f = frames[-1]
        HOST_SYNCS["where"].append(f"{what} at {f.filename.rsplit('/minikd/', 1)[-1]}:{f.lineno} ({f.name})")


def reset_host_syncs() -> None:
    HOST_SYNCS["count"] = 0
    HOST_SYNCS["where"].clear()


def _is_mask(index) -> bool:
    """Whether an index holds a boolean device array (a data-dependent selection)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (StandinArray, np.ndarray)) and i.dtype == np.bool_ for i in parts)

#: namespace functions that accept host arrays: the explicit uploads
_UPLOADS = {"asarray", "array", "asanyarray", "ascontiguousarray"}


class DeviceMixError(RuntimeError):
    """Device data met host data, or NumPy touched device data. (Not a TypeError, which NumPy
    would catch in ``numpy.asarray`` and answer with an object array.)"""


def _is_host_array(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim > 0


def _unwrap(x, allow_host: bool, where: str):
    if isinstance(x, StandinArray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, allow_host, where) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, allow_host, where) for k, v in x.items()}
    if not allow_host and _is_host_array(x):
        raise DeviceMixError(f"{where}: a NumPy array of shape {x.shape} (host) used with stand-in device arrays; "
                             f"upload it explicitly (xp.asarray) or keep it on the device")
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return StandinArray(x)
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_)):
        return StandinArray(np.asarray(x))  # reductions give 0-d device arrays, as in CuPy
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


class _Function:
    """A NumPy function (or ufunc, or method) seen from the device: unwrap, call, wrap."""

    def __init__(self, fn, name: str, allow_host: bool = False):
        self._fn, self._name, self._allow_host = fn, name, allow_host

    def __call__(self, *args, **kwargs):
        name = self._name.rsplit(".", 1)[-1]
        if name in _SYNCING or (name == "where" and len(args) + len(kwargs) == 1):  # where(c): nonzero(c)
            _count_sync(self._name)
        args = _unwrap(args, self._allow_host, self._name)
        kwargs = _unwrap(kwargs, self._allow_host, self._name)
        return _wrap(self._fn(*args, **kwargs))

    def __getattr__(self, name):  # ufunc methods: xp.add.at, xp.maximum.reduce, ...
        attr = getattr(self._fn, name)
        return _Function(attr, f"{self._name}.{name}") if callable(attr) else attr

    def __repr__(self):
        return f"<stand-in {self._name}>"


class StandinNamespace(types.ModuleType):
    """NumPy's namespace on the stand-in device (the role ``cupy`` plays on a GPU)."""

    def __init__(self, module=np, prefix="standin"):
        super().__init__(prefix)
        self._module, self._prefix = module, prefix

    def __getattr__(self, name):
        if name == "ndarray":
            return StandinArray
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):  # xp.random, xp.linalg, xp.lib
            return StandinNamespace(attr, f"{self._prefix}.{name}")
        if isinstance(attr, type) or not callable(attr):  # dtypes (xp.float32), constants (xp.inf), classes
            return attr
        return _Function(attr, f"{self._prefix}.{name}", allow_host=name in _UPLOADS)


xp = StandinNamespace()


def _binary(op, name, reflected=False):
    def method(self, other):
        if isinstance(other, StandinArray):
            other = other._a
        elif _is_host_array(other):
            raise DeviceMixError(f"{name}: a stand-in device array and a NumPy array of shape {other.shape} (host)")
        result = op(other, self._a) if reflected else op(self._a, other)
        return _wrap(result)
    method.__name__ = name
    return method


def _inplace(op, name):
    def method(self, other):
        if isinstance(other, StandinArray):
            other = other._a
        elif _is_host_array(other):
            raise DeviceMixError(f"{name}: a stand-in device array and a NumPy array of shape {other.shape} (host)")
        self._a = op(self._a, other)  # operator.iadd & co.: in place, so views see the change
        return self
    method.__name__ = name
    return method


def _sync(convert):
    def method(self, *args):
        _count_sync(convert.__name__)
        return convert(self._a, *args)
    return method


class StandinArray:
    """A NumPy array on the stand-in device (see the module docstring)."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        self._a = a

    # ---- what a GPU array refuses
    def __array__(self, *args, **kwargs):
        raise DeviceMixError("implicit conversion of a stand-in device array to NumPy (numpy.asarray, or a NumPy "
                             "function on device data): use the array's namespace xp, or backend.to_numpy explicitly")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise DeviceMixError(f"NumPy's {ufunc.__name__} called on a stand-in device array: use xp.{ufunc.__name__}")

    def __array_function__(self, func, types_, args, kwargs):
        raise DeviceMixError(f"numpy.{func.__name__} called on a stand-in device array: use xp.{func.__name__}")

    # ---- attributes and methods: NumPy's, on the wrapped array
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StandinArray(self._a.T))

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__, __array_struct__, __dlpack__: NumPy must not see in
            raise AttributeError(name)
        attr = getattr(self._a, name)
        return _Function(attr, f"ndarray.{name}") if callable(attr) else _wrap(attr)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getitem__(self, index):
        if _is_mask(index):
            _count_sync("indexing with a boolean mask")
        return _wrap(self._a[_unwrap(index, True, "indexing")])  # NumPy index arrays are allowed, as in CuPy

    def __setitem__(self, index, value):
        if _is_host_array(value):
            raise DeviceMixError(f"assigning a NumPy array of shape {value.shape} (host) into a stand-in device array: "
                                 f"upload it first")
        if _is_mask(index):
            _count_sync("assigning through a boolean mask")
        self._a[_unwrap(index, True, "indexing")] = _unwrap(value, False, "assignment")

    def __repr__(self):
        return f"standin({self._a!r})"

    # ---- scalars: allowed, counted (a host sync on a GPU)
    __float__ = _sync(float)
    __int__ = _sync(int)
    __bool__ = _sync(bool)
    __index__ = _sync(operator.index)
    __complex__ = _sync(complex)

    def item(self, *args):
        _count_sync("item")
        return self._a.item(*args)

    def tolist(self):
        _count_sync("tolist")
        return self._a.tolist()

    def get(self):  # CuPy's explicit copy to the host: a wait too
        _count_sync("get")
        return self._a.copy()

    # ---- unary operators
    def __neg__(self):
        return StandinArray(-self._a)

    def __pos__(self):
        return StandinArray(+self._a)

    def __abs__(self):
        return StandinArray(abs(self._a))

    def __invert__(self):
        return StandinArray(~self._a)


for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv), ("mod", operator.mod),
                   ("pow", operator.pow), ("matmul", operator.matmul), ("and", operator.and_),
                   ("or", operator.or_), ("xor", operator.xor), ("lshift", operator.lshift),
                   ("rshift", operator.rshift)]:
    setattr(StandinArray, f"__{_name}__", _binary(_op, f"__{_name}__"))
    setattr(StandinArray, f"__r{_name}__", _binary(_op, f"__r{_name}__", reflected=True))
    setattr(StandinArray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}"), f"__i{_name}__"))
for _name, _op in [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
                   ("eq", operator.eq), ("ne", operator.ne)]:
    setattr(StandinArray, f"__{_name}__", _binary(_op, f"__{_name}__"))


def _from_host(a: np.ndarray) -> StandinArray:
    return StandinArray(np.array(a, copy=True))


def _to_host(a: StandinArray) -> np.ndarray:
    _count_sync("a copy to the host")
    return a._a.copy()


def register() -> None:
    backend.register_device(NAME, xp, StandinArray, _from_host, _to_host)
