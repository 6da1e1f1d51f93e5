"""DataLoader: minibatches over in-memory arrays, shuffled by a seeded generator."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..checks import check_bool, check_int
from ..tensor import Tensor


class DataLoader:
    """Iterate ``(x, y)`` Tensor minibatches over arrays ``x`` and ``y`` of equal length.

    ``shuffle`` draws a new order each epoch from ``numpy.random.default_rng(seed)``, so
    the same seed gives the same batches. ``drop_last`` skips a final short batch.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int = 64, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, device: str = "cpu"):
        if not hasattr(x, "shape") or not hasattr(y, "shape"):   # lists failed only when iterated
            raise TypeError(f"DataLoader: x and y must be arrays (N, ...) and (N,); got {type(x).__name__} and "
                            f"{type(y).__name__} (make them with np.asarray)")
        if len(x) != len(y):
            raise ValueError(f"DataLoader: {len(x)} inputs but {len(y)} targets")
        device = backend.check_device(device)   # 'gpu' failed only when iterated
        batch_size = check_int(batch_size, "DataLoader", "batch_size", low=1)
        shuffle = check_bool(shuffle, "DataLoader", "shuffle")
        drop_last = check_bool(drop_last, "DataLoader", "drop_last")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)
        self.device = device

    def __len__(self):
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size: (i + 1) * self.batch_size]
            yield (Tensor(backend.to_device(self.x[idx], self.device)),
                   Tensor(backend.to_device(self.y[idx], self.device)))
