"""Optimizers (SGD, Adam) and learning-rate schedules, with PyTorch's exact update rules.

An optimizer holds a list of Parameters; after ``loss.backward()`` has filled their
``.grad``, ``step()`` changes each ``p.data`` in place, and ``zero_grad()`` clears the
gradients for the next batch::

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

The updates work on the raw arrays (``p.data``, ``p.grad``), so they record no graph
and run on whichever device the parameters live; in-place operators keep the number
of temporary arrays low because this runs once per parameter per batch.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, kernels
from .checks import check_bool, check_int, check_number
from .tensor import Tensor


class Optimizer:
    """Base class: keeps the parameters, the learning rate ``lr`` and per-parameter ``state``."""

    def __init__(self, params, lr: float):
        name = type(self).__name__
        expected = "an iterable of Tensors, e.g. model.parameters()"
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params should be {expected}; got a single Tensor (put it in a list)")
        if hasattr(params, "parameters") and hasattr(params, "forward"):  # a Module, not its parameters
            raise TypeError(f"{name}: params should be {expected}; got the module {type(params).__name__} itself: "
                            "pass model.parameters()")
        if callable(params) and getattr(params, "__name__", "") == "parameters":  # model.parameters, uncalled
            raise TypeError(f"{name}: params is the method model.parameters, not called: pass model.parameters()")
        try:
            self.params = list(params)
        except TypeError:
            got = f"{type(params).__name__} {params!r:.40}"
            raise TypeError(f"{name}: params should be {expected}; got {got}") from None
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        if len({id(p) for p in self.params}) != len(self.params):  # each step would update it twice
            raise ValueError(f"{name}: a parameter appears more than once in params (it would be updated once "
                             "per appearance)")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                hint = " (a module: pass model.parameters())" if hasattr(p, "parameters") else ""
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, not a Tensor{hint}")
        self.lr = check_number(lr, type(self).__name__, "lr (the learning rate)", low=0)
        self.state = [None] * len(self.params)  # per-parameter buffers, created at the first step

    def zero_grad(self):
        """Forget every gradient (``backward`` accumulates into ``.grad``)."""
        for p in self.params:
            p.grad = None

    def step(self):  # pragma: no cover - every optimizer overrides it
        raise NotImplementedError

    def _check_device(self, i, p, state_array):
        """The state of parameter ``i`` lives where the parameter does; a model moved with
        ``model.to(...)`` after the optimizer stepped would otherwise mix devices."""
        if type(state_array) is type(p.data) and type(p.data) is np.ndarray:
            return
        here, there = backend.device_of(p.data), backend.device_of(state_array)
        if here != there:
            raise RuntimeError(f"{type(self).__name__}.step: parameter {i} is on {here} but its optimizer state is on "
                               f"{there}: the model was moved after the optimizer had stepped. Create the optimizer "
                               f"after model.to(device)")

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self._settings().items())
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr}, {settings})"

    def _settings(self):
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    With g = ∇L(θ) (+ weight_decay · θ), step t:

        b_1 = g,   b_t = momentum · b_{t−1} + (1 − dampening) · g        (when momentum ≠ 0)
        g ← g + momentum · b_t   (Nesterov)      or      g ← b_t   (classical momentum)
        θ ← θ − lr · g
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        super().__init__(params, lr)
        momentum = check_number(momentum, "SGD", "momentum", low=0)
        weight_decay = check_number(weight_decay, "SGD", "weight_decay", low=0)
        dampening = check_number(dampening, "SGD", "dampening", low=0, high=1)
        nesterov = check_bool(nesterov, "SGD", "nesterov")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.weight_decay, self.nesterov, self.dampening = momentum, weight_decay, nesterov, dampening

    def _settings(self):
        return {"momentum": self.momentum, "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def step(self):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:  # not reached by backward: leave it alone
                continue
            if wd != 0:
                g = g + wd * p.data  # a new array: p.grad itself stays the true gradient
            if mu != 0:
                buf = self.state[i]
                if buf is None:
                    buf = self.state[i] = g.copy()
                else:
                    self._check_device(i, p, buf)
                    buf *= mu
                    if self.dampening == 0:
                        buf += g
                    else:
                        buf += (1 - self.dampening) * g
                g = g + mu * buf if self.nesterov else buf
            p.data -= lr * g


class Adam(Optimizer):
    """Adam: per-parameter step sizes from running averages of the gradient and its square.

    With g = ∇L(θ) (+ weight_decay · θ), step t = 1, 2, ...:

        m ← β₁ m + (1 − β₁) g,        v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ),            v̂ = v / (1 − β₂ᵗ)              (bias correction: m, v start at 0)
        θ ← θ − lr · m̂ / (√v̂ + ε)

    computed, as in PyTorch, as θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2); got {betas!r}")
        beta1 = check_number(betas[0], "Adam", "betas[0]", low=0, high=1, high_open=True)
        beta2 = check_number(betas[1], "Adam", "betas[1]", low=0, high=1, high_open=True)
        eps = check_number(eps, "Adam", "eps", low=0, low_open=True)  # 0 divides by 0 where a gradient is 0
        weight_decay = check_number(weight_decay, "Adam", "weight_decay", low=0)
        self.betas, self.eps, self.weight_decay = (beta1, beta2), eps, weight_decay

    def _settings(self):
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def step(self):
        (beta1, beta2), eps, wd, lr = self.betas, self.eps, self.weight_decay, self.lr
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            xp = p.xp
            if self.state[i] is None:
                self.state[i] = {"step": 0, "m": xp.zeros_like(p.data), "v": xp.zeros_like(p.data)}
            state = self.state[i]
            self._check_device(i, p, state["m"])
            state["step"] += 1
            t, m, v = state["step"], state["m"], state["v"]

            if kernels.adam_update_applies(p.data, g, m, v):
                # fast branch: the same update as below in one pass over memory (a Numba kernel on
                # the CPU, a CUDA kernel on a GPU), instead of about eleven array passes
                # (minikd/kernels/adam.py and cuda.py; tests hold them equal to the lines below)
                kernels.adam_update(p.data, g, m, v, lr, beta1, beta2, eps, wd, t)
                p._mark_modified()
                continue

            # the maths, in plain xp (also the GPU path)
            if wd != 0:
                g = g + wd * p.data                        # L2 weight decay: g ← g + λθ
            m *= beta1
            m += (1 - beta1) * g                           # m ← β₁ m + (1 − β₁) g
            v *= beta2
            v += (1 - beta2) * (g * g)                     # v ← β₂ v + (1 − β₂) g²
            c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t        # bias corrections: m̂ = m/c₁, v̂ = v/c₂
            p.data -= m / (xp.sqrt(v) / math.sqrt(c2) + eps) * (lr / c1)   # θ ← θ − lr · m̂ / (√v̂ + ε)


# --------------------------------------------------------------------------- schedules

class LRScheduler:
    """Sets ``optimizer.lr`` from a closed-form function of the epoch count.

    Call ``step()`` once per epoch, after the optimizer's steps; ``last_epoch`` counts
    those calls and ``get_last_lr()`` returns ``[lr]`` (a list, as in PyTorch).
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer; got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._last_lr = [self.base_lr]

    def lr_at(self, epoch: int) -> float:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list:
        return list(self._last_lr)


class StepLR(LRScheduler):
    """lr = base_lr · gamma^⌊epoch / step_size⌋: divide by 1/gamma every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        step_size = check_int(step_size, "StepLR", "step_size", low=1)
        gamma = check_number(gamma, "StepLR", "gamma", low=0)
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = η_min + (base_lr − η_min) · (1 + cos(π · epoch / T_max)) / 2: from base_lr down to η_min
    along half a cosine over T_max epochs (and back up after, as PyTorch's closed form does)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        T_max = check_int(T_max, "CosineAnnealingLR", "T_max", low=1)
        eta_min = check_number(eta_min, "CosineAnnealingLR", "eta_min", low=0)
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


__all__ = ["Adam", "CosineAnnealingLR", "LRScheduler", "Optimizer", "SGD", "StepLR"]
