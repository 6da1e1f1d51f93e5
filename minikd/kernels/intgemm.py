"""Integer matrix product: int8 × int8 → int32, the arithmetic of a quantized layer.

A quantized layer holds its weights as b-bit integers q_w and quantizes its input to q_x;
the expensive part of its forward pass is then one product of two int8 matrices whose
sums are accumulated in int32::

    C[i, j] = Σ_k int32(A[i, k]) · int32(B[k, j])          A (M, K) int8,  B (K, N) int8

Why int32 is enough: one product of two int8 values is at most 128 · 128 = 2^14 in
magnitude, so a sum of K of them fits in int32 (|C| < 2^31) for every K ≤ 2^17 = 131,072;
the layers of the lecture's networks have K ≤ 3,136 (the teacher's first FC layer).

Written twice, as every kernel of :mod:`minikd.kernels`: a NumPy reference
(:func:`int8_matmul_numpy`, widen to int32, then ``@``; it also runs on CuPy arrays) and a
Numba kernel (:func:`int8_matmul_numba`, parallel over the rows of A, each row's int32
accumulator row filled by one thread). :func:`minikd.kernels.int8_matmul` picks one as
for the other kernels: the Numba kernel for NumPy arrays under the ``"numba"`` backend,
else the reference.

>>> import numpy as np
>>> a = np.array([[-128, 127], [1, 2]], dtype=np.int8)
>>> b = np.array([[-128], [127]], dtype=np.int8)
>>> int8_matmul_numba(a, b)              # 16384 + 16129 = 32513: no int8 wrap-around
array([[32513],
       [  126]], dtype=int32)
"""

from __future__ import annotations

import numba
import numpy as np

from .jit import loops

#: The largest K for which an int8 × int8 sum of K products cannot overflow int32:
#: K · 128 · 128 ≤ 2^31 − 1 ⇔ K < 2^17.
MAX_K = (2**31 - 1) // (128 * 128)


def _check(a, b):
    """Both matrices int8, 2-D, with matching inner sizes (A is (M, K), B is (K, N))."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"int8_matmul: expected two matrices; got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"int8_matmul: inner sizes differ: A is {tuple(a.shape)}, B is {tuple(b.shape)}")
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise TypeError(f"int8_matmul: expected int8 matrices; got {a.dtype} and {b.dtype}")
    if a.shape[1] > MAX_K:
        raise ValueError(f"int8_matmul: K = {a.shape[1]} > {MAX_K}: an int32 sum of K int8 products could "
                         f"overflow")


# --------------------------------------------------------------------------- NumPy reference


def int8_matmul_numpy(a, b):
    """Reference: ``C = int32(A) @ int32(B)`` — widen first, so no product or sum wraps around."""
    _check(a, b)
    return a.astype(np.int32) @ b.astype(np.int32)


# --------------------------------------------------------------------------- Numba kernel


@loops
def _int8_matmul_kernel(a, b, c):  # pragma: no cover - compiled
    M, K = a.shape
    # One task per row i of C, row C[i] = Σ_k A[i, k] · B[k]: the inner loop runs along
    # contiguous rows of B and C (vectorised), and no two threads write the same row.
    for i in numba.prange(M):
        ci = c[i]
        ci[:] = 0
        for k in range(K):
            aik = np.int32(a[i, k])
            bk = b[k]
            for j in range(ci.shape[0]):
                ci[j] += aik * np.int32(bk[j])


def int8_matmul_numba(a, b):
    """Numba kernel (CPU, NumPy arrays): the same int32 result as :func:`int8_matmul_numpy`."""
    _check(a, b)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    c = np.empty((a.shape[0], b.shape[1]), dtype=np.int32)
    # the work that picks the parallel build: multiply-accumulates, not values written (K per value)
    _int8_matmul_kernel(c.size * a.shape[1], a, b, c)
    return c


__all__ = ["MAX_K", "int8_matmul_numba", "int8_matmul_numpy"]
