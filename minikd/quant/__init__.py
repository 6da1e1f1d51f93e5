"""Quantization: store and compute with b-bit integers instead of 32-bit floats.

    from minikd import quant
    s, z = quant.qparams(alpha=1.5, beta=-0.5, b=4)      # range [β, α] → scale, zero-point
    q = quant.quantize(x, 4, s, z)                        # Q(x, b) = clip(T(x, s, z), −8, 7), int8
    x_hat = quant.dequantize(q, s, z)                     # s · (q + z)
    y = quant.fake_quantize(t, 8, s, z)                   # differentiable; STE backward

    obs = quant.MinMaxObserver(b=8, symmetric=True, axis=0)   # per-channel range of a weight
    obs.observe(weight)
    s, z = obs.qparams()

The lecture's operator lives in :mod:`minikd.quant.ops` (one function per formula) and the
range choice in :mod:`minikd.quant.observers`; ``docs/quantization.md`` works the lecture's
exercises with it.
"""

from .integer import IntConv2d, IntLinear, convert_to_integer
from .modules import (
    QuantConv2d,
    QuantLinear,
    calibrate,
    prepare_qat,
    qat_kd_loss,
    quant_layers,
    quantface_loss,
    quantize_model,
)
from .observers import MinMaxObserver, MovingAverageMinMaxObserver
from .ops import (
    FakeQuantize,
    check_bits,
    check_scale,
    clip,
    dequantize,
    fake_quantize,
    int_dtype,
    qparams,
    qrange,
    quantize,
    transform,
)

__all__ = [
    "FakeQuantize", "IntConv2d", "IntLinear", "MinMaxObserver", "MovingAverageMinMaxObserver", "QuantConv2d",
    "QuantLinear", "calibrate", "check_bits", "check_scale", "clip", "convert_to_integer", "dequantize",
    "fake_quantize", "int_dtype", "prepare_qat", "qat_kd_loss", "qparams", "qrange", "quant_layers", "quantface_loss",
    "quantize", "quantize_model", "transform"
]
