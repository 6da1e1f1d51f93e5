"""minikd — a small deep-learning engine, written to teach model complexity, pruning,
quantization and knowledge distillation.

    import minikd as mk
    from minikd import nn, optim, functional as F
"""

from . import functional, nn, ops, optim
from .backend import cuda_available
from .gradcheck import GradcheckError, gradcheck
from .ops import concatenate, stack, where
from .random import manual_seed
from .serialization import load, save
from .tensor import (
                     Tensor,
                     arange,
                     as_tensor,
                     enable_grad,
                     is_grad_enabled,
                     no_grad,
                     ones,
                     ones_like,
                     rand,
                     randn,
                     tensor,
                     zeros,
                     zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "GradcheckError", "Tensor", "arange", "as_tensor", "concatenate", "cuda_available", "enable_grad",
    "functional", "gradcheck", "is_grad_enabled", "load", "manual_seed", "nn", "no_grad", "ones", "ones_like",
    "ops", "optim", "rand", "randn", "save", "stack", "tensor", "where", "zeros", "zeros_like",
]
