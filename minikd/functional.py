"""The functions networks are written with: ``from minikd import functional as F``.

Each name is the lowercase spelling of one op class in ``minikd/ops``; this module
only gathers them, PyTorch-style, so a learner finds every layer's maths one
import away.
"""

from .checks import check_number
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


def normalize(x, axis=-1, eps=1e-12):
    """x / max(‖x‖₂, eps) along ``axis``: unit-length embeddings (PyTorch's ``F.normalize``).

    Written with the differentiable ops, so its gradient (x̂ = x/‖x‖: (I − x̂x̂ᵀ)/‖x‖) comes
    from autograd; a zero vector stays zero (the norm is clipped at ``eps``, no 0/0).
    """
    eps = check_number(eps, "normalize", "eps", low=0, low_open=True)
    norm = (x * x).sum(axis=axis, keepdims=True).clip(eps * eps, None).sqrt()
    return x / norm

__all__ = [
    "avg_pool2d", "batch_norm", "clip", "conv2d", "conv_transpose2d", "cross_entropy", "dropout", "embedding",
    "flatten",
    "interpolate", "kl_divergence", "l1_loss", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
    "normalize", "relu", "sigmoid", "smooth_l1_loss", "softmax", "tanh",
]
