"""The functions networks are written with: ``from minikd import functional as F``.

Each name is the lowercase spelling of one op class in ``minikd/ops``; this module
only gathers them, PyTorch-style, so a learner finds every layer's maths one
import away.
"""

import numpy as np

from .checks import check_floating, check_number
from .ops.activation import clip, leaky_relu, relu, sigmoid, tanh
from .ops.conv import conv2d
from .ops.conv_transpose import conv_transpose2d
from .ops.embedding import embedding
from .ops.loss import cross_entropy, kl_divergence, l1_loss, log_softmax, mse_loss, smooth_l1_loss, softmax
from .ops.matmul import linear
from .ops.norm import batch_norm, dropout
from .ops.pool import avg_pool2d, max_pool2d
from .ops.resize import interpolate
from .ops.shape import flatten


def sqrt_floor(dtype, eps=1e-12):
    """The smallest value a squared norm is clipped to before its square root: ``eps``, or the
    smallest normal number of ``dtype`` if that is larger (float16's is 6.1e-05: 1e-12, and
    the usual 1e-24, round to 0 there, and √0 has an infinite gradient)."""
    return max(float(eps), float(np.finfo(dtype).tiny))


def clipped_sqrt(x, eps=1e-12):
    """√max(x, floor) for a Tensor ``x`` ≥ 0 (a squared norm, 1 − cos²θ), the floor from
    :func:`sqrt_floor`: a zero vector's norm is √floor, not 0, so neither the value nor its
    gradient is infinite (the clip passes no gradient below the floor)."""
    return x.clip(sqrt_floor(x.dtype, eps), None).sqrt()


def normalize(x, axis=-1, eps=1e-12):
    """x / ‖x‖₂ along ``axis``: unit-length embeddings (PyTorch's ``F.normalize``), and 0 for a
    vector no longer than ``eps`` (a zero vector stays zero).

    Written with the differentiable ops, so its gradient (x̂ = x/‖x‖: (I − x̂x̂ᵀ)/‖x‖) comes
    from autograd. Inside the ``eps`` ball the output is 0 and so is its gradient: PyTorch's
    x / max(‖x‖, eps) is x/eps there, whose gradient I/eps = 1e12 would make one optimizer step
    from a zero embedding (a layer of dead ReLUs; two coincident points in RKD's angle) throw
    the weights out. (float16: the ball's radius is at least √6.1e-05 ≈ 0.0078, see
    :func:`sqrt_floor`.) Raises ValueError for ``eps`` ≤ 0, TypeError for integer ``x``.
    """
    eps = check_number(eps, "normalize", "eps", low=0, low_open=True)
    check_floating("normalize", x=x)
    sq = (x * x).sum(axis=axis, keepdims=True)
    outside = sq.xp.asarray(sq.data > sqrt_floor(sq.dtype, eps * eps), dtype=x.dtype)   # 0 inside the ball
    return x / clipped_sqrt(sq, eps * eps) * outside   # × 1.0 outside: the same bits as x / ‖x‖


__all__ = [
    "avg_pool2d", "batch_norm", "clip", "clipped_sqrt", "conv2d", "conv_transpose2d", "cross_entropy", "dropout",
    "embedding", "flatten",
    "interpolate", "kl_divergence", "l1_loss", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
    "normalize", "relu", "sigmoid", "smooth_l1_loss", "softmax", "sqrt_floor", "tanh",
]
