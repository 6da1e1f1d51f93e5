"""im2col / col2im: turn a convolution into one matrix product.

A convolution slides a k_h × k_w window over the (zero-padded) input with stride s.
The window at output position (i, j) covers input rows ``i·s − p … i·s − p + k_h − 1``
and columns ``j·s − p … j·s − p + k_w − 1``. The output size along each axis is the
lecture's formula

    h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1         (the same for the width)

**im2col** copies every window into one *column* of a matrix::

    cols[(c, k_i, k_j), (n, i, j)] = x_pad[n, c, i·s + k_i, j·s + k_j]

    shape (d_prev · k_h · k_w,  N · h_i · w_i)

so that the whole convolution of a batch is ONE matrix product with the d filters,
each flattened to a row of ``W`` (shape (d, d_prev · k_h · k_w))::

    Y = W · cols        (d,  N · h_i · w_i)      = y in (d, N, h_i, w_i) order

Why columns and not rows: row (c, k_i, k_j) of ``cols`` is the input plane of channel c
shifted by (k_i, k_j), so im2col and col2im copy contiguous runs of pixels; and ``Y``
comes out channel-major, so each output plane y[n, o] is one contiguous block of
h_i · w_i values and ``y`` is a free (transposed) view, not a copy.

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
from ..checks import check_bool, check_int
from .jit import loops

# --------------------------------------------------------------------------- sizes


def conv_output_size(h: int, k: int, p: int = 0, s: int = 1, floor: bool = False) -> int:
    """h_i = (h_{i−1} − k + 2p)/s + 1: the output height (or width) of a conv or pooling layer,
    from the input's h_{i−1} = ``h``, the kernel size k, the padding p and the stride s.

    The lecture's formula assumes that the window tiles the padded input exactly. By default
    this raises ValueError when it does not (the formula is not a whole number) or when the
    result is not positive. ``floor=True`` gives what the layers compute (as in every
    framework): ⌊(h − k + 2p)/s⌋ + 1, the last partial window dropped.

    >>> conv_output_size(5, 3)          # the slide: 5×5 image, 3×3 kernel
    3
    >>> conv_output_size(5, 3, p=1)     # the zero-padding exercise
    5
    >>> conv_output_size(28, 2, s=2, floor=True), conv_output_size(5, 2, s=2, floor=True)
    (14, 2)
    """
    if not all(type(v) is int for v in (h, k, p, s)):   # the usual case, fast: layers size every output with it
        h, k, p, s = (check_int(v, "conv_output_size", n) for v, n in ((h, "h"), (k, "k"), (p, "p"), (s, "s")))
    if type(floor) is not bool:
        floor = check_bool(floor, "conv_output_size", "floor")
    if s <= 0 or k <= 0 or p < 0:
        raise ValueError(f"conv_output_size: need k > 0, s > 0, p ≥ 0; got k={k}, p={p}, s={s}")
    span = h - k + 2 * p
    if span < 0:
        raise ValueError(f"conv_output_size: kernel {k} is larger than the padded input {h + 2 * p} "
                         f"(h={h}, p={p}); (h − k + 2p)/s + 1 = {span / s + 1:g} ≤ 0")
    if span % s and not floor:
        raise ValueError(f"conv_output_size: (h − k + 2p)/s + 1 = ({h} − {k} + 2·{p})/{s} + 1 = {span / s + 1:g} "
                         "is not a whole number: the window does not tile the input with this stride "
                         "(frameworks then drop the last partial window: floor=True)")
    return span // s + 1


def _sizes(x_shape, kernel, stride, padding):
    """(h_i, w_i) of a window over x (N, C, H, W), as the layers compute them (floor)."""
    (_, _, H, W), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    return conv_output_size(H, kh, ph, sh, floor=True), conv_output_size(W, kw, pw, sw, floor=True)


# --------------------------------------------------------------------------- NumPy reference


def im2col_numpy(x, kernel, stride, padding):
    """Reference im2col: ``x`` (N, C, H, W) → ``cols`` (C·k_h·k_w, N·h_i·w_i).

    For each offset (k_i, k_j) inside the window, the pixels at that offset in *all*
    windows form a strided slice of the padded input, h_i rows from row k_i in steps of s_h and
    w_i columns from k_j in steps of s_w: ``x_pad[:, :, k_i:k_i + s_h·(h_i − 1) + 1:s_h, ...]``.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # zero padding
    cols = xp.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            patch = x_pad[:, :, ki:ki + sh * (Ho - 1) + 1:sh, kj:kj + sw * (Wo - 1) + 1:sw]  # (N, C, Ho, Wo)
            cols[:, ki, kj] = patch.transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def col2im_numpy(cols, x_shape, kernel, stride, padding):
    """Reference col2im: ``cols`` (C·k_h·k_w, N·h_i·w_i) → ``dx`` (N, C, H, W), summing overlaps.

    The exact reverse of :func:`im2col_numpy`: the slice that was *read* for offset
    (k_i, k_j) is now *added to*; padding rows and columns are cut off at the end.
    """
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x_shape, kernel, stride, padding)
    cols = cols.reshape(C, kh, kw, N, Ho, Wo)
    dx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for ki in range(kh):
        for kj in range(kw):
            # within one (ki, kj) slice every pixel appears once, so ``+=`` is a plain add
            dx_pad[:, :, ki:ki + sh * (Ho - 1) + 1:sh, kj:kj + sw * (Wo - 1) + 1:sw] += \
                cols[:, ki, kj].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(dx_pad[:, :, ph:ph + H, pw:pw + W])


# --------------------------------------------------------------------------- Numba kernels


@numba.njit(inline="always")
def _inside(k, p, s, n_in, n_out):  # pragma: no cover - compiled
    """The outputs j whose input index j·s − p + k lies in [0, n_in): the range [lo, hi)."""
    lo = max(0, (p - k + s - 1) // s)
    hi = min(n_out, (n_in - 1 + p - k) // s + 1)
    return lo, max(lo, hi)


# The three loops every kernel here is made of, on flat (1-D, contiguous) arrays. Offsets
# are unsigned on purpose: Numba checks every signed index for a negative value (to wrap
# it around like Python), and that check alone kept these loops from being vectorised
# (measured: a run copy 7× slower).

@numba.njit(inline="always")
def _copy_run(dst, d0, src, s0, n, step):  # pragma: no cover - compiled
    """dst[d0 + j] = src[s0 + j·step] for j < n."""
    d, s, st = np.uint64(d0), np.uint64(s0), np.uint64(step)
    for j in range(n):
        u = np.uint64(j)
        dst[d + u] = src[s + u * st]


@numba.njit(inline="always")
def _add_run(dst, d0, step, src, s0, n):  # pragma: no cover - compiled
    """dst[d0 + j·step] += src[s0 + j] for j < n."""
    d, s, st = np.uint64(d0), np.uint64(s0), np.uint64(step)
    for j in range(n):
        u = np.uint64(j)
        dst[d + u * st] += src[s + u]


@numba.njit(inline="always")
def _zero_run(dst, d0, n):  # pragma: no cover - compiled
    """dst[d0 + j] = 0 for j < n."""
    d = np.uint64(d0)
    for j in range(n):
        dst[d + np.uint64(j)] = 0


@loops
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, cols):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    Ho = (H - kh + 2 * ph) // sh + 1
    Wo = (W - kw + 2 * pw) // sw + 1
    M = N * Ho * Wo
    xf, cf = x.reshape(-1), cols.reshape(-1)  # flat views of contiguous arrays
    # one task per (row of cols, image): row (c, ki, kj) holds, for image n, the plane
    # x[n, c] shifted by (ki, kj), i.e. Ho runs of Wo pixels; each task writes its own block
    for t in numba.prange(C * kh * kw * N):
        r, n = t // N, t % N
        c, ki, kj = r // (kh * kw), (r // kw) % kh, r % kw
        j_lo, j_hi = _inside(kj, pw, sw, W, Wo)  # windows whose column kj is not padding
        for i in range(Ho):
            h = i * sh - ph + ki
            out = r * M + (n * Ho + i) * Wo      # cols[r, (n, i, 0)]
            if h < 0 or h >= H:
                _zero_run(cf, out, Wo)           # a whole row of padding
                continue
            _zero_run(cf, out, j_lo)             # padding on the left ...
            _copy_run(cf, out + j_lo, xf, ((n * C + c) * H + h) * W + j_lo * sw - pw + kj, j_hi - j_lo, sw)
            _zero_run(cf, out + j_hi, Wo - j_hi)  # ... and on the right


@loops
def _col2im_kernel(cols, kh, kw, sh, sw, ph, pw, dx):  # pragma: no cover - compiled
    N, C, H, W = dx.shape
    Ho = (H - kh + 2 * ph) // sh + 1
    Wo = (W - kw + 2 * pw) // sw + 1
    M = N * Ho * Wo
    cf, df = cols.reshape(-1), dx.reshape(-1)
    # One task per input plane dx[n, c]: all k_h·k_w shifted copies of it that im2col made
    # are added back by the same thread, so overlapping windows never race on a pixel.
    # ``dx`` starts at zero; gradients that fall on the padding are dropped.
    for t in numba.prange(N * C):
        n, c = t // C, t % C
        for ki in range(kh):
            i_lo, i_hi = _inside(ki, ph, sh, H, Ho)
            for kj in range(kw):
                r = (c * kh + ki) * kw + kj
                j_lo, j_hi = _inside(kj, pw, sw, W, Wo)
                for i in range(i_lo, i_hi):
                    h = i * sh - ph + ki
                    _add_run(df, ((n * C + c) * H + h) * W + j_lo * sw - pw + kj, sw,
                             cf, r * M + (n * Ho + i) * Wo + j_lo, j_hi - j_lo)


def im2col_numba(x, kernel, stride, padding):
    """Numba im2col (CPU, NumPy arrays): same result as :func:`im2col_numpy`."""
    x = np.ascontiguousarray(x)  # a no-op for the usual contiguous input
    N, C = x.shape[:2]
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    cols = np.empty((C * kernel[0] * kernel[1], N * Ho * Wo), dtype=x.dtype)
    _im2col_kernel(cols.size, x, *kernel, *stride, *padding, cols)
    return cols


def col2im_numba(cols, x_shape, kernel, stride, padding):
    """Numba col2im (CPU, NumPy arrays): same result as :func:`col2im_numpy`."""
    dx = np.zeros(tuple(x_shape), dtype=cols.dtype)
    _col2im_kernel(cols.size, np.ascontiguousarray(cols), *kernel, *stride, *padding, dx)
    return dx
