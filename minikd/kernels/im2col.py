"""im2col / col2im: turn a convolution into one matrix product.

A convolution slides a k_h × k_w window over the (zero-padded) input with stride s.
The window at output position (i, j) covers input rows ``i·s − p … i·s − p + k_h − 1``
and columns ``j·s − p … j·s − p + k_w − 1``. The output size along each axis is the
lecture's formula

    h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1         (the same for the width)

**im2col** copies every window into one row of a matrix::

    cols[(n, i, j), (c, k_i, k_j)] = x_pad[n, c, i·s + k_i, j·s + k_j]

    shape (N · h_i · w_i,  d_prev · k_h · k_w)

so that the whole convolution of a batch is ONE matrix product with the d filters,
each flattened to a row of ``W`` (shape (d, d_prev · k_h · k_w))::

    Y = cols · Wᵀ       (N · h_i · w_i,  d)

**col2im** is its transpose (the adjoint): every entry of ``cols`` is added back to the
input pixel it was copied from; pixels in several windows receive the sum. It turns
dL/dcols into dL/dx.

Each operation is written twice: a plain-NumPy reference (``*_numpy``: a loop over the
k_h × k_w offsets of the window, each a strided slice; it uses only ``xp`` calls, so it
also runs on CuPy) and a Numba kernel (``*_numba``) that computes the same numbers in
one parallel pass without building the padded copy. ``minikd.kernels`` picks one.
"""

from __future__ import annotations

import numba
import numpy as np

from ..backend import get_array_module

# --------------------------------------------------------------------------- sizes


def output_size(d_prev: int, k: int, p: int, s: int) -> int:
    """Output length along one axis: ``h_i = ⌊(h_{i−1} − k + 2p) / s⌋ + 1``.

    >>> output_size(28, 3, 1, 1), output_size(28, 2, 0, 2), output_size(5, 3, 0, 1)
    (28, 14, 3)
    """
    return (d_prev - k + 2 * p) // s + 1


def as_pair(value, op: str, name: str) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; ``(3, 2)`` stays; anything else is a TypeError naming ``op``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints (h, w); got {value!r}")


def _sizes(x_shape, kernel, stride, padding):
    (_, _, H, W), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    return output_size(H, kh, ph, sh), output_size(W, kw, pw, sw)


# --------------------------------------------------------------------------- NumPy reference


def im2col_numpy(x, kernel, stride, padding):
    """Reference im2col: ``x`` (N, C, H, W) → ``cols`` (N·h_i·w_i, C·k_h·k_w).

    For each offset (k_i, k_j) inside the window, the pixels at that offset in *all*
    windows form a strided slice of the padded input, ``x_pad[:, :, k_i::s_h, k_j::s_w]``.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # zero padding
    cols = xp.empty((N, Ho, Wo, C, kh, kw), dtype=x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            patch = x_pad[:, :, ki:ki + sh * (Ho - 1) + 1:sh, kj:kj + sw * (Wo - 1) + 1:sw]  # (N, C, Ho, Wo)
            cols[:, :, :, :, ki, kj] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(N * Ho * Wo, C * kh * kw)


def col2im_numpy(cols, x_shape, kernel, stride, padding):
    """Reference col2im: ``cols`` (N·h_i·w_i, C·k_h·k_w) → ``dx`` (N, C, H, W), summing overlaps.

    The exact reverse of :func:`im2col_numpy`: the slice that was *read* for offset
    (k_i, k_j) is now *added to*; padding rows and columns are cut off at the end.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x_shape, kernel, stride, padding)
    cols = cols.reshape(N, Ho, Wo, C, kh, kw)
    dx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for ki in range(kh):
        for kj in range(kw):
            # within one (ki, kj) slice every pixel appears once, so ``+=`` is a plain add
            dx_pad[:, :, ki:ki + sh * (Ho - 1) + 1:sh, kj:kj + sw * (Wo - 1) + 1:sw] += \
                cols[:, :, :, :, ki, kj].transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(dx_pad[:, :, ph:ph + H, pw:pw + W])


# --------------------------------------------------------------------------- Numba kernels


@numba.njit(parallel=True, cache=True)
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, cols):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho = (H - kh + 2 * ph) // sh + 1
    Wo = (W - kw + 2 * pw) // sw + 1
    # one task per (image, output row): each writes its own rows of ``cols``
    for r in numba.prange(N * Ho):
        n = r // Ho
        i = r % Ho
        h0 = i * sh - ph  # top row of the window, in unpadded coordinates
        rows_inside = h0 >= 0 and h0 + kh <= H
        for j in range(Wo):
            w0 = j * sw - pw
            row = r * Wo + j  # = (n·Ho + i)·Wo + j
            col = 0
            if rows_inside and w0 >= 0 and w0 + kw <= W:
                # most windows lie inside the image: a plain copy, no bounds tests
                for c in range(C):
                    for ki in range(kh):
                        for kj in range(kw):
                            cols[row, col] = x[n, c, h0 + ki, w0 + kj]
                            col += 1
            else:
                # a window on the border: pixels outside the image are the zero padding,
                # so no padded copy of x is ever made
                for c in range(C):
                    for ki in range(kh):
                        h = h0 + ki
                        for kj in range(kw):
                            w = w0 + kj
                            if 0 <= h < H and 0 <= w < W:
                                cols[row, col] = x[n, c, h, w]
                            else:
                                cols[row, col] = 0
                            col += 1


@numba.njit(parallel=True, cache=True)
def _col2im_kernel(cols, kh, kw, sh, sw, ph, pw, dx):  # pragma: no cover - compiled
    N, C, H, W = dx.shape
    Ho = (H - kh + 2 * ph) // sh + 1
    Wo = (W - kw + 2 * pw) // sw + 1
    # One task per image: windows of one image overlap (when s < k), so the pixels they
    # share are summed by a single thread and the ``+=`` never races. The rows of
    # ``cols`` are read in order, each one contiguously. ``dx`` starts at zero.
    for n in numba.prange(N):
        for i in range(Ho):
            for j in range(Wo):
                row = (n * Ho + i) * Wo + j
                col = 0
                for c in range(C):
                    for ki in range(kh):
                        h = i * sh - ph + ki
                        for kj in range(kw):
                            w = j * sw - pw + kj
                            if 0 <= h < H and 0 <= w < W:  # gradients of padding are dropped
                                dx[n, c, h, w] += cols[row, col]
                            col += 1


def im2col_numba(x, kernel, stride, padding):
    """Numba im2col (CPU, NumPy arrays): same result as :func:`im2col_numpy`."""
    x = np.ascontiguousarray(x)
    N, C = x.shape[:2]
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    cols = np.empty((N * Ho * Wo, C * kernel[0] * kernel[1]), dtype=x.dtype)
    _im2col_kernel(x, *kernel, *stride, *padding, cols)
    return cols


def col2im_numba(cols, x_shape, kernel, stride, padding):
    """Numba col2im (CPU, NumPy arrays): same result as :func:`col2im_numpy`."""
    dx = np.zeros(tuple(x_shape), dtype=cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols), *kernel, *stride, *padding, dx)
    return dx


# --------------------------------------------------------------------------- naive reference


def conv2d_reference(x, w, b=None, stride=1, padding=0):
    """The convolution straight from its definition, for readers and tests (slow).

    Cross-correlation (the kernel is not flipped), as in every deep-learning library::

        y[n, o, i, j] = b[o] + Σ_c Σ_{k_i} Σ_{k_j} w[o, c, k_i, k_j] · x_pad[n, c, i·s + k_i, j·s + k_j]

    ``x``: (N, d_prev, H, W), ``w``: (d, d_prev, k_h, k_w), ``b``: (d,) or None; ``stride``
    and ``padding`` are ints or (h, w) pairs. No groups.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw) = as_pair(stride, "conv2d_reference", "stride"), as_pair(padding, "conv2d_reference", "padding")
    N, _, H, W = x.shape
    d, _, kh, kw = w.shape
    Ho, Wo = output_size(H, kh, ph, sh), output_size(W, kw, pw, sw)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = xp.zeros((N, d, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for o in range(d):
            for i in range(Ho):
                for j in range(Wo):
                    window = x_pad[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[n, o, i, j] = (window * w[o]).sum() + (b[o] if b is not None else 0)
    return y
