"""Quantized layers, post-training quantization (PTQ) and quantization-aware training (QAT).

The lecture's operator (:mod:`minikd.quant.ops`): a real value x stands for the b-bit integer

    q = Q(x, b) = clip(round(x/s − z), −2^{b−1}, 2^{b−1} − 1),      and back   x̂ = s · (q + z)

:class:`QuantLinear` and :class:`QuantConv2d` are ``nn.Linear`` and ``nn.Conv2d`` with the
same parameters, whose forward pass computes the float layer on the values the integers
stand for ("fake quantization"), so the result is the one an integer implementation gives::

    ŵ = s_w · q_w         q_w = Q(w, w_bits): symmetric (z_w = 0), one s_w per output channel
                          (axis 0 of the weight), s_w = 2·max|w_o| / (2^b − 1), from the
                          CURRENT weights at every forward
    x̂ = s_x · (q_x + z_x)  q_x = Q(x, a_bits): the layer's INPUT, one (s_x, z_x) for the whole
                          tensor, asymmetric, from the range [β, α] an observer recorded,
                          widened to hold 0 (so real 0 — ReLU's output, the zero padding of a
                          convolution — is exactly the integer −z_x)
    y = layer(x̂; ŵ, b)    the float layer; the bias b stays float32

The backward pass is the straight-through estimator (``fake_quantize``): round counts as
the identity, so gradients reach the float weights, which keep learning.

The QuantFace notation wXaY is ``w_bits=X, a_bits=Y``: ``quantize_model(m, 4, 4)`` is w4a4.
``w_bits=None`` / ``a_bits=None`` leave the weights / the activations in float.

**PTQ** (training free)::

    qmodel = quantize_model(model, w_bits=8, a_bits=8, calibration_batches=batches)

copies the model, swaps every Linear/Conv2d for its quantized twin, runs the copy in eval
mode over ``batches`` while a :class:`~minikd.quant.observers.MinMaxObserver` per layer
records the range of the layer's input, and freezes (s_x, z_x) — buffers ``act_scale``
and ``act_zero_point``, saved in the state dict (s_x = 0 means "not calibrated yet").

**QAT**: ``prepare_qat(model)`` returns the same layers in training mode: each training
forward observes the input with a :class:`~minikd.quant.observers.MovingAverageMinMaxObserver`
(an exponential moving average of the batch min and max), refreshes (s_x, z_x) and
fake-quantizes with them; in eval mode the last (s_x, z_x) are used. Train with any
optimizer, e.g. with :func:`qat_kd_loss` (QuantFace: the full-precision model distils into
its quantized self). ``minikd.quant.integer.convert_to_integer`` turns either kind of model
into one that computes with int8 arrays.
"""

from __future__ import annotations

import copy as _copy

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..checks import check_bool, check_module, check_number, check_temperature
from ..kd import kd_loss, soft_loss
from ..kd.logits import constant
from ..nn.module import rebuild
from ..tensor import Tensor, no_grad
from .observers import MinMaxObserver, MovingAverageMinMaxObserver
from .ops import MAX_BITS, MIN_BITS, FakeQuantize, qparams


def check_bits_or_none(bits, name: str, op: str):
    """``bits`` as an int in 2..16, or None (keep float); a ValueError naming ``op`` and ``name`` otherwise."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{op}: {name} must be an integer number of bits in {MIN_BITS}..{MAX_BITS}, or None to "
                         f"keep float32; got {name}={bits!r}")
    return int(bits)


# --------------------------------------------------------------------------- the quantized layers


class _QuantMixin:
    """What QuantLinear and QuantConv2d add to their float layer: the fake-quantized weight
    ŵ (:meth:`quantized_weight`) and input x̂ (:meth:`quantize_input`), which their
    ``forward`` hands to the float layer's op."""

    def _setup_quant(self, w_bits, a_bits, per_channel, symmetric_weights, qat, momentum):
        op = type(self).__name__
        self.weight_bits = check_bits_or_none(w_bits, "w_bits", op)  # read by profile.layer_bits
        self.act_bits = check_bits_or_none(a_bits, "a_bits", op)
        self.per_channel = check_bool(per_channel, op, "per_channel")
        self.symmetric_weights = check_bool(symmetric_weights, op, "symmetric_weights")
        self.qat = check_bool(qat, op, "qat")
        self.calibrating = False  # set by calibrate(): observe the input, do not quantize it
        self.quant_name = op      # the layer's name in the model, for error messages
        self.act_observer = None
        if self.act_bits is not None:
            self.act_observer = (MovingAverageMinMaxObserver(self.act_bits, momentum=momentum) if qat
                                 else MinMaxObserver(self.act_bits))
        device = self.weight.device
        # s_x = 0: no range yet (a real scale is > 0); set by freeze_activation()
        self.register_buffer("act_scale", backend.to_device(np.zeros((), np.float32), device))
        self.register_buffer("act_zero_point", backend.to_device(np.zeros((), np.int32), device))

    # ------------------------------------------------------------------ weights
    def weight_qparams(self, weight=None):
        """(s_w, z_w) of the weight as it is now: one pair per output channel (axis 0) when
        ``per_channel``, else one for the tensor. s_w is float32 — the very numbers an
        integer layer stores — so fake and integer inference quantize w identically."""
        w = self.masked("weight") if weight is None else weight
        observer = MinMaxObserver(self.weight_bits, symmetric=self.symmetric_weights,
                                  axis=0 if self.per_channel else None)
        observer.observe(w)
        s, z = observer.qparams()
        xp = backend.get_array_module(w.data if isinstance(w, Tensor) else w)
        return xp.asarray(s, dtype=np.float32), z

    def quantized_weight(self):
        """ŵ = s_w · Q(w, w_bits), the weight the forward pass uses: pruning's mask first
        (``masked``), then fake-quantized (straight-through backward); w itself when
        ``w_bits`` is None. The bias is not quantized: the forward uses ``masked("bias")``."""
        w = self.masked("weight")
        if self.weight_bits is None:
            return w
        s, z = self.weight_qparams(w)
        # FakeQuantize itself, not fake_quantize: s and z come from qparams, checked there, and this runs every step
        return FakeQuantize.apply(w, b=self.weight_bits, s=s, z=z, axis=0 if self.per_channel else None)

    # ------------------------------------------------------------------ activations
    @property
    def calibrated(self) -> bool:
        """Whether (s_x, z_x) are set (always True without activation quantization)."""
        return self.act_bits is None or float(self.act_scale.item()) > 0

    def freeze_activation(self):
        """(s_x, z_x) ← qparams of the observed input range [β, α], widened to hold 0."""
        obs = self.act_observer
        if obs is None or obs.min_val is None:
            raise RuntimeError(f"{self.quant_name}: no input was observed, so there is no range to freeze")
        s, z = qparams(max(float(obs.max_val), 0.0), min(float(obs.min_val), 0.0), self.act_bits)
        xp = self.weight.xp
        self.act_scale = xp.asarray(s, dtype=np.float32)
        self.act_zero_point = xp.asarray(z, dtype=np.int32)

    def quantize_input(self, x):
        """x̂ = s_x · (Q(x, a_bits) + z_x), or x itself when calibrating / a_bits is None."""
        if self.act_bits is None:
            return x
        if self.calibrating:  # PTQ calibration: record the range, pass the float input on
            self.act_observer.observe(x)
            return x
        if self.training and self.qat:  # QAT: follow the range as the weights move
            self.act_observer.observe(x)
            self.freeze_activation()
        if not self.calibrated:
            raise RuntimeError(
                f"{self.quant_name}: the input quantization (a_bits={self.act_bits}) has no range yet: pass "
                f"calibration_batches to quantize_model(...), call calibrate(model, batches), or (QAT) run a "
                f"training step first")
        return FakeQuantize.apply(x, b=self.act_bits, s=self.act_scale.data, z=self.act_zero_point.data)

    def extra_repr(self):
        channel = "per-channel" if self.per_channel else "per-tensor"
        return (f"{super().extra_repr()}, w_bits={self.weight_bits}, a_bits={self.act_bits}, {channel}"
                f"{', qat' if self.qat else ''}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_float(cls, layer, w_bits=8, a_bits=8, per_channel=True, symmetric_weights=True, qat=False,
                   momentum=0.1):
        """A quantized layer holding ``layer``'s own Parameter objects (so an optimizer built on
        them keeps working), its buffers (e.g. pruning masks) and its settings (in_features,
        kernel_size, training, ...); not its forward hooks."""
        q = rebuild(layer, cls)
        q._setup_quant(w_bits, a_bits, per_channel, symmetric_weights, qat, momentum)
        return q


class QuantLinear(_QuantMixin, nn.Linear):
    """``nn.Linear`` on fake-quantized weights and inputs: y = x̂ ŵᵀ + b (see the module docstring).

    x̂ = s_x·(Q(x, a_bits) + z_x), ŵ = s_w·Q(w, w_bits); input (..., in_features), output
    (..., out_features), as ``nn.Linear``. Usually made by :func:`quantize_model` or
    :func:`prepare_qat` from a float layer. Raises ValueError for bits that are not an int in
    2..16 or None, TypeError for flags that are not True or False, and, in the forward pass,
    RuntimeError while the input quantization has no range (not calibrated). Source: the
    lecture's fake quantization for QAT and PTQ (Jacob et al., CVPR 2018)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, w_bits=8, a_bits=8,
                 per_channel: bool = True, symmetric_weights: bool = True, qat: bool = False, momentum: float = 0.1):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._setup_quant(w_bits, a_bits, per_channel, symmetric_weights, qat, momentum)

    def forward(self, x):
        """y = x̂ ŵᵀ + b: the float layer's product on the fake-quantized input and weight."""
        x_hat = self.quantize_input(x)  # x̂ = s_x · (Q(x, a_bits) + z_x)
        self.check_input(x_hat)          # nn.Linear's own check and message
        w_hat = self.quantized_weight()  # ŵ = s_w · Q(w, w_bits)
        return F.linear(x_hat, w_hat, self.masked("bias"))  # the bias stays float


class QuantConv2d(_QuantMixin, nn.Conv2d):
    """``nn.Conv2d`` on fake-quantized weights and inputs: y = conv(x̂, ŵ) + b (see the module docstring).

    Input (N, d_prev, H, W), output (N, d, H', W'), as ``nn.Conv2d``; the weight's scales are per
    output channel when ``per_channel``. Raises as :class:`QuantLinear`. Source: as
    :class:`QuantLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, groups: int = 1,
                 bias: bool = True, w_bits=8, a_bits=8, per_channel: bool = True, symmetric_weights: bool = True,
                 qat: bool = False, momentum: float = 0.1):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding, groups, bias)
        self._setup_quant(w_bits, a_bits, per_channel, symmetric_weights, qat, momentum)

    def forward(self, x):
        """y = conv(x̂, ŵ) + b: the float layer's convolution on the fake-quantized input and weight."""
        x_hat = self.quantize_input(x)  # x̂ = s_x · (Q(x, a_bits) + z_x)
        self.check_input(x_hat)          # nn.Conv2d's own check and message
        w_hat = self.quantized_weight()  # ŵ = s_w · Q(w, w_bits)
        return F.conv2d(x_hat, w_hat, self.masked("bias"), stride=self.stride, padding=self.padding,
                        groups=self.groups)  # the bias stays float


QUANT_LAYERS = {nn.Linear: QuantLinear, nn.Conv2d: QuantConv2d}


def quant_layers(model):
    """(name, layer) for every QuantLinear / QuantConv2d of ``model``."""
    check_module(model, "quant_layers", "model")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _QuantMixin)]


# --------------------------------------------------------------------------- swapping layers


def replace_layers(model, make, kinds):
    """Swap, in place, every sub-module that is an instance of one of ``kinds`` for
    ``make(layer, name)``; returns the model (or ``make(model, "")`` if the model is one).

    Each replacement takes its layer's slot in the parent's registry, so a Sequential keeps
    its order; a layer shared by two parents is replaced once and stays shared.
    """
    if isinstance(model, kinds):
        return make(model, "")
    done = {}
    for prefix, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, kinds):
                if id(child) not in done:
                    done[id(child)] = make(child, f"{prefix}.{name}" if prefix else name)
                parent._modules[name] = done[id(child)]
    return model


def _quant_class(layer, name, op):
    """QuantLinear for a Linear, QuantConv2d for a Conv2d — also for a subclass that keeps the
    float layer's forward (e.g. ``kd.LinearAdapter``); a subclass with its own forward is refused."""
    for float_cls, quant_cls in QUANT_LAYERS.items():
        if isinstance(layer, float_cls):
            if type(layer).forward is not float_cls.forward:
                raise TypeError(f"{op}: {name or 'the model'} is a {type(layer).__name__}, a {float_cls.__name__} "
                                f"with its own forward(), which {quant_cls.__name__} would replace")
            return quant_cls
    raise TypeError(f"{op}: {name} is a {type(layer).__name__}, not a Linear or Conv2d")  # pragma: no cover


def _swap(model, w_bits, a_bits, per_channel, symmetric_weights, qat, momentum, copy, op):
    w_bits = check_bits_or_none(w_bits, "w_bits", op)
    a_bits = check_bits_or_none(a_bits, "a_bits", op)
    check_module(model, op, "model")
    if quant_layers(model):
        raise ValueError(f"{op}: the model is already quantized (it holds QuantLinear/QuantConv2d layers)")
    if not any(isinstance(m, tuple(QUANT_LAYERS)) for m in model.modules()):
        raise ValueError(f"{op}: the model has no Linear or Conv2d layer to quantize")
    model = _copy.deepcopy(model) if check_bool(copy, op, "copy") else model

    def make(layer, name):
        q = _quant_class(layer, name, op).from_float(layer, w_bits, a_bits, per_channel, symmetric_weights, qat,
                                                     momentum)
        q.quant_name = f"{name} ({type(q).__name__})" if name else type(q).__name__
        return q

    return replace_layers(model, make, tuple(QUANT_LAYERS))


# --------------------------------------------------------------------------- PTQ


def _batch_input(batch, like):
    """The input of a calibration batch: a Tensor or an array, or the x of an (x, y) pair."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if isinstance(x, Tensor):
        return x
    return Tensor(backend.to_device(np.asarray(x, dtype=like.dtype), like.device))


def calibrate(model, batches):
    """PTQ calibration: run ``model`` (eval mode, no graph) over ``batches`` while each
    quantized layer's observer records the range of its input, then freeze (s_x, z_x).

    ``batches``: an iterable of input Tensors / arrays, or of (x, y) pairs (a DataLoader).
    Earlier ranges are forgotten. Returns the model. Each observer keeps β = min(r), α = max(r)
    of its input and freezes s_x = (α − β)/(2^b − 1), z_x by :func:`~minikd.quant.ops.qparams`.

    Raises ValueError when ``batches`` holds no batch. Source: the lecture's post-training
    quantization ("calibration" with a few batches: Jacob et al., CVPR 2018; QuantFace, ICPR 2022).
    """
    check_module(model, "calibrate", "model")
    if not quant_layers(model):
        raise ValueError("calibrate: the model holds no QuantLinear/QuantConv2d layer to calibrate; quantize it "
                         "first: quantize_model(model, calibration_batches=...)")
    layers = [m for _, m in quant_layers(model) if m.act_bits is not None]
    if not layers:   # weights-only quantization (a_bits=None): no input range to find
        return model
    like = layers[0].weight
    was_training = model.training
    for m in layers:
        m.act_observer.reset()
        m.calibrating = True
    seen = 0
    try:
        model.eval()
        with no_grad():
            for batch in batches:
                model(_batch_input(batch, like))
                seen += 1
    finally:
        for m in layers:
            m.calibrating = False
        model.train(was_training)
    if seen == 0:
        raise ValueError("calibrate: calibration_batches held no batch; give a few batches of inputs")
    for m in layers:
        m.freeze_activation()
    return model


def quantize_model(model, w_bits=8, a_bits=8, calibration_batches=None, per_channel: bool = True,
                   symmetric_weights: bool = True, copy: bool = True):
    """Post-training quantization, wXaY with X = ``w_bits`` and Y = ``a_bits`` (each 2..16 or None).

    Returns a copy of ``model`` (``copy=False``: the model itself, changed in place) in which
    every ``nn.Linear``/``nn.Conv2d`` is a :class:`QuantLinear`/:class:`QuantConv2d` with the
    same parameters: weights fake-quantized symmetrically, per output channel when
    ``per_channel`` (else per tensor); inputs fake-quantized per tensor, asymmetrically, with
    (s_x, z_x) from a min/max calibration over ``calibration_batches`` (see :func:`calibrate`).

    Without ``calibration_batches`` (and ``a_bits`` set) the layers are left uncalibrated:
    call ``calibrate(qmodel, batches)`` before using the model. Each layer's ``weight_bits``
    attribute is ``w_bits``, so ``profile.summary`` counts its memory at that width.

    Raises ValueError for bits that are not an int in 2..16 or None, or a model that is already
    quantized; TypeError for a Linear/Conv2d subclass with its own ``forward`` (the quantized
    layer would replace it). Source: the lecture's PTQ and the wXaY notation of its QuantFace
    slides (Boutros, Damer, Kuijper, ICPR 2022).
    """
    qmodel = _swap(model, w_bits, a_bits, per_channel, symmetric_weights, qat=False, momentum=0.1, copy=copy,
                   op="quantize_model")
    if a_bits is not None and calibration_batches is not None:
        calibrate(qmodel, calibration_batches)
    return qmodel


# --------------------------------------------------------------------------- QAT


def prepare_qat(model, w_bits=8, a_bits=8, per_channel: bool = True, symmetric_weights: bool = True,
                momentum: float = 0.1, copy: bool = True):
    """Quantization-aware training: a copy of ``model`` (``copy=False``: in place) with the
    quantized layers of :func:`quantize_model`, in training mode, ready for any optimizer.

    Every training forward fake-quantizes the weights from their current min/max and the
    inputs with (s_x, z_x) from a moving-average min/max observer (``momentum``) updated on
    that batch; the straight-through estimator carries the gradients to the float weights.
    In eval mode the last (s_x, z_x) are used.

    Raises what :func:`quantize_model` raises, and ValueError for a ``momentum`` outside (0, 1].
    Source: the lecture's quantization-aware training (Jacob et al., CVPR 2018).
    """
    qmodel = _swap(model, w_bits, a_bits, per_channel, symmetric_weights, qat=True, momentum=momentum, copy=copy,
                   op="prepare_qat")
    return qmodel.train()


def qat_kd_loss(student_logits, teacher_logits, target, T=3.0, lam=0.5):
    """QuantFace's idea: the full-precision model (teacher) distils into its quantized self (student).

    The student is the QAT copy of the teacher (``prepare_qat(teacher)``); the loss is the
    lecture's KD loss, ``minikd.kd.kd_loss``::

        L = (1 − λ) · L_CE(y, p_s) + λ · T² · KL(p_t ‖ p_s),   p = softmax(z / T)

    with z_s the quantized model's logits and z_t the float model's (constants). With λ = 1 it
    needs no labels. QuantFace itself (ICPR 2022) distils the embeddings, not the logits: that
    loss is :func:`quantface_loss`, whose logit term is this one at λ = 1.
    """
    return kd_loss(student_logits, teacher_logits, target, T=T, lam=lam)


def quantface_loss(q_logits, q_features, fp_logits, fp_features, T=3.0, w_feature=1.0, w_logit=1.0):
    """QuantFace's label-free QAT loss (Boutros, Damer, Kuijper, ICPR 2022): the quantized model
    learns from its own full-precision version, on any images — synthetic ones included.

        L = w_feature · (1/N) Σ_i ‖f̂_q^i − f̂_fp^i‖²₂  +  w_logit · T² · KL(p_fp ‖ p_q)
        f̂ = f / ‖f‖₂ (the embeddings L2-normalised),  p = softmax(z / T)

    The first term is QuantFace's: the squared distance between the normalised embeddings, which
    for unit vectors is 2 − 2·cos(f_q, f_fp) per sample. QuantFace's code takes PyTorch's MSELoss,
    the mean over all N·D entries: D times smaller than this per-sample sum. The direction of its
    gradient is the same; only the balance against ``w_logit`` (and the step size) differs, so a
    weight w here is QuantFace's weight w·D. The second is the lecture's logit KD with λ = 1
    (no labels; :func:`minikd.kd.soft_loss`). Set ``w_logit=0`` for QuantFace alone.

    - ``q_logits`` (N, C), ``q_features`` (N, D): the quantized model's (they get the gradient);
    - ``fp_logits`` (N, C), ``fp_features`` (N, D): the frozen full-precision model's (constants).

    Raises ValueError when the shapes differ or a weight is negative (``w_feature``,
    ``w_logit``: numbers ≥ 0, not both 0) or T ≤ 0.
    """
    op = "quantface_loss"
    T = check_temperature(T, op)
    w_feature = check_number(w_feature, op, "w_feature", low=0)
    w_logit = check_number(w_logit, op, "w_logit", low=0)
    if w_feature == 0 and w_logit == 0:
        raise ValueError(f"{op}: w_feature and w_logit are both 0: the loss would be 0 and teach nothing")
    q_features = q_features if isinstance(q_features, Tensor) else Tensor(q_features)
    fp_features = constant(fp_features, like=q_features)   # the quantized model's dtype: no promotion
    if tuple(q_features.shape) != tuple(fp_features.shape) or q_features.ndim != 2:
        raise ValueError(f"{op}: expected embeddings of the same shape (N, D) from the quantized and the "
                         f"full-precision model; got {tuple(q_features.shape)} and {tuple(fp_features.shape)}")
    diff = F.normalize(q_features) - F.normalize(fp_features)
    loss = (diff * diff).sum(axis=1).mean() * w_feature
    if w_logit:
        loss = loss + soft_loss(q_logits, fp_logits, T=T) * (w_logit * T * T)
    return loss


__all__ = [
    "QUANT_LAYERS", "QuantConv2d", "QuantLinear", "calibrate", "check_bits_or_none", "prepare_qat", "qat_kd_loss",
    "quant_layers", "quantface_loss", "quantize_model", "replace_layers",
]
