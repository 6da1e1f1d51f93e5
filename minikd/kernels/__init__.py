"""The loops that matter for speed: im2col/col2im (convolution), pooling, ReLU, dropout, Adam, int8 GEMM.

Every kernel exists twice, side by side in its module:

- a **NumPy reference** (``*_numpy``), the readable version of the maths, written with
  ``xp`` calls only — it is also the code path for CuPy arrays on the GPU;
- a **Numba kernel** (``*_numba``), the same numbers computed in one pass over contiguous
  buffers (CPU only), compiled twice — parallel over threads for large inputs, serial for
  small ones, where waking threads costs more than the loop (:mod:`minikd.kernels.jit`).

The functions of this module (``im2col``, ``col2im``, ``max_pool_forward``, ...) pick one:
NumPy arrays take the selected backend, ``"numba"`` by default. CuPy arrays take the
``numba.cuda`` kernel of :mod:`minikd.kernels.cuda` under the ``"numba"`` backend when Numba
sees a real GPU (:func:`cuda_kernels_usable`), else the reference path, which runs on CuPy::

    >>> import minikd.kernels as K
    >>> K.get_backend()
    'numba'
    >>> with K.use_backend("numpy"):     # e.g. to compare speed, or to debug
    ...     K.get_backend()
    'numpy'

Sizes follow the lecture: ``h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1`` (:func:`conv_output_size`
with ``floor=True``, also ``minikd.profile.conv_output_size``). ``kernel``, ``stride`` and
``padding`` are (h, w) pairs of ints here; the ops accept ints.

The modules: ``conv.py`` (im2col, col2im), ``pool.py`` (max and average pooling),
``select.py`` (ReLU, its select, LeakyReLU's, dropout's), ``adam.py`` (Adam's one-pass update), ``intgemm.py``
(int8 × int8 → int32 matrix product), ``jit.py`` (how each kernel is compiled twice), ``cuda.py``
(the GPU kernels, imported on the first CuPy array only: ``import minikd`` stays fast).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np

from ..backend import device_of, get_array_module
from .adam import adam_update_numba
from .conv import (
    col2im_numba,
    col2im_numpy,
    conv_output_size,
    im2col_numba,
    im2col_numpy,
)
from .intgemm import int8_matmul_numba, int8_matmul_numpy
from .pool import (
    avg_pool_backward_numba,
    avg_pool_backward_numpy,
    avg_pool_forward_numba,
    avg_pool_forward_numpy,
    max_pool_backward_numba,
    max_pool_backward_numpy,
    max_pool_forward_numba,
    max_pool_forward_numpy,
)
from .select import (
    leaky_numba,
    leaky_numpy,
    relu_forward_numba,
    relu_forward_numpy,
    scaled_select_numba,
    scaled_select_numpy,
    select_numba,
    select_numpy,
)

BACKENDS = ("numba", "numpy")
_backend = "numba"


def get_backend() -> str:
    """The CPU kernel backend in use: ``"numba"`` (default) or ``"numpy"``."""
    return _backend


def set_backend(name: str) -> None:
    """Select the CPU kernels: ``"numba"`` (fast) or ``"numpy"`` (the readable reference)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; expected one of {BACKENDS}")
    _backend = name


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("numpy"): ...`` — select a backend for a block, then restore."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def _compiled_dtype(a) -> bool:
    """Whether the compiled kernels (Numba's, and those of numba.cuda) take ``a``'s dtype: every
    dtype but float16, whose arithmetic Numba does not compile for the CPU ("NotImplementedError:
    float16" from deep inside it). float16 arrays take the NumPy (or CuPy) reference instead."""
    return a.dtype != np.float16


def _numba_for(a) -> bool:
    """Numba runs on NumPy arrays only; CuPy arrays, and float16 ones, take the device-agnostic
    reference."""
    return _backend == "numba" and get_array_module(a) is np and _compiled_dtype(a)


_cuda_usable = None  # whether numba.cuda sees a real GPU; asked once, on the first CuPy array
_cuda_reason = "not asked yet"


def cuda_kernels_usable() -> bool:
    """Whether Numba can compile and launch the GPU kernels of :mod:`minikd.kernels.cuda` on a real
    GPU: a CUDA driver that sees a device, and NVVM (from a CUDA toolkit) that compiles for it —
    tried once on a one-line kernel. Not on Numba's simulator, which runs kernels in Python (the
    tests call those kernels directly). When False, CuPy arrays take the xp references, and
    :func:`cuda_kernels_status` says why."""
    global _cuda_usable, _cuda_reason
    if _cuda_usable is None:
        _cuda_usable = False
        try:
            _numpy_names_for_numba_cuda()
            import numba
            from numba import cuda
            if numba.config.ENABLE_CUDASIM:
                _cuda_reason = "Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): not a real GPU"
            elif not cuda.is_available():
                _cuda_reason = "numba.cuda finds no CUDA driver or device (numba.cuda.detect() says more)"
            else:
                cc = cuda.get_current_device().compute_capability
                cuda.compile_ptx(_probe_kernel, (numba.float32[:],), cc=cc)
                _cuda_usable, _cuda_reason = True, f"usable (compute capability {cc[0]}.{cc[1]})"
        except Exception as e:  # no numba-cuda, no NVVM or libdevice, a GPU newer than NVVM knows, ...
            _cuda_reason = f"{type(e).__name__}: {e}".strip()[:300]
            if "nvvm" in _cuda_reason.lower() or "libdevice" in _cuda_reason.lower():
                _cuda_reason += " — NVVM comes with a CUDA toolkit (set CUDA_HOME to it) or the nvidia-cuda-nvcc wheel"
    return _cuda_usable


def _numpy_names_for_numba_cuda() -> None:
    """numba-cuda's typing of NumPy functions still names ``numpy.row_stack``, which NumPy 2.5
    removed (it was another name for ``numpy.vstack``); without it, compiling any kernel fails
    with "module 'numpy' has no attribute 'row_stack'" (seen on a GPU machine with NumPy 2.5.2).
    Put the old name back, as the same function, only where it is missing."""
    if not hasattr(np, "row_stack"):
        setattr(np, "row_stack", np.vstack)  # noqa: B010 - a name NumPy removed, on purpose


def cuda_kernels_status() -> str:
    """Why :func:`cuda_kernels_usable` said what it said, in one line (asks it first)."""
    cuda_kernels_usable()
    return _cuda_reason


def _probe_kernel(a):  # pragma: no cover - compiled once by cuda_kernels_usable
    a[0] = a[0] + 1


def _cuda_for(a) -> bool:
    """CuPy arrays under the "numba" backend take the numba.cuda kernels when a real GPU is usable
    (NumPy arrays, and the arrays of other registered devices, never do)."""
    return (_backend == "numba" and type(a) is not np.ndarray and _compiled_dtype(a)
            and device_of(a).startswith("cuda") and cuda_kernels_usable())


def _cuda():
    """The GPU kernels' module, imported on first use (it imports numba.cuda)."""
    from . import cuda
    return cuda


# --------------------------------------------------------------------------- dispatch


def im2col(x, kernel, stride, padding):
    """``x`` (N, C, H, W) → ``cols`` (C·k_h·k_w, N·h_i·w_i): one column per window."""
    if _cuda_for(x):
        return _cuda().im2col_cuda(x, kernel, stride, padding)
    return (im2col_numba if _numba_for(x) else im2col_numpy)(x, kernel, stride, padding)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: ``cols`` → (N, C, H, W), overlapping windows summed."""
    if _cuda_for(cols):
        return _cuda().col2im_cuda(cols, x_shape, kernel, stride, padding)
    return (col2im_numba if _numba_for(cols) else col2im_numpy)(cols, x_shape, kernel, stride, padding)


class MaxPoolSaved(NamedTuple):
    """What the max-pool backward needs from the forward: the argmax of each window, and
    the input's shape and memory layout (dL/dx is made in that layout: after a convolution,
    whose output is channel-major, the conv's backward then reads it without a copy)."""

    argmax: object
    x_shape: tuple
    like: object


def max_pool_forward(x, kernel, stride, padding):
    """Max pooling: ``(y, saved)``; ``saved.argmax`` = k_i·k_w + k_j inside each window."""
    if _cuda_for(x):
        y, argmax = _cuda().max_pool_forward_cuda(x, kernel, stride, padding)
        return y, MaxPoolSaved(argmax, x.shape, None)
    numba_path = _numba_for(x)
    y, argmax = (max_pool_forward_numba if numba_path else max_pool_forward_numpy)(x, kernel, stride, padding)
    return y, MaxPoolSaved(argmax, x.shape, x if numba_path else None)


def max_pool_backward(gy, saved, kernel, stride, padding):
    """dL/dx of max pooling: each dL/dy goes to its window's argmax (``saved`` from the forward)."""
    if _cuda_for(gy):
        return _cuda().max_pool_backward_cuda(gy, saved.argmax, saved.x_shape, kernel, stride, padding)
    fn = max_pool_backward_numba if _numba_for(gy) else max_pool_backward_numpy
    return fn(gy, saved.argmax, saved.x_shape, kernel, stride, padding, like=saved.like)


def avg_pool_forward(x, kernel, stride, padding):
    """Average pooling, zero padding counted (``count_include_pad=True``)."""
    if _cuda_for(x):
        return _cuda().avg_pool_forward_cuda(x, kernel, stride, padding)
    return (avg_pool_forward_numba if _numba_for(x) else avg_pool_forward_numpy)(x, kernel, stride, padding)


def avg_pool_backward(gy, x_shape, kernel, stride, padding):
    """dL/dx of average pooling: dL/dy / (k_h·k_w) to every pixel of the window."""
    if _cuda_for(gy):
        return _cuda().avg_pool_backward_cuda(gy, x_shape, kernel, stride, padding)
    fn = avg_pool_backward_numba if _numba_for(gy) else avg_pool_backward_numpy
    return fn(gy, x_shape, kernel, stride, padding)


def _dense_order(a):
    """The axis order in which NumPy array ``a`` is C-contiguous, or None.

    A conv's output is a transposed view, (N, d, h, w) over memory laid out (d, N, h, w): not
    C-contiguous, yet one dense block. Elementwise kernels may run on ``a.transpose(order)``, which
    is, and their results be transposed back (a view, no copy). None for broadcast or sliced arrays
    (a gap or a 0 stride: no order makes them contiguous), for float16 and for other backends."""
    if _backend != "numba" or type(a) is not np.ndarray or not _compiled_dtype(a):
        return None
    if a.flags.c_contiguous:
        return tuple(range(a.ndim))
    order = tuple(sorted(range(a.ndim), key=lambda i: -abs(a.strides[i])))
    return order if a.transpose(order).flags.c_contiguous else None


def _undo(order):
    """The axes that transpose an array laid out in ``order`` back: the inverse permutation."""
    return tuple(sorted(range(len(order)), key=order.__getitem__))


def relu_forward(x):
    """``(max(x, 0), x > 0)``; a NaN stays NaN, −inf becomes 0. The Numba kernel for any dense
    NumPy layout (the outputs keep x's layout), the reference for the rest."""
    order = _dense_order(x)
    if order is None:
        return relu_forward_numpy(x)
    y, mask = relu_forward_numba(x.transpose(order))
    undo = _undo(order)
    return y.transpose(undo), mask.transpose(undo)


def _by_mask(kernel, reference, mask, g, *scalars):
    """``kernel(mask, g, *scalars)`` run in the mask's dense layout (``g`` copied into it if it
    has another) and given back its shape; ``reference(mask, g, *scalars)`` where no Numba kernel
    applies (another backend, a non-dense mask, shapes that differ, a CuPy array)."""
    order = _dense_order(mask) if mask.dtype == np.bool_ and mask.shape == g.shape else None
    if order is None or type(g) is not np.ndarray or not _compiled_dtype(g):
        return reference(mask, g, *scalars)
    g = g.transpose(order)
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    return kernel(mask.transpose(order), g, *scalars).transpose(_undo(order))


def select(mask, g):
    """g where ``mask``, else 0 (not g · mask: inf · 0 is NaN). The Numba kernel runs in the mask's
    layout (the one :func:`relu_forward` gave it); ``g`` in another layout is copied into it first:
    one plain pass over memory, where NumPy's ``where`` branches on every element."""
    return _by_mask(select_numba, select_numpy, mask, g)


def leaky(mask, g, a):
    """g where ``mask``, else a·g: LeakyReLU's forward (g = x, mask = x > 0) and its backward.
    The Numba kernel as for :func:`select`, the reference ``xp.where`` for the rest."""
    return _by_mask(leaky_numba, leaky_numpy, mask, g, a)


def scaled_select(mask, g, s):
    """s·g where ``mask``, else 0: inverted dropout's forward (g = x, mask = the kept values,
    s = 1/(1 − p)) and its backward. The Numba kernel as for :func:`select`, the reference
    ``xp.where`` for the rest."""
    return _by_mask(scaled_select_numba, scaled_select_numpy, mask, g, s)


def int8_matmul(a, b):
    """``C = A · B`` for int8 matrices A (M, K) and B (K, N), accumulated in int32 → (M, N) int32."""
    if _cuda_for(a) and _cuda_for(b):
        return _cuda().int8_matmul_cuda(a, b)
    use_numba = _numba_for(a) and get_array_module(b) is np
    return (int8_matmul_numba if use_numba else int8_matmul_numpy)(a, b)


def fused_adam_applies(p, g, m, v) -> bool:
    """Whether :func:`adam_update_numba` can update this parameter: C-contiguous NumPy arrays of
    one float dtype, and the "numba" backend. Otherwise ``Adam.step`` runs its plain xp maths."""
    arrays = (p, g, m, v)
    return (_numba_for(p) and all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays)
            and len({a.dtype for a in arrays}) == 1 and p.dtype.kind == "f")


def adam_update_applies(p, g, m, v) -> bool:
    """Whether :func:`adam_update` has a one-pass kernel for this parameter: the Numba kernel
    (:func:`fused_adam_applies`), or the GPU kernel for C-contiguous CuPy arrays of one shape and
    float dtype when :func:`cuda_kernels_usable`. Otherwise the plain xp maths of ``Adam.step``."""
    if fused_adam_applies(p, g, m, v):
        return True
    arrays = (p, g, m, v)
    xp = get_array_module(p)
    return (_cuda_for(p) and all(get_array_module(a) is xp and a.flags.c_contiguous for a in arrays)
            and len({a.dtype for a in arrays}) == 1 and len({a.shape for a in arrays}) == 1 and p.dtype.kind == "f")


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Adam's update in one pass, in place: the GPU kernel for CuPy arrays, else the Numba kernel
    (check :func:`adam_update_applies` first)."""
    if _cuda_for(p):
        return _cuda().adam_update_cuda(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step)
    return adam_update_numba(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step)


__all__ = [
    "BACKENDS", "adam_update", "adam_update_applies", "adam_update_numba", "conv_output_size",
    "cuda_kernels_status", "cuda_kernels_usable", "fused_adam_applies",
    "avg_pool_backward", "avg_pool_backward_numba", "avg_pool_backward_numpy",
    "avg_pool_forward", "avg_pool_forward_numba", "avg_pool_forward_numpy", "col2im", "col2im_numba",
    "col2im_numpy", "get_backend", "im2col", "im2col_numba", "im2col_numpy", "int8_matmul",
    "int8_matmul_numba", "int8_matmul_numpy",
    "max_pool_backward", "max_pool_backward_numba", "max_pool_backward_numpy", "max_pool_forward",
    "max_pool_forward_numba", "max_pool_forward_numpy", "relu_forward", "relu_forward_numba",
    "relu_forward_numpy", "select", "select_numba", "select_numpy", "leaky", "leaky_numba", "leaky_numpy",
    "scaled_select", "scaled_select_numba", "scaled_select_numpy",
    "set_backend", "use_backend",
]
