"""The ``Function`` base class: one differentiable operation, one node of the graph.

An op is a small subclass with ``forward`` and ``backward`` side by side::

    class Exp(Function):
        '''y = e^x;  dL/dx = dL/dy * e^x'''
        def forward(self, x):
            self.y = self.xp.exp(x)        # keep what backward needs on ``self``
            return self.y
        def backward(self, gy):
            return gy * self.y             # one gradient per input

    def exp(x):
        return Exp.apply(x)

Both methods see raw arrays (NumPy or CuPy), never Tensors, and use ``self.xp`` for
array functions so the same code runs on the CPU and the GPU. ``Function.apply``
wraps the inputs, runs ``forward``, and — when a gradient is wanted — records the
instance as the creator of its output; ``Tensor.backward`` later calls ``backward``
with the gradient of the loss with respect to that output. ``forward`` must return its
output array (None is a TypeError naming the op); ``backward`` must not write into ``gy``,
which may also be another input's gradient (``a + b`` hands the same array to both).
"""

from __future__ import annotations

import numpy as np

from . import anomaly, backend
from .tensor import Tensor, as_tensor, is_grad_enabled


class Function:
    """Base class of all differentiable ops. The instance is the op's context.

    Attributes set by :meth:`apply` before ``forward`` runs:

    - ``self.xp``: the array namespace of the inputs (``numpy`` or ``cupy``).
    - ``self.needs_input_grad``: one bool per input; ``backward`` may return
      ``None`` for an input that needs no gradient (and skip its work).
    - ``self.inputs``: the input Tensors (only kept when a graph is recorded).

    ``saves_inputs`` says whether ``backward`` reads the inputs' values (kept on ``self``
    by ``forward``); then a change to an input between the forward and the backward pass
    is an error (see :meth:`check_versions`). Ops whose backward needs only shapes (add,
    reshape, sum, ...) set it to False. Per input, a tuple of bools.
    """

    saves_inputs = True
    #: True for an op whose result is not an integer even for integer input (a sigmoid, a mean):
    #: it refuses integer input rather than cut its result to the input's integer dtype
    float_only = False

    def forward(self, *xs, **params):  # pragma: no cover - every op overrides it
        raise NotImplementedError

    def backward(self, gy):  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on ``inputs`` (Tensors; numbers and arrays become constants).

        Keyword ``params`` (kernel sizes, temperature, axis, ...) go to ``forward``
        unchanged and are not differentiated. ``None`` stands for an absent optional input
        (a bias, an affine weight): ``forward`` receives None and ``backward`` returns None for it.
        """
        if inputs and inputs[0] is None:  # None stands for an absent optional input, never for x itself
            raise TypeError(f"{cls.__name__}: the input is None; expected a Tensor or an array")
        like, off_cpu = None, False  # the first Tensor input; whether any input lives off the CPU
        for x in inputs:  # one plain loop: this runs for every op, so it stays cheap
            if isinstance(x, Tensor):
                if like is None:
                    like = x
                if type(x._data) is not np.ndarray:
                    off_cpu = True
        if off_cpu:
            _check_one_device(cls, inputs, like)
        tensors = tuple(None if x is None else as_tensor(x, like=like) for x in inputs)
        if cls.float_only and tensors[0]._data.dtype.kind != "f":
            raise TypeError(f"{cls.__name__}: expects a floating-point input; got dtype {tensors[0]._data.dtype} "
                            "(its result would be cut to integers): convert it first, e.g. x.astype('float32')")
        fn = cls()
        fn.xp = backend.get_array_module(tensors[0]._data) if tensors else None
        fn.needs_input_grad = tuple(t is not None and t.requires_grad for t in tensors)
        y = fn.forward(*(None if t is None else t._data for t in tensors), **params)
        if y is None:  # a forward that forgot its return (Tensor(None) would only say "dtype object")
            raise TypeError(f"{cls.__name__}.forward returned None; it must return the output array, computed "
                            f"with self.xp from the input arrays")
        if anomaly.enabled():  # minikd.detect_anomaly(): was a NaN or ±inf born here?
            anomaly.check_forward(fn, tensors, y)
        requires_grad = is_grad_enabled() and any(fn.needs_input_grad)
        out = Tensor(y, requires_grad=requires_grad)
        if requires_grad:
            fn.inputs = tensors
            fn.versions = tuple(None if t is None else t._version for t in tensors)
            out._ctx = fn
        return out

    def check_versions(self):
        """Raise if an input whose value ``backward`` uses was changed in place after ``forward``."""
        saves = self.saves_inputs
        for i, (t, v) in enumerate(zip(self.inputs, self.versions)):
            if t is not None and t._version != v and (saves if isinstance(saves, bool) else saves[i]):
                what = f"'{t.name}'" if t.name else f"of shape {t.shape}"
                raise RuntimeError(
                    f"{type(self).__name__}.backward: its input {i} (a tensor {what}) was changed in place after "
                    f"the forward pass (version {v} -> {t._version}), so the gradient would use the new values. "
                    "Change it after backward() (as optimizers do), or compute on a copy (t.clone()).")

    def __repr__(self):
        return f"<{type(self).__name__}>"


def _check_one_device(cls, inputs, like):
    """Every input of an op on one device: a clear error naming both devices otherwise (no
    silent copy between host and device, the costliest hidden cost on a GPU)."""
    where = backend.device_of(like._data)
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            other = backend.device_of(x._data)
            if other != where:
                raise RuntimeError(f"{cls.__name__}: its inputs are on two devices, {where} and {other} (input {i}); "
                                   f"move them to one with .to(device) (a model: model.to(device))")
        elif isinstance(x, np.ndarray) and x.ndim > 0:
            raise TypeError(f"{cls.__name__}: input {i} is a NumPy array (on the host) and the others are on "
                            f"{where}; pass mk.tensor(x, device={where!r}) instead")


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the gradient of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1;
    the chain rule adds up the gradients of all the copies.
    """
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1
    )
    return g.sum(axis=axes, keepdims=True).reshape(shape)
