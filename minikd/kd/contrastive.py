"""QUD: unsupervised, contrastive knowledge distillation with a queue of teacher embeddings
(Kolf, Damer, Boutros, "QUD: Unsupervised Knowledge Distillation for Deep Face Recognition",
BMVC 2024).

No labels are used. For an image, the student's embedding f should be closer to the
teacher's embedding f⁺ of the *same* image than to the teacher's embeddings f⁻ of other
images, kept in a first-in-first-out queue of the last n batches' teacher embeddings. The
lecture's loss (InfoNCE at temperature τ), every embedding L2-normalised::

    L = −log( exp(f·f⁺/τ) / (exp(f·f⁺/τ) + Σ_{f⁻ ∈ queue} exp(f·f⁻/τ)) )

averaged over the batch. It is a softmax cross-entropy over n + 1 "classes" — the positive
first, then the n negatives — so it is computed as ``cross_entropy`` on the logits
[f·f⁺, f·f⁻₁, …, f·f⁻ₙ] / τ with label 0 (stable for any τ: log-sum-exp).

The slide's ablation: τ ∈ {0.06 … 0.6} with n = 1024, and n ∈ {512 … 16384} with τ = 0.1;
the best was τ = 0.1, n = 1024.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..checks import check_floating, check_int, check_number
from ..ops.loss import cross_entropy
from ..ops.shape import concatenate
from ..tensor import Tensor
from .logits import as_tensor, constant


def qud_loss(f_s, f_t, queue, tau=0.1):
    """The QUD loss of student embeddings ``f_s`` (N, d) against the teacher's ``f_t`` (N, d) of
    the same images (positives) and a ``queue`` (n, d) of teacher embeddings (negatives).

    Every embedding is L2-normalised inside; the teacher's side and the queue are constants.
    Returns the batch mean of −log(exp(f·f⁺/τ) / (exp(f·f⁺/τ) + Σ exp(f·f⁻/τ))).
    Raises ValueError for τ ≤ 0 (or so small that cos/τ overflows the dtype), an empty queue, or
    shapes that do not match (the student's width must equal the teacher's: put an adapter, e.g.
    ``kd.LinearAdapter``, on the student); TypeError for integer embeddings. The teacher's side
    and the queue take the student's float dtype.
    Source: QUD (Kolf, Damer, Boutros, BMVC 2024), the lecture's loss; InfoNCE (van den Oord,
    Li, Vinyals, 2018).
    """
    tau = check_number(tau, "qud_loss", "the temperature τ (tau)", low=0, low_open=True)
    if isinstance(queue, EmbeddingQueue):   # the queue itself, given for its embeddings
        queue = queue.embeddings
    f_s = as_tensor(f_s)
    check_floating("qud_loss", f_s=f_s)
    if 1 / tau > float(np.finfo(f_s.dtype).max):   # cos/τ, with |cos| ≤ 1, would be ±inf
        raise ValueError(f"qud_loss: τ = {tau:g} is too small for the embeddings' {f_s.dtype}: cos/τ overflows "
                         f"(τ must be at least {1 / np.finfo(f_s.dtype).max:.3g})")
    f_t, queue = constant(f_t, like=f_s), constant(queue, like=f_s)
    check_floating("qud_loss", f_t=f_t, queue=queue)
    if f_s.ndim != 2 or f_t.shape != f_s.shape:
        raise ValueError(f"qud_loss: student embeddings f_s {tuple(f_s.shape)} and teacher embeddings f_t "
                         f"{tuple(f_t.shape)} must both be (N, d) with the same N and d (widths differ: "
                         "map the student's with an adapter first)")
    if queue.ndim != 2 or queue.shape[0] == 0 or queue.shape[1] != f_s.shape[1]:
        raise ValueError(f"qud_loss: the queue must be (n, d) with n ≥ 1 negatives of width d = {f_s.shape[1]}; "
                         f"got {tuple(queue.shape)}")
    f = F.normalize(f_s)
    f_pos, f_neg = F.normalize(f_t), F.normalize(queue)
    pos = (f * f_pos).sum(axis=1, keepdims=True)             # (N, 1)   f·f⁺
    neg = f @ f_neg.T                                         # (N, n)   f·f⁻ for every negative
    logits = concatenate([pos, neg], axis=1) / tau            # the positive is "class" 0
    labels = f.xp.zeros(f.shape[0], dtype=f.xp.int64)
    return cross_entropy(logits, labels)


class EmbeddingQueue:
    """A first-in-first-out queue of the last ``size`` teacher embeddings (the negatives of QUD).

    ``push(f_t)`` adds a batch (N, d), dropping the oldest when full; ``embeddings`` is the
    (n, d) array of what it holds (n ≤ size, the newest last). Kept on the embeddings' device,
    as constants (never in the graph). ``qud_loss`` needs at least one negative: push a batch
    (e.g. teacher embeddings of random training images) before the first step.

    Raises TypeError or ValueError when ``size`` or ``dim`` is not an int ≥ 1; ``push`` raises
    ValueError for a batch that is not (N, dim). Source: QUD's queue of negatives (Kolf, Damer,
    Boutros, BMVC 2024), after MoCo's (He et al., CVPR 2020).

    >>> q = EmbeddingQueue(3, 2)
    >>> q.push(np.ones((2, 2))); q.push(np.zeros((2, 2))); q.embeddings.tolist()
    [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, size: int, dim: int):
        self.size = check_int(size, "EmbeddingQueue", "size", low=1)
        self.dim = check_int(dim, "EmbeddingQueue", "dim", low=1)
        self._data = None   # allocated at the first push, on the embeddings' device and dtype
        self.count = 0      # how many slots hold an embedding (≤ size)
        self._next = 0      # where the next embedding goes (a ring buffer)

    def push(self, f_t):
        """Add the teacher embeddings ``f_t`` (N, dim) of one batch."""
        f = f_t.data if isinstance(f_t, Tensor) else f_t
        xp = backend.get_array_module(f)
        f = xp.asarray(f)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"EmbeddingQueue.push: expected embeddings (N, {self.dim}); got {tuple(f.shape)}")
        if self._data is None:
            self._data = xp.zeros((self.size, self.dim), dtype=f.dtype if f.dtype.kind == "f" else xp.float32)
        f = f[-self.size:]   # a batch larger than the queue keeps its newest rows
        slots = (self._next + xp.arange(len(f))) % self.size   # the ring buffer's next len(f) slots
        self._data[slots] = f
        self._next = (self._next + len(f)) % self.size
        self.count = min(self.count + len(f), self.size)

    def __len__(self):
        return self.count

    @property
    def embeddings(self):
        """The held embeddings (n, dim), oldest first: a copy, so a later ``push`` leaves it as it was."""
        if self._data is None:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.count < self.size:
            return self._data[:self.count].copy()
        xp = backend.get_array_module(self._data)
        return xp.concatenate([self._data[self._next:], self._data[:self._next]])


__all__ = ["EmbeddingQueue", "qud_loss"]
