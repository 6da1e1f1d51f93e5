"""Activations: tanh, sigmoid, ReLU, leaky ReLU, and clipping.

Where a gradient is "dL/dy here, 0 there", it is selected with ``where``, not multiplied
by a 0/1 mask: ``inf · 0`` is NaN, and a value that the maths zeroes must come out 0.
"""

from __future__ import annotations

from .. import kernels
from ..checks import check_number
from ..function import Function
from ..tensor import Tensor, as_tensor


class Tanh(Function):
    """y = tanh x;  dL/dx = dL/dy · (1 − y²)."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e^(−x));  dL/dx = dL/dy · σ(x) σ(−x)   (= y(1 − y)).

    Stable for both signs, with e = e^(−|x|) ∈ (0, 1] (never overflows):

        σ(x) = 1 / (1 + e)  for x ≥ 0,      σ(x) = e / (1 + e)  for x < 0
        σ'(x) = σ(x) σ(−x) = e / (1 + e)²   for every x

    so σ(−20) = 2.06e-9 keeps all its digits (1 − y would cancel, and (1 + tanh(x/2))/2
    gives 0 in float32 there), and log σ(−20) = −20, not −inf.
    """

    float_only = True  # refuses integer input (Function.float_only)

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        self.e = e
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, gy):
        e = self.e
        return gy * (e / ((1 + e) * (1 + e)))


class ReLU(Function):
    """y = max(x, 0);  dL/dx = dL/dy where x > 0, else 0."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        y, self.mask = kernels.relu_forward(x)  # xp.maximum(x, 0), x > 0: a NaN stays NaN, −inf becomes 0
        return y

    def backward(self, gy):
        return kernels.select(self.mask, gy)    # xp.where(mask, gy, 0)


class LeakyReLU(Function):
    """y = x if x > 0 else a·x;  dL/dx = dL/dy · (1 or a)."""

    float_only = True  # refuses integer input (Function.float_only)

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, negative_slope):
        self.mask, self.a = x > 0, x.dtype.type(negative_slope)
        if self.a == 0:  # ReLU: the negative side is 0, also at −inf (where 0 · x would be NaN)
            return self.xp.maximum(x, self.a)
        return kernels.leaky(self.mask, x, self.a)          # xp.where(mask, x, a·x)

    def backward(self, gy):
        if self.a == 0:
            return kernels.select(self.mask, gy)           # xp.where(mask, gy, 0)
        return kernels.leaky(self.mask, gy, self.a)        # xp.where(mask, gy, a·gy)


class Clip(Function):
    """y = min(max(x, lo), hi);  dL/dx = dL/dy where lo ≤ x ≤ hi, else 0."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, lo, hi):
        xp = self.xp
        self.inside = xp.ones(x.shape, dtype=bool)
        y = x
        if lo is not None:
            self.inside &= ~(x < lo)   # a NaN counts as inside: its gradient stays NaN-carrying
            y = xp.where(x < lo, xp.asarray(lo, dtype=x.dtype), y)
        if hi is not None:
            self.inside &= ~(x > hi)
            y = xp.where(x > hi, xp.asarray(hi, dtype=x.dtype), y)
        return y if y is not x else x.copy()

    def backward(self, gy):
        return kernels.select(self.inside, gy)  # xp.where(inside, gy, 0)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01):
    negative_slope = check_number(negative_slope, "leaky_relu", "negative_slope")
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def _bound(v, name):
    """A clip bound: None, a number, or a Tensor/array broadcastable to x (a constant: no gradient)."""
    if v is None:
        return None
    if isinstance(v, Tensor):
        return v.data
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        return v
    check_number(v, "clip", name, finite=False)
    return v


def clip(x, lo=None, hi=None):
    """Clamp to [lo, hi] (either bound may be None; numbers, or Tensors broadcastable to ``x``).

    y = min(max(x, lo), hi);  dL/dx = dL/dy where lo ≤ x ≤ hi, else 0. A NaN stays NaN.
    Raises ValueError if lo > hi anywhere, TypeError for a bound that is not a number or tensor.
    """
    lo, hi = _bound(lo, "lo"), _bound(hi, "hi")
    if lo is not None and hi is not None:
        above = lo > hi
        if bool(above.any() if hasattr(above, "any") else above):
            raise ValueError(f"clip: lower bound {lo} is above upper bound {hi}")
    x = as_tensor(x)
    if x.dtype.kind in "iu":  # integer input keeps its dtype: a fractional bound would be cut
        for name, v in (("lo", lo), ("hi", hi)):
            whole = v is None or (v.dtype.kind in "iub" if hasattr(v, "dtype") else float(v).is_integer())
            if not whole:
                raise TypeError(f"clip: integer input ({x.dtype}) with the fractional bound {name}={v!r} would be "
                                "cut to integers: convert the input first, e.g. x.astype('float32')")
    return Clip.apply(x, lo=lo, hi=hi)
