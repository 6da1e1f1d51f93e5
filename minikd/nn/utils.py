"""Helpers that act on a layer's parameters outside the loss: ``from minikd.nn.utils import max_norm_``."""

from __future__ import annotations

from ..backend import get_array_module
from ..checks import check_number
from ..tensor import Tensor


def max_norm_(weight: Tensor, c: float) -> Tensor:
    """The max-norm constraint, in place: each unit's incoming weight vector scaled back onto the
    ball of radius ``c``,

        w_j ← w_j · min(1, c / ‖w_j‖₂)

    where w_j is row j of a Linear weight (out, in), or filter j of a Conv2d weight
    (d, d_prev, k, k), flattened. A row already inside the ball is left exactly as it was; one
    outside keeps its direction and gets the length c. Called after every optimizer step, it is
    the "weight constraint" of Hinton et al. 2012 ("Improving neural networks by preventing
    co-adaptation of feature detectors") and Srivastava et al. 2014 (JMLR, "Dropout", §5.1, c
    typically 3–4 there), used with dropout by the big MNIST network that Hinton, Vinyals & Dean
    (2015, §3) distil; as in Keras' ``MaxNorm``. It bounds each unit's pre-activation,
    |w_j·x| ≤ c·‖x‖₂, and so the size of the logits.

    ``weight``: a Parameter (or Tensor) with at least 2 dimensions, on any device; changed in
    place, outside autograd (like an optimizer step), and returned. ``c`` > 0, finite.

    Raises ValueError (naming ``max_norm_``) for c ≤ 0, nan or inf, and for a weight of fewer
    than 2 dimensions (a bias has no rows); TypeError for a weight that is not a Tensor.
    """
    c = check_number(c, "max_norm_", "the radius c", low=0, low_open=True)
    if not isinstance(weight, Tensor):
        raise TypeError(f"max_norm_: weight must be a Tensor (a layer's Parameter); got {type(weight).__name__}")
    w = weight.data
    if w.ndim < 2:
        raise ValueError(f"max_norm_: weight must have at least 2 dimensions, one row per unit; got shape {w.shape}")
    xp = get_array_module(w)
    norms = xp.sqrt((w * w).reshape(w.shape[0], -1).sum(axis=1))  # ‖w_j‖₂, one per unit
    outside = norms > c
    if bool(outside.any()):  # the rows inside stay bit for bit as they were
        scale = xp.where(outside, c / xp.where(outside, norms, 1), 1).astype(w.dtype)
        w *= scale.reshape((-1,) + (1,) * (w.ndim - 1))
    return weight
