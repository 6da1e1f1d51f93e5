"""minikd — a small deep-learning engine, written to teach model complexity, pruning,
quantization and knowledge distillation.

    import minikd as mk
    from minikd import nn, optim, functional as F
"""

from . import runtime  # noqa: I001  (runs before the rest is imported)

runtime.tune()  # reuse freed memory, let idle BLAS threads sleep (minikd/runtime.py); MINIKD_TUNE_RUNTIME=0 skips it

from . import functional, kd, nn, ops, optim  # noqa: E402
from .backend import cuda_available  # noqa: E402
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .ops import concatenate, stack, where  # noqa: E402
from .random import manual_seed  # noqa: E402
from .serialization import load, save  # noqa: E402
from .tensor import (  # noqa: E402
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
    "functional", "gradcheck", "kd", "is_grad_enabled", "load", "manual_seed", "nn", "no_grad", "ones", "ones_like",
    "ops", "optim", "rand", "randn", "save", "stack", "tensor", "where", "zeros", "zeros_like",
]
