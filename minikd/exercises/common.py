"""What every task's check shares: the failure it raises and the comparison that names the wrong element."""

from __future__ import annotations

import numpy as np


class CheckFailed(AssertionError):
    """The learner's code ran but gave a wrong answer; the message says where and what was expected."""


def index_text(idx) -> str:
    """(1, 2) for a 2-d index, (3,) for a 1-d one, () for a scalar."""
    return "(" + ", ".join(str(int(i)) for i in idx) + ("," if len(idx) == 1 else "") + ")"


def expect_close(got, expected, what: str, rtol: float = 1e-6, atol: float = 1e-9, inputs=None) -> None:
    """Raise :class:`CheckFailed` unless ``got`` has ``expected``'s shape and values.

    The message names the first wrong element, both values and (given ``inputs`` of the same
    shape) the input there: "gradient wrong at input index (1, 2): got 0.5, expected 0.25 (x = 1.3)".
    """
    if got is None:  # np.asarray(None) would report "wrong shape: got ()"
        raise CheckFailed(f"{what}: got None — does your function return its result?")
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise CheckFailed(f"{what}: wrong shape: got {got.shape}, expected {expected.shape}")
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
        at = f" (x = {np.asarray(inputs)[idx]:.6g})" if inputs is not None else ""
        raise CheckFailed(f"{what} wrong at input index {index_text(idx)}: got {got[idx]:.6g}, "
                          f"expected {expected[idx]:.6g}{at}; {int(bad.sum())} of {bad.size} element(s) wrong")


def call(fn, name: str, *args, **kwargs):
    """``fn(*args)``, with an exception from the learner's code turned into a failure naming ``name``."""
    if not callable(fn):
        raise CheckFailed(f"{name} must be a function; your file defines it as {fn!r:.40} ({type(fn).__name__})")
    try:
        return fn(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as e:
        raise CheckFailed(f"{name} raised {type(e).__name__}: {e}") from e
