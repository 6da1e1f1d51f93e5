"""The lecture's quantization operator, one small function per formula.

A real value x in the range [β, α] is mapped to a b-bit signed integer in
[−2^{b−1}, 2^{b−1} − 1] by

- the scaling factor and zero-point (:func:`qparams`)::

      s = (α − β) / (2^b − 1)
      z = round(β · (2^b − 1) / (α − β) + 2^{b−1})

- the transformation (:func:`transform`)::

      T(x, s, z) = round(x / s − z)

- the clipping (:func:`clip`)::

      clip(x_t, l, u) = l if x_t < l,  x_t if l ≤ x_t ≤ u,  u if x_t > u

- the quantization (:func:`quantize`)::

      Q(x, b) = clip(T(x, s, z), −2^{b−1}, 2^{b−1} − 1)

- and back, the inverse of T (:func:`dequantize`)::

      x ≈ s · (q + z)

α is the top of the range (its max) and β the bottom (its min), as in the formula for s.
Symmetric quantization takes −α = β and z = 0; asymmetric quantization any α ≥ β.

**Rounding.** ``round`` is NumPy's (and CuPy's) ``round``: it rounds halves to the even
neighbour (banker's rounding), so round(7.5) = 8, round(3.5) = 4, round(4.5) = 4,
round(−0.25) = −0. The lecture's exercises land on halves, so this matters.

**Precision.** :func:`transform` (and so :func:`quantize` and :func:`fake_quantize`)
computes x/s − z in float64 whatever x's dtype: in float32, 1.0 / (2/15) is 7.4999995, which
rounds to 7, not the 8 of the exercise.

**Per-channel.** Every function takes ``axis``: ``None`` for per-tensor (s and z are numbers,
or arrays already shaped to broadcast against x), or the channel axis of x (s and z then have
shape (C,), one entry per channel, and are reshaped to broadcast along that axis: axis 0 for
the filters of a conv weight (d, d_prev, k, k) and the rows of a Linear weight (out, in)).

Inputs may be NumPy or CuPy arrays, numbers, or Tensors (their data is used); the
non-differentiable functions return arrays. :func:`fake_quantize` is the differentiable op:
quantize-dequantize in the forward, the straight-through estimator in the backward.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..checks import ArgumentTypeError, check_bool, is_number
from ..function import Function
from ..tensor import Tensor

MIN_BITS, MAX_BITS = 2, 16


def check_bits(b, op: str = "quant") -> int:
    """``b`` as an int, or ValueError naming ``op`` unless it is a whole number of bits in 2..16
    (an ``ArgumentTypeError``, both a TypeError and a ValueError, when it is not an int at all)."""
    if isinstance(b, bool) or not isinstance(b, numbers.Integral):
        raise ArgumentTypeError(f"{op}: bit width b must be an integer in {MIN_BITS}..{MAX_BITS}; got {b!r}")
    if not MIN_BITS <= b <= MAX_BITS:
        raise ValueError(f"{op}: bit width b must be an integer in {MIN_BITS}..{MAX_BITS}; got {b!r}")
    return int(b)


def qrange(b, op: str = "qrange") -> tuple[int, int]:
    """The b-bit signed integer range (l, u) = (−2^{b−1}, 2^{b−1} − 1); 4 bits: (−8, 7)."""
    b = check_bits(b, op)
    return -(2 ** (b - 1)), 2 ** (b - 1) - 1


def int_dtype(b):
    """The smallest signed integer dtype that holds b bits: int8 for b ≤ 8, int16 for b ≤ 16."""
    return np.int8 if check_bits(b, "int_dtype") <= 8 else np.int16


def _data(a):
    """The raw array (or number) behind ``a``."""
    return a.data if isinstance(a, Tensor) else a


def check_scale(s, z, op: str) -> None:
    """ValueError naming ``op`` unless the scaling factor s is finite and > 0 and the zero-point z
    a finite whole number (each entry, per channel): s = 0 would divide by zero, s < 0 flip the
    levels, a fractional z put them off the integer grid. Checked on the host's numbers and NumPy
    arrays; a device's arrays come from :func:`qparams`, which keeps to these rules, and reading
    them here would make every call wait for the device."""
    s, z = _data(s), _data(z)
    if any(not isinstance(v, numbers.Number) and backend.get_array_module(v) is not np for v in (s, z)):
        return
    s_, z_ = np.asarray(s, dtype=np.float64), np.asarray(z, dtype=np.float64)
    if not (np.all(np.isfinite(s_)) and np.all(s_ > 0)):
        raise ValueError(f"{op}: the scaling factor s must be finite and > 0 (s = (α − β)/(2^b − 1), from "
                         f"qparams); got s={s!r}")
    if not (np.all(np.isfinite(z_)) and np.all(z_ == np.round(z_))):
        raise ValueError(f"{op}: the zero-point z must be a whole number (an integer level, from qparams); "
                         f"got z={z!r}")


def _along(a, axis, x, xp):
    """s or z ready to broadcast against ``x``: unchanged per-tensor (``axis=None``); per-channel,
    the (C,) array reshaped to (1, …, C, …, 1) with C at ``axis``."""
    a = _data(a)
    if axis is None or isinstance(a, numbers.Number):
        return a
    a = xp.asarray(a)
    if a.ndim == 0:
        return a
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"per-channel s and z: axis must be an int in {-x.ndim}..{x.ndim - 1} for x of shape "
                         f"{tuple(x.shape)}; got {axis!r}")
    axis = axis % x.ndim
    if a.size != x.shape[axis]:
        raise ValueError(f"per-channel s and z need one entry per channel: x has {x.shape[axis]} along "
                         f"axis {axis}, got {a.size}")
    shape = [1] * x.ndim
    shape[axis] = a.size
    return a.reshape(shape)


def qparams(alpha, beta, b, symmetric: bool = False):
    """The scaling factor s and zero-point z of the range [β, α] at b bits.

    ::

        s = (α − β) / (2^b − 1)
        z = round(β · (2^b − 1) / (α − β) + 2^{b−1})

    ``alpha`` (α) is the top of the range, the max; ``beta`` (β) the bottom, the min. Both
    may be arrays of one entry per channel (per-channel quantization). ``symmetric``: the
    range is taken as [−m, m] with m = max(|α|, |β|), so s = 2m / (2^b − 1) and z = 0.
    (The z formula with β = −α gives round(1/2) = 0 as well, with round-half-to-even.)

    Returns ``(s, z)``: a float and an int for numbers; for arrays, a float64 array and an
    int64 array (on the arrays' device). Note that z lies in the b-bit range only when the
    range holds 0: it is 2^{b−1} for β = 0 and beyond for β > 0, so keep it wider than b bits.

    Degenerate range (α = β, a constant tensor or channel): the formula divides by zero; we
    take s = |α| instead (s = 1 when α = β = 0), which keeps s finite and represents the
    constant exactly. A range too narrow for float64 (s underflows to 0) is treated the same.

    Raises ValueError for a bit width outside 2..16, a NaN or infinite end, and for α < β: the asymmetric slide's
    exercise names them the other way round (α = −0.5, β = 1.5), which would give a negative s.
    """
    b = check_bits(b, "qparams")
    a_in, b_in = _data(alpha), _data(beta)
    for name, v in (("alpha", a_in), ("beta", b_in)):   # a string or a bool would be read as a number
        if isinstance(v, (str, bool, np.bool_)) or (hasattr(v, "dtype") and v.dtype.kind not in "iuf"):
            raise TypeError(f"qparams: {name} must be a number or an array of numbers; got {v!r}")
    scalar = isinstance(a_in, numbers.Number) and isinstance(b_in, numbers.Number)
    xp = backend.get_array_module(b_in if isinstance(a_in, numbers.Number) else a_in)
    alpha = xp.asarray(a_in, dtype=xp.float64)
    beta = xp.asarray(b_in, dtype=xp.float64)
    if not bool(xp.all(xp.isfinite(alpha)) and xp.all(xp.isfinite(beta))):
        raise ValueError(f"the range must be finite; got alpha={a_in!r}, beta={b_in!r}")
    if bool(xp.any(alpha < beta)):
        raise ValueError(f"alpha must be ≥ beta (alpha is the top of the range, beta the bottom); "
                         f"got alpha={a_in!r}, beta={b_in!r}")
    levels = 2.0 ** b - 1  # 2^b − 1 steps between 2^b integer values
    symmetric = check_bool(symmetric, "qparams", "symmetric")
    if symmetric:
        m = xp.maximum(xp.abs(alpha), xp.abs(beta))
        alpha, beta = m, -m
    with np.errstate(over="ignore"):
        s = (alpha - beta) / levels
    if not bool(xp.all(xp.isfinite(s))):
        raise ValueError(f"qparams: the range is too wide for {np.dtype(s.dtype)}: α − β overflows (got "
                         f"alpha={a_in!r}, beta={b_in!r}), so no scaling factor s can be formed")
    degenerate = ~(s > 0)
    fallback = xp.maximum(xp.abs(alpha), xp.abs(beta))
    fallback = xp.where(fallback > 0, fallback, 1.0)
    s = xp.where(degenerate, fallback, s)
    if symmetric:
        z = xp.zeros(s.shape, dtype=xp.int64)
    else:
        # (2^b − 1)/(α − β) as in the formula; 1/s for a degenerate range
        width = xp.where(degenerate, 1.0, alpha - beta)
        inv = xp.where(degenerate, 1.0 / s, levels / width)
        z = xp.round(beta * inv + 2.0 ** (b - 1)).astype(xp.int64)
    if scalar:
        return float(s), int(z)
    return s, z


def transform(x, s, z, axis=None):
    """T(x, s, z) = round(x/s − z): real values to (unclipped) integer levels, as float64.

    ``round`` rounds halves to even (NumPy's rule): 7.5 → 8, 3.5 → 4, −0.25 → −0.
    The arithmetic is float64 whatever x's dtype. ``axis``: see the module docstring.
    ``x``: any shape (a Tensor or an array); returns a float64 array of that shape.
    Raises ValueError for s ≤ 0 or not finite, or a z that is not a whole number (:func:`check_scale`).
    Source: the lecture's slide "Model quantization - Quantization operator".
    """
    check_scale(s, z, "transform")
    return _transform(x, s, z, axis)


def _transform(x, s, z, axis=None):
    """T without the check of s and z (the callers have checked them)."""
    x = _data(x)
    xp = backend.get_array_module(x)
    x = xp.asarray(x, dtype=xp.float64)
    return xp.round(x / _along(s, axis, x, xp) - _along(z, axis, x, xp))


def clip(x, l, u):
    """clip(x, l, u) = l where x < l, x where l ≤ x ≤ u, u where x > u.

    ``x``: any shape; returns an array of that shape. Source: the lecture's clipping process (its
    quantization operator is "value transformation and clipping")."""
    for name, v in (("l", l), ("u", u)):
        if not is_number(v):
            raise ArgumentTypeError(f"clip: the bound {name} must be a number; got {v!r}")
    if not l <= u:   # NaN fails too
        raise ValueError(f"clip: the lower bound l must be ≤ the upper bound u; got l={l!r}, u={u!r}")
    x = _data(x)
    xp = backend.get_array_module(x)
    return xp.clip(xp.asarray(x), l, u)


def quantize(x, b, s, z, axis=None):
    """Q(x, b) = clip(T(x, s, z), −2^{b−1}, 2^{b−1} − 1): the b-bit integers of x.

    Returns an integer array of the smallest signed dtype holding b bits: int8 for b ≤ 8,
    int16 for 8 < b ≤ 16 (a 4-bit value still takes a byte), of x's shape. ``axis``: see the
    module docstring. Raises ValueError for s ≤ 0 or not finite, or a z that is not a whole
    number (:func:`check_scale`). Source: the lecture's Q(x, b).
    """
    check_scale(s, z, "quantize")
    data = _data(x)
    host = np.asarray(data) if backend.get_array_module(data) is np else None  # host only: no device wait
    if host is not None and host.dtype.kind == "f" and np.isnan(host).any():  # a number or a list too
        raise ValueError(f"quantize: x holds NaN (first at index {np.argwhere(np.isnan(host))[0].tolist()}), which no "
                         "integer level can stand for; find where it came from (minikd.detect_anomaly)")
    return _quantize(x, b, s, z, axis)


def _quantize(x, b, s, z, axis=None):
    """Q without the check of s and z: for the integer layers, which quantize their input on every
    forward pass with an s and z that :func:`qparams` made (and checked) at calibration."""
    lo, hi = qrange(b, "quantize")
    return clip(_transform(x, s, z, axis), lo, hi).astype(int_dtype(b))


def dequantize(q, s, z, axis=None):
    """x ≈ s · (q + z): the inverse of T, back to real values (float64).

    q is widened before z is added, so int8 levels plus a zero-point do not overflow.
    Inside the range [β, α], |dequantize(quantize(x)) − x| ≤ s/2 (up to float64 rounding).
    ``q``: any shape; returns float64 of that shape. Raises ValueError for s ≤ 0 or not finite, or
    a z that is not a whole number (:func:`check_scale`). Source: the inverse of the lecture's T
    (its slides give T only; x = s·(x_q + z) solves round(x/s − z) = x_q without the rounding).
    """
    check_scale(s, z, "dequantize")
    q = _data(q)
    xp = backend.get_array_module(q)
    q = xp.asarray(q, dtype=xp.float64)
    return _along(s, axis, q, xp) * (q + _along(z, axis, q, xp))


class FakeQuantize(Function):
    """y = dequantize(quantize(x)) = s · (clip(round(x/s − z), l, u) + z);  the straight-through
    estimator in the backward:  dL/dx = dL/dy where l ≤ x/s − z ≤ u, 0 elsewhere.

    The true derivative of round is 0 almost everywhere (and undefined at the halves), which
    would stop all learning; the STE pretends round is the identity and differentiates only
    the clip. The test uses the *un-rounded* value v = x/s − z, with both ends inside (the
    lecture's clip passes l ≤ x_t ≤ u through): v slightly above u, which still rounds to u,
    already gets gradient 0. (l, u) = (−2^{b−1}, 2^{b−1} − 1); s and z are constants.
    """

    def forward(self, x, b, s, z, axis=None):
        xp = self.xp
        lo, hi = qrange(b)
        x64 = xp.asarray(x, dtype=xp.float64)
        s_, z_ = _along(s, axis, x64, xp), _along(z, axis, x64, xp)
        v = x64 / s_ - z_
        self.inside = (v >= lo) & (v <= hi)
        y = s_ * (xp.clip(xp.round(v), lo, hi) + z_)
        return y.astype(x.dtype) if x.dtype.kind == "f" else y

    def backward(self, gy):
        return self.xp.where(self.inside, gy, gy.dtype.type(0))  # a select: inf · 0 would be NaN


def fake_quantize(x, b, s, z, axis=None) -> Tensor:
    """Quantize-dequantize ``x`` as a differentiable op (a Tensor of x's floating dtype).

    Forward: dequantize(quantize(x, b, s, z)), the real values the b-bit integers stand for.
    Backward: the straight-through estimator — the gradient passes where the un-rounded
    x/s − z lies in [−2^{b−1}, 2^{b−1} − 1] and is 0 outside (see :class:`FakeQuantize`).
    s and z get no gradient; ``axis``: None per-tensor, or the channel axis of x. ``x``: any
    shape; the result has its shape and floating dtype.
    Raises ValueError for bits b that are not an int in 2..16 (:func:`check_bits`),
    ValueError for s ≤ 0 or not finite, or a z that is not a whole number (:func:`check_scale`).
    Source: the lecture's quantization-aware training; the estimator: Bengio, Léonard &
    Courville 2013; fake quantization in training: Jacob et al., CVPR 2018.
    """
    check_bits(b, "fake_quantize")
    check_scale(s, z, "fake_quantize")
    return FakeQuantize.apply(x, b=b, s=s, z=z, axis=axis)
