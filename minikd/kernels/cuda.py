"""GPU kernels (``numba.cuda``) for the loops that have Numba CPU kernels.

The same numbers as the readable references (``im2col_numpy``, ``max_pool_forward_numpy``,
... in the sibling modules, which stay the fallback), computed by CUDA kernels:

- im2col and col2im (:mod:`minikd.kernels.conv`);
- max pooling forward (with argmax) and backward, average pooling forward and backward
  (:mod:`minikd.kernels.pool`);
- the int8 × int8 → int32 matrix product (:mod:`minikd.kernels.intgemm`);
- Adam's update in one pass (:mod:`minikd.kernels.adam`; the maths of ``minikd.optim.Adam.step``).

**Thread layout.** Every kernel gives one thread one *output element* and nothing else:

    for t in range(cuda.grid(1), n, cuda.gridsize(1)):     # a grid-stride loop
        (n, c, h, w) = unravel(t)                           # which element thread t computes
        out[n, c, h, w] = ...                               # read many inputs, write one output

The loop lets any grid cover any n (a thread takes elements t, t + gridsize, ...), so the
launch size is a tuning choice, not a correctness one; the tests launch a tiny grid on the
simulator so that every thread goes round the loop several times.

**No atomics.** col2im and the pooling backwards are scatters when written from the
output of the forward ("add dL/dy to every pixel of its window"): overlapping windows
(stride < kernel) would make threads race on a pixel. Here they are written as *gathers*
instead: one thread per pixel of dL/dx visits the few windows that contain it — the window
offsets k_i with ``(h + p − k_i) mod s = 0`` give the window rows i = (h + p − k_i) / s, kept
when 0 ≤ i < h_o — and adds their contributions in a register. No two threads write one
element, and each sum is taken in the reference's order (k_i, then k_j, ascending), so the
result is the reference's bit for bit (IEEE adds and divisions, no fused multiply-add in
these kernels), deterministic, with no atomics. Adam's update matches its reference to
rounding only: there the GPU compiler fuses multiplies and adds into FMAs.

**Dtypes.** Sums run in the arrays' own dtype (a float32 accumulator for float32 data, as in
the references): the wrappers pass typed scalars (``zero``, the divisor, Adam's constants)
because a Python literal such as ``0.0`` would make the kernel accumulate in float64 (a test
compiles every kernel to PTX and finds no float64 instruction in the float32 builds).

**Arrays.** Kernels take device arrays through the CUDA array interface (CuPy arrays on a
GPU), and each launch wrapper (``im2col_cuda``, ...) allocates its outputs with the input's
array module (:func:`minikd.backend.get_array_module`). Under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) the same wrappers run on NumPy arrays: that is how the tests
check them on a machine without a GPU. Signatures, dtypes and output layouts are those of
the ``*_numpy`` functions, so each wrapper is a drop-in replacement; :mod:`minikd.kernels`
picks them for CuPy arrays when :func:`minikd.kernels.cuda_kernels_usable` (a real GPU, and
NVVM to compile for it).

Importing this module imports ``numba.cuda`` (≈ 0.2 s) but compiles nothing: ``@cuda.jit``
compiles a kernel on its first launch, for the argument types of that launch.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import cuda

from ..backend import get_array_module
from . import _numpy_names_for_numba_cuda
from .conv import _sizes
from .intgemm import _check
from .pool import ARGMAX_DTYPE

_numpy_names_for_numba_cuda()  # before any kernel compiles (numba-cuda on NumPy ≥ 2.5)

#: Threads per block, and the most blocks one launch uses (the grid-stride loop does the rest).
#: On a GPU: 256 × up to 1024 blocks ≈ 262 K threads, enough to fill a large GPU. On the
#: simulator every thread is a Python thread: a small grid, each thread looping many times.
THREADS, MAX_BLOCKS = 256, 1024
SIM_THREADS, SIM_MAX_BLOCKS = 8, 3


def _simulated() -> bool:
    return bool(numba.config.ENABLE_CUDASIM)


def _launch(kernel, n, *args):
    """Run ``kernel`` over ``n`` output elements: grid size, CuPy's stream, device views."""
    if n == 0:
        return
    if _simulated():
        # the simulator copies NumPy arrays as if to a device, and only contiguous ones (outputs
        # are always contiguous here); a GPU reads a strided CuPy view, e.g. a channel-major x, as is
        args = tuple(np.ascontiguousarray(a) if isinstance(a, np.ndarray) and not a.flags.c_contiguous else a
                     for a in args)
        kernel[min(SIM_MAX_BLOCKS, -(-n // SIM_THREADS)), SIM_THREADS](*args)
        return
    arrays = [a for a in args if hasattr(a, "__cuda_array_interface__")]
    device = getattr(getattr(arrays[0], "device", None), "id", 0) if arrays else 0  # CuPy's a.device.id
    with cuda.gpus[device]:
        # CuPy arrays viewed without a synchronisation: the kernel runs on CuPy's current stream,
        # so it is queued after the work that produced its inputs
        args = tuple(cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a
                     for a in args)
        kernel[min(MAX_BLOCKS, -(-n // THREADS)), THREADS, _current_stream()](*args)


def _current_stream():
    """CuPy's current stream as a Numba stream (0, Numba's default stream, for CuPy's null stream)."""
    try:
        import cupy
    except ImportError:  # pragma: no cover - the GPU path always has CuPy
        return 0
    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.external_stream(ptr) if ptr else 0


# --------------------------------------------------------------------------- im2col / col2im


@cuda.jit
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, Ho, Wo, cols):  # pragma: no cover - compiled
    # cols[(c, k_i, k_j), (n, i, j)] = x[n, c, i·s_h − p_h + k_i, j·s_w − p_w + k_j], 0 in the padding
    N, C, H, W = x.shape
    M = N * Ho * Wo
    for t in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        r, q = t // M, t % M
        c, ki, kj = r // (kh * kw), (r // kw) % kh, r % kw
        n, i, j = q // (Ho * Wo), (q // Wo) % Ho, q % Wo
        h, w = i * sh - ph + ki, j * sw - pw + kj
        if 0 <= h < H and 0 <= w < W:
            cols[r, q] = x[n, c, h, w]
        else:
            cols[r, q] = 0


@cuda.jit
def _col2im_kernel(cols, kh, kw, sh, sw, ph, pw, Ho, Wo, zero, dx):  # pragma: no cover - compiled
    # dx[n, c, h, w] = Σ over the windows (i, j) that hold pixel (h, w) of cols[(c, k_i, k_j), (n, i, j)],
    # with k_i = h + p_h − i·s_h, k_j = w + p_w − j·s_w: a gather, summed in the order k_i, k_j ascending
    N, C, H, W = dx.shape
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, h, w = t // (C * H * W), (t // (H * W)) % C, (t // W) % H, t % W
        hp, wp = h + ph, w + pw  # in padded coordinates
        total = zero
        for ki in range(hp % sh, kh, sh):  # the offsets k_i with (h_p − k_i) mod s_h = 0; row i ≥ 0 of a window
            i = (hp - ki) // sh
            if 0 <= i < Ho:
                for kj in range(wp % sw, kw, sw):
                    j = (wp - kj) // sw
                    if 0 <= j < Wo:
                        total += cols[(c * kh + ki) * kw + kj, (n * Ho + i) * Wo + j]
        dx[n, c, h, w] = total


def im2col_cuda(x, kernel, stride, padding):
    """CUDA im2col: ``x`` (N, C, H, W) → ``cols`` (C·k_h·k_w, N·h_i·w_i), as :func:`im2col_numpy`."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x.shape, kernel, stride, padding)
    cols = xp.empty((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    _launch(_im2col_kernel, cols.size, x, kh, kw, sh, sw, ph, pw, Ho, Wo, cols)
    return cols


def col2im_cuda(cols, x_shape, kernel, stride, padding):
    """CUDA col2im: ``cols`` → ``dx`` (N, C, H, W), overlapping windows summed, as :func:`col2im_numpy`."""
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = _sizes(x_shape, kernel, stride, padding)
    cols = cols.reshape(C * kh * kw, N * Ho * Wo)
    dx = xp.empty((N, C, H, W), dtype=cols.dtype)
    _launch(_col2im_kernel, dx.size, cols, kh, kw, sh, sw, ph, pw, Ho, Wo, cols.dtype.type(0), dx)
    return dx


# --------------------------------------------------------------------------- pooling


@cuda.jit
def _max_pool_forward_kernel(x, kh, kw, sh, sw, ph, pw, lowest, y, argmax):  # pragma: no cover - compiled
    # y[n, c, i, j] = max over the window of x_pad (padding = −∞), argmax = k_i·k_w + k_j of the
    # first maximum in row-major order (strict ">": ties keep the first); a NaN is the maximum
    # (the window's first NaN wins). A window entirely in the padding gives (−∞, 0), as the reference.
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, i, j = t // (C * Ho * Wo), (t // (Ho * Wo)) % C, (t // Wo) % Ho, t % Wo
        best, best_at = lowest, 0
        for ki in range(kh):
            h = i * sh - ph + ki
            if 0 <= h < H:
                for kj in range(kw):
                    w = j * sw - pw + kj
                    if 0 <= w < W:
                        v = x[n, c, h, w]
                        if v > best or (v != v and best == best):
                            best, best_at = v, ki * kw + kj
        y[n, c, i, j] = best
        argmax[n, c, i, j] = best_at


@cuda.jit
def _max_pool_backward_kernel(gy, argmax, kh, kw, sh, sw, ph, pw, zero, gx):  # pragma: no cover - compiled
    # gx[n, c, h, w] = Σ over the windows (i, j) holding (h, w) whose argmax is this pixel of gy[n, c, i, j]
    N, C, H, W = gx.shape
    Ho, Wo = gy.shape[2], gy.shape[3]
    for t in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        n, c, h, w = t // (C * H * W), (t // (H * W)) % C, (t // W) % H, t % W
        hp, wp = h + ph, w + pw
        total = zero
        for ki in range(hp % sh, kh, sh):
            i = (hp - ki) // sh
            if 0 <= i < Ho:
                for kj in range(wp % sw, kw, sw):
                    j = (wp - kj) // sw
                    if 0 <= j < Wo and argmax[n, c, i, j] == ki * kw + kj:
                        total += gy[n, c, i, j]
        gx[n, c, h, w] = total


@cuda.jit
def _avg_pool_forward_kernel(x, kh, kw, sh, sw, ph, pw, zero, area, y):  # pragma: no cover - compiled
    # y[n, c, i, j] = (Σ over the window of x_pad) / (k_h·k_w): padding is 0 and counted
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, i, j = t // (C * Ho * Wo), (t // (Ho * Wo)) % C, (t // Wo) % Ho, t % Wo
        total = zero
        for ki in range(kh):
            h = i * sh - ph + ki
            if 0 <= h < H:
                for kj in range(kw):
                    w = j * sw - pw + kj
                    if 0 <= w < W:
                        total += x[n, c, h, w]
        y[n, c, i, j] = total / area


@cuda.jit
def _avg_pool_backward_kernel(gy, kh, kw, sh, sw, ph, pw, zero, area, gx):  # pragma: no cover - compiled
    # gx[n, c, h, w] = Σ over the windows (i, j) holding (h, w) of gy[n, c, i, j] / (k_h·k_w)
    N, C, H, W = gx.shape
    Ho, Wo = gy.shape[2], gy.shape[3]
    for t in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        n, c, h, w = t // (C * H * W), (t // (H * W)) % C, (t // W) % H, t % W
        hp, wp = h + ph, w + pw
        total = zero
        for ki in range(hp % sh, kh, sh):
            i = (hp - ki) // sh
            if 0 <= i < Ho:
                for kj in range(wp % sw, kw, sw):
                    j = (wp - kj) // sw
                    if 0 <= j < Wo:
                        total += gy[n, c, i, j] / area
        gx[n, c, h, w] = total


def max_pool_forward_cuda(x, kernel, stride, padding):
    """CUDA max pooling: ``(y, argmax)``, both (N, C, h_i, w_i), as :func:`max_pool_forward_numpy`."""
    xp = get_array_module(x)
    shape = tuple(x.shape[:2]) + _sizes(x.shape, kernel, stride, padding)
    y = xp.empty(shape, dtype=x.dtype)
    argmax = xp.empty(shape, dtype=ARGMAX_DTYPE)
    _launch(_max_pool_forward_kernel, y.size, x, *kernel, *stride, *padding, x.dtype.type(-np.inf), y, argmax)
    return y, argmax


def max_pool_backward_cuda(gy, argmax, x_shape, kernel, stride, padding, like=None):
    """CUDA max-pool backward, as :func:`max_pool_backward_numpy` (``like`` accepted, unused:
    the result is C-contiguous)."""
    xp = get_array_module(gy)
    gx = xp.empty(tuple(x_shape), dtype=gy.dtype)
    _launch(_max_pool_backward_kernel, gx.size, gy, argmax, *kernel, *stride, *padding, gy.dtype.type(0), gx)
    return gx


def avg_pool_forward_cuda(x, kernel, stride, padding):
    """CUDA average pooling (zero padding, counted), as :func:`avg_pool_forward_numpy`."""
    xp = get_array_module(x)
    (kh, kw) = kernel
    y = xp.empty(tuple(x.shape[:2]) + _sizes(x.shape, kernel, stride, padding), dtype=x.dtype)
    dt = x.dtype.type
    _launch(_avg_pool_forward_kernel, y.size, x, *kernel, *stride, *padding, dt(0), dt(kh * kw), y)
    return y


def avg_pool_backward_cuda(gy, x_shape, kernel, stride, padding):
    """CUDA average-pool backward, as :func:`avg_pool_backward_numpy`."""
    xp = get_array_module(gy)
    (kh, kw) = kernel
    gx = xp.empty(tuple(x_shape), dtype=gy.dtype)
    dt = gy.dtype.type
    _launch(_avg_pool_backward_kernel, gx.size, gy, *kernel, *stride, *padding, dt(0), dt(kh * kw), gx)
    return gx


# --------------------------------------------------------------------------- int8 GEMM


@cuda.jit
def _int8_matmul_kernel(a, b, c):  # pragma: no cover - compiled
    # C[i, j] = Σ_k int32(A[i, k]) · int32(B[k, j]): widened before the product, so nothing wraps
    # around (|C| < 2^31 for K ≤ MAX_K, checked by the wrapper)
    M, K = a.shape
    N = b.shape[1]
    for t in range(cuda.grid(1), M * N, cuda.gridsize(1)):
        i, j = t // N, t % N
        acc = numba.int32(0)
        for k in range(K):
            acc += numba.int32(a[i, k]) * numba.int32(b[k, j])
        c[i, j] = acc


def int8_matmul_cuda(a, b):
    """CUDA int8 × int8 → int32 product (M, K) · (K, N) → (M, N), as :func:`int8_matmul_numpy`."""
    _check(a, b)
    xp = get_array_module(a)
    c = xp.empty((a.shape[0], b.shape[1]), dtype=np.int32)
    _launch(_int8_matmul_kernel, c.size, a, b, c)
    return c


# --------------------------------------------------------------------------- Adam


@cuda.jit
def _adam_kernel(p, g, m, v, lr_over_c1, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_c2, eps,
                 weight_decay):  # pragma: no cover - compiled
    # the plain maths of Adam.step, element by element (flat arrays, all scalars in their dtype):
    #   g ← g + λθ (if λ ≠ 0);  m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²
    #   θ ← θ − m / (√v / √c₂ + ε) · (lr / c₁)
    for t in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        gi = g[t]
        if weight_decay != 0:
            gi = gi + weight_decay * p[t]
        mi = beta1 * m[t] + one_minus_beta1 * gi
        vi = beta2 * v[t] + one_minus_beta2 * (gi * gi)
        m[t] = mi
        v[t] = vi
        p[t] = p[t] - mi / (math.sqrt(vi) / sqrt_c2 + eps) * lr_over_c1


def adam_update_cuda(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Adam's update of θ = ``p``, m and v in place, in one pass (C-contiguous device arrays of one
    float dtype): the numbers of the plain update in ``minikd.optim.Adam.step`` (to rounding: on a
    GPU the compiler may fuse a multiply and an add into one FMA)."""
    arrays = (p, g, m, v)
    if not all(a.flags.c_contiguous and a.shape == p.shape and a.dtype == p.dtype for a in arrays):
        raise ValueError("adam_update_cuda: p, g, m and v must be C-contiguous arrays of one shape and dtype")
    c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
    dt = p.dtype.type  # scalars in the parameter's dtype: float32 maths for float32 parameters
    _launch(_adam_kernel, p.size, p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), dt(lr / c1),
            dt(beta1), dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(math.sqrt(c2)), dt(eps), dt(weight_decay))


__all__ = [
    "adam_update_cuda", "avg_pool_backward_cuda", "avg_pool_forward_cuda", "col2im_cuda", "im2col_cuda",
    "int8_matmul_cuda", "max_pool_backward_cuda", "max_pool_forward_cuda",
]
