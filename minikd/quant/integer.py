"""Integer inference: layers that store int8 weights and compute with an int8 × int8 → int32 product.

A calibrated fake-quantized layer (:mod:`minikd.quant.modules`) computes in float on the
values its integers stand for, ŵ = s_w · q_w and x̂ = s_x · (q_x + z_x). Its sums are
therefore a float scale times a sum of integers::

    y_o = Σ_k x̂_k ŵ_ok + b_o = s_x · s_w,o · Σ_k (q_x,k + z_x) · q_w,ok + b_o

:class:`IntLinear` and :class:`IntConv2d` compute exactly that, the sum in integers:

1. quantize the input: q_x = clip(round(x/s_x − z_x), −2^{b−1}, 2^{b−1} − 1), int8 — signed
   and asymmetric, the lecture's convention (x ≈ s_x · (q_x + z_x)); after a ReLU, β = 0 and
   z_x = 2^{b−1}, so q_x spans the whole int8 range;
2. the integer product, int32 accumulation (:func:`minikd.kernels.int8_matmul`)::

       acc_o = Σ_k q_x,k · q_w,ok  +  z_x · Σ_k q_w,ok   = Σ_k (q_x,k + z_x) · q_w,ok

   (q_x + z_x may leave the int8 range — it is 0…255 after a ReLU — so the product takes
   q_x as it is and the second term, the zero-point correction, adds one integer per
   output channel);
3. dequantize the accumulator and add the float bias: y_o = (s_x · s_w,o) · acc_o + b_o.

Weights are symmetric (z_w = 0), one float32 scale s_w per output channel (a per-tensor
scale is stored repeated). The state dict holds ``weight`` as int8, ``bias`` float32,
``weight_scale`` (float32, per channel), ``input_scale`` and ``input_zero_point``:
``minikd.save(model.state_dict(), path)`` writes about a quarter of the float32 file.

The convolution quantizes its input, pads it with the integer of real 0 (q = −z_x: the
float layer pads with zeros), unrolls it with the engine's ``im2col`` (dtype-generic: the
columns stay int8) and multiplies them by the int8 filter matrix.

These layers are for inference only: integer arithmetic has no gradient. Train the
fake-quantized model (PTQ or QAT), then :func:`convert_to_integer`; how close its result
stays to the fake-quantized model (a float32 rounding bound) is discussed there, at the end.
"""

from __future__ import annotations

import copy as _copy

import numpy as np

from .. import backend, nn, profile
from ..checks import check_bool, check_module, check_pair
from ..kernels import conv_output_size, im2col, int8_matmul
from ..nn.module import Parameter
from ..tensor import Tensor, is_grad_enabled
from .modules import QuantConv2d, QuantLinear, quant_layers, replace_layers
from .ops import _quantize, quantize

#: The widest input (K = in_features, or d_prev·k·k/groups) whose int32 accumulator cannot
#: overflow: |q_x + z_x| ≤ 2^8 − 1 (the input range is 255 steps wide) and |q_w| ≤ 2^7.
MAX_K = (2**31 - 1) // (255 * 128)

INT_BITS = 8  # weights and activations at most 8 bits: they are stored and multiplied as int8
INTEGER_BUFFERS = ("weight_scale", "input_scale", "input_zero_point")  # what an integer layer adds to a float one's


class _IntLayer(nn.Module):
    """What IntLinear and IntConv2d share: their integer state and the three steps above."""

    def _setup_int(self, weight_shape, bias, w_bits, a_bits):
        self.weight_bits, self.act_bits = _int_bits(w_bits, "w_bits"), _int_bits(a_bits, "a_bits")
        self.weight = Parameter(np.zeros(weight_shape, np.int8), requires_grad=False)  # q_w
        self.bias = Parameter(np.zeros(weight_shape[0], np.float32), requires_grad=False) if bias else None
        self.register_buffer("weight_scale", np.ones(weight_shape[0], np.float32))    # s_w per output channel
        self.register_buffer("input_scale", np.zeros((), np.float32))                 # s_x (0: not set yet)
        self.register_buffer("input_zero_point", np.zeros((), np.int32))             # z_x
        if int(np.prod(weight_shape[1:])) > MAX_K:
            raise ValueError(f"{type(self).__name__}: {int(np.prod(weight_shape[1:]))} inputs per output exceed "
                             f"{MAX_K}, beyond which the int32 accumulator could overflow")

    def _load_from(self, layer):
        """Take the integers and scales of a calibrated QuantLinear/QuantConv2d ``layer``."""
        w = layer.masked("weight").data
        s_w, _ = layer.weight_qparams(w)  # float32, exactly the scales the fake forward uses
        axis = 0 if layer.per_channel else None
        self.weight.data = quantize(w, self.weight_bits, s_w, 0, axis=axis).astype(np.int8)
        self.weight_scale.data = backend.get_array_module(w).broadcast_to(s_w, (w.shape[0],)).astype(np.float32)
        if self.bias is not None:
            self.bias.data = layer.masked("bias").data.astype(np.float32)
        self.input_scale.data = layer.act_scale.data.astype(np.float32)
        self.input_zero_point.data = layer.act_zero_point.data.astype(np.int32)
        return self

    def _input(self, x):
        """The input as a float32 array; a clear error where a gradient is expected, or where the
        layer holds no integers yet (built directly, neither converted nor loaded: s_x = 0)."""
        scale = self.input_scale.data
        if type(scale) is np.ndarray and not scale > 0:   # on the host: free to read (a device would wait)
            raise RuntimeError(
                f"{type(self).__name__} holds no quantized weights and scales yet: make it with "
                f"convert_to_integer(qmodel) from a calibrated model, or load its checkpoint (load_state_dict)")
        if isinstance(x, Tensor):
            if x.requires_grad and is_grad_enabled():
                raise RuntimeError(
                    f"{type(self).__name__} is for inference only: integer arithmetic has no gradient. Train the "
                    f"fake-quantized model (quantize_model / prepare_qat) and convert it afterwards, or call this "
                    f"one under minikd.no_grad() on inputs that do not require a gradient")
            x = x.data
        xp = backend.get_array_module(x)
        return xp.asarray(x, dtype=np.float32)

    def quantize_input(self, x):
        """q_x = clip(round(x/s_x − z_x), −2^{b−1}, 2^{b−1} − 1) as int8. A NaN has no integer
        level: its cast gives an arbitrary int8 (NumPy's warning silenced), which touches only its
        own sample's outputs, and :meth:`nan_rows` makes those NaN afterwards."""
        with np.errstate(invalid="ignore"):
            return _quantize(x, self.act_bits, self.input_scale.data, self.input_zero_point.data).astype(np.int8)

    @staticmethod
    def nan_rows(x, y, sample_axes: int):
        """``y`` with NaN wherever its sample's input held a NaN, as the float and fake-quantized
        layers propagate it (integer arithmetic cannot carry a NaN; it used to give finite outputs).
        The first ``sample_axes`` axes of ``x`` and ``y`` index the samples. No host wait: one where."""
        xp = backend.get_array_module(x)
        bad = xp.isnan(x).reshape(*x.shape[:sample_axes], -1).any(axis=-1)
        return xp.where(bad.reshape(*bad.shape, *([1] * (y.ndim - sample_axes))), xp.asarray(np.nan, y.dtype), y)

    def zero_point_correction(self):
        """z_x · Σ_k q_w,ok: one int32 per output channel o, added to Σ_k q_x,k · q_w,ok."""
        w_mat = self.weight.data.reshape(self.weight.shape[0], -1)
        return w_mat.sum(axis=1, dtype=np.int32) * self.input_zero_point.data

    def dequantize(self, acc, axis):
        """y_o = s_x · s_w,o · acc_o + b_o: int32 ``acc`` with its output channels o along ``axis`` → float32."""
        shape = [1] * acc.ndim
        shape[axis] = -1
        scale = self.input_scale.data.astype(np.float64) * self.weight_scale.data.astype(np.float64)
        y = (scale.reshape(shape) * acc).astype(np.float32)
        return y if self.bias is None else y + self.bias.data.reshape(shape)


class IntLinear(_IntLayer):
    """Fully connected layer on int8: y = s_x · s_w · Σ_k (q_x + z_x) · q_w + b  (see the module docstring).

    ``weight``: q_w (out_features, in_features) int8; ``weight_scale``: s_w (out_features,).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, w_bits=8, a_bits=8):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._setup_int((self.out_features, self.in_features), bias, w_bits, a_bits)

    @classmethod
    def from_quant(cls, layer: QuantLinear) -> IntLinear:
        return cls(layer.in_features, layer.out_features, layer.bias is not None, layer.weight_bits,
                   layer.act_bits)._load_from(layer)

    def forward(self, x):
        x = self._input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"IntLinear({self.in_features}→{self.out_features}) expects (..., {self.in_features}); "
                             f"got {tuple(x.shape)}")
        q_x = self.quantize_input(x).reshape(-1, self.in_features)         # (N, I) int8
        acc = int8_matmul(q_x, self.weight.data.T)                          # (N, O) int32: Σ_k q_x,k q_w,ok
        y = self.dequantize(acc + self.zero_point_correction(), axis=1)    # + z_x Σ_k q_w,ok, then scale
        return Tensor(self.nan_rows(x, y.reshape(*x.shape[:-1], self.out_features), x.ndim - 1))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"w_bits={self.weight_bits}, a_bits={self.act_bits}")


class IntConv2d(_IntLayer):
    """2-D convolution on int8: im2col of the int8 input, one int8 × int8 → int32 product per
    group, then y = s_x · s_w · acc + b  (see the module docstring).

    ``weight``: q_w (d, d_prev/groups, k_h, k_w) int8; ``weight_scale``: s_w (d,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, groups: int = 1,
                 bias: bool = True, w_bits=8, a_bits=8):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride, self.padding = (check_pair(kernel_size, "IntConv2d", "kernel_size"),
                                                     check_pair(stride, "IntConv2d", "stride"),
                                                     check_pair(padding, "IntConv2d", "padding"))
        kh, kw = self.kernel_size
        self._setup_int((self.out_channels, self.in_channels // self.groups, kh, kw), bias, w_bits, a_bits)

    @classmethod
    def from_quant(cls, layer: QuantConv2d) -> IntConv2d:
        return cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                   layer.groups, layer.bias is not None, layer.weight_bits, layer.act_bits)._load_from(layer)

    def forward(self, x):
        x = self._input(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"IntConv2d({self.in_channels}→{self.out_channels}) expects (N, {self.in_channels}, H, "
                             f"W); got {tuple(x.shape)}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        N, _, H, W = x.shape
        Ho, Wo = conv_output_size(H, kh, ph, sh, floor=True), conv_output_size(W, kw, pw, sw, floor=True)
        if Ho <= 0 or Wo <= 0:
            raise ValueError(f"IntConv2d: the input {tuple(x.shape)} padded by {self.padding} is smaller than the "
                             f"kernel {self.kernel_size}")
        xp = backend.get_array_module(x)
        # pad with the integer of real 0, q = −z_x, as the float layer pads with 0.0 (−z_x is in the
        # int8 range because the input range [β, α] holds 0)
        q_x = xp.pad(self.quantize_input(x), ((0, 0), (0, 0), (ph, ph), (pw, pw)),
                     constant_values=-int(self.input_zero_point.data))
        cols = im2col(q_x, self.kernel_size, self.stride, (0, 0))     # (d_prev·k_h·k_w, N·Ho·Wo) int8
        d, g = self.out_channels, self.groups
        w_mat = self.weight.data.reshape(d, -1)                       # (d, d_prev/g·k_h·k_w) int8
        K, outs = w_mat.shape[1], d // g                              # group i: its filters × its channels' rows
        acc = xp.concatenate([int8_matmul(w_mat[i * outs:(i + 1) * outs], cols[i * K:(i + 1) * K])
                              for i in range(g)])                     # (d, N·Ho·Wo) int32
        y = self.dequantize(acc + self.zero_point_correction()[:, None], axis=0).reshape(d, N, Ho, Wo)
        return Tensor(self.nan_rows(x, y.transpose(1, 0, 2, 3), 1))  # (N, d, Ho, Wo); NaN per sample

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + f", w_bits={self.weight_bits}, a_bits={self.act_bits}"


def _int_bits(bits, name):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= INT_BITS:
        raise ValueError(f"integer inference needs {name} in 2..{INT_BITS} (int8 storage and arithmetic); got "
                         f"{name}={bits!r}")
    return int(bits)


# the profiler counts them like the float layers (same MACs; memory at weight_bits)
profile.register_counter(IntLinear, profile.count_linear)
profile.register_counter(IntConv2d, profile.count_conv2d)

INT_LAYERS = {QuantLinear: IntLinear, QuantConv2d: IntConv2d}


# --------------------------------------------------------------------------- converting a model, and how close it stays


def _check_convertible(name, layer):
    """A clear error unless ``layer`` can be computed in int8."""
    why = None
    if layer.weight_bits is None or layer.act_bits is None:
        why = (f"its weights or activations stay float (w_bits={layer.weight_bits}, a_bits={layer.act_bits}); "
               f"integer inference needs both quantized")
    elif layer.weight_bits > INT_BITS or layer.act_bits > INT_BITS:
        why = f"w_bits={layer.weight_bits}, a_bits={layer.act_bits}: int8 arithmetic needs both ≤ {INT_BITS}"
    elif not layer.symmetric_weights:
        why = "its weights are asymmetric; the integer layers need symmetric weights (z_w = 0)"
    elif not layer.calibrated:
        why = ("its input quantization is not calibrated (no s_x, z_x yet): pass calibration_batches to "
               "quantize_model(...) or call calibrate(qmodel, batches) first")
    if why:
        raise ValueError(f"convert_to_integer: cannot convert {name} ({type(layer).__name__}): {why}")


def convert_to_integer(qmodel, copy: bool = True):
    """A model computing in int8: every calibrated QuantLinear/QuantConv2d of ``qmodel``
    becomes an :class:`IntLinear`/:class:`IntConv2d` holding int8 weights; the other layers
    (pooling, ReLU, ...) stay as they are and run in float between them.

    ``qmodel``: from ``quantize_model`` (with calibration) or ``prepare_qat`` (after training);
    weights symmetric, w_bits and a_bits in 2..8. Returns a copy (``copy=False``: in place), in
    eval mode — inference only. Raises ValueError for a model with no quantized layer, or a layer
    that cannot be converted (float weights or activations, more than 8 bits, asymmetric weights,
    uncalibrated; the message names the layer and why). Source: integer-only inference, int8
    products summed in int32 (Jacob et al., CVPR 2018) — what the lecture's quantization is for.

    **How close to the fake-quantized model.** Fed the same input, both quantize it to the same
    integers; the integer layer's sum is exact, the fake one's is a float32 sum of K products
    s_x(q_x + z_x) · s_w q_w, each factor and the sum rounded. With u = 2^−24 and
    P_o = Σ_k |q_x,k + z_x| · |q_w,ok| (an integer), the classic bound for a K-term sum (and one
    rounding for each factor, the rescaling and the bias addition) gives

        |y_int − y_fake| ≤ (K + 4) · u · s_x · s_w,o · P_o  +  2u · |y|,

    at most (K + 4)·u·P_o output steps s_x·s_w,o. That worst case has every rounding go the
    same way; measured on the teacher (w8a8, K up to 3,136) the difference stays below 0.25 of a
    step s_x·max(s_w) and below 0.35 of the bound. Through a whole network a 1-ulp difference
    now and then lands on a half step and flips one integer of the next layer's input by ±1
    (measured: 4 in 10,000 of fc2's inputs, none in the convolutions): that moves the layer's
    outputs by s_x·s_w·|q_w|, so end to end the two models agree to about 10^−3 of the logits'
    size, not to one step.
    """
    check_module(qmodel, "convert_to_integer", "qmodel")
    layers = quant_layers(qmodel)
    if not layers:
        raise ValueError("convert_to_integer: the model holds no QuantLinear/QuantConv2d layer; quantize it first "
                         "with quantize_model(model, calibration_batches=...)")
    for name, layer in layers:
        _check_convertible(name or "the model", layer)
    if check_bool(copy, "convert_to_integer", "copy"):
        qmodel = _copy.deepcopy(qmodel)
    model = replace_layers(qmodel, lambda layer, name: INT_LAYERS[type(layer)].from_quant(layer),
                           tuple(INT_LAYERS))
    return model.eval()


def integer_keys(state) -> list:
    """The keys of ``state`` that only an integer layer has (its ``weight_scale``, ``input_scale``,
    ``input_zero_point``): non-empty for a state dict of :func:`convert_to_integer`'s model."""
    return [k for k in state if isinstance(k, str) and k.rpartition(".")[2] in INTEGER_BUFFERS]


__all__ = ["INTEGER_BUFFERS", "INT_BITS", "INT_LAYERS", "IntConv2d", "IntLinear", "MAX_K", "convert_to_integer",
           "integer_keys"]
