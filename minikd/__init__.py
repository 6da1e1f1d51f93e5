"""minikd — a small deep-learning engine, written to teach model complexity, pruning,
quantization and knowledge distillation.

    import minikd as mk
    from minikd import nn, optim, functional as F

The lecture's modules are attributes too — ``mk.profile``, ``mk.prune``, ``mk.quant``,
``mk.kd``, ``mk.data``, ``mk.models``, ``mk.verification`` (and ``mk.checks``, the argument validators) — the
ones not needed by the engine itself imported on first use, so ``import minikd`` stays fast.
"""

from . import runtime  # noqa: I001  (runs before the rest is imported)

# Every process-wide setting minikd makes, here and nowhere else: freed memory kept for reuse,
# idle BLAS and OpenMP threads that sleep at once. See minikd/runtime.py; MINIKD_TUNE_RUNTIME=0 skips all.
runtime.tune()

from . import functional, kd, nn, ops, optim  # noqa: E402
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled  # noqa: E402
from .backend import cuda_available, cuda_device_count, default_device, set_default_device  # noqa: E402
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .ops import concatenate, stack, where  # noqa: E402
from .random import manual_seed  # noqa: E402
from .serialization import CheckpointError, load, save  # noqa: E402
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

#: submodules imported on first attribute access (PEP 562), not by ``import minikd``
_LAZY_MODULES = ("checks", "data", "models", "profile", "prune", "quant", "verification")


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib

        module = importlib.import_module(f"{__name__}.{name}")  # also sets it as an attribute of the package
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES))


__all__ = [
    "AnomalyError", "CheckpointError", "GradcheckError", "Tensor", "arange", "as_tensor", "checks", "concatenate",
    "cuda_available", "cuda_device_count", "default_device", "set_default_device",
    "data", "detect_anomaly", "enable_grad", "functional", "gradcheck", "is_anomaly_enabled",
    "is_grad_enabled", "kd", "load", "manual_seed", "models", "nn", "no_grad", "ones", "ones_like", "ops", "optim",
    "profile", "prune", "quant", "rand", "randn", "save", "stack", "tensor", "verification", "where", "zeros",
    "zeros_like",
]
