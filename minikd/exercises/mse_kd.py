"""Task ``mse_kd``: replace the KD loss's soft term by the mean squared error between logits.

    L = (1 − λ) · L_CE(y, p_s) + λ · L_MSE(z_s, z_t),     L_MSE = 1/(N·C) · Σ_n Σ_i (z_s,n^i − z_t,n^i)²

Hinton et al. (2015) show that in the high-temperature limit, with logits of zero mean per
sample, T² · D_KL(p_t ‖ p_s) → 1/(2C) · Σ_i (z_s^i − z_t^i)²: matching logits is the T → ∞
limit of distillation. Batch-averaged, T² · L_KL → L_MSE / 2.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import minikd as mk
from minikd import functional as F
from minikd import kd
from minikd.kd.logits import constant

from .common import CheckFailed, call, expect_close

NAME = "mse_kd"
TITLE = "Replace the KD loss's soft term by MSE on the logits, and compare it with T²·KL"
NAMES = ("mse_kd_loss",)

TASK = """\
Write a distillation loss that matches the teacher's logits directly instead of its
softened probabilities:

    mse_kd_loss(student_logits, teacher_logits, target, lam=0.5)
      = (1 − λ) · L_CE(y, p_s) + λ · L_MSE(z_s, z_t)
    L_MSE = 1/(N·C) · Σ_n Σ_i (z_s − z_t)²      (the mean over all N·C logits)

- student_logits z_s (N, C): a Tensor that receives the gradient;
- teacher_logits z_t (N, C): constants — the teacher is not trained by the student's loss;
  a Tensor or a NumPy array (examples/hinton_mnist.py keeps them as an array): make them a
  constant of the student's dtype with minikd.kd.logits.constant(teacher_logits, like=z_s),
  as kd_loss does (.detach() alone would fail on an array);
- target y: the labels (N,);  L_CE = F.cross_entropy(z_s, y) (batch mean).

Start from kd_loss in minikd/kd/logits.py: the same loss with λ·T²·L_KL in place of λ·L_MSE.
You may use minikd's ops (F.cross_entropy, F.mse_loss, tensor arithmetic): autograd
differentiates the sum.

The check compares your loss with NumPy for λ = 0, 1, 0.3, your gradient with the exact
(1 − λ)·(p_s − onehot(y))/N + λ·2·(z_s − z_t)/(N·C), makes sure no gradient reaches the
teacher (given as a Tensor, or as a NumPy array), and runs mk.gradcheck.

What to observe (the check prints it): with logits of zero mean per sample, T²·L_KL at a
high temperature is L_MSE / 2 (Hinton 2015, section 2.1), while at T = 1 it is not — MSE is
the T → ∞ limit of distillation, and it drops the temperature's choice of how much the
small logits count. To compare in training, copy examples/hinton_mnist.py, replace its
distillation step's `kd.kd_loss(logits, z_t[i], y, T=T, lam=lam)` by
`mse_kd_loss(logits, z_t[i], y, lam=lam)`, and compare the two students' test accuracy.

In the engine: the function would go into minikd/kd/logits.py beside kd_loss, and into
minikd/kd/__init__.py's imports and __all__.
"""

STARTER = '''\
import minikd as mk
from minikd import functional as F


def mse_kd_loss(student_logits, teacher_logits, target, lam=0.5):
    """(1 − λ)·CE(y, p_s) + λ·mean((z_s − z_t)²)."""
    ...
'''


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def numpy_loss(z_s, z_t, y, lam):
    n, c = z_s.shape
    ce = -_log_softmax(z_s)[np.arange(n), y].mean()
    return (1 - lam) * ce + lam * ((z_s - z_t) ** 2).sum() / (n * c)


def numpy_grad(z_s, z_t, y, lam):
    n, c = z_s.shape
    onehot = np.eye(c)[y]
    return (1 - lam) * (np.exp(_log_softmax(z_s)) - onehot) / n + lam * 2 * (z_s - z_t) / (n * c)


def check(impl, say=print) -> None:
    """Raise :class:`CheckFailed` unless ``impl.mse_kd_loss`` is (1 − λ)·CE + λ·MSE on the logits."""
    loss_fn = impl.mse_kd_loss
    rng = np.random.default_rng(1)
    n, c = 4, 5
    z_s, z_t = rng.standard_normal((n, c)) * 2, rng.standard_normal((n, c)) * 2
    y = rng.integers(0, c, n)

    for lam in (0.0, 1.0, 0.3):  # each part alone first, then the weighting
        out = call(loss_fn, "mse_kd_loss", mk.tensor(z_s), mk.tensor(z_t), mk.tensor(y), lam=lam)
        if not isinstance(out, mk.Tensor) or out.size != 1:
            raise CheckFailed(f"mse_kd_loss must return a scalar Tensor (the batch's loss); got "
                              f"{type(out).__name__} of shape {getattr(out, 'shape', None)}")
        got, expected = float(out.item()), numpy_loss(z_s, z_t, y, lam)
        if not np.isclose(got, expected, rtol=1e-6, atol=1e-9):
            part = {0.0: "the cross-entropy part (λ = 0)", 1.0: "the MSE part (λ = 1): the mean over all N·C "
                    "logits of (z_s − z_t)²"}.get(lam, "the weighting (1 − λ)·CE + λ·MSE")
            raise CheckFailed(f"loss wrong at lam={lam}: got {got:.6g}, expected {expected:.6g} — look at {part}")
    say("ok  the loss equals (1 − λ)·CE + λ·MSE for λ = 0, 1, 0.3")

    lam = 0.3
    s = mk.tensor(z_s, requires_grad=True)
    t = mk.tensor(z_t, requires_grad=True)
    loss = call(loss_fn, "mse_kd_loss", s, t, mk.tensor(y), lam=lam)
    call(loss.backward, "loss.backward()")
    if s.grad is None:
        raise CheckFailed("no gradient reached the student's logits: build the loss from the Tensor z_s "
                          "with minikd's ops, not from its .numpy() values")
    expect_close(s.grad, numpy_grad(z_s, z_t, y, lam),
                 "gradient dL/dz_s = (1 − λ)(p_s − onehot(y))/N + λ·2(z_s − z_t)/(N·C)", rtol=1e-6, atol=1e-10)
    if t.grad is not None and np.any(t.grad != 0):
        raise CheckFailed("the teacher's logits received a gradient: make them a constant, "
                          "minikd.kd.logits.constant(teacher_logits, like=student_logits) — the student's loss must "
                          "not train the teacher")
    say("ok  the gradient reaches the student's logits, and none reaches the teacher's")

    # the drop-in the task suggests: examples/hinton_mnist.py passes the teacher's logits as an array
    out = call(loss_fn, "mse_kd_loss (teacher_logits a NumPy array, as examples/hinton_mnist.py passes them)",
               mk.tensor(z_s), z_t, mk.tensor(y), lam=lam)
    if not isinstance(out, mk.Tensor) or not np.isclose(float(out.item()), numpy_loss(z_s, z_t, y, lam),
                                                        rtol=1e-6, atol=1e-9):
        raise CheckFailed("with the teacher's logits as a NumPy array the loss is wrong: make them a constant with "
                          "minikd.kd.logits.constant(teacher_logits, like=student_logits), which takes both")
    say("ok  the teacher's logits may be a Tensor or a NumPy array")

    def fn(zs):
        return loss_fn(zs, mk.tensor(z_t), mk.tensor(y), lam=lam)
    try:
        mk.gradcheck(fn, mk.tensor(z_s, requires_grad=True))
    except mk.GradcheckError as e:
        raise CheckFailed(f"mk.gradcheck(mse_kd_loss): {e}") from e
    say("ok  mk.gradcheck agrees with finite differences")

    # the comparison: T²·KL → MSE/2 as T grows, for logits of zero mean per sample
    a = rng.standard_normal((8, 10))
    b = rng.standard_normal((8, 10))
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    mse = float(call(loss_fn, "mse_kd_loss", mk.tensor(a), mk.tensor(b), mk.tensor(np.zeros(8, dtype=np.int64)),
                     lam=1.0).item())
    ratios = {T: T * T * kd.soft_loss(a, b, T=T).item() / mse for T in (1, 4, 100)}
    if not abs(ratios[100] - 0.5) < 0.01:
        raise CheckFailed(f"T²·KL at T = 100 should be half your MSE term for zero-mean logits; the ratio is "
                          f"{ratios[100]:.4f}: is your MSE the mean over all N·C logits?")
    say("compare: T²·L_KL / L_MSE for zero-mean logits — "
        + ", ".join(f"T = {T}: {r:.3f}" for T, r in ratios.items()) + "  (→ 1/2: MSE is distillation at T → ∞)")


# --------------------------------------------------------------------------- the reference solution


def mse_kd_loss(student_logits, teacher_logits, target, lam=0.5):
    """(1 − λ)·L_CE(y, p_s) + λ·1/(N·C)·Σ (z_s − z_t)²; the teacher's logits are constants."""
    z_s = mk.as_tensor(student_logits)
    z_t = constant(teacher_logits, like=z_s)
    hard = F.cross_entropy(z_s, target)
    soft = F.mse_loss(z_s, z_t)
    return hard * (1.0 - lam) + soft * lam


reference = SimpleNamespace(mse_kd_loss=mse_kd_loss)
