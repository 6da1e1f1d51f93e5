"""The one gradient-check harness every op test uses (Chainer's idea): give it the op,
NumPy inputs and which of them are differentiable; it builds float64 tensors and runs
``minikd.gradcheck`` on them."""

import numpy as np

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
