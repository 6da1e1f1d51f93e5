"""Export a model to ONNX, the exchange format that inference runtimes read.

``to_onnx(model, (1, 1, 28, 28), "student.onnx")`` writes a file that ONNX Runtime (or
TensorRT, OpenVINO, a phone's runtime) runs without minikd or Python.

**How the graph is found: by tracing.** minikd builds no static graph; a model is Python code.
The exporter runs the model's forward once on an input of ``input_shape`` and records every
op it calls (``Function.apply``: conv, pooling, ReLU, reshape, linear, ...) with its inputs, its
settings and its output, in the order they ran — which is already an order in which every
value is made before it is used. Each recorded op becomes one ONNX node (a few become two or
three). Parameters and buffers become the graph's *initializers* under their state-dict names
(``conv1.weight``), so the file's weights read like the checkpoint. This is what
``torch.onnx.export`` does in its tracing mode, and it has the same limit: Python control flow
(an ``if`` on a tensor's value) is frozen as it ran for the traced input.

**Values that depend only on weights are folded.** A pruned layer computes W ⊙ mask in its
forward; both inputs are initializers, so the exporter stores the product (the masked weight)
instead of the op. Compact the model (:func:`minikd.prune.compact`) before exporting to get
smaller shapes, not zeros.

**Integer layers** (:class:`~minikd.quant.IntConv2d`, :class:`~minikd.quant.IntLinear`, from
:func:`~minikd.quant.convert_to_integer`) are exported as the int8 computation they perform,
node for node (the module docstring of :mod:`minikd.quant.integer` derives it)::

    q_x = QuantizeLinear(x, s_x, −z_x)                       int8 (ONNX: round(x/s) + zero point)
    acc = ConvInteger(q_x, q_w, −z_x)  or  MatMulInteger(q_x, q_wᵀ, −z_x)
                                       = Σ_k (q_x,k + z_x) · q_w,ok    int32
    y   = float32(double(acc) · (s_x · s_w,o)) + b_o               float32

ONNX writes the quantization x ≈ s · (q − zero point); minikd writes x ≈ s · (q + z), so the
ONNX zero point is −z_x. The int8 products and int32 sums are what ONNX Runtime executes with
its integer kernels; the rescaling runs in float64 as in minikd, so both compute the same
numbers except where x/s lands within float32 rounding of a half step (ONNX Runtime divides in
float32, minikd in float64): there one input integer differs by one.

**Never a silently wrong graph.** The exporter refuses, naming the layer: an op it has no
ONNX node for (custom ops included); a fake-quantized layer (convert it to integers first; an
uncalibrated one cannot be); dropout or batch norm still in training mode is avoided by
tracing in eval mode. Code that computes on raw arrays outside minikd's ops would be invisible
to the trace; to catch it the model is traced twice, on two different inputs, and a value that
is neither a parameter nor an op's output but changes with the input is an error. The file
says it takes any batch size, so the second input has another batch size than the first: a
tensor made in the forward with the batch in its shape, or a reshape that folds the batch into
a fixed dimension (``x.reshape(1, -1)``), is refused rather than frozen (or export with
``dynamic_batch=False``). When ``onnxruntime`` is installed, the exported model is run on both
inputs and its outputs compared with minikd's. The file is float32 (models of other float
dtypes are refused) and carries the oldest ONNX IR version that holds opset 17 (8), so runtimes
older than the ``onnx`` package that wrote it read it too.

Needs the ``onnx`` package (``pip install -e ".[deploy]"``, which also installs
``onnxruntime``). Source: the ONNX operator specification (onnx.ai, opset 17); the QDQ
convention, Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .checks import check_bool
from .function import Function
from .nn.module import Module
from .ops.activation import Clip, LeakyReLU, ReLU, Sigmoid, Tanh
from .ops.conv import Conv2d
from .ops.elementwise import Abs, Add, Cast, Div, Exp, Log, Mul, Neg, Sqrt, Sub, Where
from .ops.loss import LogSoftmax, Softmax
from .ops.matmul import Linear, MatMul
from .ops.norm import BatchNorm
from .ops.pool import AvgPool2d, MaxPool2d
from .ops.shape import Concatenate, Reshape, ToDevice, Transpose
from .quant.integer import integer_keys
from .serialization import _path, _write_atomic
from .tensor import Tensor, as_tensor, no_grad

OPSET = 17


class ExportError(ValueError):
    """The model cannot be exported as it is; the message names the layer and what to do."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401
    except ImportError:
        raise ImportError('to_onnx needs the onnx package: pip install onnx onnxruntime '
                          '(or pip install -e ".[deploy]")') from None
    return onnx


# --------------------------------------------------------------------------- tracing


@dataclass
class _Op:
    kind: type                 # the Function subclass, or the integer layer's class
    inputs: tuple              # as given to apply (Tensors, numbers, arrays, None)
    params: dict               # keyword settings (stride, padding, axis, ...)
    output: object             # the Tensor it returned
    layer: str                 # who called it, for error messages: "layer 'conv1' (Conv2d)"
    module: Module | None = None


@dataclass
class _Trace:
    names: dict                               # id(module) → dotted name
    ops: list = field(default_factory=list)
    stack: list = field(default_factory=list)  # the modules whose forward is running
    opaque: int = 0                            # > 0 inside an integer layer: its inner work is one node
    failed: str | None = None                  # the innermost layer that raised, if the forward failed

    def layer(self) -> str:
        for m in reversed(self.stack):
            name = self.names.get(id(m))
            if name:
                return f"layer {name!r} ({type(m).__name__})"
        root = self.stack[0] if self.stack else None
        return f"the forward of {type(root).__name__} itself" if root is not None else "the model"


def _integer_layers():
    from .quant.integer import IntConv2d, IntLinear
    from .quant.modules import QuantConv2d, QuantLinear
    return (IntConv2d, IntLinear), (QuantConv2d, QuantLinear)


@contextlib.contextmanager
def _tracing(trace: _Trace):
    """Record every op and every module call while the model runs (patched in, then restored)."""
    int_layers, fake_layers = _integer_layers()
    apply, call = Function.__dict__["apply"], Module.__call__

    def traced_apply(cls, *inputs, **params):
        # numbers and arrays become constant Tensors as apply makes them (the input's dtype and device)
        like = next((v for v in inputs if isinstance(v, Tensor)), None)
        inputs = tuple(None if v is None else as_tensor(v, like=like) for v in inputs)
        out = apply.__func__(cls, *inputs, **params)
        if not trace.opaque:
            trace.ops.append(_Op(cls, inputs, params, out, trace.layer()))
        return out

    def traced_call(module, *args, **kwargs):
        if isinstance(module, fake_layers):
            name = trace.names.get(id(module)) or type(module).__name__
            why = ("it is not calibrated either (no s_x, z_x): calibrate it with quant.calibrate(model, batches), "
                   "then convert" if not module.calibrated else "convert it")
            raise ExportError(f"to_onnx: layer {name!r} ({type(module).__name__}) is fake-quantized (float values "
                              f"rounded to a grid); ONNX export writes the integer model: {why} with "
                              f"quant.convert_to_integer(model) and export that")
        opaque = isinstance(module, int_layers)
        trace.stack.append(module)
        trace.opaque += opaque
        try:
            out = call(module, *args, **kwargs)
        except Exception:
            trace.failed = trace.failed or trace.layer()
            raise
        finally:
            trace.stack.pop()
            trace.opaque -= opaque
        if opaque and not trace.opaque:  # the whole integer layer is one recorded op
            name = trace.names.get(id(module)) or type(module).__name__
            trace.ops.append(_Op(type(module), args, {}, out, f"layer {name!r} ({type(module).__name__})", module))
        return out

    Function.apply = classmethod(traced_apply)
    Module.__call__ = traced_call
    try:
        yield trace
    finally:
        Function.apply = apply
        Module.__call__ = call


def _run_traced(model, x, dims, why=""):
    trace = _Trace(names={id(m): name for name, m in model.named_modules()})
    with no_grad(), _tracing(trace):
        try:
            out = model(x)
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"to_onnx: on an input of shape {dims}{why}, {trace.failed or 'the model'} fails: "
                              f"{type(e).__name__}: {e}") from e
    return trace, out


# --------------------------------------------------------------------------- the graph


class _Graph:
    """Nodes, initializers and the name of every value, as the ONNX graph is built."""

    def __init__(self, onnx, state: dict, module_names: dict):
        self.onnx, self.helper, self.numpy_helper = onnx, onnx.helper, onnx.numpy_helper
        self.module_names = module_names  # id(module) → dotted name
        self.nodes, self.initializers = [], {}
        self.values = {}     # id(Tensor) → ONNX value name (op outputs and the input)
        self.constants = {}  # id(Tensor or array) → (name, array): parameters, buffers, folded values
        for name, t in state.items():
            self.constants[id(t)] = (name, t)
            self.constants[id(t.data)] = (name, t)
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def fold(self, value, hint: str) -> None:
        """Keep ``value``, computed from weights alone (a masked weight), as a constant named
        ``hint``, or ``hint_<n>`` when that name already holds another value (W·2 and W·3 are both
        ``W_mul``: one name would make the second read the first's numbers)."""
        taken = {name for name, _ in self.constants.values()}
        self.constants[id(value)] = (self.fresh(hint) if hint in taken else hint, value)

    def constant(self, value, hint="const", dtype=None) -> str:
        """The name of an initializer holding ``value`` (created once per distinct object)."""
        key = id(value)
        if key in self.constants:
            name, held = self.constants[key]
        else:
            name, held = self.fresh(hint), value
            self.constants[key] = (name, value)
        if name not in self.initializers:
            array = backend.to_numpy(held.data if isinstance(held, Tensor) else held)
            array = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
            self.initializers[name] = self.numpy_helper.from_array(np.require(array, requirements="C"), name)
        return name

    def array(self, value, hint, dtype=None) -> str:
        """A new initializer from a computed array (not tied to a model's object)."""
        name = self.fresh(hint)
        a = np.asarray(value, dtype=dtype)
        self.initializers[name] = self.numpy_helper.from_array(np.require(a, requirements="C"), name)
        return name

    def is_constant(self, x) -> bool:
        """Not computed from the input: a weight, a buffer, a number, a tensor made in the forward
        (``_leaked`` has checked that those do not change with the input)."""
        return not (isinstance(x, Tensor) and id(x) in self.values)

    def name_of(self, x, hint="const") -> str:
        if x is None:
            return ""
        if isinstance(x, Tensor) and id(x) in self.values:
            return self.values[id(x)]
        return self.constant(x, hint)

    def node(self, op_type, inputs, hint, **attrs) -> str:
        out = self.fresh(hint)
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _pair(v):
    return [int(v[0]), int(v[1])] if isinstance(v, (tuple, list)) else [int(v), int(v)]


def _conv_attrs(kernel, stride, padding):
    ph, pw = _pair(padding)
    return {"kernel_shape": _pair(kernel), "strides": _pair(stride), "pads": [ph, pw, ph, pw]}


def _emit_conv(g, op, ins):
    w = op.inputs[1]
    attrs = _conv_attrs(w.shape[2:], op.params.get("stride", 1), op.params.get("padding", 0))
    names = ins[:2] + ([ins[2]] if ins[2] else [])
    return g.node("Conv", names, "conv", group=int(op.params.get("groups", 1)), **attrs)


def _emit_linear(g, op, ins):
    x = op.inputs[0]
    if x.ndim == 2:  # y = x Wᵀ + b in one node
        return g.node("Gemm", [n for n in ins if n], "gemm", transB=1)
    y = g.node("MatMul", [ins[0], g.node("Transpose", [ins[1]], "weight_t", perm=[1, 0])], "matmul")
    return g.node("Add", [y, ins[2]], "add") if ins[2] else y


def _emit_pool(onnx_op, **extra):
    def emit(g, op, ins):
        p = op.params
        return g.node(onnx_op, [ins[0]], onnx_op.lower(), **_conv_attrs(p["kernel"], p["stride"], p["padding"]),
                      **extra)
    return emit


def _emit_batch_norm(g, op, ins):
    p = op.params
    C = op.inputs[0].shape[1]
    scale = ins[1] or g.array(np.ones(C, np.float32), "bn_scale")
    bias = ins[2] or g.array(np.zeros(C, np.float32), "bn_bias")
    mean, var = g.constant(p["running_mean"], "running_mean"), g.constant(p["running_var"], "running_var")
    return g.node("BatchNormalization", [ins[0], scale, bias, mean, var], "batchnorm", epsilon=float(p["eps"]))


def _reshape_spec(op) -> list:
    """The target shape the ONNX Reshape gets: minikd's, with a first dimension equal to the
    input's written 0 ("copy the input's first dimension"), so that the batch stays free."""
    x, target = op.inputs[0], list(op.output.shape)
    spec = list(op.params["shape"])
    spec = [int(v) for v in spec] if len(spec) == len(target) else target
    if spec and x.ndim and spec[0] == x.shape[0] and spec[0] != -1:
        spec[0] = 0
    return spec


def _onnx_reshape(shape, spec) -> tuple:
    """The shape ONNX's Reshape makes of an input of ``shape`` (0: copy that dimension; −1: the rest)."""
    out = [shape[i] if v == 0 else v for i, v in enumerate(spec)]
    if -1 in out:
        known = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // known if known else 0
    return tuple(out)


def _emit_reshape(g, op, ins):
    return g.node("Reshape", [ins[0], g.array(np.array(_reshape_spec(op), np.int64), "shape")], "reshape")


def _emit_transpose(g, op, ins):
    axes = op.params.get("axes")
    perm = list(axes) if axes else list(range(op.inputs[0].ndim))[::-1]
    return g.node("Transpose", [ins[0]], "transpose", perm=[int(a) for a in perm])


def _emit_softmax(onnx_op):
    def emit(g, op, ins):
        x, T = ins[0], float(op.params.get("T", 1.0))
        if T != 1.0:  # softmax(z / T): the lecture's temperature
            x = g.node("Div", [x, g.array(np.array(T, np.float32), "T")], "div_T")
        return g.node(onnx_op, [x], onnx_op.lower(), axis=int(op.params.get("axis", -1)))
    return emit


def _emit_clip(g, op, ins):
    dtype = np.dtype(op.output.dtype)
    bounds = [("" if v is None else g.array(np.array(v, dtype), "clip_bound")) for v in
              (op.params.get("lo"), op.params.get("hi"))]
    return g.node("Clip", [ins[0], *bounds], "clip")


def _emit_cast(g, op, ins):
    to = g.helper.np_dtype_to_tensor_dtype(np.dtype(op.params["dtype"]))
    return g.node("Cast", [ins[0]], "cast", to=to)


def _simple(onnx_op, **attrs):
    return lambda g, op, ins: g.node(onnx_op, [n for n in ins], onnx_op.lower(), **attrs)


def _emit_int_layer(g, op, ins):
    """QuantizeLinear → ConvInteger / MatMulInteger → rescale in float64 → + bias (module docstring)."""
    from .quant.integer import IntConv2d
    m, T = op.module, g.onnx.TensorProto
    prefix = g.module_names.get(id(m)) or "int"
    zp = g.array(np.array(-int(m.input_zero_point.data), np.int8), prefix + ".input_zero_point_onnx")
    s_x = g.constant(m.input_scale, dtype=np.float32)
    q = g.node("QuantizeLinear", [ins[0], s_x, zp], prefix + ".q_x")
    if m.act_bits < 8:  # a b-bit input: the integers span −2^{b−1} … 2^{b−1} − 1, not the whole int8 range
        lo, hi = -(2 ** (m.act_bits - 1)), 2 ** (m.act_bits - 1) - 1
        q = g.node("Clip", [q, g.array(np.array(lo, np.int8), "lo"), g.array(np.array(hi, np.int8), "hi")], "clip")
    w = g.constant(m.weight, dtype=np.int8)
    scale = (m.input_scale.data.astype(np.float64) * m.weight_scale.data.astype(np.float64))  # as minikd's dequantize
    scale = backend.to_numpy(scale)
    if isinstance(m, IntConv2d):
        attrs = _conv_attrs(m.kernel_size, m.stride, m.padding)
        acc = g.node("ConvInteger", [q, w, zp], prefix + ".acc", group=m.groups, **attrs)
        shape = (1, -1, 1, 1)
    else:
        w_t = g.node("Transpose", [w], prefix + ".weight_t", perm=[1, 0])
        acc = g.node("MatMulInteger", [q, w_t, zp], prefix + ".acc")
        shape = (-1,)
    y = g.node("Cast", [acc], "acc_f64", to=T.DOUBLE)
    y = g.node("Mul", [y, g.array(scale.reshape(shape), prefix + ".output_scale", np.float64)], "rescale")
    y = g.node("Cast", [y], "to_f32", to=T.FLOAT)
    if m.bias is not None:
        y = g.node("Add", [y, g.array(backend.to_numpy(m.bias.data).reshape(shape), prefix + ".bias")], "add_bias")
    return y


def _emit_leaky_relu(g, op, ins):
    return g.node("LeakyRelu", [ins[0]], "leakyrelu", alpha=float(op.params["negative_slope"]))


def _emit_concat(g, op, ins):
    return g.node("Concat", ins, "concat", axis=int(op.params["axis"]))


#: minikd's op → the function that writes its ONNX node(s); None: an identity on the graph
_EMIT = {
    Conv2d: _emit_conv,
    Linear: _emit_linear,
    MatMul: _simple("MatMul"),
    MaxPool2d: _emit_pool("MaxPool"),
    AvgPool2d: _emit_pool("AveragePool", count_include_pad=1),  # minikd counts the padding's zeros
    BatchNorm: _emit_batch_norm,
    ReLU: _simple("Relu"),
    LeakyReLU: _emit_leaky_relu,
    Sigmoid: _simple("Sigmoid"),
    Tanh: _simple("Tanh"),
    Clip: _emit_clip,
    Reshape: _emit_reshape,
    Transpose: _emit_transpose,
    Concatenate: _emit_concat,
    ToDevice: None,
    Add: _simple("Add"),
    Sub: _simple("Sub"),
    Mul: _simple("Mul"),
    Div: _simple("Div"),
    Neg: _simple("Neg"),
    Exp: _simple("Exp"),
    Log: _simple("Log"),
    Sqrt: _simple("Sqrt"),
    Abs: _simple("Abs"),
    Cast: _emit_cast,
    Softmax: _emit_softmax("Softmax"),
    LogSoftmax: _emit_softmax("LogSoftmax"),
}


def _emitters():
    """_EMIT and the integer layers (imported late: minikd.quant imports much of minikd)."""
    int_layers, _ = _integer_layers()
    return {**_EMIT, **dict.fromkeys(int_layers, _emit_int_layer)}


def supported_ops() -> list[str]:
    """The names of the ops and layers :func:`to_onnx` writes (everything else is refused)."""
    return sorted(c.__name__ for c in _emitters())


# --------------------------------------------------------------------------- checks


def _check_input_shape(input_shape):
    if isinstance(input_shape, (int, np.integer)) or not hasattr(input_shape, "__len__"):
        raise TypeError(f"to_onnx: input_shape must be a tuple of ints, batch first (e.g. (1, 1, 28, 28)); got "
                        f"{input_shape!r}")
    dims = tuple(input_shape)
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise ValueError(f"to_onnx: input_shape must hold positive ints, batch first (e.g. (1, 1, 28, 28)); got "
                         f"{input_shape!r}")
    return tuple(int(d) for d in dims)


def _outputs(out):
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        raise ExportError(f"to_onnx: the model's forward must return a Tensor or a tuple of Tensors; got "
                          f"{type(out).__name__}")
    return outs


def _trace_twice(model, dims, dynamic_batch):
    """Trace the model on two different random inputs: a list of two ``(trace, input, outputs)``.
    The first has shape ``dims`` and is the one exported; the second, for :func:`_leaked` and
    :func:`_batch_bound` to compare, has one more row when ``dynamic_batch`` (the file claims
    to take any batch size, so the model is run on a second one), else ``dims`` too."""
    rng = np.random.default_rng(0)
    second = (dims[0] + 1, *dims[1:]) if dynamic_batch else dims
    traces = []
    for shape, why in [(dims, ""), (second, " (a second batch size, tried because dynamic_batch=True: export "
                                            "with dynamic_batch=False for a model that takes one batch size)"
                                            if dynamic_batch else "")]:
        x = Tensor(rng.standard_normal(shape).astype(np.float32))
        trace, out = _run_traced(model, x, shape, why)
        traces.append((trace, x, _outputs(out)))
    return traces


def _leaked(traces, state_ids):
    """``(why, layer)`` for the first op input that is neither a parameter, nor an op's output,
    nor the model's input, and differs between the two traces — computed from the input outside
    minikd's ops —, or for a sequence of ops that changes with the input; else None."""
    (t1, x1, _), (t2, x2, _) = traces
    if len(t1.ops) != len(t2.ops) or any(a.kind is not b.kind for a, b in zip(t1.ops, t2.ops)):
        return "the sequence of ops changes with the input (control flow on a tensor's value)", t1.ops[0].layer
    made = {id(x1)} | {id(op.output) for op in t1.ops}
    for a, b in zip(t1.ops, t2.ops):
        for xa, xb in zip(a.inputs, b.inputs):
            if isinstance(xa, Tensor) and id(xa) not in made and id(xa) not in state_ids:
                va, vb = backend.to_numpy(xa.data), backend.to_numpy(xb.data)
                if va.shape != vb.shape or not np.array_equal(va, vb, equal_nan=True):
                    return (f"an input of its {a.kind.__name__} op depends on the model's input (its values, or "
                            f"its batch size: shapes {va.shape} and {vb.shape} in the two traces) but was made "
                            f"outside minikd's ops (on raw arrays, or as a new tensor of the input's shape), so "
                            f"the trace cannot follow it"), a.layer
        made.add(id(a.output))
    return None


def _batch_bound(traces):
    """``(why, layer)`` for the first reshape whose exported form gives another shape than minikd
    at the second trace's batch size (``x.reshape(1, -1)``: the batch folded into a fixed
    dimension), else None."""
    (t1, _, _), (t2, _, _) = traces
    for a, b in zip(t1.ops, t2.ops):
        if a.kind is Reshape:
            exported = _onnx_reshape(b.inputs[0].shape, _reshape_spec(a))
            if exported != tuple(b.output.shape):
                return (f"its reshape to {tuple(a.params['shape'])} depends on the batch size: at batch "
                        f"{b.inputs[0].shape[0]} minikd gives {tuple(b.output.shape)}, the exported graph would give "
                        f"{exported}. Keep the batch axis (x.reshape(x.shape[0], -1)), or export with "
                        f"dynamic_batch=False"), a.layer
    return None


def _output_dims(o1, o2, n1, n2) -> list:
    """An output's declared dimensions, from its shapes in the two traces (batch sizes n1, n2):
    the same in both → that size; n1 then n2 → "N"; anything else → unknown (None)."""
    return [a if a == b else ("N" if (a, b) == (n1, n2) else None) for a, b in zip(o1.shape, o2.shape)]


def _check_float32(model):
    """The model's float parameters must be float32: the exported input is declared FLOAT and
    traced in float32. ExportError naming the first that is not."""
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t is not None and np.dtype(t.dtype).kind == "f" and np.dtype(t.dtype) != np.float32:
            raise ExportError(f"to_onnx: {name!r} is {np.dtype(t.dtype)}; the exporter writes float32 models (the "
                              f"file's input is FLOAT). Build the model in float32 (the layers' default) and load "
                              f"these weights into it: model32.load_state_dict(model.state_dict())")


# --------------------------------------------------------------------------- to_onnx


def to_onnx(model, input_shape, path=None, *, dynamic_batch: bool = True, input_name: str = "input",
            output_names=None, verify: bool = True):
    """Export ``model`` to ONNX (opset 17) by tracing its forward on an input of ``input_shape``.

    ``input_shape``: (N, C, H, W) or (N, features), batch first, as the model takes it
    (normalised MNIST images: (1, 1, 28, 28)). ``path``: where to write the ``.onnx`` file
    (atomic: a temporary file, then a rename), or None to only return it. ``dynamic_batch``:
    the batch axis is named ``"N"`` and may differ at run time (checked: the model is traced at a
    second batch size, see the module docstring). ``output_names``: one name per
    output of the forward (default ``"output"``, or ``"output_0"``, ``"output_1"``, ...).
    ``verify``: when ``onnxruntime`` is installed, run the exported model on the traced input
    (and, with ``dynamic_batch``, on the second batch size) and compare its outputs with
    minikd's (to 1e-4 relative to the output's size; an integer model to 2e-3), raising
    :class:`ExportError` if they differ.

    Returns the ``onnx.ModelProto`` (``onnx.checker.check_model`` has passed on it). The
    model is traced in eval mode and put back in the mode it was in.

    Exported: Conv2d, Linear, MatMul, MaxPool2d, AvgPool2d, BatchNorm (eval), ReLU,
    LeakyReLU, Sigmoid, Tanh, clip, reshape/flatten, transpose, concatenate, the elementwise
    arithmetic, softmax and log-softmax with temperature, casts, and the integer layers
    IntConv2d / IntLinear (:func:`supported_ops` lists them).

    Raises ImportError naming the package when ``onnx`` is missing; TypeError/ValueError for
    an ``input_shape`` that is not a tuple of positive ints, for names that are empty, repeated
    or already a weight's, for a ``path`` not ending in ``.onnx``; :class:`ExportError` (a
    ValueError) naming the layer when the model does not run on that shape (or, with
    ``dynamic_batch``, on one more row), uses an op with no ONNX node here (a custom op, an
    upsampling, an embedding), holds a fake-quantized or uncalibrated layer, computes on raw
    arrays outside minikd's ops, ties its shapes to the traced batch size while
    ``dynamic_batch`` is on, has parameters that are not float32 (naming the first), or when
    ONNX Runtime disagrees with minikd.
    """
    onnx = _onnx()
    if not isinstance(model, Module):
        raise TypeError(f"to_onnx: model must be a minikd nn.Module; got {type(model).__name__}")
    dims = _check_input_shape(input_shape)
    dynamic_batch = check_bool(dynamic_batch, "to_onnx", "dynamic_batch")
    verify = check_bool(verify, "to_onnx", "verify")
    if not (isinstance(input_name, str) and input_name):
        raise TypeError(f"to_onnx: input_name must be a non-empty string; got {input_name!r}")
    if output_names is not None and (isinstance(output_names, str)
                                     or not all(isinstance(n, str) and n for n in output_names)):
        raise TypeError(f"to_onnx: output_names must be a list of names (non-empty strings), one per output; got "
                        f"{output_names!r}")
    if path is not None:
        path = _path(path, "to_onnx")
        if not path.lower().endswith(".onnx"):
            raise ValueError(f"to_onnx: path must end in .onnx (the file is an ONNX model, which mk.load does not "
                             f"read); got {path!r}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"to_onnx: the folder {folder!r} of {path!r} does not exist")

    _check_float32(model)
    was_training = model.training
    model.eval()
    try:
        traces = _trace_twice(model, dims, dynamic_batch)
    finally:
        model.train(was_training)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    state = {k: v for k, v in state.items() if v is not None}
    problem = _leaked(traces, {id(t) for t in state.values()} | {id(t.data) for t in state.values()})
    if problem:
        why, layer = problem
        raise ExportError(f"to_onnx: cannot export {layer}: {why}. Write it with minikd's ops (functional) so "
                          f"that it can be traced" + (", or export with dynamic_batch=False" if dynamic_batch else ""))
    problem = _batch_bound(traces) if dynamic_batch else None
    if problem:
        why, layer = problem
        raise ExportError(f"to_onnx: cannot export {layer} with a free batch size: {why}")
    trace, x, outs = traces[0]
    _, x2, outs2 = traces[1]

    g = _Graph(onnx, state, trace.names)
    g.values[id(x)] = input_name
    emitters = _emitters()
    for op in trace.ops:
        if op.module is None and all(g.is_constant(v) for v in op.inputs):
            # every input is a weight or a constant: store the result (a masked weight, say), not the op
            first = next((g.constants[id(v)][0] for v in op.inputs if isinstance(v, Tensor)
                          and id(v) in g.constants), "const")
            what = "masked" if op.kind is Where else op.kind.__name__.lower()  # W ⊙ mask is a Where
            g.fold(op.output, f"{first}_{what}")
            continue
        if op.kind not in emitters:
            raise ExportError(f"to_onnx: cannot export {op.layer}: its op {op.kind.__name__} has no ONNX node in "
                              f"this exporter (it writes: {', '.join(supported_ops())}). Replace the layer, or add "
                              f"the op to minikd/export.py's table")
        if emitters[op.kind] is None:  # an identity
            g.values[id(op.output)] = g.name_of(op.inputs[0])
            continue
        ins = [g.name_of(v) for v in op.inputs]
        g.values[id(op.output)] = emitters[op.kind](g, op, ins)

    outputs = list(output_names) if output_names is not None else (
        ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))])
    if len(outputs) != len(outs):
        raise ValueError(f"to_onnx: output_names has {len(outputs)} names for {len(outs)} outputs")
    _check_graph_names(input_name, outputs, set(g.initializers) | {o for node in g.nodes for o in node.output})
    batch = "N" if dynamic_batch else dims[0]
    n2 = x2.shape[0]
    helper, T = onnx.helper, onnx.TensorProto
    for o, name in zip(outs, outputs):
        if id(o) not in g.values:
            raise ExportError("to_onnx: an output of the model does not depend on its input; nothing to export")
        g.nodes.append(helper.make_node("Identity", [g.values[id(o)]], [name], name=name))
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, T.FLOAT, [batch, *dims[1:]])],
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(o.dtype)),
                                       _output_dims(o, o2, dims[0], n2))
         for o, o2, name in zip(outs, outs2, outputs)],
        list(g.initializers.values()))
    opsets = [helper.make_opsetid("", OPSET)]
    # the oldest IR version that holds opset 17 (8), not the newest the installed onnx knows:
    # older runtimes refuse a file stamped with an IR version newer than theirs
    proto = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name="minikd",
                              doc_string=f"{type(model).__name__}, exported by minikd.export.to_onnx")
    onnx.checker.check_model(proto, full_check=True)
    if verify:
        integer = any(op.module is not None for op in trace.ops)
        for xi, outs_i in ([(x, outs), (x2, outs2)] if dynamic_batch else [(x, outs)]):
            _verify(proto, xi, outs_i, integer)
    if path is not None:
        data = proto.SerializeToString()
        _write_atomic(path, lambda f: f.write(data), op="to_onnx", what="the .onnx")
    return proto


def _check_graph_names(input_name: str, outputs: list, taken: set) -> None:
    """ONNX names every value once: the input, each output and the graph's own values ``taken`` (weights
    such as ``fc.weight``, node outputs such as ``Gemm_3``) must all differ, or the file is invalid."""
    names = [input_name, *outputs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"to_onnx: the input and output names must all differ; {', '.join(map(repr, twice))} "
                         f"given more than once (input_name={input_name!r}, output_names={outputs!r})")
    clash = [n for n in names if n in taken]
    if clash:
        raise ValueError(f"to_onnx: {', '.join(map(repr, clash))} {'is' if len(clash) == 1 else 'are'} already the "
                         f"name of a weight or an inner value of the graph; choose other input/output names")


def _verify(proto, x, outs, integer: bool) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        return
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # the runtime's own error types, e.g. NOT_IMPLEMENTED for an op it lacks
        raise ExportError(f"to_onnx: ONNX Runtime {ort.__version__} cannot load the exported model to check it "
                          f"({type(e).__name__}: {e}); int8 models need onnxruntime >= 1.24 (pip install -U "
                          f"onnxruntime), or pass verify=False to write the file unchecked") from e
    got = session.run(None, {session.get_inputs()[0].name: backend.to_numpy(x.data)})
    tol = 2e-3 if integer else 1e-4
    for i, (a, o) in enumerate(zip(got, outs)):
        want = backend.to_numpy(o.data)
        err = float(np.max(np.abs(a - want))) if want.size else 0.0
        size = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
        if a.shape != want.shape or err > tol * size:
            raise ExportError(f"to_onnx: ONNX Runtime's output {i} differs from minikd's (max |difference| {err:.3g}, "
                              f"shapes {a.shape} vs {want.shape}); the graph is wrong — please report it")


# --------------------------------------------------------------------------- PyTorch's names


def to_torch_names(state: dict) -> dict:
    """``state`` with the names PyTorch uses, for ``torch_model.load_state_dict``.

    minikd's names are PyTorch's for the same architecture (``conv1.weight``, ``bn1.running_var``,
    ``bn1.num_batches_tracked``), with one exception: a pruned weight. minikd keeps the weight
    under its own name beside ``<name>_mask``; ``torch.nn.utils.prune`` renames it
    ``<name>_orig`` (and computes ``<name>`` from the two). So ``X.weight`` becomes
    ``X.weight_orig`` wherever ``X.weight_mask`` exists; everything else is unchanged.

    Raises TypeError when ``state`` is not a mapping, ValueError for an integer-quantized
    model's state (``quant.convert_to_integer``'s: its ``*.weight_scale``, ``*.input_zero_point``
    have no PyTorch layer to go to; export it with :func:`to_onnx` instead).
    """
    _check_state(state, "to_torch_names")
    integer = integer_keys(state)
    if integer:
        raise ValueError(f"to_torch_names: the state holds an integer-quantized model ({integer[0]!r}, ...): "
                         f"PyTorch's float layers have no place for its scales and zero points; export it with "
                         f"to_onnx, or convert the float model's state")
    return {(f"{k}_orig" if f"{k}_mask" in state else k): v for k, v in state.items()}


def _check_state(state, op):
    if not isinstance(state, Mapping):
        raise TypeError(f"{op}: state must be a state dict, a mapping name → array (model.state_dict()); got "
                        f"{type(state).__name__}")


def from_torch_names(state: dict) -> dict:
    """The inverse of :func:`to_torch_names`: PyTorch's ``X.weight_orig`` back to ``X.weight``."""
    _check_state(state, "from_torch_names")
    return {(k[: -len("_orig")] if k.endswith("_orig") and f"{k[: -len('_orig')]}_mask" in state else k): v
            for k, v in state.items()}


__all__ = ["ExportError", "OPSET", "from_torch_names", "supported_ops", "to_onnx", "to_torch_names"]
