"""Gradient checking: compare autograd with central finite differences.

For a function ``y = f(x₁, …, x_n)`` with any output shape, pick a fixed random
cotangent ``v`` of the output's shape and look at the scalar ``L(x) = Σ v ⊙ f(x)``.
Autograd gives ∂L/∂x = Jᵀv in one backward pass; the central difference

    ∂L/∂x[i] ≈ (L(x + ε·e_i) − L(x − ε·e_i)) / 2ε          (error O(ε²))

gives the same number from two forward passes. They must agree within
``atol + rtol·|numeric|``.

Two modes:

- ``mode="full"`` sweeps every element of every input that requires a gradient
  (or a seeded random subset of ``max_elements`` of them, for large inputs);
- ``mode="random"`` compares directional derivatives along random unit vectors
  ``u`` over all inputs at once: ``⟨∂L/∂x, u⟩`` against
  ``(L(x + εu) − L(x − εu)) / 2ε`` — Chainer's approach, two forward passes per
  direction whatever the size of the inputs.

Finite differences only make sense in float64, and away from kinks and ties
(ReLU at 0, equal values in a max-pooling window), where the derivative jumps.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .checks import check_int, check_number
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Autograd and finite differences disagree; the message says where and by how much."""


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              mode: str = "full", max_elements: int | None = None, n_directions: int = 3,
              seed: int = 0) -> bool:
    """Check the gradients of ``fn(*inputs)`` with respect to every input that requires one.

    Returns True, or raises :class:`GradcheckError` naming the input, the worst
    index, both values and the absolute and relative errors. A NaN or ±inf on either
    side fails too, naming its index: a finite difference that is not finite (``log`` at a
    negative input, a kink straddled by ±eps) proves nothing about the backward, and NaN
    compares false with every tolerance, so it must not pass silently.

    >>> import minikd as mk, numpy as np
    >>> x = mk.tensor(np.array([0.5, 1.5]), requires_grad=True)
    >>> mk.gradcheck(lambda t: (t * t).exp(), x)
    True
    """
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random'; got {mode!r}")
    # a tolerance of NaN compares false, so a wrong gradient would pass: every setting is checked
    eps = check_number(eps, "gradcheck", "eps (the finite-difference step)", low=0, low_open=True)
    atol = check_number(atol, "gradcheck", "atol", low=0)
    rtol = check_number(rtol, "gradcheck", "rtol", low=0)
    if max_elements is not None:
        max_elements = check_int(max_elements, "gradcheck", "max_elements (None: every element)", low=1)
    n_directions = check_int(n_directions, "gradcheck", "n_directions", low=1)
    seed = check_int(seed, "gradcheck", "seed", low=0)
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        arrays = [i for i, x in enumerate(inputs) if not isinstance(x, Tensor) and hasattr(x, "ndim")]
        hint = (f"; input(s) {arrays} are arrays, not Tensors: pass mk.tensor(array, requires_grad=True)"
                if arrays else " (make the inputs to check with mk.tensor(array, requires_grad=True))")
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True, so there is nothing to check"
                         + hint)
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {x.dtype}; finite differences need float64 "
                            f"(use mk.tensor(array.astype(np.float64), requires_grad=True))")

    # fresh leaves, so the caller's tensors and their .grad stay untouched
    xs = [Tensor(x.data.copy(), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x
          for x in inputs]
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    rng = np.random.default_rng(seed)

    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor; got {type(out).__name__}")
    xp = out.xp
    values = backend.to_numpy(out.data)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        k = np.unravel_index(int(np.argmin(np.isfinite(values))), values.shape)
        raise GradcheckError(f"fn(*inputs) is {values[k]} at output index {tuple(int(j) for j in k)}: a gradient "
                             "cannot be checked where the function itself is not finite")
    v = xp.asarray(rng.standard_normal(out.shape))

    def loss() -> float:
        with no_grad():
            return float((fn(*xs).data * v).sum())

    (out * Tensor(v)).sum().backward()
    analytic = {i: xs[i].grad if xs[i].grad is not None else xp.zeros_like(xs[i].data) for i in checked}

    if mode == "full":
        for i in checked:
            _check_elements(i, xs[i], analytic[i], loss, eps, atol, rtol, max_elements, rng)
    else:
        for k in range(n_directions):
            _check_direction(k, [xs[i] for i in checked], [analytic[i] for i in checked], checked,
                             loss, eps, atol, rtol, rng)
    return True


def _check_elements(i, x, grad, loss, eps, atol, rtol, max_elements, rng):
    flat = x.data.reshape(-1)  # a view: writing to it perturbs x
    n = flat.size
    picks = list(range(n)) if max_elements is None or n <= max_elements else \
        sorted(rng.choice(n, size=max_elements, replace=False).tolist())
    g = backend.to_numpy(grad).reshape(-1)
    numeric, analytic = [], []
    for j in picks:
        orig = flat[j].item()
        flat[j] = orig + eps
        plus = loss()
        flat[j] = orig - eps
        minus = loss()
        flat[j] = orig
        numeric.append((plus - minus) / (2 * eps))
        analytic.append(g[j])
    numeric, analytic = np.array(numeric), np.array(analytic)
    _compare(numeric, analytic, atol, rtol, lambda k: (
        f"input {i} (shape {x.shape}) at index {tuple(int(j) for j in np.unravel_index(picks[k], x.shape))}"))


def _check_direction(k, xs, grads, indices, loss, eps, atol, rtol, rng):
    us = [rng.standard_normal(x.shape) for x in xs]
    norm = np.sqrt(sum(float((u * u).sum()) for u in us))
    us = [x.xp.asarray(u / norm) for x, u in zip(xs, us)]
    originals = [x.data.copy() for x in xs]
    for x, u, o in zip(xs, us, originals):
        x.data[...] = o + eps * u
    plus = loss()
    for x, u, o in zip(xs, us, originals):
        x.data[...] = o - eps * u
    minus = loss()
    for x, o in zip(xs, originals):
        x.data[...] = o
    numeric = np.array([(plus - minus) / (2 * eps)])
    analytic = np.array([sum(float((g * u).sum()) for g, u in zip(grads, us))])
    _compare(numeric, analytic, atol, rtol,
             lambda _: f"random direction {k} over inputs {indices} (directional derivative)")


def _compare(numeric, analytic, atol, rtol, where):
    for name, values in (("finite difference", numeric), ("autograd gradient", analytic)):
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.argmax(bad))
            raise GradcheckError(
                f"{name} is {values[k]} for {where(k)} (autograd {analytic[k]:.10g}, finite difference "
                f"{numeric[k]:.10g}): a non-finite value cannot be checked; is the function defined and "
                "differentiable within ±eps of this point?")
    err = np.abs(numeric - analytic)
    excess = err - (atol + rtol * np.abs(numeric))
    worst = int(np.argmax(excess))
    if excess[worst] > 0:
        rel = err[worst] / max(abs(numeric[worst]), 1e-300)
        raise GradcheckError(
            f"gradient mismatch for {where(worst)}: autograd {analytic[worst]:.10g}, "
            f"finite difference {numeric[worst]:.10g}, abs error {err[worst]:.3g}, rel error {rel:.3g} "
            f"(allowed: atol {atol:g} + rtol {rtol:g}·|numeric|)")
