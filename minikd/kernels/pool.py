"""Max and average pooling, forward and backward.

A k_h × k_w window slides over each channel with stride s (padding p); the output size
is the lecture's ``h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1``. Pooling has no parameters and
keeps the number of channels: it only shrinks h and w.

- **max**: ``y[n, c, i, j] = max over the window of x_pad`` (padding is −∞, so it never
  wins). The backward sends each dL/dy to the one pixel that was the maximum; we remember
  its position inside the window, ``argmax = k_i · k_w + k_j`` (the first one on ties).
- **average**: ``y = (1 / (k_h·k_w)) · Σ over the window of x_pad`` (padding is 0 and is
  counted, PyTorch's ``count_include_pad=True``). The backward spreads dL/dy / (k_h·k_w)
  evenly over the window.

Where windows overlap (s < k) a pixel collects the sum of the gradients of every window
it belongs to.

As in :mod:`minikd.kernels.im2col`, each operation has a plain-NumPy reference
(``*_numpy``: a loop over the k_h × k_w offsets, each a strided slice; ``xp`` calls only,
so it runs on CuPy too) and a Numba kernel (``*_numba``) with the same results.
"""

from __future__ import annotations

import numba
import numpy as np

from ..backend import get_array_module
from .im2col import _sizes

ARGMAX_DTYPE = np.int32  # position inside the window, k_i·k_w + k_j


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
            better = v > y  # strictly greater: on ties the first position stays
            y = xp.where(better, v, y)
            argmax[better] = ki * kw + kj
    return y, argmax


def max_pool_backward_numpy(gy, argmax, x_shape, kernel, stride, padding):
    """Reference max-pool backward: dL/dx gets dL/dy at each window's argmax."""
    xp = get_array_module(gy)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    Ho, Wo = gy.shape[2:]
    gx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for ki in range(kh):
        for kj in range(kw):
            # gy where this offset was the window's maximum, 0 elsewhere (bool × float keeps the dtype)
            gx_pad[_window_slice(ki, kj, Ho, Wo, stride)] += gy * (argmax == ki * kw + kj)
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
# Forward: one task per (image, channel, output row). Backward: one task per (image,
# channel) plane, because overlapping windows of a plane add into the same pixels.


@numba.njit(parallel=True, cache=True)
def _max_pool_forward_kernel(x, kh, kw, sh, sw, ph, pw, y, argmax):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for r in numba.prange(N * C * Ho):
        n = r // (C * Ho)
        c = (r // Ho) % C
        i = r % Ho
        h0 = i * sh - ph
        # clip the window to the input once per row: padding is −∞ and never wins, and
        # no bounds test is left in the inner loops (padding ≤ k/2 keeps the window non-empty)
        hs, he = max(h0, 0), min(h0 + kh, H)
        for j in range(Wo):
            w0 = j * sw - pw
            ws, we = max(w0, 0), min(w0 + kw, W)
            best = x[n, c, hs, ws]  # same dtype as x: no float64 promotion
            best_at = (hs - h0) * kw + (ws - w0)
            for h in range(hs, he):
                for w in range(ws, we):
                    if x[n, c, h, w] > best:  # strict: the first maximum wins ties
                        best = x[n, c, h, w]
                        best_at = (h - h0) * kw + (w - w0)
            y[n, c, i, j] = best
            argmax[n, c, i, j] = best_at


@numba.njit(parallel=True, cache=True)
def _max_pool_backward_kernel(gy, argmax, kh, kw, sh, sw, ph, pw, gx):  # pragma: no cover - compiled
    N, C, H, W = gx.shape
    Ho, Wo = gy.shape[2], gy.shape[3]
    for t in numba.prange(N * C):
        n = t // C
        c = t % C
        for i in range(Ho):
            for j in range(Wo):
                a = argmax[n, c, i, j]
                gx[n, c, i * sh - ph + a // kw, j * sw - pw + a % kw] += gy[n, c, i, j]


@numba.njit(parallel=True, cache=True)
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


@numba.njit(parallel=True, cache=True)
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


def max_pool_forward_numba(x, kernel, stride, padding):
    """Numba max pooling (CPU, NumPy arrays): same as :func:`max_pool_forward_numpy`."""
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + _sizes(x.shape, kernel, stride, padding)
    y = np.empty(shape, dtype=x.dtype)
    argmax = np.empty(shape, dtype=ARGMAX_DTYPE)
    _max_pool_forward_kernel(x, *kernel, *stride, *padding, y, argmax)
    return y, argmax


def max_pool_backward_numba(gy, argmax, x_shape, kernel, stride, padding):
    """Numba max-pool backward: same as :func:`max_pool_backward_numpy`."""
    gx = np.zeros(tuple(x_shape), dtype=gy.dtype)
    _max_pool_backward_kernel(np.ascontiguousarray(gy), np.ascontiguousarray(argmax), *kernel, *stride, *padding, gx)
    return gx


def avg_pool_forward_numba(x, kernel, stride, padding):
    """Numba average pooling: same as :func:`avg_pool_forward_numpy`."""
    x = np.ascontiguousarray(x)
    y = np.empty(x.shape[:2] + _sizes(x.shape, kernel, stride, padding), dtype=x.dtype)
    _avg_pool_forward_kernel(x, *kernel, *stride, *padding, y)
    return y


def avg_pool_backward_numba(gy, x_shape, kernel, stride, padding):
    """Numba average-pool backward: same as :func:`avg_pool_backward_numpy`."""
    gx = np.zeros(tuple(x_shape), dtype=gy.dtype)
    _avg_pool_backward_kernel(np.ascontiguousarray(gy), *kernel, *stride, *padding, gx)
    return gx
