"""Anomaly mode: where is a NaN or ±inf born?

A NaN spreads: every value computed from one is NaN too, and by the time the loss is printed
nothing says which op made the first. Inside ``with minikd.detect_anomaly():`` every op's
output (``Function.apply``) and every gradient (``Tensor.backward``) is checked, and the
first op that turns finite inputs into a non-finite value raises :class:`AnomalyError`,
naming the op and its input shapes. A non-finite value already in an op's inputs is passed
on: it was born earlier. Outside the block nothing is checked and nothing costs.
(docs/debugging.md walks through an example.)
"""

from __future__ import annotations

import contextlib

_enabled = False


def enabled() -> bool:
    return _enabled


is_anomaly_enabled = enabled


class AnomalyError(FloatingPointError):
    """An op produced a NaN or ±inf from finite values (raised in ``detect_anomaly`` mode)."""


@contextlib.contextmanager
def detect_anomaly():
    """Check every op's output and every gradient in this block; see the module docstring::

        with mk.detect_anomaly():
            loss = model(x).log().sum()      # AnomalyError: Log (forward, inputs (64, 10)) made ...
            loss.backward()
    """
    global _enabled
    previous, _enabled = _enabled, True
    try:
        yield
    finally:
        _enabled = previous


def check_forward(fn, tensors, y):
    """Raise if op ``fn`` made a non-finite ``y`` from finite input tensors."""
    xp = fn.xp
    if _finite(y, xp) or not all(_finite(t.data, xp) for t in tensors if t is not None):
        return
    shapes = ", ".join(str(tuple(t.shape)) for t in tensors if t is not None)
    raise AnomalyError(f"{type(fn).__name__} (forward, inputs {shapes}) made {_bad(y, xp)} from finite "
                       f"inputs; output shape {tuple(y.shape)}")


def check_backward(fn, gy, grads):
    """Raise if op ``fn``'s backward made a non-finite gradient from a finite ``gy`` and finite inputs."""
    xp = fn.xp
    if not _finite(gy, xp) or not all(_finite(t.data, xp) for t in fn.inputs if t is not None):
        return
    shapes = ", ".join(str(tuple(t.shape)) for t in fn.inputs if t is not None)
    for i, g in enumerate(grads):
        if g is not None and not _finite(g, xp):
            raise AnomalyError(f"{type(fn).__name__} (inputs {shapes}) (backward) made {_bad(g, xp)} in the gradient "
                               f"of input {i} from a finite upstream gradient and finite inputs")


def _finite(a, xp) -> bool:
    return a.dtype.kind not in "fc" or bool(xp.isfinite(a).all())


def _bad(a, xp) -> str:
    nan, inf = int(xp.isnan(a).sum()), int(xp.isinf(a).sum())
    parts = [f"{nan} NaN" if nan else "", f"{inf} ±inf" if inf else ""]
    return " and ".join(p for p in parts if p) + f" (of {a.size} values)"
