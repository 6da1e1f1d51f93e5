"""Softmax with temperature, and the losses of knowledge distillation.

The lecture's symbols: logits ``z``, temperature ``T``, probabilities ``p``,
distributions ``P`` (the target, e.g. the teacher's) and ``Q`` (the approximation,
e.g. the student's).

    softmax        p_i = exp(z_i/T) / Σ_j exp(z_j/T)
    log_softmax    log p_i = z_i/T − log Σ_j exp(z_j/T)
    cross_entropy  H(y, p) = −Σ_i y_i log p_i          (y one-hot, or soft targets)
    kl_divergence  D_KL(P‖Q) = Σ_i P(i) log(P(i)/Q(i))  (= H(P, Q) − H(P))
    mse_loss       (x − y)²;   l1_loss  |x − y|

An empty batch (N = 0), one rule for every loss: "sum" gives 0 and "none" an empty
array, while "mean" (and "batchmean") raise a ValueError naming the loss — the mean of
no values is undefined, and a NaN loss would quietly spoil the parameters.

Each op is fused: one forward and one analytic backward, not a chain of tiny ops,
because these run on every training step. All of them are numerically stable:
the softmax subtracts the row's maximum before ``exp`` (log-sum-exp), so logits
of ±1000 give exact probabilities instead of ``inf / inf = nan``.
"""

from __future__ import annotations

import numpy as np

from .. import anomaly
from ..checks import check_axis, check_number, check_temperature
from ..function import Function
from ..tensor import Tensor, as_tensor, raw

REDUCTIONS = ("mean", "sum", "none")
KL_REDUCTIONS = ("batchmean", "sum", "none")


# --------------------------------------------------------------------------- helpers

def _check_reduction(reduction, allowed, op, hint=""):
    if reduction not in allowed:
        raise ValueError(f"{op}: unknown reduction {reduction!r}; expected one of {allowed}{hint}")


def _as_float(x, xp):
    """Integer or boolean data become float32 (the training dtype); floats keep their dtype."""
    return x if x.dtype.kind == "f" else x.astype(xp.float32)


def check_not_empty(n, reduction, op):
    """The one empty-batch rule (module docstring): a mean over n = 0 values is an error."""
    if n == 0 and reduction in ("mean", "batchmean"):
        raise ValueError(f"{op}: the batch is empty (N = 0), and the {reduction!r} of no values is undefined; "
                         "skip empty batches, or use reduction='sum' (0 for an empty batch)")


def _reduce(loss, reduction, xp, op):
    """Apply ``reduction`` to the per-element losses; returns an array (0-d for mean/sum)."""
    if reduction == "none":
        return loss
    check_not_empty(loss.size, reduction, op)
    total = loss.sum()
    if reduction == "mean":
        total = total / loss.size
    return xp.asarray(total, dtype=loss.dtype)


def _reduce_backward(gy, reduction, shape, dtype):
    """The gradient of the reduction: an array broadcastable to the per-element ``shape``."""
    if reduction == "none":
        return gy.astype(dtype, copy=False)
    g = gy.reshape(()).astype(dtype, copy=False)
    if reduction == "mean":
        n = 1
        for s in shape:
            n *= s
        g = g / n  # n > 0: the forward pass refused an empty mean
    return g


def _log_softmax_rows(z, axis, xp):
    """log-softmax of already-scaled logits along ``axis``: z − max − log Σ exp(z − max)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


# --------------------------------------------------------------------------- softmax

class Softmax(Function):
    """Softmax with temperature along ``axis``:

        p_i = exp(z_i/T) / Σ_j exp(z_j/T)

    computed as exp(z_i/T − m) / Σ_j exp(z_j/T − m) with m = max_j z_j/T, which is the
    same number and never overflows. T > 1 softens the distribution (T → ∞: uniform),
    T < 1 sharpens it (T → 0: one-hot at the arg-max).

    Backward (the Jacobian ∂p_i/∂z_k = p_i (δ_ik − p_k) / T, applied without forming it):

        dL/dz = (1/T) · p ⊙ (dL/dp − Σ_k dL/dp_k · p_k)
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, T, axis):
        xp = self.xp
        self.T, self.axis = T, axis
        x = _as_float(x, xp)
        z = x / xp.asarray(T, dtype=x.dtype)  # a float32 tensor stays float32
        e = xp.exp(z - z.max(axis=axis, keepdims=True))
        self.p = e / e.sum(axis=axis, keepdims=True)
        return self.p

    def backward(self, gy):
        p = self.p
        dot = (gy * p).sum(axis=self.axis, keepdims=True)
        return (p * (gy - dot) / self.T).astype(p.dtype, copy=False)


class LogSoftmax(Function):
    """Log of the softmax with temperature along ``axis``:

        log p_i = z_i/T − log Σ_j exp(z_j/T)
                = (z_i/T − m) − log Σ_j exp(z_j/T − m),   m = max_j z_j/T   (log-sum-exp)

    Backward (∂ log p_i / ∂z_k = (δ_ik − p_k) / T):

        dL/dz = (1/T) · (dL/dy − p ⊙ Σ_k dL/dy_k),   p = exp(y)
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, T, axis):
        xp = self.xp
        self.T, self.axis = T, axis
        x = _as_float(x, xp)
        self.y = _log_softmax_rows(x / xp.asarray(T, dtype=x.dtype), axis, xp)
        return self.y

    def backward(self, gy):
        p = self.xp.exp(self.y)
        total = gy.sum(axis=self.axis, keepdims=True)
        return ((gy - p * total) / self.T).astype(self.y.dtype, copy=False)


def softmax(x, T=1.0, axis=-1):
    """Probabilities p_i = exp(z_i/T) / Σ_j exp(z_j/T) along ``axis`` (the lecture's softened output).

    >>> import minikd as mk
    >>> [round(v, 4) for v in softmax(mk.tensor([2.0, 1.0, 0.1]), T=2).tolist()]
    [0.5017, 0.3043, 0.194]
    """
    T = check_temperature(T, "softmax")
    axis = check_axis(axis, _ndim(x), "softmax")
    _check_classes(x, axis, "softmax")
    return Softmax.apply(x, T=T, axis=axis)


def log_softmax(x, T=1.0, axis=-1):
    """log p_i = z_i/T − log Σ_j exp(z_j/T) along ``axis``, by log-sum-exp (finite for any logits)."""
    T = check_temperature(T, "log_softmax")
    axis = check_axis(axis, _ndim(x), "log_softmax")
    _check_classes(x, axis, "log_softmax")
    return LogSoftmax.apply(x, T=T, axis=axis)


def _check_classes(x, axis, op):
    """A softmax needs at least one class along ``axis`` (NumPy's message was about a maximum)."""
    if _shape_of(x)[axis] == 0:
        raise ValueError(f"{op}: no value along axis {axis} to normalise over; got shape {tuple(_shape_of(x))}")


def _ndim(x):
    return len(_shape_of(x))


# --------------------------------------------------------------------------- cross-entropy

def _to_rows(a, xp):
    """(C,) → (1, C);  (N, C) unchanged;  (N, C, d1, ...) → (N·d1·..., C) with classes last."""
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    return xp.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _from_rows(g, shape, xp):
    """Undo :func:`_to_rows` for a gradient of shape (M, C)."""
    if len(shape) <= 2:
        return g.reshape(shape)
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return xp.moveaxis(g.reshape(moved), -1, 1)


class CrossEntropy(Function):
    """Softmax cross-entropy, fused (log-softmax + negative log-likelihood), per sample n:

        hard labels y_n ∈ {0, …, C−1}:   ℓ_n = −log p_{n, y_n}
        soft targets t_n (a distribution): ℓ_n = −Σ_i t_{n,i} log p_{n,i}      (= H(t, p))

    with log p = log_softmax(z) (T = 1). Then "mean" (over the N samples, and the
    extra axes d1, … if any), "sum" or "none".

    Backward, for one sample with upstream gradient g_n (1/N for "mean"):

        dℓ/dz = g_n · (p − onehot(y_n))              (hard labels)
        dℓ/dz = g_n · (p · Σ_i t_i − t)              (soft targets; = p − t when Σ t = 1)
        dℓ/dt = −g_n · log p                          (soft targets that require a gradient)
    """

    def forward(self, logits, target, reduction):
        xp = self.xp
        self.shape, self.reduction = logits.shape, reduction
        z = _to_rows(_as_float(logits, xp), xp)
        self.soft = target.dtype.kind == "f"
        logp = _log_softmax_rows(z, 1, xp)
        if self.soft:
            self.t_dtype = target.dtype
            t = _to_rows(target, xp).astype(z.dtype, copy=False)
            self.t, self.logp = t, logp
            # 0 · log 0 = 0: a class the target rules out (t = 0) adds nothing, even where the
            # logit is −inf (log p = −inf; a plain product would give NaN)
            loss = -(t * xp.where(t != 0, logp, z.dtype.type(0))).sum(axis=1)
        else:
            labels = target.reshape(-1).astype(xp.intp, copy=False)
            self.labels, self.logp = labels, logp
            loss = -logp[xp.arange(labels.shape[0]), labels]
        self.loss_shape = () if logits.ndim == 1 else (logits.shape[0],) + tuple(logits.shape[2:])
        loss = loss.reshape(self.loss_shape)
        return _reduce(loss, reduction, xp, "cross_entropy")

    def backward(self, gy):
        xp = self.xp
        logp = self.logp
        g = _reduce_backward(gy, self.reduction, self.loss_shape, logp.dtype)
        g = xp.broadcast_to(g, self.loss_shape).reshape(-1, 1)  # one upstream gradient per row
        g_logits = g_target = None
        if self.needs_input_grad[0]:
            p = xp.exp(logp)
            if self.soft:
                d = p * self.t.sum(axis=1, keepdims=True) - self.t
            else:
                d = p  # exp() made a fresh array: subtract the one-hot in place
                d[xp.arange(self.labels.shape[0]), self.labels] -= 1
            g_logits = _from_rows(d * g, self.shape, xp)
        if self.soft and self.needs_input_grad[1]:
            g_target = _from_rows(-logp * g, self.shape, xp).astype(self.t_dtype, copy=False)
        return g_logits, g_target


def _array(x):
    """User input as an array: a Tensor's data, an array as it is, a list or number as a NumPy array."""
    x = raw(x)
    return x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x)


def _shape_of(x):
    return tuple(_array(x).shape)


def _check_labels(labels, C):
    """Class labels must lie in [0, C): name the first one that does not, and C.

    On a GPU the check would make the host wait for the device at every step (the answer is on
    the device), so there it runs only under ``mk.detect_anomaly()``, the debugging mode."""
    if type(labels) is not np.ndarray and not anomaly.enabled():
        return
    bad = (labels < 0) | (labels >= C)
    if bool(bad.any()):
        flat = int(bad.reshape(-1).argmax())
        index = np.unravel_index(flat, labels.shape) if labels.ndim else ()
        where = f" (at index {index[0] if len(index) == 1 else index})" if labels.ndim else ""
        raise ValueError(f"cross_entropy: label {int(labels.reshape(-1)[flat])} is out of range [0, C) "
                         f"for C = {C} classes{where}")


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy between ``logits`` (N, C) and ``target``.

    ``target`` is either integer class labels of shape (N,) — the hard loss
    −log p_y — or soft targets, a float array of the logits' shape holding class
    probabilities — H(t, p) = −Σ_i t_i log p_i, the soft loss of distillation.
    Also accepted: logits (N, C, d1, ...) with labels (N, d1, ...), and one
    sample's logits (C,) with a single label. ``reduction``: "mean" | "sum" | "none".

    >>> import minikd as mk
    >>> round(cross_entropy(mk.tensor([[1.5, 2.5, 0.3]]), [1]).item(), 3)   # −log p_1
    0.391
    """
    _check_reduction(reduction, REDUCTIONS, "cross_entropy")
    shape = _shape_of(logits)
    if len(shape) == 0:
        raise ValueError("cross_entropy expects logits of shape (N, C); got a scalar")
    t = _array(target)
    if t.dtype.kind == "f":
        if t.shape != shape:
            raise ValueError(f"cross_entropy: a float target is read as soft targets (class probabilities) "
                             f"and must have the logits' shape {shape}; got {t.shape} "
                             f"(for class labels pass an integer array)")
    elif t.dtype.kind in "iu":
        expected = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
        if t.shape != expected:
            name = "()" if len(shape) == 1 else "(N,)" if len(shape) == 2 else "(N, d1, ...)"
            raise ValueError(f"cross_entropy: class labels must have shape {name} = {expected} "
                             f"for logits of shape {shape}; got labels of shape {t.shape}")
        _check_labels(t, shape[0] if len(shape) == 1 else shape[1])
    else:
        raise TypeError(f"cross_entropy: target must hold integer class labels or float probabilities; "
                        f"got dtype {t.dtype}")
    # a Tensor target keeps its graph link (soft targets may require a gradient); anything
    # else goes in as the array checked above, so a Python int label stays an integer
    if not isinstance(target, Tensor):  # labels given as an array: on the logits' device
        target = as_tensor(t, like=logits if isinstance(logits, Tensor) else None)
    return CrossEntropy.apply(logits, target, reduction=reduction)


# --------------------------------------------------------------------------- regression losses

def _check_same_shape(x, target, op):
    if _shape_of(x) != _shape_of(target):
        raise ValueError(f"{op}: input and target must have the same shape; "
                         f"got input {_shape_of(x)} and target {_shape_of(target)}")


class MSELoss(Function):
    """Mean squared error, per element ℓ = (x − y)², then "mean", "sum" or "none".

    dℓ/dx = 2 (x − y) · g,   dℓ/dy = −2 (x − y) · g   (g = 1/n for "mean")
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, target, reduction):
        x = _as_float(x, self.xp)
        self.reduction, self.t_dtype = reduction, target.dtype
        self.diff = x - target.astype(x.dtype, copy=False)
        return _reduce(self.diff * self.diff, reduction, self.xp, "mse_loss")

    def backward(self, gy):
        d = self.diff
        gx = 2 * d * _reduce_backward(gy, self.reduction, d.shape, d.dtype)
        return gx, (-gx).astype(self.t_dtype, copy=False)


class L1Loss(Function):
    """Mean absolute error, per element ℓ = |x − y|, then "mean", "sum" or "none".

    dℓ/dx = sign(x − y) · g,   dℓ/dy = −sign(x − y) · g   (0 where x = y; g = 1/n for "mean")
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, target, reduction):
        x = _as_float(x, self.xp)
        self.reduction, self.t_dtype = reduction, target.dtype
        self.diff = x - target.astype(x.dtype, copy=False)
        return _reduce(self.xp.abs(self.diff), reduction, self.xp, "l1_loss")

    def backward(self, gy):
        d = self.diff
        gx = self.xp.sign(d) * _reduce_backward(gy, self.reduction, d.shape, d.dtype)
        return gx, (-gx).astype(self.t_dtype, copy=False)


class SmoothL1Loss(Function):
    """Smooth L1 (Huber) loss, per element with d = x − y and threshold β:

        ℓ = 0.5 d² / β      where |d| < β        (quadratic near 0: a smooth minimum)
        ℓ = |d| − 0.5 β     elsewhere             (linear far out: robust to outliers)

    then "mean", "sum" or "none". Relational KD (Park et al., CVPR 2019) compares distances
    and angles with it.

    dℓ/dx = d/β where |d| < β, sign(d) elsewhere;   dℓ/dy = −dℓ/dx   (g = 1/n for "mean")
    """

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, target, reduction, beta):
        xp = self.xp
        x = _as_float(x, xp)
        self.reduction, self.t_dtype, self.beta = reduction, target.dtype, beta
        d = x - target.astype(x.dtype, copy=False)
        self.d, self.small = d, xp.abs(d) < beta
        loss = xp.where(self.small, 0.5 * d * d / beta, xp.abs(d) - 0.5 * beta)
        return _reduce(loss.astype(x.dtype, copy=False), reduction, xp, "smooth_l1_loss")

    def backward(self, gy):
        xp, d = self.xp, self.d
        slope = xp.where(self.small, d / self.beta, xp.sign(d)).astype(d.dtype, copy=False)
        gx = slope * _reduce_backward(gy, self.reduction, d.shape, d.dtype)
        return gx, (-gx).astype(self.t_dtype, copy=False)


def smooth_l1_loss(x, target, reduction="mean", beta=1.0):
    """Smooth L1 (Huber) loss between ``x`` and ``target`` (same shape); see :class:`SmoothL1Loss`.

    >>> import minikd as mk
    >>> smooth_l1_loss(mk.tensor([0.5, 3.0]), mk.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    _check_reduction(reduction, REDUCTIONS, "smooth_l1_loss")
    _check_same_shape(x, target, "smooth_l1_loss")
    beta = check_number(beta, "smooth_l1_loss", "beta", low=0, low_open=True)
    return SmoothL1Loss.apply(x, target, reduction=reduction, beta=beta)


def mse_loss(x, target, reduction="mean"):
    """(x − target)², averaged ("mean"), summed ("sum") or per element ("none")."""
    _check_reduction(reduction, REDUCTIONS, "mse_loss")
    _check_same_shape(x, target, "mse_loss")
    return MSELoss.apply(x, target, reduction=reduction)


def l1_loss(x, target, reduction="mean"):
    """|x − target|, averaged ("mean"), summed ("sum") or per element ("none")."""
    _check_reduction(reduction, REDUCTIONS, "l1_loss")
    _check_same_shape(x, target, "l1_loss")
    return L1Loss.apply(x, target, reduction=reduction)


# --------------------------------------------------------------------------- KL divergence

class KLDivergence(Function):
    """Kullback–Leibler divergence from P to Q, over the last axis, on probabilities:

        D_KL(P‖Q) = Σ_i P(i) log(P(i)/Q(i))

    with the convention 0 · log 0 = 0: a term with P(i) = 0 is 0, whatever Q(i) (even 0),
    exactly like the lecture's ``if p != 0``. Where P(i) > 0 and Q(i) = 0 the divergence
    is +inf (Q calls impossible what P says happens).

    Gradients, for P(i) > 0:

        ∂D/∂Q(i) = −P(i) / Q(i)
        ∂D/∂P(i) = log(P(i)/Q(i)) + 1

    Where P(i) = 0 the term is skipped, so both are 0 there. (The one-sided derivative of
    P log P at 0 is log P → −∞; we do not take that limit, and return the finite
    gradient of the formula the lecture writes, in which the term is left out.)
    "batchmean" divides the sum by N, the size of the first axis (for a 2-D (N, C) input);
    for a single distribution (C,) it is the sum. "none" gives one value per distribution.
    """

    def forward(self, p, q, reduction):
        xp = self.xp
        self.reduction = reduction
        dtype = xp.result_type(p.dtype, q.dtype)
        if dtype.kind != "f":
            dtype = xp.float32
        self.p_dtype, self.q_dtype = p.dtype, q.dtype  # gradients go back in these
        p, q = p.astype(dtype, copy=False), q.astype(dtype, copy=False)
        self.pos = p != 0                           # the lecture's `if p != 0` (a NaN stays visible)
        one = xp.ones((), dtype=dtype)
        self.p = p
        self.q_safe = xp.where(self.pos, q, one)   # Q where it matters, 1 where the term is skipped
        p_safe = xp.where(self.pos, p, one)         # 1 where P = 0: log 1 = 0, no log(0) warning
        self.log_ratio = xp.where(self.pos, xp.log(p_safe) - xp.log(self.q_safe), 0)
        terms = p * self.log_ratio
        rows = terms.sum(axis=-1)
        self.rows_shape = rows.shape
        if reduction == "none":
            return rows.astype(dtype, copy=False)
        if p.ndim >= 2:
            check_not_empty(p.shape[0], reduction, "kl_divergence")
        total = rows.sum()
        if reduction == "batchmean" and p.ndim >= 2:
            total = total / p.shape[0]
        return xp.asarray(total, dtype=dtype)

    def backward(self, gy):
        xp = self.xp
        dtype = self.log_ratio.dtype
        g = gy.astype(dtype, copy=False)
        if self.reduction == "none":
            g = g[..., None]
        elif self.reduction == "batchmean" and len(self.rows_shape) >= 1:
            g = g / self.rows_shape[0]
        gp = gq = None
        if self.needs_input_grad[0]:
            gp = (xp.where(self.pos, self.log_ratio + 1, 0) * g).astype(self.p_dtype, copy=False)
        if self.needs_input_grad[1]:
            gq = (-(self.p / self.q_safe) * g).astype(self.q_dtype, copy=False)
        return gp, gq


def kl_divergence(p, q, reduction="batchmean"):
    """D_KL(P‖Q) = Σ_i P(i) log(P(i)/Q(i)) over the last axis, P and Q given as probabilities.

    ``reduction``: "batchmean" (the sum over the batch / N: the per-sample D_KL averaged,
    the right scale for the distillation loss), "sum", or "none" (one value per row).

    >>> import minikd as mk
    >>> round(kl_divergence(mk.tensor([0.7, 0.2, 0.1]), mk.tensor([0.6, 0.3, 0.1])).item(), 5)
    0.02681
    """
    _check_reduction(reduction, KL_REDUCTIONS, "kl_divergence",
                     hint=" ('batchmean' is the per-sample D_KL averaged over the batch)"
                     if reduction == "mean" else "")
    if _shape_of(p) != _shape_of(q):
        raise ValueError(f"kl_divergence: P and Q must have the same shape; got P {_shape_of(p)} "
                         f"and Q {_shape_of(q)}")
    if len(_shape_of(p)) == 0:
        raise ValueError("kl_divergence expects distributions of shape (C,) or (N, C); got a scalar")
    return KLDivergence.apply(p, q, reduction=reduction)
