"""Logit-based (response-based) knowledge distillation, in the lecture's symbols.

The teacher's logits z_t and the student's logits z_s are softened with a temperature T:

    p_t(i) = exp(z_t^i/T) / Σ_j exp(z_t^j/T)          p_s(i) = exp(z_s^i/T) / Σ_j exp(z_s^j/T)

and the student is trained on the knowledge-distillation loss (Hinton et al., 2015)

    L_KD = (1 − λ) · L_CE(y, p_s) + λ · T² · L_KL(p_t, p_s)

- L_CE(y, p_s) = −log p_s(y): the hard loss, the cross-entropy with the ground truth y,
  with p_s = softmax(z_s) at T = 1;
- L_KL(p_t, p_s) = D_KL(p_t ‖ p_s) = Σ_i p_t(i) log(p_t(i) / p_s(i)): the soft loss, both
  distributions at temperature T;
- λ ∈ [0, 1] weighs soft targets against hard labels;
- T² compensates for the gradient of the soft loss shrinking like 1/T² as T grows:

      ∂L_KL/∂z_s = (p_s − p_t) / T   and, for large T,   p_s − p_t ≈ ((z_s − z̄_s) − (z_t − z̄_t)) / (C·T)

  so ∂L_KL/∂z_s ≈ (…)/(C·T²), and T² · L_KL keeps the soft gradients the size of the hard ones
  whatever the temperature.

The recap code writes the same loss with α in place of λ and without T²:
``α · soft_loss + (1 − α) · hard_loss`` — that is ``kd_loss(..., lam=α, t_squared=False)``.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_bool, check_temperature, is_number
from ..function import Function
from ..ops.loss import _as_float, _log_softmax_rows, check_not_empty, cross_entropy
from ..ops.loss import kl_divergence as _kl_divergence
from ..ops.loss import softmax as _softmax
from ..tensor import Tensor, as_tensor

# --------------------------------------------------------------------------- argument checks (shared with features.py)


def constant(x, like=None):
    """``x`` as a Tensor cut from the graph: the teacher's outputs are targets, never trained here.
    An array (not a Tensor) is put on ``like``'s device (:func:`~minikd.tensor.as_tensor`):
    precomputed teacher outputs may be given as NumPy arrays whatever the student's device. Floats
    take ``like``'s float dtype: a float64 teacher does not turn a float32 student's loss and
    gradients into float64."""
    t = x.detach() if isinstance(x, Tensor) else as_tensor(x, like=like)
    if like is not None and like.dtype.kind == "f" and t.dtype.kind == "f" and t.dtype != like.dtype:
        t = Tensor(t.data.astype(like.dtype))
    return t


def check_weight(lam, op):
    """λ must be a number in [0, 1]: the share of the loss given to the distillation term."""
    if not (is_number(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"{op}: the weight λ (lam) balances the two losses and must be a number in [0, 1]; "
                         f"got lam={lam!r}")
    return float(lam)


def hard_loss(z, target, op):
    """L_CE(y, p) = cross_entropy(z, y), the label term of the loss ``op``: labels that do not fit
    the logits (another N, a class outside 0..C − 1: ValueError) or are not labels at all (not
    integers: TypeError) are refused by an error of the same type that names ``op``, the function
    the user called, before cross_entropy's own reason."""
    try:
        return cross_entropy(z, target)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{op}: {error}") from None


def _check_logits(z_s, z_t, op):
    if z_s.ndim not in (1, 2):
        raise ValueError(f"{op}: expected logits of shape (N, C) or (C,); got student logits z_s of shape "
                         f"{tuple(z_s.shape)}")
    if tuple(z_s.shape) != tuple(z_t.shape):
        raise ValueError(f"{op}: student logits z_s and teacher logits z_t must have the same shape; "
                         f"got z_s {tuple(z_s.shape)} and z_t {tuple(z_t.shape)}")


# --------------------------------------------------------------------------- the lecture's building blocks


def softmax_with_temperature(logits, T=1.0):
    """p(i) = exp(z^i/T) / Σ_j exp(z^j/T) over the last axis: the softened output.

    T > 1 spreads probability over the classes (T → ∞: uniform), T = 1 is the plain softmax.
    ``logits``: a Tensor, a list or an array, (C,) or (N, C) (any shape with the classes last);
    the result is a Tensor of the same shape (differentiable in the logits).

    Raises TypeError or ValueError when T is not a positive finite number, ValueError for a
    scalar. Source: the lecture's "softmax with temperature" (Hinton, Vinyals & Dean 2015, Eq. 1).

    >>> [round(v, 3) for v in softmax_with_temperature([2.0, 1.0, 0.1], T=1).tolist()]
    [0.659, 0.242, 0.099]
    >>> [round(v, 3) for v in softmax_with_temperature([2.0, 1.0, 0.1], T=2).tolist()]
    [0.502, 0.304, 0.194]
    """
    T = check_temperature(T, "softmax_with_temperature")
    z = as_tensor(logits)
    if z.ndim == 0:
        raise ValueError("softmax_with_temperature: expected logits with a class axis, e.g. (C,) or (N, C); "
                         "got a scalar")
    return _softmax(z, T=T, axis=-1)


def kl_divergence(P, Q):
    """D_KL(P ‖ Q) = Σ_i P(i) log(P(i)/Q(i)) over the last axis, on probabilities.

    P is the target (the teacher's p_t), Q the approximation (the student's p_s). For a batch
    (N, C) it is the mean over the N rows ("batchmean"); for one distribution (C,) a scalar.
    Terms with P(i) = 0 count 0 (0 · log 0 = 0), as in the lecture's ``if p != 0``.

    ``P``, ``Q``: (C,) or (N, C), the same shape; a scalar Tensor. Raises ValueError for another
    shape, or when P or Q is not a distribution (a finite value outside [0, 1], or a row not
    summing to 1 within 1e-3 — logits passed by mistake); NaN and ±inf pass through. Source: the
    lecture's L_KL (Kullback & Leibler 1951; its use here: Hinton, Vinyals & Dean 2015).

    >>> round(kl_divergence([0.7, 0.2, 0.1], [0.6, 0.3, 0.1]).item(), 5)
    0.02681
    """
    P, Q = as_tensor(P), as_tensor(Q)
    if P.ndim not in (1, 2):
        raise ValueError(f"kl_divergence: expected distributions of shape (C,) or (N, C); got P of shape "
                         f"{tuple(P.shape)}")
    _check_probabilities(P, "P")
    _check_probabilities(Q, "Q")
    return _kl_divergence(P, Q, reduction="batchmean")


def _check_probabilities(x, name, tol=1e-3):
    """``x`` (a Tensor) holds distributions over its last axis: each value in [0, 1], each row
    summing to 1 (within ``tol``: float32 rounding); ValueError otherwise. Logits passed by mistake
    would give NaN, or a plausible but wrong number. Only finite values are judged: a NaN or ±inf
    goes on to the result, as through every op (anomaly mode names where it came from). Checked
    on the CPU only: reading a device array would make every call wait for the device."""
    a = x.data
    if type(a) is not np.ndarray:
        return
    finite = np.isfinite(a)
    known = a[finite]
    rows = finite.all(axis=-1)
    sums = a.sum(axis=-1)[rows] if rows.any() else np.ones(1)
    if known.size == 0 or (known.min() >= 0 and known.max() <= 1 and np.abs(sums - 1).max() <= tol):
        return
    raise ValueError(f"kl_divergence: {name} must be probabilities (each in [0, 1], each row summing to 1); "
                     f"got values in [{known.min():.4g}, {known.max():.4g}], rows summing to {sums.min():.4g}…"
                     f"{sums.max():.4g}. For logits z, pass softmax_with_temperature(z, T)")


class DistillationKL(Function):
    """The soft loss L_KL(p_t, p_s) = D_KL(p_t ‖ p_s) straight from the logits, fused:

        log p_t = log_softmax(z_t / T),   log p_s = log_softmax(z_s / T)     (log-sum-exp)
        ℓ_n = Σ_i p_t(i) · (log p_t(i) − log p_s(i))                          (0 where p_t(i) = 0)
        L = (1/N) Σ_n ℓ_n          (one sample (C,): L = ℓ)

    The same number as Σ_i P(i) log(P(i)/Q(i)) on probabilities, but no probability is ever
    divided by or logged, so logits of ±1000 (p_s or p_t exactly 0 in places) stay finite.

    Backward, per sample, from the upstream gradient g_y (1 for a loss):

        dL/dz_s = (g_y / N) · (p_s − p_t) / T    (the teacher's logits are constants: no gradient)
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, z_s, z_t, T):
        xp = self.xp
        z_s = _as_float(z_s, xp)
        self.T, self.dtype = T, z_s.dtype
        t = xp.asarray(T, dtype=z_s.dtype)
        self.log_ps = _log_softmax_rows(z_s / t, -1, xp)
        log_pt = _log_softmax_rows(z_t.astype(z_s.dtype, copy=False) / t, -1, xp)
        self.p_t = xp.exp(log_pt)
        # 0 · log 0 = 0: where p_t(i) = 0 the term is left out, even if log p_s(i) = −inf too
        # (−inf − (−inf) would be NaN); a NaN in p_t still counts (NaN ≠ 0)
        kept = self.p_t != 0
        zero = z_s.dtype.type(0)
        rows = (self.p_t * (xp.where(kept, log_pt, zero) - xp.where(kept, self.log_ps, zero))).sum(axis=-1)
        self.n = rows.shape[0] if rows.ndim else 1
        check_not_empty(self.n, "batchmean", "soft_loss (D_KL(p_t ‖ p_s))")
        return xp.asarray(rows.sum() / self.n, dtype=z_s.dtype)

    def backward(self, gy):
        g = gy.astype(self.dtype, copy=False) / (self.n * self.T)
        return ((self.xp.exp(self.log_ps) - self.p_t) * g).astype(self.dtype, copy=False), None


def soft_loss(student_logits, teacher_logits, T=3.0):
    """L_KL(p_t, p_s) = D_KL(p_t ‖ p_s) with p_t = softmax(z_t/T), p_s = softmax(z_s/T); batch mean.

    Computed from log-softmax (see :class:`DistillationKL`), so it is finite for any finite
    logits; equal to ``kl_divergence(softmax_with_temperature(z_t, T), softmax_with_temperature(z_s, T))``.
    Its gradient is (p_s − p_t)/T per sample (divided by N); the teacher logits are constants.

    ``student_logits`` z_s and ``teacher_logits`` z_t: (N, C) or (C,), the same shape; a scalar
    Tensor. Raises ValueError for other shapes, TypeError or ValueError for T ≤ 0 or not a
    number. Source: the lecture's soft loss (Hinton, Vinyals & Dean 2015).

    >>> round(soft_loss([1.5, 2.5, 0.3], [1.0, 3.0, 0.5], T=2).item(), 4)
    0.0218
    """
    T = check_temperature(T, "soft_loss")
    z_s = as_tensor(student_logits)
    z_t = constant(teacher_logits, like=z_s)
    _check_logits(z_s, z_t, "soft_loss")
    return DistillationKL.apply(z_s, z_t, T=T)


# --------------------------------------------------------------------------- the distillation loss


def kd_loss(student_logits, teacher_logits, target, T=3.0, lam=0.5, t_squared=True, return_parts=False):
    """The knowledge-distillation loss of the lecture:

        L_KD = (1 − λ) · L_CE(y, p_s) + λ · T² · L_KL(p_t, p_s)

    - ``student_logits`` z_s (N, C) (or one sample (C,)): the only input that receives a gradient;
    - ``teacher_logits`` z_t, same shape: constants — detached, so no gradient reaches the
      teacher even if they require one;
    - ``target`` y: class labels (N,) (one int for a single sample), or soft targets (N, C);
    - L_CE(y, p_s): cross-entropy with p_s = softmax(z_s) at T = 1, batch mean;
    - L_KL(p_t, p_s) = D_KL(softmax(z_t/T) ‖ softmax(z_s/T)), batch mean, from log-softmax
      (see :class:`DistillationKL`; finite and with a finite gradient even for logits of ±1000);
    - ``T`` > 0 the temperature, ``lam`` = λ ∈ [0, 1] the weight of the soft loss;
    - ``t_squared=False``: the recap code's variant λ · L_KL + (1 − λ) · L_CE, without T².

    Returns the total loss (a scalar Tensor); with ``return_parts=True`` the pair
    ``(total, {"hard": L_CE, "soft": L_KL, "total": total})`` — "soft" without λ or T².

    Raises ValueError when z_s and z_t differ in shape or are not (N, C)/(C,), when λ is outside
    [0, 1], or for labels that do not fit the logits; TypeError or ValueError for T ≤ 0 or not a
    number. Source: the lecture's L_KD (Hinton, Vinyals & Dean, "Distilling the Knowledge in a
    Neural Network", 2015, §2: the T² factor).

    The recap exercise (label 1, T = 2, α = λ = 0.7):

    >>> z_s, z_t = [1.5, 2.5, 0.3], [1.0, 3.0, 0.5]
    >>> total, parts = kd_loss(z_s, z_t, 1, T=2, lam=0.7, t_squared=False, return_parts=True)
    >>> round(parts["soft"].item(), 4), round(parts["hard"].item(), 4), round(total.item(), 4)
    (0.0218, 0.3912, 0.1326)
    >>> round(kd_loss(z_s, z_t, 1, T=2, lam=0.7).item(), 4)     # with T² = 4
    0.1784
    """
    T = check_temperature(T, "kd_loss")
    lam = check_weight(lam, "kd_loss")
    t_squared = check_bool(t_squared, "kd_loss", "t_squared")
    return_parts = check_bool(return_parts, "kd_loss", "return_parts")
    z_s = as_tensor(student_logits)
    z_t = constant(teacher_logits, like=z_s)
    _check_logits(z_s, z_t, "kd_loss")
    hard = hard_loss(z_s, target, "kd_loss")           # L_CE(y, p_s), T = 1
    soft = DistillationKL.apply(z_s, z_t, T=T)         # L_KL(p_t, p_s) at temperature T
    soft_weight = lam * T * T if t_squared else lam    # λ·T²  (or λ)
    total = hard * (1.0 - lam) + soft * soft_weight
    if return_parts:
        return total, {"hard": hard, "soft": soft, "total": total}
    return total
