"""Embedding: a learned table of vectors, one row per class (or token), looked up by index.

A conditional generator G(z, y) turns the class label y ∈ {0, …, n − 1} into a vector it can
mix with the noise z: row y of a weight table W (n, dim). The lookup equals a product with
the one-hot vector of y, onehot(y)ᵀ · W, without building the one-hot matrix::

    y[..., :] = W[indices[...], :]                      (forward: a gather)
    dL/dW[r]  = Σ over the positions where indices = r of dL/dy[position]   (backward: scatter-add)

A class that appears several times in a batch receives the sum of its gradients; a row that no
index reads gets 0. The indices are data, not a parameter: they get no gradient.
"""

from __future__ import annotations

from .. import backend
from ..checks import ArgumentTypeError
from ..function import Function
from ..tensor import Tensor


class Embedding(Function):
    """y = W[indices]: indices (any shape, integers in 0..n−1), W (n, dim) → y (*indices.shape, dim).

    dL/dW = scatter-add of dL/dy into the rows named by the indices (repeats accumulate).
    """

    saves_inputs = False  # backward needs the indices and W's shape, not W's values

    def forward(self, weight, *, indices):
        self.indices, self.n = indices, weight.shape[0]
        return weight[indices]

    def backward(self, gy):
        xp = self.xp
        dim = gy.shape[-1]
        gw = xp.zeros((self.n, dim), dtype=gy.dtype)
        # a plain gw[indices] += gy would keep only one of several equal indices: add.at sums them all
        backend.scatter_add(gw, self.indices.reshape(-1), gy.reshape(-1, dim))
        return gw


def embedding(indices, weight):
    """Rows of ``weight`` (n, dim) picked by ``indices``: output (*indices.shape, dim).

    ``indices``: an integer array, integer Tensor, list or int, of any shape, values in 0..n−1
    (PyTorch's ``F.embedding(input, weight)``; no ``padding_idx``, ``max_norm`` or sparse gradient).
    Raises ValueError (an ArgumentTypeError, also a TypeError) for non-integer indices, ValueError
    for an index outside 0..n−1 (naming it and n) or a weight that is not 2-D.

    >>> import minikd as mk, numpy as np
    >>> W = mk.tensor(np.arange(6.0).reshape(3, 2))
    >>> embedding([2, 0, 2], W).numpy()
    array([[4., 5.],
           [0., 1.],
           [4., 5.]])
    """
    op = "embedding"
    w = weight if isinstance(weight, Tensor) else Tensor(weight)
    if w.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim); got shape {tuple(w.shape)}")
    xp = backend.get_array_module(w.data)
    raw = indices.data if isinstance(indices, Tensor) else indices
    idx = xp.asarray(backend.to_device(raw, w.device) if hasattr(raw, "shape") else raw)
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{op}: indices must be integers (class labels 0..n−1); got dtype {idx.dtype}")
    n = w.shape[0]
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{op}: index {bad} is out of range for a table of n={n} rows "
                             f"(expected 0 ≤ index ≤ {n - 1})")
    return Embedding.apply(w, indices=idx)
