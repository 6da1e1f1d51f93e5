"""The loops that matter for speed: im2col/col2im (convolution) and pooling.

Every kernel exists twice, side by side in its module:

- a **NumPy reference** (``*_numpy``), the readable version of the maths, written with
  ``xp`` calls only — it is also the code path for CuPy arrays on the GPU;
- a **Numba kernel** (``*_numba``), the same numbers computed in one pass over contiguous
  buffers (CPU only), compiled twice — parallel over threads for large inputs, serial for
  small ones, where waking threads costs more than the loop (:mod:`minikd.kernels.jit`).

The functions of this module (``im2col``, ``col2im``, ``max_pool_forward``, ...) pick one:
CuPy arrays always take the reference path; NumPy arrays take the selected CPU backend,
``"numba"`` by default::

    >>> import minikd.kernels as K
    >>> K.get_backend()
    'numba'
    >>> with K.use_backend("numpy"):     # e.g. to compare speed, or to debug
    ...     K.get_backend()
    'numpy'

Sizes follow the lecture: ``h_i = ⌊(h_{i−1} − k_h + 2p) / s⌋ + 1`` (:func:`output_size`).
``kernel``, ``stride`` and ``padding`` are (h, w) pairs of ints here; the ops accept ints.

(The function ``minikd.kernels.im2col`` hides the submodule of the same name as an
attribute; ``from minikd.kernels.im2col import _im2col_kernel`` still reaches the module.)
"""

from __future__ import annotations

import contextlib
import os

# Numba's OpenMP threads spin-wait after each parallel loop by default. A convolution
# alternates Numba kernels with BLAS matrix products, whose own threads then find the
# cores busy with spinning Numba threads (measured: GEMM 2× slower on 2 cores). Passive
# waiting hands the cores over at once. It must be set before OpenMP is first loaded (at
# the first parallel kernel call); a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from ..backend import get_array_module  # noqa: E402
from .adam import adam_update_numba, adam_update_numpy  # noqa: E402
from .im2col import (  # noqa: E402
    as_pair,
    col2im_numba,
    col2im_numpy,
    conv2d_reference,
    im2col_numba,
    im2col_numpy,
    output_size,
)
from .intgemm import int8_matmul_numba, int8_matmul_numpy  # noqa: E402
from .pool import (  # noqa: E402
    avg_pool_backward_numba,
    avg_pool_backward_numpy,
    avg_pool_forward_numba,
    avg_pool_forward_numpy,
    max_pool_backward_numba,
    max_pool_backward_numpy,
    max_pool_forward_numba,
    max_pool_forward_numpy,
)
from .select import relu_forward_numba, relu_forward_numpy, select_numba, select_numpy  # noqa: E402

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


def _numba_for(a) -> bool:
    """Numba runs on NumPy arrays only; CuPy arrays take the device-agnostic reference."""
    return _backend == "numba" and get_array_module(a) is np


# --------------------------------------------------------------------------- dispatch


def im2col(x, kernel, stride, padding):
    """``x`` (N, C, H, W) → ``cols`` (N·h_i·w_i, C·k_h·k_w): one row per window."""
    return (im2col_numba if _numba_for(x) else im2col_numpy)(x, kernel, stride, padding)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: ``cols`` → (N, C, H, W), overlapping windows summed."""
    return (col2im_numba if _numba_for(cols) else col2im_numpy)(cols, x_shape, kernel, stride, padding)


def max_pool_forward(x, kernel, stride, padding):
    """Max pooling: ``(y, argmax)``, argmax = k_i·k_w + k_j inside each window."""
    return (max_pool_forward_numba if _numba_for(x) else max_pool_forward_numpy)(x, kernel, stride, padding)


def max_pool_backward(gy, argmax, x_shape, kernel, stride, padding, like=None):
    """dL/dx of max pooling: each dL/dy goes to its window's argmax. ``like``: an array of
    shape ``x_shape`` whose memory layout dL/dx should have (the Numba path honours it)."""
    fn = max_pool_backward_numba if _numba_for(gy) else max_pool_backward_numpy
    return fn(gy, argmax, x_shape, kernel, stride, padding, like=like)


def avg_pool_forward(x, kernel, stride, padding):
    """Average pooling, zero padding counted (``count_include_pad=True``)."""
    return (avg_pool_forward_numba if _numba_for(x) else avg_pool_forward_numpy)(x, kernel, stride, padding)


def avg_pool_backward(gy, x_shape, kernel, stride, padding):
    """dL/dx of average pooling: dL/dy / (k_h·k_w) to every pixel of the window."""
    fn = avg_pool_backward_numba if _numba_for(gy) else avg_pool_backward_numpy
    return fn(gy, x_shape, kernel, stride, padding)


def _flat_numba(a) -> bool:
    """The elementwise kernels read flat views: C-contiguous NumPy arrays."""
    return _backend == "numba" and type(a) is np.ndarray and a.flags.c_contiguous


def relu_forward(x):
    """``(max(x, 0), x > 0)``; a NaN stays NaN, −inf becomes 0."""
    return (relu_forward_numba if _flat_numba(x) else relu_forward_numpy)(x)


def select(mask, g):
    """g where ``mask``, else 0 (not g · mask: inf · 0 is NaN)."""
    use_numba = _flat_numba(g) and _flat_numba(mask) and mask.shape == g.shape and mask.dtype == np.bool_
    return (select_numba if use_numba else select_numpy)(mask, g)


def int8_matmul(a, b):
    """``C = A · B`` for int8 matrices A (M, K) and B (K, N), accumulated in int32 → (M, N) int32."""
    use_numba = _numba_for(a) and get_array_module(b) is np
    return (int8_matmul_numba if use_numba else int8_matmul_numpy)(a, b)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One Adam step on θ = ``p`` with gradient ``g`` and moments ``m``, ``v``, all in place.
    The one-pass kernel needs C-contiguous NumPy arrays of one float dtype; anything else
    (a transposed gradient, CuPy arrays) takes the reference."""
    arrays = (p, g, m, v)
    use_numba = (_numba_for(p) and all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays)
                 and len({a.dtype for a in arrays}) == 1 and p.dtype.kind == "f")
    fn = adam_update_numba if use_numba else adam_update_numpy
    fn(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step)


__all__ = [
    "BACKENDS", "adam_update", "adam_update_numba", "adam_update_numpy",
    "as_pair", "avg_pool_backward", "avg_pool_backward_numba", "avg_pool_backward_numpy",
    "avg_pool_forward", "avg_pool_forward_numba", "avg_pool_forward_numpy", "col2im", "col2im_numba",
    "col2im_numpy", "conv2d_reference", "get_backend", "im2col", "im2col_numba", "im2col_numpy", "int8_matmul",
    "int8_matmul_numba", "int8_matmul_numpy",
    "max_pool_backward", "max_pool_backward_numba", "max_pool_backward_numpy", "max_pool_forward",
    "max_pool_forward_numba", "max_pool_forward_numpy", "output_size", "relu_forward", "relu_forward_numba",
    "relu_forward_numpy", "select", "select_numba", "select_numpy", "set_backend", "use_backend",
]
