"""Elementwise arithmetic: + − × ÷, negation, powers, exp, log, sqrt, abs, where.

Binary ops broadcast like NumPy; their backward sums each gradient back to its
input's shape with :func:`~minikd.function.unbroadcast`.
"""

from __future__ import annotations

from ..checks import check_broadcast
from ..function import Function, unbroadcast
from ..tensor import Tensor, as_tensor


def _check_shapes(a, b, op):
    """Name the op and both shapes when they cannot broadcast (NumPy's message names neither)."""
    if a.shape != b.shape:
        check_broadcast(a.shape, b.shape, op)


class Add(Function):
    """y = a + b;  dL/da = dL/dy,  dL/db = dL/dy."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, a, b):
        _check_shapes(a, b, "add")
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        sa, sb = self.shapes
        return unbroadcast(gy, sa), unbroadcast(gy, sb)


class Sub(Function):
    """y = a − b;  dL/da = dL/dy,  dL/db = −dL/dy."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, a, b):
        _check_shapes(a, b, "sub")
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        sa, sb = self.shapes
        return unbroadcast(gy, sa), unbroadcast(-gy, sb)


class Mul(Function):
    """y = a · b;  dL/da = dL/dy · b,  dL/db = dL/dy · a."""

    def forward(self, a, b):
        _check_shapes(a, b, "mul")
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        a, b = self.a, self.b
        ga = unbroadcast(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  dL/da = dL/dy / b,  dL/db = −dL/dy · a / b²."""

    def forward(self, a, b):
        _check_shapes(a, b, "div")
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        ga = unbroadcast(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = −x;  dL/dx = −dL/dy."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = a^b;  dL/da = dL/dy · b·a^(b−1),  dL/db = dL/dy · a^b · ln a.

    At the base a = 0 the formulas hold 0 · ∞ and would give NaN; the limits are used
    instead, as in PyTorch: dL/da = 0 where b = 0 (a^0 = 1 is constant in a), and
    dL/db = 0 where a = 0 and b ≥ 0 (0^b is 0, or 1 at b = 0, whatever b does nearby
    from the right). So d(Σ x^p)/dp at x = [0, 1, 2], p = 2 is 4 ln 2, not NaN.
    """

    def forward(self, a, b):
        _check_shapes(a, b, "pow")
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        xp, a, b = self.xp, self.a, self.b
        zero = xp.zeros((), dtype=gy.dtype)
        ga = gb = None
        if self.needs_input_grad[0]:
            # b · a^(b−1), with the exponent made 1 where b = 0 so 0^(−1) is never formed
            d = xp.where(b == 0, zero, b * a ** xp.where(b == 0, 1, b - 1))
            ga = unbroadcast(gy * d, a.shape)
        if self.needs_input_grad[1]:
            # a^b · ln a, with ln 1 = 0 put in where the limit is 0 (a = 0, b ≥ 0)
            log_a = xp.log(xp.where((a == 0) & (b >= 0), 1, a))
            gb = unbroadcast(gy * (self.y * log_a), b.shape)
        return ga, gb


class Exp(Function):
    """y = e^x;  dL/dx = dL/dy · y."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = ln x;  dL/dx = dL/dy / x."""

    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = √x;  dL/dx = dL/dy / (2y)."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """y = |x|;  dL/dx = dL/dy · sign(x) (0 at x = 0)."""

    def forward(self, x):
        self.x = x
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * self.xp.sign(self.x)


class Where(Function):
    """y = cond ? a : b (cond is a constant);  the gradient goes to the chosen side."""

    saves_inputs = (False, False, True)  # backward reads only cond

    def forward(self, a, b, cond):
        check_broadcast(check_broadcast(a.shape, b.shape, "where (a, b)"), cond.shape, "where (a and b, cond)")
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return self.xp.where(cond, a, b)

    def backward(self, gy):
        zero = self.xp.zeros((), dtype=gy.dtype)
        sa, sb = self.shapes
        return (unbroadcast(self.xp.where(self.cond, gy, zero), sa),
                unbroadcast(self.xp.where(self.cond, zero, gy), sb))


class Cast(Function):
    """y = x as another dtype;  the gradient is cast back."""

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, gy):
        return gy.astype(self.dtype)


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(x):
    return Neg.apply(x)


def pow(a, b):  # noqa: A001 - the natural name, as in Python's operator module
    return Pow.apply(a, b)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs(x):  # noqa: A001
    return Abs.apply(x)


def where(cond, a, b):
    """Elementwise ``cond ? a : b``; differentiable in ``a`` and ``b``, not in ``cond``
    (an array ``cond`` is put on the device of ``a`` or ``b``: one explicit copy)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    cond = as_tensor(cond, like=like)
    if cond.dtype.kind != "b":   # a float condition would be read as "non-zero", silently
        raise TypeError(f"where: cond must be boolean (e.g. x > 0); got dtype {cond.dtype}")
    return Where.apply(a, b, cond)


def cast(x, dtype):
    return Cast.apply(x, dtype=dtype)
