"""Model complexity, measured the lecture's way: parameters → memory, FLOPs → compute, latency.

The lecture's formulas, with its symbols::

    fully connected, I inputs, O outputs     parameters = O·I + O = (I + 1)·O
                                             FLOPs(FC)  = I·O + O
    convolution, d filters of k×k over d_prev channels
                                             parameters = d·k·k·d_prev + d
                                             h_i = (h_{i−1} − k + 2p)/s + 1   (w_i alike)
                                             FLOPs      = 2·h_i·w_i·d·(k·k·d_prev + 1)
    memory footprint                         bytes = parameters × size of the data type

**Counting conventions.** The slides say "FLOPs = 2 × MACs" (a multiply-accumulate
a·b + c is two operations), and their conv formula follows it — but their FC formula
``I·O + O`` counts one operation per weight, i.e. MACs, plus the bias additions. So the
two formulas disagree on the factor 2. Every function here takes ``convention``:

- ``"lecture"`` (default): exactly the slides' formulas above;
- ``"macs"``: multiply-accumulates of the weights only, bias left out — what fvcore,
  thop and ptflops report (they call it "FLOPs" or "MACs"): FC ``I·O``, conv
  ``h_i·w_i·d·k·k·d_prev/groups``;
- ``"flops"``: ``2 × MACs``, the slides' own definition applied to both layer types.

For Conv2d(1→32, 3×3, no padding) on 28×28: 194,688 MACs, 389,376 FLOPs, and the
lecture's formula gives 2·26·26·32·(9 + 1) = 432,640 (it counts the bias as one more MAC
per output value).

Layers without weights (pooling, ReLU, flatten, dropout, upsampling) have 0 parameters and
are counted as 0 MACs, as fvcore does by default; batch norm has 2 parameters per channel
(its running statistics are buffers, not parameters) and is also counted as 0 here.

A generator's layers: a transposed convolution ConvTranspose2d(d_prev → d, k) has the
parameters of a convolution, d·k·k·d_prev + d (``conv_params``), and each of its h_{i−1}·w_{i−1}
INPUT pixels scatters a k·k·d block per input channel: h_{i−1}·w_{i−1}·k·k·d_prev·d MACs
(``conv_transpose_flops``). An Embedding(n, dim) is a table lookup: n·dim parameters, 0 MACs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend, nn
from .checks import check_bool, check_int, check_module, check_pair
from .kernels.conv import conv_output_size  # noqa: F401  (the lecture's h_i formula, defined beside the kernels that size their outputs with it)
from .tensor import Tensor, no_grad, zeros

CONVENTIONS = ("lecture", "macs", "flops")
# the variables that set the thread pools' sizes (OpenMP, OpenBLAS, MKL, Numba); examples/benchmark.py
# sets the same ones for its workers (its parent may not import minikd, so it keeps its own copy)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

# --------------------------------------------------------------------------- formulas


def linear_params(I: int, O: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: O·I + O = (I + 1)·O (without bias: I·O).

    >>> linear_params(2, 4) + linear_params(4, 2)   # the 2-4-2 toy network
    22
    """
    I, O = _size(I, "linear_params", "I (inputs)"), _size(O, "linear_params", "O (outputs)")
    return (I + 1) * O if check_bool(bias, "linear_params", "bias") else I * O


def conv_params(k: int, d_prev: int, d: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a conv layer: d·k·k·d_prev + d (one bias per filter; d_prev/groups with groups).

    >>> conv_params(3, 3, 1)     # one 3×3 filter over depth 3: 3·3·3 + 1
    28
    """
    kk, d_prev, d, groups = _kk(k, "conv_params"), *_channels(d_prev, d, groups, "conv_params")
    return d * kk * (d_prev // groups) + (d if check_bool(bias, "conv_params", "bias") else 0)


def _size(v, op, name, low=1) -> int:
    """A size of the lecture's formulas (I, O, d, h, k, ...): an int ≥ ``low``, else an error naming ``op``."""
    return check_int(v, op, name, low=low)


def _kk(k, op) -> int:
    """k·k for a square kernel; k_h·k_w when ``k`` is a (k_h, k_w) pair (each an int ≥ 1)."""
    kh, kw = check_pair(k, op, "k (the kernel size)", low=1)
    return kh * kw


def _channels(d_prev, d, groups, op):
    """(d_prev, d, groups), ints ≥ 1, the groups dividing both channel counts (as Conv2d requires)."""
    d_prev, d = _size(d_prev, op, "d_prev (input channels)"), _size(d, op, "d (filters)")
    groups = _size(groups, op, "groups")
    if d_prev % groups or d % groups:
        raise ValueError(f"{op}: groups={groups} must divide both d_prev={d_prev} and d={d}")
    return d_prev, d, groups


def linear_flops(I: int, O: int, convention: str = "lecture", bias: bool = True) -> int:
    """Operations of a fully connected layer: lecture I·O + O; macs I·O; flops 2·I·O."""
    _check_convention(convention)
    macs = _size(I, "linear_flops", "I (inputs)") * _size(O, "linear_flops", "O (outputs)")
    if convention == "lecture":
        return macs + (O if check_bool(bias, "linear_flops", "bias") else 0)
    return macs if convention == "macs" else 2 * macs


def conv_flops(h: int, w: int, k: int, d_prev: int, d: int, convention: str = "lecture",
               bias: bool = True, groups: int = 1) -> int:
    """Operations of a conv layer with an h×w output (h = h_i, w = w_i).

    lecture: 2·h·w·d·(k·k·d_prev + 1);  macs: h·w·d·k·k·d_prev/groups;  flops: 2·macs.

    >>> conv_flops(3, 3, 3, 1, 3)   # the slide: 2·(3·3)·(1·3·3 + 1)·3
    540
    """
    _check_convention(convention)
    h, w = _size(h, "conv_flops", "h (output height)"), _size(w, "conv_flops", "w (output width)")
    d_prev, d, groups = _channels(d_prev, d, groups, "conv_flops")
    per_output = _kk(k, "conv_flops") * (d_prev // groups)
    if convention == "lecture":
        return 2 * h * w * d * (per_output + (1 if check_bool(bias, "conv_flops", "bias") else 0))
    macs = h * w * d * per_output
    return macs if convention == "macs" else 2 * macs


def conv_transpose_flops(h: int, w: int, k, d_prev: int, d: int, convention: str = "lecture",
                         bias: bool = True, out_hw: tuple | None = None) -> int:
    """Operations of a transposed conv layer with an h×w INPUT (h = h_{i−1}, w = w_{i−1}).

    macs: h·w·k·k·d_prev·d (each input pixel times its k×k×d block of the kernel, per input
    channel); flops: 2·macs; lecture: 2·(macs + h_i·w_i·d), the bias counted as one more MAC per
    output value as the lecture's conv formula counts it (``out_hw`` = (h_i, w_i), needed then).

    >>> conv_transpose_flops(7, 7, 4, 8, 4, "macs")     # 7×7×8 → 14×14×4 (k=4, s=2, p=1)
    25088
    >>> conv_transpose_flops(7, 7, 4, 8, 4, out_hw=(14, 14))
    51744
    """
    _check_convention(convention)
    op = "conv_transpose_flops"
    h, w = _size(h, op, "h (input height)"), _size(w, op, "w (input width)")
    macs = h * w * _kk(k, op) * _size(d_prev, op, "d_prev (input channels)") * _size(d, op, "d (filters)")
    bias = check_bool(bias, op, "bias")
    if out_hw is not None:
        out_hw = check_pair(out_hw, op, "out_hw (h_i, w_i)", low=1)
    if convention == "lecture":
        if bias and out_hw is None:
            raise ValueError("conv_transpose_flops: the lecture convention counts the bias per output value; "
                             "give out_hw=(h_i, w_i)")
        return 2 * (macs + (out_hw[0] * out_hw[1] * d if bias else 0))
    return macs if convention == "macs" else 2 * macs


_DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "float16": 2, "bfloat16": 2, "int32": 4, "float32": 4,
                "int64": 8, "float64": 8}


def memory_bytes(n_params: int, dtype_or_bits="float32") -> float:
    """Memory footprint = number of parameters × size of the data type in bytes.

    ``dtype_or_bits``: a dtype name or NumPy dtype (int8/uint8 = 1, int32/float32 = 4, ...)
    or a bit width (int): 4-bit weights take half a byte each.

    >>> memory_bytes(22, "float32")   # the 2-4-2 toy network
    88
    """
    n_params = _size(n_params, "memory_bytes", "n_params", low=0)
    if dtype_or_bits is None or isinstance(dtype_or_bits, (bool, np.bool_)):  # np.dtype(None) is float64
        raise TypeError(f"memory_bytes: dtype_or_bits must be a data type or a bit width; got {dtype_or_bits!r}")
    if isinstance(dtype_or_bits, (int, np.integer)):
        if dtype_or_bits <= 0:
            raise ValueError(f"memory_bytes: bit width must be positive; got {dtype_or_bits}")
        total = n_params * int(dtype_or_bits) / 8
        return int(total) if float(total).is_integer() else total
    name = dtype_or_bits if isinstance(dtype_or_bits, str) else np.dtype(dtype_or_bits).name
    if name not in _DTYPE_BYTES:
        raise ValueError(f"memory_bytes: unknown data type {dtype_or_bits!r}; use one of {sorted(_DTYPE_BYTES)} "
                         "or a bit width")
    return n_params * _DTYPE_BYTES[name]


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")


# --------------------------------------------------------------------------- per-layer counts

def count_linear(layer, inputs, output, convention):
    bias = layer.bias is not None
    return (linear_flops(layer.in_features, layer.out_features, "macs", bias) * _rows(output),
            linear_flops(layer.in_features, layer.out_features, convention, bias) * _rows(output))


def count_conv2d(layer, inputs, output, convention):
    _, d, h, w = output.shape
    args = dict(bias=layer.bias is not None, groups=layer.groups)
    return (conv_flops(h, w, layer.kernel_size, layer.in_channels, d, "macs", **args),
            conv_flops(h, w, layer.kernel_size, layer.in_channels, d, convention, **args))


def count_conv_transpose2d(layer, inputs, output, convention):
    _, _, h, w = inputs[0].shape
    _, d, ho, wo = output.shape
    args = dict(bias=layer.bias is not None, out_hw=(ho, wo))
    return (conv_transpose_flops(h, w, layer.kernel_size, layer.in_channels, d, "macs", **args),
            conv_transpose_flops(h, w, layer.kernel_size, layer.in_channels, d, convention, **args))


def _rows(output):
    """Vectors a linear layer processed per input example (1 for (N, I) inputs)."""
    return int(np.prod(output.shape[1:-1])) if len(output.shape) > 2 else 1


#: How each layer type is counted: ``fn(layer, inputs, output, convention) -> (macs, ops)``,
#: per example. Pruning and quantization register their layer types here.
COUNTERS = {nn.Linear: count_linear, nn.Conv2d: count_conv2d, nn.ConvTranspose2d: count_conv_transpose2d}


def register_counter(layer_type, fn):
    """Count ``layer_type`` with ``fn(layer, inputs, output, convention) -> (macs, ops)``."""
    COUNTERS[layer_type] = fn


def layer_bits(layer) -> int | None:
    """The bit width a layer's parameters are stored at: ``layer.weight_bits`` when a quantized
    layer sets it, else the parameters' dtype (float32 → 32); None without parameters."""
    bits = getattr(layer, "weight_bits", None)
    if bits is not None:
        return int(bits)
    params = list(layer.parameters())
    return params[0].dtype.itemsize * 8 if params else None


# --------------------------------------------------------------------------- summary

@dataclass
class LayerRow:
    """One call of one leaf layer.

    ``params``, ``nonzero_params`` and ``memory_bytes`` count only the parameters no earlier
    row counted: a layer that runs twice shows them on its first call and 0 on its second,
    and a weight two layers share is counted on the first of them (``shared_params`` says
    how many of the layer's parameters an earlier row already counted). ``macs`` and
    ``flops`` are this call's: every call computes. ``call`` is which call of the layer the
    row is (1, 2, ...) and ``calls`` how many times the layer ran.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    nonzero_params: int
    bits: int | None
    memory_bytes: float
    macs: int
    flops: int
    call: int = 1
    calls: int = 1
    shared_params: int = 0

    @property
    def note(self) -> str:
        """What the table adds to the layer's name: which call it is, and shared parameters."""
        notes = []
        if self.calls > 1:
            notes.append(f"call {self.call} of {self.calls}")
        if self.shared_params and self.call == 1:
            notes.append(f"{self.shared_params:,} params shared, counted above")
        return f" ({'; '.join(notes)})" if notes else ""


@dataclass
class Summary:
    """One row per leaf layer that ran, and the totals; ``str()`` is an aligned table."""

    rows: list = field(default_factory=list)
    input_shape: tuple = ()
    convention: str = "lecture"

    total_params = property(lambda self: sum(r.params for r in self.rows))
    total_nonzero_params = property(lambda self: sum(r.nonzero_params for r in self.rows))
    total_memory_bytes = property(lambda self: sum(r.memory_bytes for r in self.rows))
    total_macs = property(lambda self: sum(r.macs for r in self.rows))
    total_flops = property(lambda self: sum(r.flops for r in self.rows))

    def _table(self):
        head = ["layer", "type", "output shape", "params", "non-zero", "bits", "memory (B)", "MACs",
                f"FLOPs ({self.convention})"]
        body = [[r.name + r.note, r.type, str(r.output_shape), f"{r.params:,}", f"{r.nonzero_params:,}",
                 "-" if r.bits is None else str(r.bits), f"{r.memory_bytes:,.0f}", f"{r.macs:,}", f"{r.flops:,}"]
                for r in self.rows]
        total = ["total", "", "", f"{self.total_params:,}", f"{self.total_nonzero_params:,}", "",
                 f"{self.total_memory_bytes:,.0f}", f"{self.total_macs:,}", f"{self.total_flops:,}"]
        return head, body, total

    def __str__(self):
        head, body, total = self._table()
        widths = [max(len(row[i]) for row in [head, *body, total]) for i in range(len(head))]
        left = {0, 1, 2}

        def line(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(line(head))
        return "\n".join([line(head), rule, *map(line, body), rule, line(total)] + self._footnote())

    def to_markdown(self) -> str:
        head, body, total = self._table()
        total = [f"**{c}**" if c else "" for c in total]
        rows = [head, ["---"] * 3 + ["---:"] * (len(head) - 3), *body, total]
        note = self._footnote()
        return "\n".join(["| " + " | ".join(r) + " |" for r in rows] + ([""] + note if note else []))

    def _footnote(self) -> list:
        if not any(r.calls > 1 or r.shared_params for r in self.rows):
            return []
        return ["Parameters and memory count each parameter once, on the first row that uses it; "
                "MACs and FLOPs count every call."]


def summary(model: nn.Module, input_shape, convention: str = "lecture", batch_size: int = 1) -> Summary:
    """Run ``model`` once on zeros of shape (batch_size, *input_shape) and count every leaf layer.

    Rows follow the order the layers ran in; MACs and FLOPs are per example. A layer that
    runs twice (``self.fc(self.fc(x))``) gives two rows: both count their MACs and FLOPs
    (the layer computes twice), but its parameters are counted once, on the first call's
    row — the second shows 0 — so the totals hold each parameter, and its memory, once
    (as ``model.num_parameters()`` does); a weight that two layers share is counted alike.
    "non-zero" skips the weights pruning set to 0; memory uses each layer's bit width
    (``layer_bits``).

    >>> class Twice(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(30, 30)
    ...     def forward(self, x):
    ...         return self.fc(self.fc(x))
    >>> s = summary(Twice(), (30,))
    >>> s.total_params, s.total_memory_bytes, s.total_macs
    (930, 3720, 1800)
    """
    _check_convention(convention)
    input_shape = _model_input(model, input_shape, batch_size, "summary")
    names = {id(m): name for name, m in model.named_modules() if name}
    leaves = [m for m in model.modules() if not list(m.children())]
    rows, row_layers, handles = [], [], []
    counted = set()   # ids of the parameters an earlier row already counted
    calls = {}        # id(layer) -> how many times it has run so far

    def hook(layer, inputs, output):
        params = list(layer.parameters())
        new = [p for p in params if id(p) not in counted]
        counted.update(id(p) for p in new)
        n = sum(p.size for p in new)
        nonzero = sum(int(backend.get_array_module(p.data).count_nonzero(p.data)) for p in new)
        bits = layer_bits(layer)
        counter = next((fn for t, fn in COUNTERS.items() if type(layer) is t), None)
        if counter is None:
            counter = next((fn for t, fn in COUNTERS.items() if isinstance(layer, t)), None)
        macs, ops = counter(layer, inputs, output, convention) if counter else (0, 0)
        calls[id(layer)] = calls.get(id(layer), 0) + 1
        rows.append(LayerRow(names.get(id(layer), type(layer).__name__), type(layer).__name__,
                             tuple(output.shape[1:]), n, nonzero, bits,
                             memory_bytes(n, bits) if bits else 0, macs, ops, call=calls[id(layer)],
                             shared_params=sum(p.size for p in params) - n))
        row_layers.append(id(layer))

    for m in leaves:
        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        params = list(model.parameters())
        dtype = params[0].dtype if params else np.float32
        device = params[0].device if params else "cpu"
        with no_grad():
            model(zeros(batch_size, *input_shape, dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for row, layer in zip(rows, row_layers):
        row.calls = calls[layer]
    return Summary(rows, tuple(input_shape), convention)


# --------------------------------------------------------------------------- latency

@dataclass
class Latency:
    median_ms: float
    p90_ms: float
    images_per_s: float
    batch_size: int
    repeats: int
    platform: dict

    def __str__(self):
        p = self.platform
        return (f"batch {self.batch_size}: median {self.median_ms:.3f} ms, p90 {self.p90_ms:.3f} ms, "
                f"{self.images_per_s:,.0f} images/s  [{p['device']}: {p['processor']}, {p['cores']} cores, "
                f"{p['backend']}]")


def _model_input(model, input_shape, batch_size, op) -> tuple:
    """Check ``model`` (an nn.Module), ``input_shape`` (one sample's shape, e.g. (1, 28, 28): a tuple
    of ints ≥ 1) and ``batch_size`` (an int ≥ 1); returns the shape as a tuple."""
    check_module(model, op, "model")
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{op}: input_shape must be one sample's shape, a tuple such as (1, 28, 28); "
                        f"got {input_shape!r}")
    check_int(batch_size, op, "batch_size", low=1)
    return tuple(check_int(n, op, "each size of input_shape", low=1) for n in input_shape)


def _cpuinfo() -> dict:
    """The first ``model name``, ``cpu family``, ``model`` and ``flags`` lines of /proc/cpuinfo
    ({} where there is no such file)."""
    wanted, found = ("model name", "cpu family", "model", "flags"), {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in wanted and key.strip() not in found:
                    found[key.strip()] = value.strip()
    except OSError:
        pass
    return found


def _blas_info() -> str:
    """The BLAS NumPy calls, as it runs here: its library, version, the kernels it picked for this
    processor (OpenBLAS chooses them when it loads: "SkylakeX", "Haswell", "Zen"...) and its threads,
    read by threadpoolctl. Two hosts that both say "AMD EPYC" may get different kernels, and so
    different last bits in every matrix product."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    found = [", ".join([f"{i.get('internal_api')} {i.get('version')}"]
                       + ([f"{i['architecture']} kernels"] if i.get("architecture") else [])   # MKL names none
                       + [f"{i.get('num_threads')} threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "none found"


def _llvm_cpu() -> str:
    """The processor Numba compiles its kernels for (LLVM's name for the host, e.g. "znver4")."""
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name()


def platform_info(device: str = "cpu") -> dict:
    """What a measured number depends on — a latency, or the last bits of a trained network:
    the processor (its name; its family, model and AVX-512, which choose OpenBLAS's kernels and
    tell apart hosts a virtual machine names only by vendor), cores, array backend and kernels,
    the Python, NumPy and Numba versions, the thread variables as the process found them
    (:data:`THREAD_VARS`, each its value or ``"not set"``: with none set, OpenBLAS and Numba use
    one thread per core), the threads Numba uses, the BLAS library and the kernels it picked
    (``blas``), and the processor Numba compiles for (``llvm_cpu``). On a GPU device, also the
    GPU and CuPy's version."""
    import numba

    from . import kernels

    cpu = _cpuinfo()
    info = {"device": device, "processor": cpu.get("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "backend": f"numpy {np.__version__} + {kernels.get_backend()} kernels", "python": platform.python_version(),
            "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
            "avx512f": "avx512f" in cpu.get("flags", "").split(), "numba": numba.__version__,
            "thread_variables": {var: os.environ.get(var, "not set") for var in THREAD_VARS},
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "blas": _blas_info(),
            "llvm_cpu": _llvm_cpu()}
    if str(device).startswith("cuda"):
        import cupy

        index = int(backend.check_device(device).split(":")[1])
        info["backend"] = f"cupy {cupy.__version__}"
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(index)["name"].decode()
    return info


def measure_latency(model: nn.Module, input_shape, batch_size: int = 1, warmup: int = 5,
                    repeats: int = 30) -> Latency:
    """Time ``model``'s forward pass (eval mode, no graph) on a random batch.

    Returns the median and 90th-percentile milliseconds per batch and images per second
    (from the median). Latency is platform-dependent: the result records the platform.
    """
    repeats = check_int(repeats, "measure_latency", "repeats", low=1)
    warmup = check_int(warmup, "measure_latency", "warmup", low=0)
    input_shape = _model_input(model, input_shape, batch_size, "measure_latency")
    params = list(model.parameters())
    device = params[0].device if params else "cpu"
    dtype = params[0].dtype if params else np.float32
    # a local generator: timing a model must not shift minikd's seeded random stream
    data = np.random.default_rng(0).standard_normal((batch_size, *input_shape)).astype(dtype)
    x = Tensor(backend.to_device(data, device))
    sync = _synchronizer(device)
    was_training = model.training
    model.eval()
    times = []
    try:
        with no_grad():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    ms = np.array(times) * 1e3
    median = float(np.median(ms))
    return Latency(median, float(np.percentile(ms, 90)), batch_size / (median / 1e3), batch_size, repeats,
                   platform_info(device))


def _synchronizer(device):
    """Wait for the device's queued work before reading the clock (kernels run asynchronously)."""
    return lambda: backend.synchronize(device)


# --------------------------------------------------------------------------- command line
#
# Every argument is checked before any model is profiled: a bad one ends the program with
# argparse's one-line error and exit status 2, never a traceback.

def _one_line(e: BaseException) -> str:
    """An exception as one line: its type (unless the message says it) and its message, spaces collapsed."""
    text = " ".join(str(e).split())
    return text if text else type(e).__name__


def _parse_shape(parser, text: str) -> tuple:
    """``--input-shape``: comma-separated positive integers, one example's shape (no batch axis)."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        parser.error(f"--input-shape: expected one example's shape as comma-separated positive integers, "
                     f"without the batch axis (e.g. 1,28,28); got {text!r}")
    return shape


def _build_model(parser, spec: str):
    """``--model module:factory``: import the module, call the factory, check it gave an nn.Module."""
    module, sep, attr = spec.partition(":")
    if not (sep and module and attr):
        parser.error(f"--model: expected module:factory (e.g. minikd.models:TeacherModel); got {spec!r}")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        parser.error(f"--model {spec}: cannot import the module {module!r}: {_one_line(e)}")
    except Exception as e:  # the module itself failed while being imported
        parser.error(f"--model {spec}: importing {module!r} raised {type(e).__name__}: {_one_line(e)}")
    for part in attr.split("."):
        if not hasattr(obj, part):
            parser.error(f"--model {spec}: the module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        parser.error(f"--model {spec}: {attr} is a {type(obj).__name__}, not a factory (a class or function)")
    try:
        model = obj()
    except Exception as e:
        parser.error(f"--model {spec}: {attr}() raised {type(e).__name__}: {_one_line(e)}")
    if not isinstance(model, nn.Module):
        parser.error(f"--model {spec}: {attr}() returned a {type(model).__name__}, not an nn.Module")
    return model


def _summarize(parser, spec, model, shape, convention):
    """The summary, or an --input-shape error naming the model when it cannot run on that shape."""
    try:
        return summary(model, shape, convention)
    except Exception as e:
        parser.error(f"--input-shape {','.join(map(str, shape))}: {spec} cannot run on an input of shape "
                     f"{(1, *shape)}: {_one_line(e)}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minikd.profile",
                                description="Parameters, memory, MACs/FLOPs per layer, and latency.")
    p.add_argument("--model", action="append",
                   help="module:factory building a model (repeatable); default: the lecture's teacher and student")
    p.add_argument("--input-shape", default="1,28,28", help="one example's shape, e.g. 1,28,28")
    p.add_argument("--convention", choices=CONVENTIONS, default="lecture")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--latency", action="store_true", help="also measure latency at batch 1 and 1000")
    args = p.parse_args(argv)
    shape = _parse_shape(p, args.input_shape)
    specs = args.model or ["minikd.models:TeacherModel", "minikd.models:StudentModel"]
    # every model is built and counted before anything is printed or timed
    models = [(spec, _build_model(p, spec)) for spec in specs]
    summaries = [_summarize(p, spec, model, shape, args.convention) for spec, model in models]
    for (spec, model), s in zip(models, summaries):
        print(f"\n{spec}  (input {shape}, convention '{args.convention}')\n")
        print(s.to_markdown() if args.markdown else s)
        if args.latency:
            for bs in (1, 1000):
                print(measure_latency(model, shape, batch_size=bs, repeats=10 if bs > 1 else 30))


def cli(argv=None):
    """``python -m minikd.profile``: :func:`main`, quiet when the reader of its output goes away.

    ``python -m minikd.profile | head -1`` closes the pipe after one line; the next write then
    raises BrokenPipeError. The usual remedy (Python's signal docs): point stdout at devnull, so
    the interpreter's last flush cannot fail again, and exit with status 1, without a traceback.
    """
    try:
        main(argv)
        sys.stdout.flush()  # inside the try: a write that fails here fails now, not at shutdown
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    cli()
