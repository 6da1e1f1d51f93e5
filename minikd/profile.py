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

Layers without weights (pooling, ReLU, flatten, dropout) have 0 parameters and are
counted as 0 MACs, as fvcore does by default; batch norm has 2 parameters per channel
(its running statistics are buffers, not parameters) and is also counted as 0 here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend, nn
from .tensor import Tensor, no_grad, zeros

CONVENTIONS = ("lecture", "macs", "flops")

# --------------------------------------------------------------------------- formulas


def conv_output_size(h: int, k: int, p: int = 0, s: int = 1) -> int:
    """h_i = (h_{i−1} − k + 2p)/s + 1: the output height (or width) of a conv or pooling layer.

    Raises ValueError when the window does not tile the padded input exactly (the formula
    is not a whole number) or when the result is not positive.

    >>> conv_output_size(5, 3)          # the slide: 5×5 image, 3×3 kernel
    3
    >>> conv_output_size(5, 3, p=1)     # the zero-padding exercise
    5
    """
    if s <= 0 or k <= 0 or p < 0:
        raise ValueError(f"conv_output_size: need k > 0, s > 0, p ≥ 0; got k={k}, p={p}, s={s}")
    span = h - k + 2 * p
    if span < 0:
        raise ValueError(f"conv_output_size: kernel {k} is larger than the padded input {h + 2 * p} "
                         f"(h={h}, p={p}); (h − k + 2p)/s + 1 = {span / s + 1:g} ≤ 0")
    if span % s:
        raise ValueError(f"conv_output_size: (h − k + 2p)/s + 1 = ({h} − {k} + 2·{p})/{s} + 1 = {span / s + 1:g} "
                         "is not a whole number: the window does not tile the input with this stride "
                         "(frameworks then drop the last partial window: use floor)")
    return span // s + 1


def linear_params(I: int, O: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: O·I + O = (I + 1)·O (without bias: I·O).

    >>> linear_params(2, 4) + linear_params(4, 2)   # the 2-4-2 toy network
    22
    """
    return (I + 1) * O if bias else I * O


def conv_params(k: int, d_prev: int, d: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a conv layer: d·k·k·d_prev + d (one bias per filter; d_prev/groups with groups).

    >>> conv_params(3, 3, 1)     # one 3×3 filter over depth 3: 3·3·3 + 1
    28
    """
    return d * _kk(k) * (d_prev // groups) + (d if bias else 0)


def _kk(k) -> int:
    """k·k for a square kernel; k_h·k_w when ``k`` is a (k_h, k_w) pair."""
    return k[0] * k[1] if isinstance(k, (tuple, list)) else k * k


def linear_flops(I: int, O: int, convention: str = "lecture", bias: bool = True) -> int:
    """Operations of a fully connected layer: lecture I·O + O; macs I·O; flops 2·I·O."""
    _check_convention(convention)
    macs = I * O
    if convention == "lecture":
        return macs + (O if bias else 0)
    return macs if convention == "macs" else 2 * macs


def conv_flops(h: int, w: int, k: int, d_prev: int, d: int, convention: str = "lecture",
               bias: bool = True, groups: int = 1) -> int:
    """Operations of a conv layer with an h×w output (h = h_i, w = w_i).

    lecture: 2·h·w·d·(k·k·d_prev + 1);  macs: h·w·d·k·k·d_prev/groups;  flops: 2·macs.

    >>> conv_flops(3, 3, 3, 1, 3)   # the slide: 2·(3·3)·(1·3·3 + 1)·3
    540
    """
    _check_convention(convention)
    per_output = _kk(k) * (d_prev // groups)
    if convention == "lecture":
        return 2 * h * w * d * (per_output + (1 if bias else 0))
    macs = h * w * d * per_output
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
    if isinstance(dtype_or_bits, (int, np.integer)) and not isinstance(dtype_or_bits, bool):
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


def _rows(output):
    """Vectors a linear layer processed per input example (1 for (N, I) inputs)."""
    return int(np.prod(output.shape[1:-1])) if len(output.shape) > 2 else 1


#: How each layer type is counted: ``fn(layer, inputs, output, convention) -> (macs, ops)``,
#: per example. Pruning and quantization register their layer types here.
COUNTERS = {nn.Linear: count_linear, nn.Conv2d: count_conv2d}


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
    name: str
    type: str
    output_shape: tuple
    params: int
    nonzero_params: int
    bits: int | None
    memory_bytes: float
    macs: int
    flops: int


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
        body = [[r.name, r.type, str(r.output_shape), f"{r.params:,}", f"{r.nonzero_params:,}",
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
        return "\n".join([line(head), rule, *map(line, body), rule, line(total)])

    def to_markdown(self) -> str:
        head, body, total = self._table()
        total = [f"**{c}**" if c else "" for c in total]
        rows = [head, ["---"] * 3 + ["---:"] * (len(head) - 3), *body, total]
        return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def summary(model: nn.Module, input_shape, convention: str = "lecture", batch_size: int = 1) -> Summary:
    """Run ``model`` once on zeros of shape (batch_size, *input_shape) and count every leaf layer.

    Rows follow the order the layers ran in (a layer called twice gives two rows); MACs
    and FLOPs are per example. Parameters count every weight; "non-zero" skips the ones
    pruning set to 0; memory uses each layer's bit width (``layer_bits``).
    """
    _check_convention(convention)
    names = {id(m): name for name, m in model.named_modules() if name}
    leaves = [m for m in model.modules() if not list(m.children())]
    rows, handles = [], []

    def hook(layer, inputs, output):
        params = list(layer.parameters())
        n = sum(p.size for p in params)
        nonzero = sum(int(backend.get_array_module(p.data).count_nonzero(p.data)) for p in params)
        bits = layer_bits(layer)
        counter = next((fn for t, fn in COUNTERS.items() if type(layer) is t), None)
        if counter is None:
            counter = next((fn for t, fn in COUNTERS.items() if isinstance(layer, t)), None)
        macs, ops = counter(layer, inputs, output, convention) if counter else (0, 0)
        rows.append(LayerRow(names.get(id(layer), type(layer).__name__), type(layer).__name__,
                             tuple(output.shape[1:]), n, nonzero, bits,
                             memory_bytes(n, bits) if bits else 0, macs, ops))

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


def platform_info(device: str = "cpu") -> dict:
    """What a latency number depends on: processor, cores, array backend, kernels."""
    from . import kernels

    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            processor = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"device": device, "processor": processor, "cores": os.cpu_count(),
            "backend": f"numpy {np.__version__} + {kernels.get_backend()} kernels", "python": platform.python_version()}
    if device == "cuda":
        import cupy

        info["backend"] = f"cupy {cupy.__version__}"
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return info


def measure_latency(model: nn.Module, input_shape, batch_size: int = 1, warmup: int = 5,
                    repeats: int = 30) -> Latency:
    """Time ``model``'s forward pass (eval mode, no graph) on a random batch.

    Returns the median and 90th-percentile milliseconds per batch and images per second
    (from the median). Latency is platform-dependent: the result records the platform.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure_latency: need repeats ≥ 1 and warmup ≥ 0; got {repeats}, {warmup}")
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
    if device == "cuda":
        import cupy

        return cupy.cuda.Device().synchronize
    return lambda: None


# --------------------------------------------------------------------------- command line

def _load_factory(spec: str):
    module, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--model expects module:factory (e.g. minikd.models:TeacherModel); got {spec!r}")
    return getattr(importlib.import_module(module), attr)


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
    shape = tuple(int(v) for v in args.input_shape.split(","))
    specs = args.model or ["minikd.models:TeacherModel", "minikd.models:StudentModel"]
    for spec in specs:
        model = _load_factory(spec)()
        s = summary(model, shape, args.convention)
        print(f"\n{spec}  (input {shape}, convention '{args.convention}')\n")
        print(s.to_markdown() if args.markdown else s)
        if args.latency:
            for bs in (1, 1000):
                print(measure_latency(model, shape, batch_size=bs, repeats=10 if bs > 1 else 30))


if __name__ == "__main__":
    main()
