"""Batch normalisation and dropout: the two layers that behave differently in training
and in evaluation (``model.train()`` / ``model.eval()``)."""

from __future__ import annotations

from .. import backend, kernels
from ..checks import check_bool, check_number, check_same_dtype
from ..function import Function
from ..random import get_rng
from ..tensor import as_tensor, raw


class BatchNorm(Function):
    """Batch normalisation per channel c (axis 1), over every other axis:
    (N,) for an input (N, C), (N, H, W) for an input (N, C, H, W).

    Training mode, with m = the number of values per channel:

        μ = (1/m) Σ x,   σ² = (1/m) Σ (x − μ)²        (biased variance, to normalise)
        x̂ = (x − μ) / √(σ² + ε),   y = γ · x̂ + β

        running_mean ← (1 − momentum) · running_mean + momentum · μ
        running_var  ← (1 − momentum) · running_var  + momentum · σ² · m/(m − 1)   (unbiased)

    ``momentum=None`` makes the running statistics the cumulative average of every batch seen
    (momentum 1/k at the k-th batch), as in PyTorch; the layer counts the batches.

    Evaluation mode uses the running statistics instead of μ and σ²: y = γ (x − μ_run)/√(σ²_run + ε) + β.

    Precision: for float32 (and float16) input, μ and σ² are computed in float64, two passes
    (μ first, then the mean of (x − μ)²). In float32 the mean of a constant channel of 7.3e9
    is off by an ulp (512), so x − μ = ±512 and x̂ = ±1 instead of 0; near 1e30 that error,
    squared, overflows float32 and every x̂ becomes 0. In float64 both come out exact. x̂ and
    the gradient are then formed in the input's dtype from those statistics.

    Backward (training), in the compact form where μ and σ² are differentiated too:

        dL/dβ = Σ dL/dy,   dL/dγ = Σ dL/dy · x̂,
        dL/dx = γ / (m √(σ² + ε)) · (m · dL/dy − Σ dL/dy − x̂ · Σ dL/dy · x̂)

    (every Σ over the same axes as μ). In evaluation mode the statistics are
    constants, so dL/dx = dL/dy · γ / √(σ²_run + ε).
    """

    float_only = True  # refuses integer input (Function.float_only)

    def forward(self, x, weight, bias, *, running_mean, running_var, training, momentum, eps):
        xp = self.xp
        C = x.shape[1]
        self.axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channel axis
        stat_shape = (1, C) + (1,) * (x.ndim - 2)  # so (C,) vectors broadcast along axis 1
        self.m = x.size // C
        self.training = training

        if training:
            if self.m < 2:
                raise ValueError(f"batch_norm: training needs more than one value per channel to estimate a "
                                 f"variance; got input of shape {x.shape}")
            x64 = x.astype(xp.float64) if x.dtype.itemsize < 8 else x   # statistics in float64 (docstring)
            mean = x64.mean(axis=self.axes, keepdims=True)
            xc64 = x64 - mean
            var = (xc64 * xc64).mean(axis=self.axes, keepdims=True)  # biased (÷ m): the one that normalises
            if running_mean is not None:
                # in place, so the layer's buffer (and anyone holding it) sees the update
                running_mean *= 1 - momentum
                running_mean += (momentum * mean.reshape(C)).astype(running_mean.dtype, copy=False)
            if running_var is not None:
                running_var *= 1 - momentum
                unbiased = (momentum * self.m / (self.m - 1)) * var.reshape(C)  # unbiased estimate of σ²
                running_var += unbiased.astype(running_var.dtype, copy=False)
        else:
            if running_mean is None or running_var is None:
                raise ValueError("batch_norm: evaluation mode (training=False) needs running_mean and running_var")
            xc = x - running_mean.astype(x.dtype, copy=False).reshape(stat_shape)
            var = running_var.reshape(stat_shape)

        inv_std64 = 1.0 / xp.sqrt(var + eps)
        inv_std = inv_std64.astype(x.dtype, copy=False)
        x_hat = (xc64 * inv_std64).astype(x.dtype, copy=False) if training else xc * inv_std
        self.x_hat, self.inv_std = x_hat, inv_std
        self.weight = weight.reshape(stat_shape) if weight is not None else None
        y = x_hat * self.weight if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(stat_shape)
        return y

    def backward(self, gy):
        x_hat, axes = self.x_hat, self.axes
        needs = self.needs_input_grad
        gx = g_weight = g_bias = None
        if needs[0]:
            scale = self.inv_std if self.weight is None else self.weight * self.inv_std  # γ / √(σ² + ε)
            if self.training:
                sum_gy = gy.sum(axis=axes, keepdims=True)
                sum_gy_xhat = (gy * x_hat).sum(axis=axes, keepdims=True)
                gx = (scale / self.m) * (self.m * gy - sum_gy - x_hat * sum_gy_xhat)
            else:
                gx = gy * scale
        if needs[1]:
            g_weight = (gy * x_hat).sum(axis=axes)     # dL/dγ = Σ dL/dy · x̂
        if needs[2]:
            g_bias = gy.sum(axis=axes)                 # dL/dβ = Σ dL/dy
        return gx, g_weight, g_bias


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation of ``x`` (N, C) or (N, C, H, W) per channel; see :class:`BatchNorm`.

    ``running_mean`` / ``running_var``: arrays or Tensors of shape (C,), updated in place
    in training mode (either may be None there, to track no statistics); ``weight`` γ and
    ``bias`` β: optional Tensors of shape (C,).
    """
    training = check_bool(training, "batch_norm", "training")
    momentum = check_number(momentum, "batch_norm", "momentum", low=0, high=1)
    eps = check_number(eps, "batch_norm", "eps", low=0)
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expects an input (N, C, ...) with a channel axis; got shape {x.shape}")
    C = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)}; the input {x.shape} has "
                             f"{C} channels, so it must be ({C},)")
    check_same_dtype("batch_norm", x, weight=weight, bias=bias)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and backend.device_of(raw(t)) != x.device:
            raise RuntimeError(f"batch_norm: {name} is on {backend.device_of(raw(t))} and the input on {x.device}; "
                               f"the running statistics are updated in place where they are: move the layer "
                               f"(model.to(device))")
    return BatchNorm.apply(x, weight, bias, running_mean=raw(running_mean), running_var=raw(running_var),
                           training=bool(training), momentum=momentum, eps=eps)


class Dropout(Function):
    """Inverted dropout: keep each value with probability 1 − p and scale it by 1/(1 − p),
    so the expected output equals the input and evaluation needs no rescaling.

        mask_i = [u_i ≥ p] / (1 − p),  u_i ~ U[0, 1);   y = x ⊙ mask;   dL/dx = dL/dy ⊙ mask

    Both products are computed as selects (:func:`minikd.kernels.scaled_select`): x·s where kept,
    0 where dropped, s = 1/(1 − p), so a dropped inf or NaN gives 0 rather than NaN.
    """

    float_only = True  # refuses integer input (Function.float_only)

    saves_inputs = False  # backward reads no input value (only shapes, or what forward computed)

    def forward(self, x, p):
        # the mask is drawn on the CPU from minikd's seeded generator, so a seed gives the
        # same mask on every device; then it moves to where x lives
        keep = get_rng().random(x.shape) >= p
        self.keep = backend.to_device(keep, backend.device_of(x))
        self.s = x.dtype.type(1.0 / (1.0 - p))  # the scale of the kept values, in x's dtype
        # a select, not x · mask, for the dropped values: an inf that is dropped gives 0, not NaN
        return kernels.scaled_select(self.keep, x, self.s)  # xp.where(keep, x · s, 0)

    def backward(self, gy):
        return kernels.scaled_select(self.keep, gy, self.s)  # xp.where(keep, dL/dy · s, 0)


def dropout(x, p=0.5, training=True):
    """Zero each value with probability ``p`` in training (scaling the rest by 1/(1 − p));
    the identity in evaluation or for p = 0."""
    p = check_number(p, "dropout", "p (the probability of dropping a value)", low=0, high=1, high_open=True)
    training = check_bool(training, "dropout", "training")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    return Dropout.apply(x, p=float(p))
