"""Shape ops: reshape, flatten, transpose/permute, indexing, concatenate, stack, device moves.

None of them changes a value, so each backward only puts the gradient back where
the value came from.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..checks import check_axis, is_int
from ..function import Function
from ..tensor import Tensor


class Reshape(Function):
    """y = x viewed with another shape;  dL/dx = dL/dy reshaped back."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, shape):
        self.x_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) "
                             f"as {shape}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Transpose(Function):
    """y = x with its axes permuted;  dL/dx = dL/dy with the inverse permutation."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, axes):
        if axes is None:
            axes = tuple(reversed(range(x.ndim)))
        if not all(is_int(a) for a in axes) or sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: {axes} is not a permutation of the {x.ndim} axes of {x.shape}")
        self.axes = tuple(a % x.ndim for a in axes)
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return gy.transpose(inverse)


class GetItem(Function):
    """y = x[index] (slices, ints, None, Ellipsis, integer or boolean arrays).

    dL/dx is zero except at the selected places, which receive dL/dy. With integer
    arrays an element can be picked twice; its gradients then add up (scatter-add).
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, index):
        if self.xp is not np:  # index arrays go where the data is, once (not at every backward)
            index = tuple(self.xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index) \
                if isinstance(index, tuple) else self.xp.asarray(index) if isinstance(index, np.ndarray) else index
        self.x_shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, gy):
        gx = self.xp.zeros(self.x_shape, dtype=gy.dtype)
        if _is_basic(self.index):
            gx[self.index] = gy  # no element is selected twice
        else:
            backend.scatter_add(gx, self.index, gy)
        return gx


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


class Concatenate(Function):
    """y = [x₁, x₂, …] joined along ``axis``;  each xᵢ gets its slice of dL/dy."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, *xs, axis):
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return self.xp.concatenate(xs, axis=axis)

    def backward(self, gy):
        bounds = [0]
        for n in self.sizes:
            bounds.append(bounds[-1] + n)
        index = [slice(None)] * gy.ndim
        grads = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            index[self.axis] = slice(lo, hi)
            grads.append(gy[tuple(index)])
        return tuple(grads)


class Stack(Function):
    """y = [x₁, x₂, …] stacked on a new ``axis``;  each xᵢ gets dL/dy[..., i, ...]."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, *xs, axis):
        self.axis = axis
        return self.xp.stack(xs, axis=axis)

    def backward(self, gy):
        n = gy.shape[self.axis]
        return tuple(self.xp.take(gy, i, axis=self.axis) for i in range(n))


class ToDevice(Function):
    """y = x copied to another device;  dL/dx = dL/dy copied back."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, device):
        self.source = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, gy):
        return backend.to_device(gy, self.source)


def reshape(x, *shape):
    """``x`` with a new shape; one entry may be −1 (inferred)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Reshape.apply(x, shape=tuple(shape))


def flatten(x, start_axis: int = 1):
    """Merge the axes from ``start_axis`` on into one: (N, C, H, W) → (N, C·H·W)."""
    shape = x.shape
    start_axis = check_axis(start_axis, max(len(shape), 1), "flatten", "start_axis")
    return Reshape.apply(x, shape=tuple(shape[:start_axis]) + (math.prod(shape[start_axis:]),))


def transpose(x, *axes):
    """Permute the axes (reverse them when none are given)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return Transpose.apply(x, axes=tuple(axes) if axes else None)


def permute(x, *axes):
    return transpose(x, *axes)


def getitem(x, index):
    index = _raw_index(index)
    return GetItem.apply(x, index=index)


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _sequence(tensors, op):
    """The tensors to join, as a list; a single Tensor (whose rows would be iterated) is refused."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expects a list or tuple of tensors; got {type(tensors).__name__}")
    return list(tensors)


def concatenate(tensors, axis: int = 0):
    tensors = _sequence(tensors, "concatenate")
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use stack")
    axis_n = check_axis(axis, ndim, "concatenate")
    for t in tensors[1:]:
        if t.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis_n):
            raise ValueError(f"concatenate along axis {axis}: shapes {[x.shape for x in tensors]} differ "
                             "outside that axis")
    return Concatenate.apply(*tensors, axis=axis_n)


def stack(tensors, axis: int = 0):
    tensors = _sequence(tensors, "stack")
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors need the same shape; got {[t.shape for t in tensors]}")
    return Stack.apply(*tensors, axis=check_axis(axis, tensors[0].ndim, "stack", extra=1))


def to_device(x, device):
    return ToDevice.apply(x, device=backend.check_device(device))
