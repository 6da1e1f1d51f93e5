"""Argument checks, one way everywhere.

Every public entry point (an op, a layer, an optimizer, a loss, a pruning or
quantization function) checks its arguments with these few functions, so a bad
argument always gets the same kind of sentence: the op or layer, the argument, what
it got and what it expects::

    >>> from minikd.checks import check_int
    >>> check_int(2.5, "Conv2d", "kernel_size", low=1)
    Traceback (most recent call last):
    ...
    minikd.checks.ArgumentTypeError: Conv2d: kernel_size must be an int; got 2.5 (float)

Rules, the same as PyTorch's and NumPy's where they have one:

- **sizes are integers**: Python ``int`` or a NumPy integer; ``bool``, ``float`` and
  ``str`` are refused (``2.5`` does not silently become 2, ``"1"`` does not become 1);
- **numbers are numbers**: an ``int``, ``float`` or NumPy scalar; not a string, not a
  ``bool`` (``lr="1e-3"`` and ``T=True`` are refused);
- **axes are in range**: ``-ndim ≤ axis < ndim``, returned non-negative;
- a wrong *type* raises :class:`ArgumentTypeError`, which is both a ``TypeError`` and a
  ``ValueError`` (as NumPy's ``AxisError`` is both a ``ValueError`` and an ``IndexError``),
  so either ``except`` catches it; a right type with a wrong *value* raises ``ValueError``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a str for a number, a float for a size, ...)."""


def _what(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def is_int(value) -> bool:
    """An integer that is not a bool: ``int`` or a NumPy integer."""
    if type(value) is int:  # the usual case first: these checks run on every op call
        return True
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A real number that is not a bool: ``int``, ``float`` or a NumPy integer/float scalar."""
    if type(value) is float or type(value) is int:
        return True
    return isinstance(value, (numbers.Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(value, op: str, name: str, low: int | None = None) -> int:
    """``value`` as an ``int``; TypeError unless it is one, ValueError if below ``low``."""
    if not is_int(value):
        raise ArgumentTypeError(f"{op}: {name} must be an int; got {_what(value)}")
    value = int(value)
    if low is not None and value < low:
        rule = "positive" if low == 1 else "≥ 0" if low == 0 else f"≥ {low}"
        raise ValueError(f"{op}: {name} must be {rule}; got {value}")
    return value


def check_bool(value, op: str, name: str) -> bool:
    """``value`` as a ``bool``; TypeError unless it is True or False (a string such as "no" is
    truthy, so it would silently mean True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{op}: {name} must be True or False; got {_what(value)}")
    return bool(value)


def check_module(model, op: str, name: str = "model"):
    """``model`` itself when it is a minikd ``nn.Module`` (anything with ``named_modules``); a
    TypeError naming ``op`` otherwise (None, a function, a state dict passed by mistake)."""
    if not hasattr(model, "named_modules"):
        raise TypeError(f"{op}: {name} must be a minikd nn.Module; got {type(model).__name__}")
    return model


def check_pair(value, op: str, name: str, low: int | None = None) -> tuple[int, int]:
    """An int or a pair of ints, as the pair (height, width), each checked by :func:`check_int`."""
    if type(value) is int and (low is None or value >= low):  # the usual case, fast: once per op call
        return value, value
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not (is_int(pair[0]) and is_int(pair[1])):
        raise ArgumentTypeError(f"{op}: {name} must be an int or a pair of ints (h, w); got {_what(value)}")
    return check_int(pair[0], op, name, low), check_int(pair[1], op, name, low)


def check_number(value, op: str, name: str, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, finite: bool = True) -> float:
    """``value`` as a ``float``; TypeError unless it is a number, ValueError outside the range.

    ``low``/``high``: bounds (None: unbounded), inclusive unless ``low_open``/``high_open``.
    ``finite``: refuse NaN and ±inf.
    """
    if not is_number(value):
        raise ArgumentTypeError(f"{op}: {name} must be a number; got {_what(value)}")
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{op}: {name} must be a finite number; got {v}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "" if high is None else f"{high}{')' if high_open else ']'}"
        if low is not None and high is not None:
            rule = f"in {lo}, {hi}"
        elif low is not None:
            rule = f"{'>' if low_open else '≥'} {low}"
        else:
            rule = f"{'<' if high_open else '≤'} {high}"
        raise ValueError(f"{op}: {name} must be {rule}; got {value!r}")
    return v


def check_temperature(T, op: str) -> float:
    """The temperature T: a positive, finite number (T → 0 is an arg-max, not a softmax)."""
    if not is_number(T):
        raise ArgumentTypeError(f"{op}: the temperature T must be a positive finite number; got T={_what(T)}")
    v = float(T)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{op}: the temperature T must be a positive finite number; got T={T!r}")
    return v


def check_axis(axis, ndim: int, op: str, name: str = "axis", extra: int = 0) -> int:
    """``axis`` as a non-negative int in [0, ndim + extra) (``extra=1`` for ``stack``'s new axis)."""
    if not is_int(axis):
        raise ArgumentTypeError(f"{op}: {name} must be an int; got {_what(axis)}")
    n = ndim + extra
    if not -n <= axis < n:
        raise ValueError(f"{op}: {name} {axis} is out of range for a tensor with {ndim} dimensions "
                         f"(expected {-n} ≤ {name} < {n})")
    return int(axis) % n


def check_choice(value, choices, op: str, name: str):
    """``value`` if it is one of ``choices``; else ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{op}: {name} must be one of {tuple(choices)}; got {value!r}")
    return value


def check_broadcast(shape_a, shape_b, op: str) -> tuple:
    """The broadcast shape of two operands; ValueError naming the op and both shapes if none."""
    try:
        return tuple(np.broadcast_shapes(tuple(shape_a), tuple(shape_b)))
    except ValueError:
        raise ValueError(f"{op}: shapes {tuple(shape_a)} and {tuple(shape_b)} cannot be broadcast together "
                         "(from the right, each pair of sizes must be equal or one of them 1)") from None


def check_same_dtype(op: str, x, **params):
    """The input and each parameter (None: absent) must share one dtype: no silent promotion.

    float64 or integer input to a float32 layer would otherwise give a float64 output and a
    float64 gradient on a float32 weight. TypeError names the op, both dtypes and the fix.
    """
    for name, a in params.items():
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: input dtype {x.dtype} and {name} dtype {a.dtype} differ; "
                            f"convert one of them (e.g. x.astype({a.dtype.name!r}))")


def check_floating(op: str, **arrays):
    """Each named array or Tensor must hold floating-point numbers (an embedding, a unit vector,
    a distance of integers is not one): TypeError naming the op, the argument and its dtype."""
    for name, a in arrays.items():
        if a is not None and a.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must hold floating-point numbers; got dtype {a.dtype} "
                            f"(convert it, e.g. {name}.astype('float32'))")
