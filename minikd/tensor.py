"""Tensor: an array that remembers how it was made, and ``backward()``.

A Tensor wraps one backend array (``numpy.ndarray`` on the CPU, ``cupy.ndarray``
on the GPU). When an op (a :class:`~minikd.function.Function`) produces a Tensor
from inputs that require a gradient, the op is stored in the output's ``_ctx``:
that link, from every result back to its inputs, *is* the graph.

``backward()`` applies the chain rule from the loss back to the leaves:

1. sort the graph topologically, outputs before the inputs they were made from
   (an explicit stack, not recursion, so a 10,000-op chain is fine);
2. walk that order, calling each op's ``backward`` with the gradient of its output
   and **adding** the gradients it returns to those of its inputs (a tensor used
   twice receives the sum of both contributions);
3. leaves (tensors made by the user, e.g. parameters) **accumulate** into ``.grad``
   across calls, as in PyTorch: call ``zero_grad()`` between optimisation steps. Each
   leaf gets an array of its own (``a.grad is b.grad`` is never true), so scaling one
   gradient in place (gradient clipping) cannot change another.

Two guards keep the numbers honest:

- **versions**: every Tensor counts its in-place changes (``t._version``: assignment to
  ``t.data``, optimizer steps, ``nn.init``; not a write into the array, ``t.data[...] = v``,
  which no Tensor can see — call ``t._mark_modified()`` after one). An op remembers its inputs' versions, and
  ``backward`` raises if an input it saved changed after the forward pass — the gradient
  would otherwise be computed from the new values, silently wrong;
- **anomaly mode** (:mod:`minikd.anomaly`): inside ``with detect_anomaly():`` every op's
  output and every gradient is checked, and the first op that makes a NaN or ±inf out of
  finite values is named.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import anomaly, backend
from .checks import check_axis, check_bool, check_int

# --------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside this block ops record no graph: for evaluation and parameter updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


# --------------------------------------------------------------------------- Tensor


_BINARY = {"add", "sub", "mul", "div", "pow", "matmul"}


def _spelling(op: str, reflected: bool = False):
    """A method that calls ``minikd.ops.<op>`` with the tensor first (``reflected``: second, for
    ``2 * t``, which Python runs as ``t.__rmul__(2)``). An arithmetic operand that is None or a
    string is Python's TypeError ("unsupported operand type(s)"), not an error deep in an op."""
    binary = op in _BINARY

    def method(self, *args, **kwargs):
        if binary and (args[0] is None or isinstance(args[0], str)):
            return NotImplemented
        fn = getattr(_ops, op)
        return fn(args[0], self) if reflected else fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"``minikd.ops.{op}`` with this tensor as the {'second' if reflected else 'first'} operand."
    return method



DEFAULT_FLOAT = np.float32


class Tensor:
    """An n-dimensional array with an optional gradient.

    ``data``: the backend array. ``grad``: a backend array of the same shape, or
    ``None`` until ``backward()`` reaches this tensor. ``requires_grad``: whether
    gradients flow to it.
    """

    __array_priority__ = 1000  # ``ndarray * Tensor`` calls ``Tensor.__rmul__``
    _version = 0  # in-place changes so far (see ``data`` below)

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if device is not None:  # put it there: an explicit copy
            if not hasattr(data, "dtype"):
                data = np.asarray(data)
                if dtype is None and data.dtype.kind == "f":  # Python floats become float32, as in PyTorch
                    data = data.astype(DEFAULT_FLOAT)
            data = backend.to_device(data, device)
        xp = backend.get_array_module(data)
        if dtype is None and not hasattr(data, "dtype"):
            data = xp.asarray(data)
            if data.dtype.kind == "f":  # Python floats become float32, as in PyTorch
                data = data.astype(DEFAULT_FLOAT)
        data = xp.asarray(data, dtype=dtype)
        if data.dtype.kind not in "biuf":  # strings, objects (a ragged list), complex: not what ops compute on
            raise TypeError(f"tensor: the data must be numbers or booleans; got dtype {data.dtype}")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require a gradient; got dtype {data.dtype}")
        self._data = data  # not through the ``data`` setter: a new tensor is version 0
        self.grad = None
        if requires_grad is not False and requires_grad is not True:  # the usual two, fast: every op output
            requires_grad = check_bool(requires_grad, "tensor", "requires_grad")
        self.requires_grad = requires_grad
        self._ctx = None  # the Function that produced this tensor (None for leaves)
        self.name = None

    # ---- the data, and its version
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        # ``t.data = a`` and ``t.data -= g`` (which assigns back) both land here: the values
        # an op may have saved for its backward are no longer those of the forward pass
        if not hasattr(value, "dtype") or not hasattr(value, "shape") or value.dtype.kind not in "biuf":
            what = f"{type(value).__name__}" + (f" of dtype {value.dtype}" if hasattr(value, "dtype") else "")
            raise TypeError(f"Tensor.data must be an array of numbers (NumPy, or CuPy on a GPU); got {what}")
        self._data = value
        self._version += 1

    def _mark_modified(self):
        """Record an in-place change made through the array itself (``t.data[...] = v``, kernels)."""
        self._version += 1

    # ---- properties
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    xp = property(lambda self: backend.get_array_module(self.data))
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    # ---- truth and conversion, as in NumPy and PyTorch: one element only
    def _one(self, what):
        if self.size != 1:
            raise ValueError(f"{what} of a tensor with {self.size} elements (shape {self.shape}) is ambiguous; "
                             "use .any() / .all() for truth, or index one element")
        return self.data.reshape(()).item()

    def __bool__(self):
        return bool(self._one("the truth value"))

    def __float__(self):
        return float(self._one("float()"))

    def __int__(self):
        return int(self._one("int()"))

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of one element can be used as an index; got dtype {self.dtype}")
        return int(self._one("__index__"))

    def any(self):
        return bool(self.data.any())

    def all(self):
        return bool(self.data.all())

    def __repr__(self):
        body = np.array2string(backend.to_numpy(self.data), separator=", ", precision=4,
                               threshold=20, prefix="tensor(")
        extra = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self.requires_grad:
            extra.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extra)})"

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.data)
        return a.astype(dtype) if dtype is not None else a

    __hash__ = object.__hash__  # ``==`` is elementwise (below), identity stays hashable

    # ---- conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element; got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device) -> Tensor:
        """This tensor on ``device`` (itself if already there); a differentiable copy."""
        if backend.check_device(device) == self.device:
            return self
        from .ops.shape import to_device

        return to_device(self, device)

    def astype(self, dtype) -> Tensor:
        from .ops.elementwise import cast

        return cast(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data)

    def clone(self) -> Tensor:
        """A copy of the data in a new leaf (no graph), e.g. to keep a value before changing it in place."""
        return Tensor(self.data.copy(), requires_grad=self.requires_grad)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        flag = check_bool(flag, "requires_grad_", "flag")
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require a gradient; got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    def zero_grad(self):
        self.grad = None

    # ---- autograd
    def backward(self, grad=None):
        """Compute d(self)/d(leaf) for every leaf that requires a gradient.

        ``grad`` is the gradient of the final quantity with respect to ``self``;
        it may be left out only when ``self`` holds a single number (a loss).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require a gradient "
                               "(no input of the computation had requires_grad=True, or it ran under no_grad())")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() on a non-scalar tensor of shape {self.shape} needs the "
                                   "gradient of the output: pass backward(grad) with that shape, "
                                   "or reduce it first (e.g. loss.sum())")
            grad = self.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else self.xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad has shape {grad.shape}, the tensor has {self.shape}")

        check = anomaly.enabled()
        grads = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            fn = node._ctx
            if fn is None:  # a leaf: accumulate, into an array of its own
                # an op may hand the same array (or views of it) to several inputs (a + b gives
                # both dL/dy), and ``grad`` may be the caller's: so a leaf's first gradient is
                # copied (``+`` makes a new array anyway)
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            fn.check_versions()
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if check:  # minikd.detect_anomaly(): was a NaN or ±inf born in this backward?
                anomaly.check_backward(fn, g, input_grads)
            for x, gx in zip(fn.inputs, input_grads):
                if gx is None or x is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:  # a bug in an op's backward: say which
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx

    # ---- operators and methods: thin spellings of the ops in minikd/ops (a + b is ops.add(a, b))
    __add__, __radd__ = _spelling("add"), _spelling("add", reflected=True)
    __sub__, __rsub__ = _spelling("sub"), _spelling("sub", reflected=True)
    __mul__, __rmul__ = _spelling("mul"), _spelling("mul", reflected=True)
    __truediv__, __rtruediv__ = _spelling("div"), _spelling("div", reflected=True)
    __pow__, __rpow__ = _spelling("pow"), _spelling("pow", reflected=True)
    __matmul__, __rmatmul__ = _spelling("matmul"), _spelling("matmul", reflected=True)
    __neg__, __getitem__ = _spelling("neg"), _spelling("getitem")
    sum, mean, max = _spelling("sum"), _spelling("mean"), _spelling("max")
    reshape, transpose, permute = _spelling("reshape"), _spelling("transpose"), _spelling("transpose")
    view = reshape
    exp, log, sqrt, abs = _spelling("exp"), _spelling("log"), _spelling("sqrt"), _spelling("abs")
    tanh, sigmoid, relu, clip = _spelling("tanh"), _spelling("sigmoid"), _spelling("relu"), _spelling("clip")

    def flatten(self, start_axis=0):
        """All axes from ``start_axis`` on merged into one (all of them by default, unlike F.flatten)."""
        return _ops.flatten(self, start_axis)

    @property
    def T(self):
        return _ops.transpose(self)

    def argmax(self, axis=None):
        if axis is not None:
            axis = check_axis(axis, self.ndim, "argmax")
        return Tensor(self.data.argmax(axis=axis))

    # comparisons give constant (non-differentiable) boolean tensors
    def __lt__(self, other):
        return Tensor(self.data < raw(other))

    def __le__(self, other):
        return Tensor(self.data <= raw(other))

    def __gt__(self, other):
        return Tensor(self.data > raw(other))

    def __ge__(self, other):
        return Tensor(self.data >= raw(other))

    def __eq__(self, other):
        return Tensor(self.data == raw(other))

    def __ne__(self, other):
        return Tensor(self.data != raw(other))


def raw(x):
    """The backend array inside a Tensor; anything else (an array, a number, None) as it is."""
    return x.data if isinstance(x, Tensor) else x


def _topological_order(root: Tensor) -> list:
    """Every tensor that ``root`` depends on through recorded ops, inputs first.

    Iterative depth-first search: a node is appended once all of its inputs have
    been appended. Python's recursion limit never comes into play.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for x in node._ctx.inputs:
                if x is not None and x.requires_grad and id(x) not in visited:
                    stack.append((x, False))
    return order


# --------------------------------------------------------------------------- factories

def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor on ``like``'s device.

    Python numbers take ``like``'s floating dtype, so ``x * 2.0`` stays float32. An array (or
    list) on the host goes to ``like``'s device by one explicit copy: the one place where the
    functions that accept plain arrays (labels, a teacher's logits, a mask) bring them to the
    device. (``Function.apply`` itself refuses a host array beside device tensors.)
    """
    if isinstance(x, Tensor):
        return x
    if like is None:
        return Tensor(x)
    if isinstance(x, (int, float)) and not isinstance(x, bool) and like.dtype.kind == "f":
        return Tensor(like.xp.asarray(x, dtype=like.dtype))
    if type(like._data) is np.ndarray:  # on the CPU
        return Tensor(np.asarray(x))
    return Tensor(backend.to_device(x if hasattr(x, "dtype") else np.asarray(x), like.device))


def tensor(data, requires_grad: bool = False, dtype=None, device=None) -> Tensor:
    """A new leaf tensor holding a copy of ``data``, on ``device`` (default: where ``data``
    already is if it is a device array, else the default device, ``"cpu"`` unless
    ``MINIKD_DEVICE`` or ``set_default_device`` says otherwise).

    Python floats (and lists of them) become float32, as in PyTorch; NumPy arrays keep
    their dtype, so a float64 array stays float64 (gradient checks rely on that).
    """
    if isinstance(data, Tensor):
        data = data.data
    if backend.get_array_module(data) is np:
        arr = np.array(data, dtype=dtype, copy=True)
        if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
            arr = arr.astype(DEFAULT_FLOAT)
        if device is None:
            device = backend.default_device()
    else:
        arr = data.astype(dtype or data.dtype, copy=True)
    return Tensor(backend.to_device(arr, device if device is not None else backend.device_of(arr)),
                  requires_grad=requires_grad)


def _filled(shape, dtype, device, fill):
    device = backend.check_device(device)
    with backend.on(device):
        return getattr(backend.xp_for(device), fill)(shape, dtype=dtype)


def zeros(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad=False) -> Tensor:
    return Tensor(_filled(_shape_arg(shape, "zeros"), dtype, device, "zeros"), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad=False) -> Tensor:
    return Tensor(_filled(_shape_arg(shape, "ones"), dtype, device, "ones"), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    t = as_tensor(t)   # an array or a list too
    return Tensor(t.xp.zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    t = as_tensor(t)
    return Tensor(t.xp.ones_like(t.data), requires_grad=requires_grad)


def arange(*args, dtype=None, device=None) -> Tensor:
    if len(args) == 3 and args[2] == 0:
        raise ValueError("arange: the step must not be 0")
    return Tensor(backend.to_device(np.arange(*args, dtype=dtype), backend.check_device(device)))


def randn(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad=False) -> Tensor:
    """Standard-normal samples from minikd's seeded generator (see ``manual_seed``)."""
    from .random import get_rng

    data = get_rng().standard_normal(_shape_arg(shape, "randn")).astype(_float_dtype(dtype, "randn"))
    return Tensor(backend.to_device(data, backend.check_device(device)), requires_grad=requires_grad)


def rand(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from minikd's seeded generator."""
    from .random import get_rng

    data = get_rng().random(_shape_arg(shape, "rand")).astype(_float_dtype(dtype, "rand"))
    return Tensor(backend.to_device(data, backend.check_device(device)), requires_grad=requires_grad)


def _shape_arg(shape, op):
    """``zeros(2, 3)`` or ``zeros((2, 3))`` → (2, 3); each size an int ≥ 0, else an error naming ``op``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(check_int(n, op, "each size of the shape", low=0) for n in shape)


def _float_dtype(dtype, op):
    """Random samples are real numbers: an integer dtype would cut them (randn(…, dtype=int64) gave 0s)."""
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{op}: dtype must be a floating-point type (its samples are real numbers); got {dtype}")
    return dtype


from . import ops as _ops  # noqa: E402  (ops import Tensor from this module)
