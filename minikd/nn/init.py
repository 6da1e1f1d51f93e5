"""Weight initialisation, in place, with PyTorch's formulas and minikd's seeded generator.

fan_in of a weight = the number of inputs each output sees:
    Linear (O, I):                       fan_in = I
    Conv2d (d, d_prev/groups, k, k):     fan_in = d_prev·k·k / groups
PyTorch's default for both layers, ``kaiming_uniform_(w, a=√5)``, is U(−1/√fan_in, 1/√fan_in).

Numbers are drawn on the CPU in float32 from ``minikd.random.get_rng()`` (so
``mk.manual_seed(s)`` gives the same weights on every device), then written into
the tensor on its own device and in its own dtype.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..random import get_rng


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel): in·Πkernel and out·Πkernel."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"fan_in and fan_out need a weight with at least 2 dimensions; got shape {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def calculate_gain(nonlinearity: str = "leaky_relu", param=None) -> float:
    """The factor that keeps the activations' variance steady through the nonlinearity."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values: np.ndarray):
    """Write CPU ``values`` into ``tensor`` in place, on its device and in its dtype."""
    tensor.data[...] = backend.to_device(values.astype(tensor.dtype, copy=False), tensor.device)
    tensor._mark_modified()
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with U(a, b)."""
    u = get_rng().random(tensor.shape, dtype=np.float32)
    return _fill(tensor, a + (b - a) * u)


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with N(mean, std²)."""
    z = get_rng().standard_normal(tensor.shape, dtype=np.float32)
    return _fill(tensor, mean + std * z)


def constant_(tensor, value: float):
    tensor.data[...] = value
    tensor._mark_modified()
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """He initialisation, uniform: U(−bound, bound) with bound = gain · √(3 / fan),
    gain = √(2 / (1 + a²)) for leaky ReLU of slope a. With a = √5: bound = 1/√fan_in."""
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """He initialisation, normal: N(0, std²) with std = gain / √fan."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain: float = 1.0):
    """Glorot initialisation: U(−bound, bound), bound = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """Glorot initialisation: N(0, std²), std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
