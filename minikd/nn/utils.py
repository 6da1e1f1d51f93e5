"""Helpers that act on a layer's parameters outside the loss: ``from minikd.nn.utils import max_norm_``."""

from __future__ import annotations

from ..checks import check_number
from ..tensor import Tensor


def max_norm_(weight: Tensor, c: float) -> Tensor:
    """The max-norm constraint, in place: each unit's incoming weight vector scaled back onto the
    ball of radius ``c``,

        w_j ← w_j · min(1, c / ‖w_j‖₂)

    where w_j is ``weight[j]`` flattened: row j of a Linear weight (out, in), or filter j of a
    Conv2d weight (d, d_prev/groups, k, k) — dimension 0 must index the units whose inputs are
    constrained (not so for ConvTranspose2d, whose weight is (d_prev, d, k, k)). A row already
    inside the ball is left bit for bit as it was (its factor is exactly 1); one outside keeps
    its direction and gets the length c. Called after every optimizer step, it is the weight
    constraint of Hinton et al. 2012 ("Improving neural networks by preventing co-adaptation of
    feature detectors") and Srivastava et al. 2014 (JMLR, "Dropout", §5.1: on the hidden units,
    c typically 3–4), which the big MNIST network distilled by Hinton, Vinyals & Dean (2015, §3)
    was trained with; Keras calls it ``MaxNorm``. It limits each unit's pre-activation,
    |w_j·x| ≤ c·‖x‖₂ (plus its bias, which is not constrained).

    ``weight``: a floating-point Parameter (or Tensor) with at least 2 dimensions, on any
    device; changed in place, outside autograd, and counted as an in-place change (its version
    advances, as after an optimizer step, so a graph recorded before it refuses to backpropagate
    through the old values). Returned. ``c`` > 0, finite. Nothing hides a weight that has
    diverged: a row holding nan keeps it (its norm is nan, not > c), and a row holding inf, whose
    norm is inf, gets nan there (inf·0) and 0 elsewhere.

    Raises ValueError (naming ``max_norm_``) for c ≤ 0, nan or inf, for a weight of fewer than
    2 dimensions (a bias has no rows) and for an integer weight; TypeError for a c that is not
    a number or a weight that is not a Tensor.
    """
    c = check_number(c, "max_norm_", "the radius c", low=0, low_open=True)
    if not isinstance(weight, Tensor):
        raise TypeError(f"max_norm_: weight must be a Tensor (a layer's Parameter); got {type(weight).__name__}")
    w = weight.data
    if w.ndim < 2:
        raise ValueError(f"max_norm_: weight must have at least 2 dimensions, one row per unit; got shape {w.shape}")
    if w.dtype.kind != "f":
        raise ValueError(f"max_norm_: weight must be floating point; got dtype {w.dtype}")
    xp = weight.xp
    norms = xp.sqrt((w * w).reshape(w.shape[0], -1).sum(axis=1))  # ‖w_j‖₂, one per unit
    # the factor min(1, c/‖w_j‖), exactly 1 inside the ball; no branch on the data (on a GPU,
    # asking whether any row is outside would make the host wait at every step)
    scale = xp.where(norms > c, c / xp.maximum(norms, c), 1).astype(w.dtype)
    w *= scale.reshape((-1,) + (1,) * (w.ndim - 1))
    weight._mark_modified()
    return weight
