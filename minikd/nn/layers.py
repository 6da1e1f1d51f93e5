"""The layers networks are built from. Each one holds its Parameters, checks its input
(so a wrong shape gives a sentence naming the layer, not a NumPy traceback deep in an
op) and calls the matching function of ``minikd.functional``.

Parameter counts, in the lecture's names (d_prev input channels, d output channels,
k kernel size, p padding, s stride):

    Linear(I → O):        (I + 1) · O
    Conv2d(d_prev → d, k): d · k · k · d_prev / groups + d
    ConvTranspose2d(d_prev → d, k): d · k · k · d_prev + d
    Embedding(n, dim):     n · dim
    BatchNorm(C):          2 · C learned (γ, β) + 2 · C running statistics (buffers)
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..checks import ArgumentTypeError, check_bool, check_choice, check_int, check_number, check_pair
from . import init
from .module import Module, Parameter


def _shape(x):
    return tuple(x.shape)


def _check_array(layer, x) -> None:
    """A layer's input is a Tensor or an array: anything else (a list, a number) is a TypeError
    naming the layer, before its shape is read."""
    if not hasattr(x, "ndim"):
        raise TypeError(f"{type(layer).__name__}: the input must be a Tensor or an array; got a {type(x).__name__} "
                        "(make one with mk.tensor(...))")




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
        self.bias = Parameter(np.empty(out_features, dtype=np.float32)) if check_bool(bias, "Linear", "bias") else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(−1/√fan_in, 1/√fan_in)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def check_input(self, x):
        """The layer's own sentence for a wrong input (the op checks the rest: dtype, weight, bias)."""
        _check_array(self, x)
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
        self.bias = Parameter(np.empty(d, dtype=np.float32)) if check_bool(bias, "Conv2d", "bias") else None
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
        _check_array(self, x)
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


# --------------------------------------------------------------------------- ConvTranspose2d

class ConvTranspose2d(Module):
    """Transposed 2-D convolution (the upsampling layer of a generator): each input pixel scatters
    its k×k kernel, scaled by its value, onto the output at stride s; see ``F.conv_transpose2d``.

    Input (N, d_prev, H, W) → output (N, d, (H − 1)·s − 2p + k + output_padding, … alike for W),
    with 0 ≤ output_padding < s. Weight shape (d_prev, d, k, k) (PyTorch's order: the adjoint of
    a Conv2d(d → d_prev)); d · k · k · d_prev + d parameters with bias. No groups, no dilation.

    Initialised as PyTorch does, by the same code as Conv2d: U(−1/√fan_in, 1/√fan_in) for the
    weight and the bias, where fan_in is read from the weight's second axis as for any weight,
    which here is d: fan_in = d · k · k (the *output* channels — PyTorch's convention, kept so that
    a model built here starts like the same model in PyTorch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, bias: bool = True):
        super().__init__()
        name = "ConvTranspose2d"
        d_prev = check_int(in_channels, name, "in_channels", low=1)
        d = check_int(out_channels, name, "out_channels", low=1)
        self.in_channels, self.out_channels = d_prev, d
        self.kernel_size = check_pair(kernel_size, name, "kernel_size", low=1)
        self.stride = check_pair(stride, name, "stride", low=1)
        self.padding = check_pair(padding, name, "padding", low=0)
        self.output_padding = check_pair(output_padding, name, "output_padding", low=0)
        if any(o >= s for o, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"{name}: output_padding must be smaller than the stride (PyTorch's rule); "
                             f"got output_padding={output_padding}, stride={stride}")
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((d_prev, d, kh, kw), dtype=np.float32))
        self.bias = Parameter(np.empty(d, dtype=np.float32)) if check_bool(bias, "ConvTranspose2d", "bias") else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(−1/√fan_in, 1/√fan_in), fan_in = d·k·k
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def check_input(self, x):
        """The layer's own sentence for a wrong input (the op checks the rest: sizes, dtype, ...)."""
        _check_array(self, x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            k = _single(self.kernel_size)
            raise ValueError(f"ConvTranspose2d({self.in_channels}→{self.out_channels}, k={k}) expects "
                             f"(N, {self.in_channels}, H, W); got {_shape(x)}")

    def forward(self, x):
        self.check_input(x)
        return F.conv_transpose2d(x, self.masked("weight"), self.masked("bias"), stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


# --------------------------------------------------------------------------- Embedding

class Embedding(Module):
    """A table of ``num_embeddings`` learned vectors of size ``embedding_dim``, looked up by index
    (a class label, a token): integer indices of any shape → (*indices.shape, embedding_dim).
    See ``F.embedding``. Weight (n, dim): n · dim parameters; initialised N(0, 1), as PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "Embedding", "num_embeddings", low=1)
        self.embedding_dim = check_int(embedding_dim, "Embedding", "embedding_dim", low=1)
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=np.float32))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


# --------------------------------------------------------------------------- Upsample

class Upsample(Module):
    """Resize (N, C, H, W) maps by ``F.interpolate``: to ``size`` (H', W'), or by ``scale_factor``
    (H' = ⌊H · s⌋; an int, a float or an (s_H, s_W) pair) — exactly one of the two. No parameters.

    ``mode``: "nearest" (the default, as PyTorch: each output copies the pixel ⌊i·H/H'⌋) or
    "bilinear". ``align_corners``: None (False) or a bool, for "bilinear" only, as in PyTorch.
    Source positions are computed from the sizes (PyTorch's ``recompute_scale_factor=True``).
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None):
        super().__init__()
        name = "Upsample"
        check_choice(mode, ("nearest", "bilinear"), name, "mode")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{name}: give exactly one of size and scale_factor; got size={size!r}, "
                             f"scale_factor={scale_factor!r}")
        if align_corners is not None and not isinstance(align_corners, bool):
            raise ArgumentTypeError(f"{name}: align_corners must be None, True or False; got {align_corners!r}")
        if mode == "nearest" and align_corners is not None:
            raise ValueError(f"{name}: align_corners applies to mode='bilinear' only; got align_corners="
                             f"{align_corners} with mode='nearest' (leave it None)")
        if size is not None:
            check_pair(size, name, "size", low=1)
        else:
            pair = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
            if len(pair) not in (1, 2):
                raise ArgumentTypeError(f"{name}: scale_factor must be a positive number or a pair of them; "
                                        f"got {scale_factor!r}")
            for v in pair:
                check_number(v, name, "scale_factor", low=0, low_open=True)
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x):
        _check_array(self, x)
        if x.ndim != 4:
            raise ValueError(f"Upsample({self.extra_repr()}) expects (N, C, H, W); got {_shape(x)}")
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=bool(self.align_corners))

    def extra_repr(self):
        what = f"size={self.size!r}" if self.size is not None else f"scale_factor={self.scale_factor!r}"
        s = f"{what}, mode={self.mode!r}"
        if self.align_corners is not None:
            s += f", align_corners={self.align_corners}"
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
        _check_array(self, x)
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
    #: a checkpoint may lack it (minikd before it kept the count, as PyTorch allows too)
    optional_buffers = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        op = type(self).__name__
        num_features = check_int(num_features, op, "num_features", low=1)
        eps = check_number(eps, op, "eps", low=0)
        if momentum is not None:  # None: the cumulative average of all batches (as in PyTorch)
            momentum = check_number(momentum, op, "momentum", low=0, high=1)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine = affine = check_bool(affine, op, "affine")
        C = self.num_features
        self.weight = Parameter(np.ones(C, dtype=np.float32)) if affine else None   # γ
        self.bias = Parameter(np.zeros(C, dtype=np.float32)) if affine else None    # β
        self.register_buffer("running_mean", np.zeros(C, dtype=np.float32))
        self.register_buffer("running_var", np.ones(C, dtype=np.float32))
        # training batches seen, k (int64, as PyTorch's buffer of the same name, so state dicts match
        # key for key); it sets the momentum 1/k when momentum is None
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def reset_running_stats(self):
        init.zeros_(self.running_mean)
        init.ones_(self.running_var)

    def _check(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x):
        self._check(x)
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative average: the k-th batch weighs 1/k
                momentum = 1.0 / int(self.num_batches_tracked.data)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=0.0 if momentum is None else momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) (or (N, C, L)) inputs per feature C; see ``F.batch_norm``:
    y = γ · (x − μ)/√(σ² + ε) + β, batch statistics in training, running ones in evaluation."""

    def _check(self, x):
        C = self.num_features
        _check_array(self, x)
        if x.ndim not in (2, 3) or x.shape[1] != C:
            raise ValueError(f"BatchNorm1d({C}) expects (N, {C}) or (N, {C}, L); got {_shape(x)}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs per channel C, over (N, H, W); see ``F.batch_norm``."""

    def _check(self, x):
        C = self.num_features
        _check_array(self, x)
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
        _check_array(self, x)
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
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dropout", "Embedding", "Flatten",
    "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "Upsample",
]
