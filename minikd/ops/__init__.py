"""Differentiable ops, grouped by kind. Each op is one ``Function`` subclass plus the
lowercase function users call; ``minikd.functional`` gathers the ones for networks."""

from .activation import clip, leaky_relu, relu, sigmoid, tanh
from .elementwise import abs, add, cast, div, exp, log, mul, neg, pow, sqrt, sub, where
from .matmul import linear, matmul
from .reduce import max, mean, sum
from .resize import interpolate
from .shape import concatenate, flatten, getitem, permute, reshape, stack, to_device, transpose

__all__ = [
    "abs", "add", "cast", "clip", "concatenate", "div", "exp", "flatten", "getitem", "interpolate", "leaky_relu",
    "linear", "log", "matmul", "max", "mean", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid",
    "sqrt", "stack", "sub", "sum", "tanh", "to_device", "transpose", "where",
]
