"""Shared test helpers. The one gradient-check harness every op test uses (Chainer's idea):
give it the op, NumPy inputs and which of them are differentiable; it builds float64 tensors
and runs ``minikd.gradcheck`` on them. And the loader of the examples run on real MNIST."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import minikd as mk


def check_grad(fn, *arrays, wrt=None, **kwargs):
    """gradcheck ``fn`` on float64 copies of ``arrays``.

    ``wrt``: indices of the inputs to differentiate (default: every floating input).
    Non-float arrays (labels, masks) are passed as constant tensors.
    """
    tensors = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        grad = a.dtype.kind == "f" and (wrt is None or i in wrt)
        tensors.append(mk.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a, requires_grad=grad))
    return mk.gradcheck(fn, *tensors, **kwargs)


def away_from_kinks(rng, shape, low=0.1, high=1.0):
    """Random values with |x| in [low, high] and random sign: never at ReLU's kink at 0."""
    mag = rng.uniform(low, high, size=shape)
    return mag * rng.choice([-1.0, 1.0], size=shape)


def distinct(rng, shape, gap=0.05):
    """Random values that differ pairwise by at least ``gap``: no ties for max or pooling."""
    n = int(np.prod(shape))
    values = np.arange(n) * gap + rng.uniform(0, gap / 4, size=n)
    return rng.permutation(values).reshape(shape) - n * gap / 2


# --------------------------------------------------------------------------- examples on real MNIST

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def have_mnist() -> bool:
    """True when the four real MNIST files are found (argument-free lookup: MINIKD_DATA, the cache)."""
    from minikd.data import find_data_dir

    try:
        find_data_dir()
        return True
    except FileNotFoundError:
        return False


needs_mnist = pytest.mark.skipif(not have_mnist(), reason="real MNIST files not found (set MINIKD_DATA)")


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (its ``common`` helpers resolve from examples/)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------- plain-Python references of the lecture's formulas


def ref_softmax(z, T=1.0):
    """p_i = exp(z_i/T) / Σ_j exp(z_j/T), shifted by the max so huge logits stay finite."""
    m = max(v / T for v in z)
    e = [math.exp(v / T - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def ref_log_softmax(z, T=1.0):
    m = max(v / T for v in z)
    lse = m + math.log(sum(math.exp(v / T - m) for v in z))
    return [v / T - lse for v in z]


def ref_kl(P, Q):
    """The lecture's own code: sum(p * log(p / q) for p, q in zip(P, Q) if p != 0)."""
    return sum(p * math.log(p / q) for p, q in zip(P, Q) if p != 0)


# --------------------------------------------------------------------------- NumPy references for the loss tests


def np_softmax(z, T=1.0):
    """softmax(z / T) over the last axis of a 2-D array, written from the formula."""
    e = np.exp(z / T - (z / T).max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_ce(z, y):
    """Mean cross-entropy of logits z (N, C) against integer labels y."""
    return -np.log(np_softmax(z))[np.arange(len(y)), y].mean()


def np_kl(p, q):
    """Batch-mean D_KL(p ‖ q) of probability rows."""
    return (p * np.log(p / q)).sum(axis=1).mean()
