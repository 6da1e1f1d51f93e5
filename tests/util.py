"""Shared test helpers. The one gradient-check harness every op test uses (Chainer's idea):
give it the op, NumPy inputs and which of them are differentiable; it builds float64 tensors
and runs ``minikd.gradcheck`` on them, then the same op on another device (the stand-in, or a
GPU), which must give the CPU's numbers. And the loader of the examples run on real MNIST."""

import importlib.util
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import minikd as mk

#: the device every op test is repeated on: the stand-in (tests/standin.py) unless
#: MINIKD_TEST_DEVICE names another (tests/gpu_check.sh sets "cuda" on a GPU machine)
TEST_DEVICE = os.environ.get("MINIKD_TEST_DEVICE", "standin")
if TEST_DEVICE == "standin":  # registered here too, not only by conftest.py: the harness also works
    from tests import standin  # outside pytest (docs/adding_an_op.md calls a test directly)

    standin.register()


def check_grad(fn, *arrays, wrt=None, device=TEST_DEVICE, **kwargs):
    """gradcheck ``fn`` on float64 copies of ``arrays``; then the same forward and backward on
    ``device`` (the stand-in device by default, see tests/standin.py; ``MINIKD_TEST_DEVICE``
    changes it; None: skip) must give the CPU's numbers, so every op test also proves that the
    op runs off the CPU.

    ``wrt``: indices of the inputs to differentiate (default: every floating input).
    Non-float arrays (labels, masks) are passed as constant tensors.
    """
    tensors = _tensors(arrays, wrt, "cpu")
    result = mk.gradcheck(fn, *tensors, **kwargs)
    if device is not None:
        check_same_on_device(fn, arrays, wrt, device)
    return result


def _tensors(arrays, wrt, device):
    tensors = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        grad = a.dtype.kind == "f" and (wrt is None or i in wrt)
        tensors.append(mk.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a, requires_grad=grad,
                                 device=device))
    return tensors


def _outputs(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, mk.Tensor)]


def _run_on(where, what, call):
    """``call()`` with ``where`` as the default device (so constants the test's fn makes go there
    too); off the CPU a failure becomes an assertion that names the device and the step."""
    from minikd import backend

    previous = backend.set_default_device(where)
    try:
        return call()
    except Exception as e:
        if where == "cpu":
            raise
        raise AssertionError(f"on the {where} device the {what} fails: {type(e).__name__}: {e}") from e
    finally:
        backend.set_default_device(previous)


def check_same_on_device(fn, arrays, wrt=None, device=TEST_DEVICE, rtol=1e-9, atol=1e-12):
    """``fn``'s outputs, and the gradients of a fixed random weighting of them, on ``device``
    equal the CPU's (float64)."""
    from minikd import backend

    results = []
    for where in ("cpu", device):
        tensors = _tensors(arrays, wrt, where)
        outs = _outputs(_run_on(where, "op", lambda ts=tensors: fn(*ts)))
        rng = np.random.default_rng(0)
        loss = None
        for o in outs:
            if o.requires_grad and o.dtype.kind == "f":
                term = (o * mk.tensor(rng.standard_normal(o.shape), device=where)).sum()
                loss = term if loss is None else loss + term
        if loss is not None:
            _run_on(where, "backward", loss.backward)
        results.append(([backend.to_numpy(o.data) for o in outs],
                        [None if t.grad is None else backend.to_numpy(t.grad) for t in tensors]))
        for o in outs:
            assert o.device == backend.check_device(where), f"an output is on {o.device}, not {where}"
    (cpu_outs, cpu_grads), (dev_outs, dev_grads) = results
    for i, (a, b) in enumerate(zip(cpu_outs, dev_outs)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"output {i} on {device} vs cpu")
    for i, (a, b) in enumerate(zip(cpu_grads, dev_grads)):
        assert (a is None) == (b is None), f"gradient of input {i}: present on one device only"
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"gradient of input {i} on {device} vs cpu")


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


def assert_platform(report: dict, device: str = "cpu") -> None:
    """A results.json records what its run ran on (``common.run_platform``): the device, the
    processor's family/model and AVX-512, the NumPy/Numba backend and the thread variables."""
    platform = report["platform"]
    assert platform["device"] == device and platform["cores"] >= 1
    assert re.fullmatch(r"(\d+|\?)/(\d+|\?)", platform["cpu_family_model"]) and isinstance(platform["avx512f"], bool)
    assert platform["backend"].startswith("numpy ") and re.fullmatch(r"\d+\.\d+.*", platform["numba"])
    assert set(platform["thread_variables"]) == set(mk.profile.THREAD_VARS) and platform["numba_threads"] >= 1


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
