"""The functions networks are written with: ``from minikd import functional as F``.

Each name is the lowercase spelling of one op class in ``minikd/ops``; this module
only gathers them, PyTorch-style, so a learner finds every layer's maths one
import away.
"""

from .ops.activation import clip, leaky_relu, relu, sigmoid, tanh
from .ops.conv import conv2d
from .ops.loss import cross_entropy, kl_divergence, l1_loss, log_softmax, mse_loss, softmax
from .ops.matmul import linear
from .ops.norm import batch_norm, dropout
from .ops.pool import avg_pool2d, max_pool2d
from .ops.resize import interpolate
from .ops.shape import flatten

__all__ = [
    "avg_pool2d", "batch_norm", "clip", "conv2d", "cross_entropy", "dropout", "flatten",
    "interpolate", "kl_divergence", "l1_loss", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
    "relu", "sigmoid", "softmax", "tanh",
]
