"""Resizing feature maps. Bilinear: the lecture's g(·) "bilinear interpolation
(upsampling/downsampling)" that aligns a student's map F_S (C, H_S, W_S) with the teacher's
(C, H_T, W_T) in feature-based distillation. Nearest: a generator's upsampling (at the end).

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

**Nearest** (mode="nearest", a generator's upsampling) copies one source pixel per output,
with PyTorch's rule (``mode="nearest"``, not "nearest-exact")::

    src(i) = ⌊i · n_in / n_out⌋              (an integer product and division: no rounding)

so A has a single 1 per row. Forward gathers (y[i] = v[src(i)]), backward scatter-adds
(dL/dx[r] = Σ over the i with src(i) = r of dL/dy[i]); upsampling by 2 copies each pixel
into a 2 × 2 block and sums the block's four gradients back.
"""

from __future__ import annotations

import math

from .. import backend
from ..checks import ArgumentTypeError, check_number, check_pair, is_number
from ..function import Function
from ..tensor import Tensor

MODES = ("bilinear", "nearest")


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
    wshape = (-1, 1) if axis == -2 else (-1,)
    out = _scatter_index(g * w0.reshape(wshape), axis, n_in, i0, xp)
    return _scatter_index(g * w1.reshape(wshape), axis, n_in, i1, xp, out=out)


def _scatter_index(g, axis, n_in, index, xp, out=None):
    """Add each g[..., i] (``axis`` −1) or g[..., i, :] (``axis`` −2) to position ``index[i]`` of
    ``out`` (zeros of n_in positions along ``axis`` by default); repeated positions add up."""
    if out is None:
        shape = list(g.shape)
        shape[axis] = n_in
        out = xp.zeros(shape, dtype=g.dtype)
    backend.scatter_add(out, (Ellipsis, index, slice(None)) if axis == -2 else (Ellipsis, index), g)
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


# --------------------------------------------------------------------------- nearest


def nearest_indices(n_out: int, n_in: int, xp):
    """The source of each output position, PyTorch's "nearest": src(i) = ⌊i · n_in / n_out⌋, (n_out,).

    >>> import numpy as np
    >>> nearest_indices(6, 3, np), nearest_indices(2, 5, np)
    (array([0, 0, 1, 1, 2, 2]), array([0, 2]))
    """
    return (xp.arange(n_out) * n_in) // n_out


class InterpolateNearest(Function):
    """Nearest-neighbour resize of x (N, C, H, W) to y (N, C, H', W'):

        y[n, c, i, j] = x[n, c, src_H(i), src_W(j)]                       (forward: a gather)
        dL/dx[n, c, r, q] = Σ_{i: src_H(i) = r} Σ_{j: src_W(j) = q} dL/dy[n, c, i, j]   (scatter-add)

    with src from :func:`nearest_indices`. A NaN reaches only the outputs that copy it.
    """

    saves_inputs = False  # backward needs only the indices

    def forward(self, x, size):
        xp = self.xp
        self.H, self.W = x.shape[2:]
        self.rows, self.cols = nearest_indices(size[0], self.H, xp), nearest_indices(size[1], self.W, xp)
        return x.take(self.rows, axis=-2).take(self.cols, axis=-1)

    def backward(self, gy):
        xp = self.xp
        g = _scatter_index(gy, -1, self.W, self.cols, xp)
        return _scatter_index(g, -2, self.H, self.rows, xp)


# --------------------------------------------------------------------------- the function users call


def _size_pair(size):
    """``size`` as (H', W'): an int or a pair of positive ints (minikd.checks.check_pair)."""
    try:
        return check_pair(size, "interpolate", "size", low=1)
    except ValueError:  # also the wrong type (ArgumentTypeError is a ValueError too): one message for both
        raise ValueError(f"interpolate: size must be a positive int or a pair (H', W') of positive ints; "
                         f"got {size!r}") from None


def _scale_pair(scale_factor):
    """``scale_factor`` as (s_H, s_W): a positive finite number or a pair of them."""
    pair = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
    if len(pair) != 2 or not all(is_number(v) for v in pair):
        raise ArgumentTypeError(f"interpolate: scale_factor must be a positive number or a pair of them; "
                                f"got {scale_factor!r}")
    return tuple(check_number(v, "interpolate", "scale_factor", low=0, low_open=True) for v in pair)


def output_size(shape, size=None, scale_factor=None):
    """(H', W') from exactly one of ``size`` and ``scale_factor`` (H' = ⌊H · s_H⌋, as PyTorch).

    >>> output_size((1, 1, 5, 7), scale_factor=2), output_size((1, 1, 5, 7), scale_factor=(0.5, 1.5))
    ((10, 14), (2, 10))
    """
    if (size is None) == (scale_factor is None):
        raise ValueError(f"interpolate: give exactly one of size and scale_factor; got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if size is not None:
        return _size_pair(size)
    scales = _scale_pair(scale_factor)
    out = tuple(int(math.floor(n * f)) for n, f in zip(shape[2:], scales))
    if min(out) < 1:
        raise ValueError(f"interpolate: scale_factor {scale_factor!r} makes an empty map: "
                         f"⌊{tuple(shape[2:])} · {scales}⌋ = {out}")
    return out


def interpolate(x, size=None, scale_factor=None, mode="bilinear", align_corners=False):
    """Resize feature maps x (N, C, H, W) to (N, C, H', W'), bilinear (default) or nearest.

    ``size``: (H', W') or one int for both; or ``scale_factor``: a positive number or (s_H, s_W)
    pair, giving H' = ⌊H · s_H⌋ — exactly one of the two. The source positions are then computed
    from the sizes (src = ⌊i·H/H'⌋ for nearest), which is PyTorch's ``recompute_scale_factor=True``;
    for integer factors it is the same as PyTorch's default.

    ``mode="bilinear"``: ``align_corners=False`` follows PyTorch's default (half-pixel centres:
    src = (i + 0.5)·H/H' − 0.5, clamped at 0); ``align_corners=True`` maps the corner pixels onto
    each other (src = i·(H − 1)/(H' − 1)). Up- and down-sampling both read the two nearest source
    rows and columns (no anti-aliasing). ``mode="nearest"``: y[i] = x[⌊i·H/H'⌋], PyTorch's
    "nearest" (align_corners does not apply: True is an error); integer maps stay integer.
    Unlike PyTorch, the default mode is bilinear (what feature distillation's g(·) uses).
    A size equal to the input's gives x back unchanged.

    Errors (ValueError naming the argument): an input that is not 4-D or is empty, a size that is
    not positive, both or neither of size and scale_factor, a scale that empties the map, an
    unknown mode; TypeError for an align_corners that is not a bool.

    >>> import minikd as mk
    >>> interpolate(mk.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), size=(2, 4)).numpy()[0, 0]
    array([[1.  , 1.25, 1.75, 2.  ],
           [3.  , 3.25, 3.75, 4.  ]], dtype=float32)
    >>> interpolate(mk.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), scale_factor=2, mode="nearest").numpy()[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]], dtype=float32)
    """
    if mode not in MODES:
        raise ValueError(f"interpolate: unknown mode {mode!r}; expected one of {MODES}")
    if not isinstance(align_corners, bool):
        raise TypeError(f"interpolate: align_corners must be True or False; got {align_corners!r}")
    if mode == "nearest" and align_corners:
        raise ValueError("interpolate: align_corners=True applies to mode='bilinear' only; "
                         "mode='nearest' copies pixels (leave align_corners=False)")
    shape = tuple(x.shape) if hasattr(x, "shape") else tuple(Tensor(x).shape)
    if len(shape) != 4:
        raise ValueError(f"interpolate: expected a 4-D input (N, C, H, W); got shape {shape}")
    if 0 in shape[2:]:
        raise ValueError(f"interpolate: cannot resize an empty map; input shape {shape}")
    size = output_size(shape, size, scale_factor)
    if mode == "nearest":
        return InterpolateNearest.apply(x, size=size)
    return Interpolate.apply(x, size=size, align_corners=align_corners)
