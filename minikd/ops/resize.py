"""Bilinear interpolation (resizing feature maps): the lecture's g(·) "bilinear interpolation
(upsampling/downsampling)" that aligns a student's map F_S (C, H_S, W_S) with the teacher's
(C, H_T, W_T) in feature-based distillation.

Bilinear interpolation is separable: interpolate along the rows, then along the columns.
Along one axis of length n_in resized to n_out, output position i reads the source
coordinate

    align_corners=False (PyTorch's default, "half-pixel" centres):
        src(i) = max((i + 0.5) · n_in / n_out − 0.5, 0)
    align_corners=True (the corner pixels' centres line up):
        src(i) = i · (n_in − 1) / (n_out − 1)          (0 when n_out = 1)

and mixes its two neighbours i₀ = ⌊src⌋, i₁ = min(i₀ + 1, n_in − 1) with weights
w₁ = src − i₀ and w₀ = 1 − w₁. Those weights are the rows of an (n_out, n_in) matrix A
(two non-zeros per row), so the whole 2-D resize is two matrix products:

    y[n, c] = A_H · x[n, c] · A_Wᵀ          A_H (H', H),  A_W (W', W)

which is linear in x; its backward is the adjoint, the same products with the matrices
transposed (each output gradient scattered back to the four source pixels it read):

    dL/dx[n, c] = A_Hᵀ · dL/dy[n, c] · A_W

The code applies A by gathering its two non-zeros per row, (A·v)[i] = w₀ v[i₀] + w₁ v[i₁],
and Aᵀ by scatter-adding, instead of multiplying by the dense matrix: the same numbers, but
a NaN or ±inf in one pixel reaches only the outputs that read it (a dense product would
compute NaN · 0 = NaN for every output in the same rows and columns). Where w₁ = 0 the
second neighbour is taken to be i₀ itself, so no output ever depends on a pixel with weight 0.
"""

from __future__ import annotations

from .. import backend
from ..checks import check_pair
from ..function import Function
from ..tensor import Tensor

MODES = ("bilinear",)


def interpolation_matrix(n_out: int, n_in: int, align_corners: bool, xp, dtype):
    """The (n_out, n_in) matrix A of 1-D linear interpolation: (A · v)[i] = w₀ v[i₀] + w₁ v[i₁].

    >>> import numpy as np
    >>> interpolation_matrix(4, 2, False, np, np.float64)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    i0, i1, w0, w1 = interpolation_weights(n_out, n_in, align_corners, xp, xp.float64)
    cols = xp.arange(n_in)[None, :]
    A = w0[:, None] * (cols == i0[:, None]) + w1[:, None] * (cols == i1[:, None])  # i₀ = i₁ at the edge: w₀ + w₁
    return A.astype(dtype, copy=False)


def interpolation_weights(n_out: int, n_in: int, align_corners: bool, xp, dtype):
    """The two neighbours and weights of each output position: (i₀, i₁, w₀, w₁), each (n_out,)."""
    i = xp.arange(n_out, dtype=xp.float64)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = i * scale
    else:
        src = xp.maximum((i + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = xp.minimum(xp.floor(src), n_in - 1)
    w1 = src - i0
    i1 = xp.where(w1 > 0, xp.minimum(i0 + 1, n_in - 1), i0)  # weight 0: read i₀ again, never a pixel it ignores
    return i0.astype(xp.intp), i1.astype(xp.intp), (1.0 - w1).astype(dtype), w1.astype(dtype)


def _gather(v, axis, i0, i1, w0, w1):
    """A · v along ``axis`` (−2: rows, −1: columns): w₀ v[i₀] + w₁ v[i₁]."""
    shape = (-1, 1) if axis == -2 else (-1,)
    a, b = v.take(i0, axis=axis), v.take(i1, axis=axis)
    return a * w0.reshape(shape) + b * w1.reshape(shape)


def _scatter(g, axis, n_in, i0, i1, w0, w1, xp):
    """Aᵀ · g along ``axis``: each g[i] adds w₀ g[i] to position i₀ and w₁ g[i] to i₁."""
    shape = list(g.shape)
    shape[axis] = n_in
    out = xp.zeros(shape, dtype=g.dtype)
    wshape = (-1, 1) if axis == -2 else (-1,)
    index0 = (Ellipsis, i0, slice(None)) if axis == -2 else (Ellipsis, i0)
    index1 = (Ellipsis, i1, slice(None)) if axis == -2 else (Ellipsis, i1)
    backend.scatter_add(out, index0, g * w0.reshape(wshape))
    backend.scatter_add(out, index1, g * w1.reshape(wshape))
    return out


class Interpolate(Function):
    """Bilinear resize of x (N, C, H, W) to y (N, C, H', W'):

        y[n, c] = A_H · x[n, c] · A_Wᵀ          (forward)
        dL/dx[n, c] = A_Hᵀ · dL/dy[n, c] · A_W  (backward: the transposed matrices)

    with A_H (H', H) and A_W (W', W) from :func:`interpolation_matrix`.
    """

    def forward(self, x, size, align_corners):
        xp = self.xp
        if x.dtype.kind != "f":
            x = x.astype(xp.float32)
        self.H, self.W = x.shape[2:]
        self.rows = interpolation_weights(size[0], self.H, align_corners, xp, x.dtype)  # the non-zeros of A_H
        self.cols = interpolation_weights(size[1], self.W, align_corners, xp, x.dtype)  # the non-zeros of A_W
        return _gather(_gather(x, -2, *self.rows), -1, *self.cols)   # A_H · x · A_Wᵀ

    def backward(self, gy):
        xp = self.xp
        g = _scatter(gy, -1, self.W, *self.cols, xp)                  # dL/dy · A_W
        return _scatter(g, -2, self.H, *self.rows, xp)                # A_Hᵀ · dL/dy · A_W


def _size_pair(size):
    """``size`` as (H', W'): an int or a pair of positive ints (minikd.checks.check_pair)."""
    try:
        return check_pair(size, "interpolate", "size", low=1)
    except ValueError:  # also the wrong type (ArgumentTypeError is a ValueError too): one message for both
        raise ValueError(f"interpolate: size must be a positive int or a pair (H', W') of positive ints; "
                         f"got {size!r}") from None


def interpolate(x, size, mode="bilinear", align_corners=False):
    """Resize feature maps x (N, C, H, W) to (N, C, H', W') by bilinear interpolation.

    ``size``: (H', W') or one int for both. ``align_corners=False`` follows PyTorch's default
    (half-pixel centres: src = (i + 0.5)·H/H' − 0.5, clamped at 0); ``align_corners=True`` maps
    the corner pixels onto each other (src = i·(H − 1)/(H' − 1)). Up- and down-sampling both
    read the two nearest source rows and columns (no anti-aliasing). A size equal to the input's
    gives x back unchanged.

    >>> import minikd as mk
    >>> interpolate(mk.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), size=(2, 4)).numpy()[0, 0]
    array([[1.  , 1.25, 1.75, 2.  ],
           [3.  , 3.25, 3.75, 4.  ]], dtype=float32)
    """
    if mode not in MODES:
        raise ValueError(f"interpolate: unknown mode {mode!r}; only {MODES} is implemented")
    if not isinstance(align_corners, bool):
        raise TypeError(f"interpolate: align_corners must be True or False; got {align_corners!r}")
    shape = tuple(x.shape) if hasattr(x, "shape") else tuple(Tensor(x).shape)
    if len(shape) != 4:
        raise ValueError(f"interpolate: expected a 4-D input (N, C, H, W); got shape {shape}")
    if 0 in shape[2:]:
        raise ValueError(f"interpolate: cannot resize an empty map; input shape {shape}")
    return Interpolate.apply(x, size=_size_pair(size), align_corners=align_corners)
