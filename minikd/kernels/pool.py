"""Max and average pooling, forward and backward.

A k_h × k_w window slides over each channel with stride s (padding p); the output size
is the lecture's ``h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1``. Pooling has no parameters and
keeps the number of channels: it only shrinks h and w.

- **max**: ``y[n, c, i, j] = max over the window of x_pad`` (padding is −∞, so it never
  wins). The backward sends each dL/dy to the one pixel that was the maximum; we remember
  its position inside the window, ``argmax = k_i · k_w + k_j`` (the first one on ties).
  A NaN is the maximum of any window that holds one (as in NumPy's ``max`` and PyTorch):
  ``v > best`` is false for NaN, so the test is ``v > best or (v is NaN and best is not)``.
- **average**: ``y = (1 / (k_h·k_w)) · Σ over the window of x_pad`` (padding is 0 and is
  counted, PyTorch's ``count_include_pad=True``). The backward spreads dL/dy / (k_h·k_w)
  evenly over the window.

Where windows overlap (s < k) a pixel collects the sum of the gradients of every window
it belongs to.

As in :mod:`minikd.kernels.conv`, each operation has a plain-NumPy reference
(``*_numpy``: a loop over the k_h × k_w offsets, each a strided slice; ``xp`` calls only,
so it runs on CuPy too) and a Numba kernel (``*_numba``) with the same results.
"""

from __future__ import annotations

import numba
import numpy as np

from ..backend import get_array_module
from .conv import _sizes
from .jit import loops

ARGMAX_DTYPE = np.int32  # position inside the window, k_i·k_w + k_j
_u = np.uint64  # unsigned indices: see the Numba kernels below


def _window_slice(ki, kj, Ho, Wo, stride):
    """The (k_i, k_j)-th pixel of every window: a strided slice of the padded input."""
    sh, sw = stride
    return (slice(None), slice(None), slice(ki, ki + sh * (Ho - 1) + 1, sh), slice(kj, kj + sw * (Wo - 1) + 1, sw))


# --------------------------------------------------------------------------- NumPy reference


def max_pool_forward_numpy(x, kernel, stride, padding):
    """Reference max pooling: returns ``(y, argmax)``, both of shape (N, C, h_i, w_i)."""
    xp = get_array_module(x)
    (kh, kw), (ph, pw) = kernel, padding
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)
    y = x_pad[_window_slice(0, 0, Ho, Wo, stride)].copy()
    argmax = xp.zeros(y.shape, dtype=ARGMAX_DTYPE)
    for ki in range(kh):
        for kj in range(kw):
            v = x_pad[_window_slice(ki, kj, Ho, Wo, stride)]
            # strictly greater: on ties the first position stays; the first NaN wins and stays
            better = (v > y) | (xp.isnan(v) & ~xp.isnan(y))
            y = xp.where(better, v, y)
            argmax = xp.where(better, ARGMAX_DTYPE(ki * kw + kj), argmax)  # not argmax[better] = ...: a GPU sync
    return y, argmax


def max_pool_backward_numpy(gy, argmax, x_shape, kernel, stride, padding, like=None):
    """Reference max-pool backward: dL/dx gets dL/dy at each window's argmax. (``like``:
    accepted for the same signature as the Numba version; the result is C-contiguous.)"""
    xp = get_array_module(gy)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    Ho, Wo = gy.shape[2:]
    gx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for ki in range(kh):
        for kj in range(kw):
            # gy where this offset was the window's maximum, 0 elsewhere (a select: inf · 0 would be NaN)
            gx_pad[_window_slice(ki, kj, Ho, Wo, stride)] += xp.where(argmax == ki * kw + kj, gy, gy.dtype.type(0))
    return xp.ascontiguousarray(gx_pad[:, :, ph:ph + H, pw:pw + W])


def avg_pool_forward_numpy(x, kernel, stride, padding):
    """Reference average pooling (zero padding, counted in the mean)."""
    xp = get_array_module(x)
    (kh, kw), (ph, pw) = kernel, padding
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = xp.zeros((x.shape[0], x.shape[1], Ho, Wo), dtype=x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            y += x_pad[_window_slice(ki, kj, Ho, Wo, stride)]
    return y / x.dtype.type(kh * kw)


def avg_pool_backward_numpy(gy, x_shape, kernel, stride, padding):
    """Reference average-pool backward: each pixel of a window gets dL/dy / (k_h·k_w)."""
    xp = get_array_module(gy)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    Ho, Wo = gy.shape[2:]
    share = gy / gy.dtype.type(kh * kw)
    gx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for ki in range(kh):
        for kj in range(kw):
            gx_pad[_window_slice(ki, kj, Ho, Wo, stride)] += share
    return xp.ascontiguousarray(gx_pad[:, :, ph:ph + H, pw:pw + W])


# --------------------------------------------------------------------------- Numba kernels
# One task per (image, channel) plane. The max-pool kernels take the planes of x (or of
# dL/dx) from a C-contiguous array ``xs`` that is either x itself, xs[n, c], or — for a
# convolution's channel-major output — x with its first two axes swapped, xs[c, n]
# (``swapped``). Either way each plane is a contiguous 2-D array, which the compiler
# vectorises; a plane with unknown strides was measured 3× slower.
#
# Numba checks every signed index for a negative value (to wrap it around as Python
# does); indices known to be ≥ 0 are made unsigned (``_u``) to drop that test.


@numba.njit(inline="always")
def _plane(xs, n, c, swapped):  # pragma: no cover - compiled
    return xs[c, n] if swapped else xs[n, c]


@numba.njit(inline="always")
def _first_nan(xc, hs, he, ws, we, h0, w0, kw):  # pragma: no cover - compiled
    for h in range(hs, he):
        for w in range(ws, we):
            v = xc[_u(h), _u(w)]
            if v != v:
                return v, (h - h0) * kw + (w - w0)
    return xc[_u(hs), _u(ws)], 0  # not reached: called only when the window holds a NaN


@loops
def _max_pool_forward_kernel(xs, swapped, kh, kw, sh, sw, ph, pw, y, argmax):  # pragma: no cover - compiled
    N, C, Ho, Wo = y.shape
    H, W = xs.shape[2], xs.shape[3]
    for t in numba.prange(N * C):
        n, c = t // C, t % C
        xc, yc, ac = _plane(xs, n, c, swapped), y[n, c], argmax[n, c]
        for i in range(Ho):
            h0 = i * sh - ph
            # clip the window to the input: padding is −∞ and never wins, and no bounds
            # test is left in the inner loops (padding ≤ k/2 keeps the window non-empty)
            hs, he = max(h0, 0), min(h0 + kh, H)
            for j in range(Wo):
                w0 = j * sw - pw
                ws, we = max(w0, 0), min(w0 + kw, W)
                best = xc[_u(hs), _u(ws)]  # same dtype as x: no float64 promotion
                best_at = (hs - h0) * kw + (ws - w0)
                nan_seen = best != best
                for h in range(hs, he):
                    for w in range(ws, we):
                        v = xc[_u(h), _u(w)]
                        # strict ">": the first maximum wins ties. Written as selects, not
                        # an if: on real data the comparison is a coin flip for the branch
                        # predictor, and mispredictions cost more than the selects.
                        better = v > best
                        best = v if better else best
                        best_at = (h - h0) * kw + (w - w0) if better else best_at
                        nan_seen |= v != v
                if nan_seen:  # rare: the window's first NaN is its maximum (NaN > v is false)
                    best, best_at = _first_nan(xc, hs, he, ws, we, h0, w0, kw)
                yc[_u(i), _u(j)] = best
                ac[_u(i), _u(j)] = best_at


@loops
def _max_pool_backward_kernel(gy, argmax, kh, kw, sh, sw, ph, pw, gxs, swapped):  # pragma: no cover - compiled
    N, C, Ho, Wo = gy.shape
    for t in numba.prange(N * C):
        n, c = t // C, t % C
        gxc, gyc, ac = _plane(gxs, n, c, swapped), gy[n, c], argmax[n, c]
        for i in range(Ho):
            for j in range(Wo):
                a = ac[_u(i), _u(j)]
                # the argmax is never in the padding, so both indices are ≥ 0; windows
                # may overlap, so a pixel adds up the gradients of all windows it won
                gxc[_u(i * sh - ph + a // kw), _u(j * sw - pw + a % kw)] += gyc[_u(i), _u(j)]


# The lecture's pooling, and almost every CNN's: 2 × 2 windows, stride 2, no padding.
# Unrolled, the four reads of a window stay in registers and the compiler vectorises the
# loop over j: measured 8× faster than the general kernel on (64, 32, 28, 28).


@loops
def _max_pool_2x2_forward_kernel(xs, swapped, y, argmax):  # pragma: no cover - compiled
    N, C, Ho, Wo = y.shape
    for t in numba.prange(N * C):
        n, c = t // C, t % C
        xc, yc, ac = _plane(xs, n, c, swapped), y[n, c], argmax[n, c]
        for i in range(Ho):
            top, bottom = _u(2 * i), _u(2 * i + 1)
            for j in range(Wo):
                left, right = _u(2 * j), _u(2 * j + 1)
                a, b = xc[top, left], xc[top, right]      # window positions: 0 1 / 2 3
                c, d = xc[bottom, left], xc[bottom, right]
                best, at = a, 0                           # the first maximum wins ties
                better = b > best
                best, at = (b, 1) if better else (best, at)
                better = c > best
                best, at = (c, 2) if better else (best, at)
                better = d > best
                best, at = (d, 3) if better else (best, at)
                # a NaN is the maximum, but NaN > v is false, so the selects above never pick
                # it: a rare branch puts the window's first NaN in (measured: ≈ +20 % on this
                # kernel, against ≈ +60 % for doing it with selects on every window)
                if (a != a) | (b != b) | (c != c) | (d != d):
                    at = 0 if a != a else (1 if b != b else (2 if c != c else 3))
                    best = a + b + c + d  # NaN
                yc[_u(i), _u(j)] = best
                ac[_u(i), _u(j)] = at


@loops
def _max_pool_2x2_backward_kernel(gy, argmax, gxs, swapped):  # pragma: no cover - compiled
    N, C, Ho, Wo = gy.shape
    for t in numba.prange(N * C):
        n, c = t // C, t % C
        gxc, gyc, ac = _plane(gxs, n, c, swapped), gy[n, c], argmax[n, c]
        zero = gyc.dtype.type(0)
        for i in range(Ho):
            top, bottom = _u(2 * i), _u(2 * i + 1)
            for j in range(Wo):
                # windows do not overlap: each pixel of a window is written exactly once
                g, at = gyc[_u(i), _u(j)], ac[_u(i), _u(j)]
                left, right = _u(2 * j), _u(2 * j + 1)
                gxc[top, left] = g if at == 0 else zero
                gxc[top, right] = g if at == 1 else zero
                gxc[bottom, left] = g if at == 2 else zero
                gxc[bottom, right] = g if at == 3 else zero


@loops
def _avg_pool_forward_kernel(x, kh, kw, sh, sw, ph, pw, y):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for r in numba.prange(N * C * Ho):
        n = r // (C * Ho)
        c = (r // Ho) % C
        i = r % Ho
        for j in range(Wo):
            total = 0.0
            for ki in range(kh):
                h = i * sh - ph + ki
                if h < 0 or h >= H:
                    continue  # padding is 0: adds nothing, but still counts in k_h·k_w
                for kj in range(kw):
                    w = j * sw - pw + kj
                    if 0 <= w < W:
                        total += x[n, c, h, w]
            y[n, c, i, j] = total / (kh * kw)


@loops
def _avg_pool_backward_kernel(gy, kh, kw, sh, sw, ph, pw, gx):  # pragma: no cover - compiled
    N, C, H, W = gx.shape
    Ho, Wo = gy.shape[2], gy.shape[3]
    for t in numba.prange(N * C):
        n = t // C
        c = t % C
        for i in range(Ho):
            for j in range(Wo):
                share = gy[n, c, i, j] / (kh * kw)
                for ki in range(kh):
                    h = i * sh - ph + ki
                    if h < 0 or h >= H:
                        continue
                    for kj in range(kw):
                        w = j * sw - pw + kj
                        if 0 <= w < W:
                            gx[n, c, h, w] += share


def _is_2x2(kernel, stride, padding):
    return tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


def _planes(x):
    """``(xs, swapped)``: x as a C-contiguous array whose [n, c] (or, if swapped, [c, n])
    entry is the plane x[n, c]. No copy for a contiguous x or a channel-major view."""
    if x.flags.c_contiguous:
        return x, False
    xs = x.transpose(1, 0, 2, 3)
    if xs.flags.c_contiguous:
        return xs, True
    return np.ascontiguousarray(x), False


def max_pool_forward_numba(x, kernel, stride, padding):
    """Numba max pooling (CPU, NumPy arrays): same as :func:`max_pool_forward_numpy`.
    ``x`` may be a convolution's channel-major output; ``y`` is C-contiguous."""
    shape = x.shape[:2] + _sizes(x.shape, kernel, stride, padding)
    y = np.empty(shape, dtype=x.dtype)
    argmax = np.empty(shape, dtype=ARGMAX_DTYPE)
    xs, swapped = _planes(x)
    if _is_2x2(kernel, stride, padding):
        _max_pool_2x2_forward_kernel(y.size, xs, swapped, y, argmax)
    else:
        _max_pool_forward_kernel(y.size, xs, swapped, *kernel, *stride, *padding, y, argmax)
    return y, argmax


def max_pool_backward_numba(gy, argmax, x_shape, kernel, stride, padding, like=None):
    """Numba max-pool backward: same as :func:`max_pool_backward_numpy`. With ``like`` (an
    array of shape ``x_shape``, e.g. the forward input), dL/dx takes its memory layout."""
    N, C, H, W = x_shape
    swapped = like is not None and _planes(like)[1]
    shape = (C, N, H, W) if swapped else (N, C, H, W)
    gy, argmax = np.ascontiguousarray(gy), np.ascontiguousarray(argmax)
    if _is_2x2(kernel, stride, padding):
        # the kernel writes every pixel of the windows; an odd last row or column is in
        # none of them and must start (and stay) at zero
        covered = H == 2 * gy.shape[2] and W == 2 * gy.shape[3]
        gxs = (np.empty if covered else np.zeros)(shape, dtype=gy.dtype)
        _max_pool_2x2_backward_kernel(gxs.size, gy, argmax, gxs, swapped)
    else:
        gxs = np.zeros(shape, dtype=gy.dtype)
        _max_pool_backward_kernel(gxs.size, gy, argmax, *kernel, *stride, *padding, gxs, swapped)
    return gxs.transpose(1, 0, 2, 3) if swapped else gxs


def avg_pool_forward_numba(x, kernel, stride, padding):
    """Numba average pooling: same as :func:`avg_pool_forward_numpy`; ``x`` may have any strides."""
    y = np.empty(x.shape[:2] + _sizes(x.shape, kernel, stride, padding), dtype=x.dtype)
    _avg_pool_forward_kernel(y.size, x, *kernel, *stride, *padding, y)
    return y


def avg_pool_backward_numba(gy, x_shape, kernel, stride, padding):
    """Numba average-pool backward: same as :func:`avg_pool_backward_numpy`."""
    gx = np.zeros(tuple(x_shape), dtype=gy.dtype)
    _avg_pool_backward_kernel(gx.size, np.ascontiguousarray(gy), *kernel, *stride, *padding, gx)
    return gx
