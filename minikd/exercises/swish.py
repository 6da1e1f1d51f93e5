"""Task ``swish``: add an activation to the engine and gradcheck it.

Swish (Ramachandran et al., 2017; PyTorch's SiLU) is x times its own sigmoid:

    y = x · σ(x),      dy/dx = σ(x) + x · σ(x) · (1 − σ(x)) = σ(x) · (1 + x · (1 − σ(x)))

and the gradient that reaches the input is dL/dx = dL/dy · dy/dx.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import minikd as mk
from minikd.function import Function

from .common import CheckFailed, call, expect_close

NAME = "swish"
TITLE = "Add an activation (swish = x·σ(x)) as an op with its own backward, and gradcheck it"
NAMES = ("swish",)

TASK = """\
Add the activation swish (SiLU) to the engine, as an op with a forward and a backward of
your own:

    y = x · σ(x)                dL/dx = dL/dy · σ(x) · (1 + x · (1 − σ(x)))

1. Read docs/adding_an_op.md (it adds softplus the same way) and the class Sigmoid in
   minikd/ops/activation.py (how σ is computed without overflow).
2. In your file, write a subclass of minikd.function.Function, `Swish`, with
   `forward(self, x)` and `backward(self, gy)` on raw arrays (use self.xp, not numpy;
   backward returns a new array and never writes into gy, which other inputs may share),
   and the function users call:   def swish(x): return Swish.apply(x)
3. Check it yourself with  mk.gradcheck(swish, mk.tensor(x64, requires_grad=True)).

The check compares your values with NumPy's x·σ(x) (float64 and float32: a float32 input
gives a float32 output), your gradient with the exact derivative (also inside swish(x) + x,
where gy is shared), runs mk.gradcheck, and tries x = ±1000 with overflow turned into an error.

What to observe: drop `gy` from your backward (return only the local derivative) and run
the check again: the gradient is wrong, and the check names the element.

In the engine: the class and the function would go into minikd/ops/activation.py, the
function into minikd/functional.py's imports and __all__ (F.swish), a Module Swish beside
ReLU in minikd/nn/layers.py, and a test using tests/util.py::check_grad.
"""

STARTER = '''\
from minikd.function import Function


class Swish(Function):
    """y = x·σ(x);  dL/dx = dL/dy · σ(x)·(1 + x·(1 − σ(x)))."""

    def forward(self, x):
        xp = self.xp
        ...  # keep on self what backward needs

    def backward(self, gy):
        ...


def swish(x):
    return Swish.apply(x)
'''


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1)


def numpy_swish(x):
    """The reference values, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x * _sigmoid(x)


def numpy_swish_derivative(x):
    x = np.asarray(x, dtype=np.float64)
    s = _sigmoid(x)
    return s * (1 + x * (1 - s))


def check(impl, say=print) -> None:
    """Raise :class:`CheckFailed` unless ``impl.swish`` is a correct op with its own backward."""
    swish = impl.swish
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)) * 3

    y = call(swish, "swish", mk.tensor(x))
    if not isinstance(y, mk.Tensor):
        raise CheckFailed(f"swish(x) must return a Tensor (from Swish.apply(x)); got {type(y).__name__}")
    expect_close(y.numpy(), numpy_swish(x), "value of swish(x) (float64)", rtol=1e-10, atol=1e-12, inputs=x)
    x32 = x.astype(np.float32)
    y32 = call(swish, "swish", mk.tensor(x32))
    if y32.dtype != np.float32:
        raise CheckFailed(f"swish of a float32 tensor gave dtype {y32.dtype}: keep the input's dtype "
                          "(compute with its arrays; astype(x.dtype, copy=False) at the end)")
    expect_close(y32.numpy(), numpy_swish(x32), "value of swish(x) (float32)", rtol=1e-5, atol=1e-6, inputs=x32)
    say("ok  values match x·σ(x) in float64 and float32")

    t = mk.tensor(x, requires_grad=True)
    y = call(swish, "swish", t)
    op = y._ctx
    if op is None:
        raise CheckFailed("swish(x) recorded no graph for an input with requires_grad=True: return "
                          "Swish.apply(x), not a Tensor built from arrays")
    module = type(op).__module__
    if module.startswith("minikd.") and not module.startswith("minikd.exercises."):
        raise CheckFailed(f"the output of swish(x) is made by minikd's own {type(op).__name__} "
                          f"({module}): you composed existing ops, which autograd differentiates "
                          "for you. The task is to write the op: a Function subclass with its own backward")
    v = rng.standard_normal(x.shape)  # an upstream gradient dL/dy that is not all ones
    call(y.backward, "Swish.backward", mk.tensor(v))
    if t.grad is None:
        raise CheckFailed("after y.backward(), x.grad is None: backward must return the gradient for x")
    expect_close(t.grad, v * numpy_swish_derivative(x), "gradient dL/dx = dL/dy · σ(x)·(1 + x·(1 − σ(x)))",
                 rtol=1e-8, atol=1e-10, inputs=x)
    say("ok  the gradient equals dL/dy · σ(x)·(1 + x·(1 − σ(x)))")

    # x + swish(x): Add hands the same gy array to both of its inputs, so a backward that writes
    # into gy (gy *= ...) changes x's own share of the gradient too
    t = mk.tensor(x, requires_grad=True)
    call(lambda: (call(swish, "swish", t) + t).backward(mk.tensor(v)), "backward of swish(x) + x")
    try:
        expect_close(t.grad, v * (1 + numpy_swish_derivative(x)), "gradient of swish(x) + x, dL/dy · (1 + swish'(x)),",
                     rtol=1e-8, atol=1e-10, inputs=x)
    except CheckFailed as e:
        raise CheckFailed(f"{e}. Your backward seems to write into gy (gy *= ...): other inputs may share that array "
                          f"(here + hands it to x too), so their gradient changed; return a new array (gy * ...)") \
            from None
    say("ok  backward leaves gy as it came (other inputs may share it)")

    x64 = mk.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    try:
        mk.gradcheck(swish, x64)
    except mk.GradcheckError as e:
        raise CheckFailed(f"mk.gradcheck(swish, x): {e}") from e
    say("ok  mk.gradcheck agrees with finite differences (float64)")

    big = np.array([-1000.0, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1000.0])
    for dtype in (np.float64, np.float32):
        t = mk.tensor(big.astype(dtype), requires_grad=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            try:
                y = swish(t)
                y.backward(mk.tensor(np.ones(big.shape, dtype=dtype)))
            except FloatingPointError as e:
                raise CheckFailed(f"swish overflowed at x = ±1000 ({dtype.__name__}): {e}. Compute σ(x) "
                                  "without e^x for large x: see Sigmoid in minikd/ops/activation.py") from e
        expect_close(y.numpy(), numpy_swish(big), f"value of swish at large |x| ({dtype.__name__})",
                     rtol=1e-5, atol=1e-6, inputs=big)
        expect_close(t.grad, numpy_swish_derivative(big), f"gradient at large |x| ({dtype.__name__})",
                     rtol=1e-5, atol=1e-6, inputs=big)
    say("ok  finite and right at x = ±1000, with no overflow")


# --------------------------------------------------------------------------- the reference solution


class Swish(Function):
    """y = x·σ(x);  dL/dx = dL/dy · σ(x)·(1 + x·(1 − σ(x))).

    σ as in :class:`minikd.ops.activation.Sigmoid`: from e = e^(−|x|) ∈ (0, 1], which never overflows.
    """

    def forward(self, x):
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        self.x = x
        self.s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return x * self.s

    def backward(self, gy):
        s = self.s
        return gy * (s * (1 + self.x * (1 - s)))


def swish(x):
    return Swish.apply(x)


reference = SimpleNamespace(Swish=Swish, swish=swish)
