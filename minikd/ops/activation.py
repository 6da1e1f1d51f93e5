"""Activations: tanh, sigmoid, ReLU, leaky ReLU, and clipping."""

from __future__ import annotations

from ..function import Function


class Tanh(Function):
    """y = tanh x;  dL/dx = dL/dy · (1 − y²)."""

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e^(−x));  dL/dx = dL/dy · y(1 − y).

    Computed as (1 + tanh(x/2)) / 2, which equals σ(x) and never overflows.
    """

    def forward(self, x):
        self.y = 0.5 * (self.xp.tanh(0.5 * x) + 1)
        return self.y.astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class ReLU(Function):
    """y = max(x, 0);  dL/dx = dL/dy where x > 0, else 0."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class LeakyReLU(Function):
    """y = x if x > 0 else a·x;  dL/dx = dL/dy · (1 or a)."""

    def forward(self, x, negative_slope):
        self.slope = self.xp.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * self.slope

    def backward(self, gy):
        return gy * self.slope


class Clip(Function):
    """y = min(max(x, lo), hi);  dL/dx = dL/dy where lo ≤ x ≤ hi, else 0."""

    def forward(self, x, lo, hi):
        self.inside = self.xp.ones(x.shape, dtype=bool)
        if lo is not None:
            self.inside &= x >= lo
        if hi is not None:
            self.inside &= x <= hi
        return self.xp.clip(x, lo, hi)

    def backward(self, gy):
        return gy * self.inside


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01):
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def clip(x, lo=None, hi=None):
    """Clamp to [lo, hi] (either bound may be None)."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip: lower bound {lo} is above upper bound {hi}")
    return Clip.apply(x, lo=lo, hi=hi)
