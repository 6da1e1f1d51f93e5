"""Reductions: sum, mean, max — over all elements or chosen axes, with keepdims."""

from __future__ import annotations

import builtins

from ..function import Function


def _normalize_axis(axis, ndim, op):
    """``axis`` as a sorted tuple of non-negative ints (``None``: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % builtins.max(ndim, 1))
    return tuple(sorted(set(out)))


def _kept_shape(shape, axes):
    """The shape of the result with ``keepdims=True``: reduced axes become 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = Σ_axes x;  dL/dx = dL/dy broadcast back over the summed axes."""

    def forward(self, x, axis, keepdims):
        self.axes = _normalize_axis(axis, x.ndim, "sum")
        self.x_shape = x.shape
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.x_shape, self.axes))
        return self.xp.broadcast_to(gy, self.x_shape).copy()


class Mean(Function):
    """y = (1/n) Σ_axes x;  dL/dx = dL/dy / n, broadcast back."""

    def forward(self, x, axis, keepdims):
        self.axes = _normalize_axis(axis, x.ndim, "mean")
        self.x_shape = x.shape
        self.n = 1
        for a in self.axes:
            self.n *= x.shape[a]
        return x.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.x_shape, self.axes)) / self.n
        return self.xp.broadcast_to(gy, self.x_shape).astype(gy.dtype, copy=True)


class Max(Function):
    """y = max_axes x;  dL/dx = dL/dy at the arg-max (split equally between ties)."""

    def forward(self, x, axis, keepdims):
        self.axes = _normalize_axis(axis, x.ndim, "max")
        if x.size == 0:
            raise ValueError(f"max of an empty tensor of shape {x.shape}")
        self.x = x
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if keepdims else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        mask = self.x == self.y
        count = mask.sum(axis=self.axes, keepdims=True)
        return mask * (gy.reshape(self.y.shape) / count).astype(gy.dtype)


def sum(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Max.apply(x, axis=axis, keepdims=keepdims)
