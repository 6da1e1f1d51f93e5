"""Reductions: sum, mean, max — over all elements or chosen axes, with keepdims."""

from __future__ import annotations

from ..checks import check_axis, is_int
from ..function import Function


def _normalize_axis(axis, ndim, op):
    """``axis`` as a sorted tuple of non-negative ints (``None``: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if not is_int(axis) and not isinstance(axis, (tuple, list)):   # 1.0 was "'float' object is not iterable"
        raise TypeError(f"{op}: axis must be an int, a tuple of ints or None; got {axis!r}")
    axes = (axis,) if is_int(axis) else tuple(axis)
    if ndim == 0:  # a 0-d tensor accepts axis 0 (or −1), as in NumPy: nothing to reduce
        for a in axes:
            check_axis(a, 1, op)
        return ()
    checked = [check_axis(a, ndim, op) for a in axes]
    if len(set(checked)) != len(checked):   # NumPy refuses a repeated axis too
        raise ValueError(f"{op}: axis {axis!r} names an axis twice")
    return tuple(sorted(checked))


def _kept_shape(shape, axes):
    """The shape of the result with ``keepdims=True``: reduced axes become 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = Σ_axes x;  dL/dx = dL/dy broadcast back over the summed axes."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, axis, keepdims):
        self.axes = _normalize_axis(axis, x.ndim, "sum")
        self.x_shape = x.shape
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        gy = gy.reshape(_kept_shape(self.x_shape, self.axes))
        return self.xp.broadcast_to(gy, self.x_shape).copy()


class Mean(Function):
    """y = (1/n) Σ_axes x;  dL/dx = dL/dy / n, broadcast back."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

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
        xp = self.xp
        mask = self.x == self.y
        mask |= xp.isnan(self.y) & xp.isnan(self.x)  # a NaN maximum: the NaNs are the arg-max
        count = mask.sum(axis=self.axes, keepdims=True)
        share = (gy.reshape(self.y.shape) / count).astype(gy.dtype)
        return xp.where(mask, share, gy.dtype.type(0))


def sum(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Max.apply(x, axis=axis, keepdims=keepdims)
