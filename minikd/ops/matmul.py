"""Matrix product ``a @ b`` with NumPy's rules (1-D operands, batched leading axes)."""

from __future__ import annotations

from ..checks import check_same_dtype
from ..function import Function, unbroadcast


class MatMul(Function):
    """Y = A B;  dL/dA = dL/dY Bᵀ,  dL/dB = Aᵀ dL/dY.

    A 1-D operand is treated as a row (left) or column (right) vector, and batch
    axes broadcast; the gradient is summed back over broadcast batch axes.
    """

    def forward(self, a, b):
        inner_a = a.shape[-1]
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.ndim == 0 or b.ndim == 0 or inner_a != inner_b:
            raise ValueError(f"matmul: shapes {a.shape} @ {b.shape} are incompatible: the last axis of the "
                             f"left operand ({inner_a if a.ndim else '-'}) must equal the "
                             f"{'first' if b.ndim == 1 else 'second-to-last'} axis of the right one")
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # promote vectors to matrices ...
        b2 = b[:, None] if b.ndim == 1 else b
        shape = list(gy.shape)
        if b.ndim == 1:
            shape.append(1)
        if a.ndim == 1:
            shape.insert(len(shape) - 1, 1)
        g2 = gy.reshape(shape)  # ... so one formula covers every case
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    return MatMul.apply(a, b)


class Linear(Function):
    """y = x Wᵀ + b  (x: (N, I), W: (O, I), b: (O,));
    dL/dx = dL/dy W,  dL/dW = (dL/dy)ᵀ x,  dL/db = Σ_N dL/dy."""

    def forward(self, x, weight, bias=None):
        if weight.ndim != 2:
            raise ValueError(f"linear: the weight must be 2-D (out_features, in_features); got shape {weight.shape}")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias of shape {bias.shape} does not match the weight {weight.shape}: "
                             f"expected ({weight.shape[0]},), one per output feature")
        check_same_dtype("linear", x, weight=weight, bias=bias)
        if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features "
                             f"at its last axis; the weight of shape {weight.shape} expects {weight.shape[1]}")
        self.x, self.weight = x, weight
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, gy):
        x, w = self.x, self.weight
        gx = gy @ w if self.needs_input_grad[0] else None
        gw = gy.reshape(-1, gy.shape[-1]).T @ x.reshape(-1, x.shape[-1]) if self.needs_input_grad[1] else None
        gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """The fully connected layer: y = x Wᵀ + b, (I + 1)·O parameters."""
    return Linear.apply(x, weight, bias)
