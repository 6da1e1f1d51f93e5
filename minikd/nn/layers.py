"""The layers networks are built from. Each one holds its Parameters, checks its input
(so a wrong shape gives a sentence naming the layer, not a NumPy traceback deep in an
op) and calls the matching function of ``minikd.functional``.

Parameter counts, in the lecture's names (d_prev input channels, d output channels,
k kernel size, p padding, s stride):

    Linear(I → O):        (I + 1) · O
    Conv2d(d_prev → d, k): d · k · k · d_prev / groups + d
    BatchNorm(C):          2 · C learned (γ, β) + 2 · C running statistics (buffers)
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..checks import check_int, check_number, check_pair
from . import init
from .module import Module, Parameter


def _shape(x):
    return tuple(x.shape)




def _single(pair):
    """A square pair back to one int (how the pooling and conv ops take their sizes)."""
    return pair[0] if pair[0] == pair[1] else pair


# --------------------------------------------------------------------------- Linear

class Linear(Module):
    """Fully connected layer: y = x Wᵀ + b, W of shape (out_features, in_features).

    (in_features + 1) · out_features parameters. Initialised like PyTorch: W and b from
    U(−1/√in_features, 1/√in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        in_features = check_int(in_features, "Linear", "in_features", low=1)
        out_features = check_int(out_features, "Linear", "out_features", low=1)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        self.bias = Parameter(np.empty(out_features, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(−1/√fan_in, 1/√fan_in)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def check_input(self, x):
        """The layer's own sentence for a wrong input (the op checks the rest: dtype, weight, bias)."""
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}→{self.out_features}) expects (..., {self.in_features}); "
                             f"got {_shape(x)}")

    def forward(self, x):
        self.check_input(x)
        return F.linear(x, self.masked("weight"), self.masked("bias"))  # masked: see minikd.prune

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# --------------------------------------------------------------------------- Conv2d

class Conv2d(Module):
    """2-D convolution: d filters of shape (d_prev/groups, k, k) slide over the input with
    stride s and zero padding p.

    Input (N, d_prev, H, W) → output (N, d, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1).
    Weight shape (d, d_prev/groups, k, k); d · k · k · d_prev/groups + d parameters with
    bias. Initialised like PyTorch: U(−1/√fan_in, 1/√fan_in) with fan_in = d_prev · k · k / groups.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        d_prev = check_int(in_channels, "Conv2d", "in_channels", low=1)
        d = check_int(out_channels, "Conv2d", "out_channels", low=1)
        groups = check_int(groups, "Conv2d", "groups", low=1)
        if d_prev % groups or d % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide both in_channels={d_prev} and "
                             f"out_channels={d}")
        self.in_channels, self.out_channels, self.groups = d_prev, d, int(groups)
        self.kernel_size = check_pair(kernel_size, "Conv2d", "kernel_size", low=1)
        self.stride = check_pair(stride, "Conv2d", "stride", low=1)
        self.padding = check_pair(padding, "Conv2d", "padding", low=0)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((d, d_prev // groups, kh, kw), dtype=np.float32))
        self.bias = Parameter(np.empty(d, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(−1/√fan_in, 1/√fan_in)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)  # d_prev·k·k/groups
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _name(self):
        k = _single(self.kernel_size)
        return f"Conv2d({self.in_channels}→{self.out_channels}, k={k})"

    def check_input(self, x):
        """The layer's own sentence for a wrong input (the op checks the rest: the window, dtype, ...)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self._name()} expects (N, {self.in_channels}, H, W); got {_shape(x)}")

    def forward(self, x):
        self.check_input(x)
        return F.conv2d(x, self.masked("weight"), self.masked("bias"), stride=_single(self.stride),
                        padding=_single(self.padding), groups=self.groups)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


# --------------------------------------------------------------------------- pooling

class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride  # non-overlapping windows by default
        self.padding = padding
        op = type(self).__name__
        k = check_pair(kernel_size, op, "kernel_size", low=1)
        check_pair(self.stride, op, "stride", low=1)
        p = check_pair(padding, op, "padding", low=0)
        if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
            raise ValueError(f"{type(self).__name__}: padding {padding} must be at most half the kernel size "
                             f"{kernel_size}")

    def _check(self, x):
        # the layer names itself; the window, stride and padding are checked by the op (minikd/ops/pool.py)
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}(kernel_size={self.kernel_size}) expects (N, C, H, W); "
                             f"got {_shape(x)}")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling: each k×k window (stride s, default k) → its largest value. No parameters."""

    def forward(self, x):
        self._check(x)
        return F.max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class AvgPool2d(_Pool2d):
    """Average pooling: each k×k window (stride s, default k) → its mean. No parameters."""

    def forward(self, x):
        self._check(x)
        return F.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


# --------------------------------------------------------------------------- batch norm

class _BatchNorm(Module):
    _expects = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        op = type(self).__name__
        num_features = check_int(num_features, op, "num_features", low=1)
        eps = check_number(eps, op, "eps", low=0)
        if momentum is not None:  # None: the cumulative average of all batches (as in PyTorch)
            momentum = check_number(momentum, op, "momentum", low=0, high=1)
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, bool(affine)
        self.num_batches_tracked = 0  # training batches seen; sets the momentum 1/k when momentum is None
        C = self.num_features
        self.weight = Parameter(np.ones(C, dtype=np.float32)) if affine else None   # γ
        self.bias = Parameter(np.zeros(C, dtype=np.float32)) if affine else None    # β
        self.register_buffer("running_mean", np.zeros(C, dtype=np.float32))
        self.register_buffer("running_var", np.ones(C, dtype=np.float32))

    def reset_running_stats(self):
        init.zeros_(self.running_mean)
        init.ones_(self.running_var)

    def _check(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x):
        self._check(x)
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative average: the k-th batch weighs 1/k
                momentum = 1.0 / self.num_batches_tracked
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=0.0 if momentum is None else momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) (or (N, C, L)) inputs per feature C; see ``F.batch_norm``:
    y = γ · (x − μ)/√(σ² + ε) + β, batch statistics in training, running ones in evaluation."""

    def _check(self, x):
        C = self.num_features
        if x.ndim not in (2, 3) or x.shape[1] != C:
            raise ValueError(f"BatchNorm1d({C}) expects (N, {C}) or (N, {C}, L); got {_shape(x)}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs per channel C, over (N, H, W); see ``F.batch_norm``."""

    def _check(self, x):
        C = self.num_features
        if x.ndim != 4 or x.shape[1] != C:
            raise ValueError(f"BatchNorm2d({C}) expects (N, {C}, H, W); got {_shape(x)}")


# --------------------------------------------------------------------------- activations and friends

class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """y = x for x > 0, negative_slope · x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = check_number(negative_slope, "LeakyReLU", "negative_slope")

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + e^(−x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh x."""

    def forward(self, x):
        return F.tanh(x)


class Dropout(Module):
    """Inverted dropout: in training zero each value with probability p and scale the rest
    by 1/(1 − p); the identity in evaluation."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_number(p, "Dropout", "p (the probability of dropping a value)", low=0, high=1, high_open=True)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge the axes from ``start_axis`` on: (N, C, H, W) → (N, C·H·W)."""

    def __init__(self, start_axis: int = 1):
        super().__init__()
        self.start_axis = check_int(start_axis, "Flatten", "start_axis", low=0)

    def forward(self, x):
        if x.ndim <= self.start_axis:
            raise ValueError(f"Flatten(start_axis={self.start_axis}) expects at least {self.start_axis + 1} "
                             f"axes; got {_shape(x)}")
        return F.flatten(x, self.start_axis)

    def extra_repr(self):
        return f"start_axis={self.start_axis}"


class Identity(Module):
    """y = x (a placeholder, e.g. where a layer was removed)."""

    def forward(self, x):
        return x


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(a, b, c)(x) = c(b(a(x)))``.

    Sub-modules are named "0", "1", ... (or by the keys of an OrderedDict), so their
    parameters are "0.weight", "0.bias", ...; indexable, sliceable, iterable.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        try:
            return items[index][1]
        except IndexError:
            raise IndexError(f"Sequential index {index} is out of range for {len(self)} modules") from None


__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Identity", "LeakyReLU",
    "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
]
