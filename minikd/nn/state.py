"""How ``Module.load_state_dict`` decides whether a checkpoint's array can go into a tensor:
same-kind casts only (bool → int → float → complex), no integer overflow, no float overflow.
Read this after :mod:`minikd.nn.module`; the learner's path does not need it."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor

_KIND_NAMES = {"b": "booleans", "i": "signed integers", "u": "unsigned integers", "f": "floats",
               "c": "complex numbers", "U": "strings", "S": "byte strings", "M": "dates", "m": "time spans",
               "V": "structured values", "O": "Python objects"}


def conversion_problem(value: np.ndarray, dtype) -> str | None:
    """Why ``value`` cannot be stored in a tensor of ``dtype`` without changing what it says
    (None: it can). Same-kind casts only (bool → int → float → complex), and no overflow."""
    dtype = np.dtype(dtype)
    if not np.can_cast(value.dtype, dtype, casting="same_kind"):
        if value.dtype.kind == "f" and dtype.kind in "iu":
            return ("a float cannot be stored in an integer tensor without rounding or wrapping; quantize it "
                    "first (minikd.quant) or load it into the float model")
        return f"{_KIND_NAMES.get(value.dtype.kind, value.dtype.kind)} cannot be stored in a {dtype} tensor"
    if value.size == 0:
        return None
    if dtype.kind in "iu" and value.dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = value.min(), value.max()
        if lo < info.min or hi > info.max:
            return f"values from {lo} to {hi} do not fit its range [{info.min}, {info.max}]"
    if dtype.kind in "fc" and value.dtype.kind in "fc" and dtype.itemsize < value.dtype.itemsize:
        finite = np.isfinite(value)
        with np.errstate(over="ignore"):
            if not np.isfinite(value[finite].astype(dtype)).all():
                return f"finite values as large as {np.abs(value[finite]).max()} overflow {dtype} to ±inf"
    return None


def to_numpy(value):
    """A state-dict value (array or Tensor, any device) as a NumPy array."""
    if isinstance(value, Tensor):
        return value.numpy()
    return backend.to_numpy(value) if hasattr(value, "shape") else np.asarray(value)
