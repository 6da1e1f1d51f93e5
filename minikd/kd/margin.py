"""AdaDistill: knowledge distillation inside a margin-penalty softmax (Boutros, Štruc, Damer,
"AdaDistill: Adaptive Knowledge Distillation for Deep Face Recognition", ECCV 2024).

**The margin-penalty softmax** (face recognition's classification head). Embeddings f and the
class centres w_j (the rows of the head's weight W) are L2-normalised, so the logits are
cosines, cos θ_j = ⟨f/‖f‖, w_j/‖w_j‖⟩, scaled by s. The target class y gets a margin that
makes it harder to win, which pulls same-class embeddings together (the lecture's general form)::

    logit_y = s · (cos(θ_y + m1) − m2)        logit_j = s · cos θ_j   (j ≠ y)

ArcFace is m1 = m (an angular margin), CosFace is m2 = m (a cosine margin); the loss is the
softmax cross-entropy of these logits.

**AdaDistill** distils the teacher into the student's *class centres*: at each step, for each
sample i with label y_i and teacher embedding f_i^t (the lecture's Eq.)::

    w_{y_i} ← α · w_{y_i} + (1 − α) · f_i^t
    α  = ⌊cos(f_i^s, f_i^t)⌉₀¹                                    (adaptive: clip to [0, 1])
    α′ = ⌊cos(f_i^s, f_i^t) · cos(w_{y_i}, f_i^t)⌉₀¹               (hard-sample mining)

Early in training the student's embedding is far from the teacher's (α ≈ 0): the centre is
mostly the teacher's embedding, an easy target. As the student improves α grows and the
centre keeps more of its own history. The slide plots α over the training iterations.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..checks import check_floating, check_number
from ..ops.elementwise import where
from ..tensor import Tensor, no_grad
from .logits import as_tensor, constant


def margin_logits(f, W, y, s=64.0, m1=0.0, m2=0.0):
    """s·(cos(θ_y + m1) − m2) for the target class, s·cos θ_j for the others: (N, C) logits.

    ``f`` (N, d) embeddings, ``W`` (C, d) class centres (both L2-normalised inside), ``y`` (N,)
    integer labels; ``s`` > 0 the scale, ``m1`` ∈ [0, π) the angular (ArcFace) margin, ``m2`` ≥ 0
    the cosine (CosFace) margin. cos(θ + m1) = cos θ cos m1 − sin θ sin m1 with sin θ = √(1 − cos²θ)
    (θ ∈ [0, π]). Differentiable in ``f`` and ``W``. Raises ValueError for the values above out
    of range, an ``s`` too large for the embeddings' dtype, or shapes that do not match (TypeError
    for a value that is not a number, or integer embeddings or centres).
    Source: the lecture's general margin form; ArcFace (Deng et al., CVPR 2019: m1), CosFace
    (Wang et al., CVPR 2018: m2).
    """
    s = check_number(s, "margin_logits", "s", low=0, low_open=True)
    m1 = check_number(m1, "margin_logits", "m1 (the angular margin, ArcFace)", low=0, high=math.pi,
                      high_open=True)
    m2 = check_number(m2, "margin_logits", "m2 (the cosine margin, CosFace)", low=0)
    f, W = as_tensor(f), as_tensor(W)
    check_floating("margin_logits", f=f, W=W)
    if s > float(np.finfo(f.dtype).max):   # s·cos θ would be ±inf (compared in float64: no overflow)
        raise ValueError(f"margin_logits: s = {s:g} does not fit the embeddings' {f.dtype} (at most "
                         f"{np.finfo(f.dtype).max:.3g})")
    labels = y.data if isinstance(y, Tensor) else f.xp.asarray(y)
    if f.ndim != 2 or W.ndim != 2 or f.shape[1] != W.shape[1]:
        raise ValueError(f"margin_logits: embeddings f must be (N, d) and centres W (C, d) with the same d; got "
                         f"f {tuple(f.shape)} and W {tuple(W.shape)}")
    if labels.shape != (f.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"margin_logits: labels y must be {f.shape[0]} integers; got shape {labels.shape}, "
                         f"dtype {labels.dtype}")
    if type(labels) is np.ndarray:   # on the host only: reading a device array would make every step wait
        _check_centre_labels(labels, W.shape[0], "margin_logits")
    cos = F.normalize(f) @ F.normalize(W).T                              # (N, C): cos θ_j
    cos_y = cos[f.xp.arange(f.shape[0]), labels]                          # (N,):   cos θ_y
    sin_y = F.clipped_sqrt(1 - cos_y * cos_y)                             # sin θ_y ≥ 0 (θ ∈ [0, π])
    target = cos_y * math.cos(m1) - sin_y * math.sin(m1) - m2             # cos(θ_y + m1) − m2
    is_y = f.xp.arange(W.shape[0])[None, :] == labels[:, None]            # (N, C) one-hot mask
    return where(is_y, target.reshape(-1, 1), cos) * s


def _check_centre_labels(labels, C, op) -> None:
    """Each label names one of the C class centres: a label of −1 would index the last one."""
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise ValueError(f"{op}: labels y must be in 0..{C - 1} (one centre per class); got "
                         f"{int(labels.min())}..{int(labels.max())}")


def adadistill_alpha(f_s, f_t, w_y=None):
    """AdaDistill's mixing weight per sample, (N,), a constant (no gradient):

        α = clip(cos(f_s, f_t), 0, 1),   or, with the centres w_y (N, d) of the samples' classes,
        α′ = clip(cos(f_s, f_t) · cos(w_y, f_t), 0, 1)   (hard-sample mining).

    ``f_s``, ``f_t``: (N, d), the student's embedding already at the teacher's width d. Raises
    ValueError when they are not both (N, d) of the same shape, or ``w_y`` is not (N, d); TypeError
    for integer embeddings. Source:
    AdaDistill (Boutros, Štruc, Damer, ECCV 2024), the lecture's α and α′.
    """
    f_s, f_t = constant(f_s), constant(f_t)
    check_floating("adadistill_alpha", f_s=f_s, f_t=f_t)
    if f_s.ndim != 2 or f_s.shape != f_t.shape:
        raise ValueError(f"adadistill_alpha: f_s {tuple(f_s.shape)} and f_t {tuple(f_t.shape)} must both be (N, d) "
                         "(map the student's embedding to the teacher's width first)")
    with no_grad():
        t_hat = F.normalize(f_t)
        alpha = (F.normalize(f_s) * t_hat).sum(axis=1)                     # cos(f_s, f_t)
        if w_y is not None:
            w_y = constant(w_y)
            check_floating("adadistill_alpha", w_y=w_y)
            if w_y.shape != f_t.shape:
                raise ValueError(f"adadistill_alpha: w_y must be the centres of the samples' classes, "
                                 f"{tuple(f_t.shape)}; got {tuple(w_y.shape)}")
            alpha = alpha * (F.normalize(w_y) * t_hat).sum(axis=1)         # × cos(w_y, f_t)
    return alpha.clip(0.0, 1.0)


def distill_centres(W, y, f_t, alpha):
    """The AdaDistill update of the class centres, in place: for each sample i in batch order,
    w_{y_i} ← α_i · w_{y_i} + (1 − α_i) · f_i^t. ``W`` (C, d) the head's weight (a Parameter),
    ``y`` (N,) labels, ``f_t`` (N, d) teacher embeddings, ``alpha`` (N,) from :func:`adadistill_alpha`.
    Not part of the graph (like an optimizer step). The embeddings are used as given (the
    AdaDistill code L2-normalises f_t first: pass ``F.normalize(f_t)`` for that); samples of one
    class update its centre one after the other, in batch order.

    Raises TypeError when ``W`` is not a Tensor (the centres are changed in place, so they must
    be the head's own weight), ValueError for shapes other than these (W too: (C, d)), a label outside
    0..C − 1, or an α outside [0, 1] or nan. Source: AdaDistill (Boutros, Štruc, Damer, ECCV
    2024), the lecture's centre update."""
    if not isinstance(W, Tensor):
        raise TypeError(f"distill_centres: W must be the margin head's weight, a Tensor (C, d) (its Parameter), "
                        f"changed in place; got {type(W).__name__}")
    if W.ndim != 2:
        raise ValueError(f"distill_centres: W must be the centres (C, d), one row per class; got shape "
                         f"{tuple(W.shape)}")
    xp = W.xp
    labels, ft, a = (x.data if isinstance(x, Tensor) else xp.asarray(x) for x in (y, f_t, alpha))
    if labels.dtype.kind not in "iu":
        raise ValueError(f"distill_centres: labels y must be integers; got dtype {labels.dtype}")
    if labels.ndim != 1 or ft.shape != (len(labels), W.shape[1]) or a.shape != (len(labels),):
        raise ValueError(f"distill_centres: expected y (N,), f_t (N, {W.shape[1]}) and alpha (N,); got "
                         f"{labels.shape}, {ft.shape} and {a.shape}")
    bad = ~((a >= 0) & (a <= 1))     # NaN fails too: it would poison the centres
    if len(labels) and bool(bad.any()):
        i = int(bad.argmax())
        raise ValueError(f"distill_centres: alpha must be in [0, 1] (adadistill_alpha's clip); got alpha[{i}] = "
                         f"{float(a[i]):g} ({int(bad.sum())} of {len(labels)} not in [0, 1])")
    _check_centre_labels(labels, W.shape[0], "distill_centres")
    with no_grad():
        w = W.data
        for i in range(len(labels)):
            c = int(labels[i])
            w[c] = a[i] * w[c] + (1 - a[i]) * ft[i]
        W._mark_modified()


__all__ = ["adadistill_alpha", "distill_centres", "margin_logits"]
