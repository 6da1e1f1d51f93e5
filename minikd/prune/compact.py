"""Make a structurally pruned model physically smaller: ``compact(model, input_shape)``.

Structured pruning (``minikd.prune``) only *masks* whole units: a removed filter of a conv
keeps its weights in memory and still costs its multiply-accumulates, it just multiplies
them by 0. ``compact`` rebuilds the affected layers without those units, so
``profile.summary`` counts fewer parameters and FLOPs and ``profile.measure_latency``
times a smaller network — with the same output, up to float rounding.

**What it understands.** A *chain*: Conv2d/Linear layers that each feed the next one
through parameter-free, per-channel operations (ReLU, pooling, dropout, reshape/flatten),
with optional BatchNorm layers after a Conv2d/Linear. The lecture's teacher is one::

    conv1 (32,1,3,3) → pool → relu → conv2 (64,32,3,3) → pool → relu → flatten → fc1 (128,3136) → relu → fc2 (10,128)

The chain is found by running the model once (eval mode, no graph) on a batch of two
examples — zeros and a fixed random one — with forward hooks that record the order in
which the parameterised layers run and the shapes and values they receive.

**What gets removed.** Where pruning left masks, the masks decide (the contract of
``Module.masked``): a weight counts as removed where ``weight_mask`` is 0. A layer without
``weight_mask`` — e.g. after ``remove_masks`` multiplied the masks into the weights — counts
a weight as removed where it is exactly 0, and an output unit as removed only if its bias
is 0 too. For each pair producer P → consumer L of the chain, P's output unit c (filter or
neuron) and L's input channel c are removed together when

- L never reads it — every weight of L on input channel c is removed (pruning structure
  ``'channel'``); then P's unit c, its bias and its BatchNorm channel are unused;
  or
- P's unit c is removed — all its weights are (``P.weight_mask[c]`` all 0: structures
  ``'filter'`` and ``'neuron'``) — *and* what arrives at L on channel c is exactly 0 in the trace (so L's
  weights on it add nothing) *and* every BatchNorm between has β_c = 0 (in training mode a
  BatchNorm maps a constant-0 channel to β_c). A removed unit outputs exactly 0 when its
  bias is masked too (``bias_mask[c] = 0``); a BatchNorm after it then outputs
  β_c − γ_c·μ_c/√(σ²_c + ε) in eval mode. If that, an unmasked bias or any op between
  makes channel c reach L as a non-zero constant, the unit is **kept** (still masked) and
  a ``UserWarning`` names it: folding the constant into L's bias would not be exact next
  to a conv's zero padding.

The network's inputs (the first layer's input channels) and outputs (the last layer's
output units) are never removed.

**The rewiring, with shapes.** Removing P's units R (keeping K = all − R):

- conv → conv: P.weight (d, d_prev, k, k) → (|K|, d_prev, k, k), P.bias (d,) → (|K|,),
  BatchNorm2d(d) → BatchNorm2d(|K|), L.weight (d', d, k, k) → (d', |K|, k, k);
- conv → flatten → linear: the Linear's input is the conv's (pooled) C×H×W map flattened
  channel-major, so channel c is the block of features [c·H·W, (c+1)·H·W); H·W is read off
  the trace as in_features / C. L.weight (O, C·H·W) → (O, |K|·H·W);
- linear → linear: P.weight (O, I) → (|K|, I), BatchNorm1d(O) → BatchNorm1d(|K|),
  L.weight (O', O) → (O', |K|).

Every parameter and buffer is sliced (``weight_mask``/``bias_mask`` included, so the
unstructured zeros inside kept units stay masked; BatchNorm's running statistics); dtype,
device, ``requires_grad`` and the layers' forward hooks are kept. The new layers replace
the old ones in their parents (``model.conv1`` is the new, smaller layer). Optimizers
created before hold the old Parameters: create a new one after ``compact``.

**Safety net.** After rebuilding, the model runs again on the traced batch; if its output
differs (beyond float rounding) — a structure the hooks cannot see, such as a residual
connection or an op mixing channels — the old layers are put back and NotImplementedError
is raised. Layers run twice, grouped convs, BatchNorms whose width does not match their
producer, a Linear whose input is not its conv's flattened map, and parameterised layers
of other types raise NotImplementedError up front; pruning a layer to nothing raises
ValueError.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from ..nn.module import Module, Parameter
from ..tensor import Tensor, no_grad

__all__ = ["CompactReport", "LayerChange", "compact"]

_WEIGHTED = (Conv2d, Linear)
_NORMS = (BatchNorm1d, BatchNorm2d)


# --------------------------------------------------------------------------- report

@dataclass
class LayerChange:
    """How one layer changed: its weight's shape before and after, and which of its original
    output units / input channels were removed (indices into the original layer)."""

    name: str
    type: str
    shape_before: tuple
    shape_after: tuple
    params_before: int
    params_after: int
    removed_outputs: tuple = ()
    removed_inputs: tuple = ()


@dataclass
class CompactReport:
    """What ``compact(..., return_report=True)`` returns next to the model.

    ``layers``: one LayerChange per rebuilt layer, in run order; ``kept``: masked-out units
    that had to stay, by layer name, with the reason.
    """

    layers: list = field(default_factory=list)
    kept: dict = field(default_factory=dict)

    params_before = property(lambda self: sum(c.params_before for c in self.layers))
    params_after = property(lambda self: sum(c.params_after for c in self.layers))

    def __str__(self):
        if not self.layers:
            lines = ["compact: nothing to remove"]
        else:
            lines = [f"{c.name} ({c.type}): {c.shape_before} → {c.shape_after}, "
                     f"{c.params_before:,} → {c.params_after:,} parameters" for c in self.layers]
        lines += [f"{name}: kept masked units {units}: {why}" for name, (units, why) in self.kept.items()]
        return "\n".join(lines)


# --------------------------------------------------------------------------- tracing

@dataclass
class _Call:
    """One parameterised layer as it ran: the batch it received and its output's shape."""

    name: str
    module: Module
    input: np.ndarray
    output_shape: tuple


@dataclass
class _Stage:
    """A Conv2d/Linear of the chain and the BatchNorm layers that ran after it."""

    call: _Call
    norms: list = field(default_factory=list)

    name = property(lambda self: self.call.name)
    module = property(lambda self: self.call.module)
    units = property(lambda self: self.call.module.weight.shape[0])
    output_shape = property(lambda self: self.call.output_shape)


def _run(model, x):
    """``model(x)`` in eval mode without a graph (the training flag is restored); its outputs as arrays."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            y = model(x)
    finally:
        model.train(was_training)
    ys = y if isinstance(y, (tuple, list)) else (y,)
    return [backend.to_numpy(t.data).copy() for t in ys if isinstance(t, Tensor)]


def _probe_batch(model, input_shape) -> Tensor:
    """Two examples: zeros (what ``profile.summary`` runs) and a fixed random one (a local
    generator: compacting must not shift minikd's seeded random stream)."""
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.float32
    device = params[0].device if params else "cpu"
    random = np.random.default_rng(0).standard_normal(tuple(input_shape))
    x = np.stack([np.zeros(tuple(input_shape)), random]).astype(dtype)
    return Tensor(backend.to_device(x, device))


def _trace(model, x) -> tuple[list, list]:
    """Run ``model`` on ``x`` with hooks on every module that holds parameters of its own.

    Returns the calls in run order and the model's outputs. Raises NotImplementedError for a
    parameterised layer run twice or of a type compact cannot rebuild.
    """
    names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
    calls, handles = [], []

    def hook(layer, inputs, output):
        if any(c.module is layer for c in calls):
            raise NotImplementedError(f"compact: layer {names[id(layer)]!r} runs more than once in forward (shared "
                                      f"weights); only a chain in which every layer runs once can be compacted")
        if not isinstance(layer, _WEIGHTED + _NORMS):
            raise NotImplementedError(f"compact: layer {names[id(layer)]!r} ({type(layer).__name__}) has parameters "
                                      f"but is not a Conv2d, Linear or BatchNorm; compact cannot rebuild it")
        calls.append(_Call(names[id(layer)], layer, backend.to_numpy(inputs[0].data).copy(), tuple(output.shape)))

    for m in model.modules():
        if any(p is not None for p in m._parameters.values()):
            handles.append(m.register_forward_hook(hook))
    try:
        outputs = _run(model, x)
    finally:
        for h in handles:
            h.remove()
    return calls, outputs


# --------------------------------------------------------------------------- the chain

def _chain(calls) -> list:
    """Group the traced calls into stages: each Conv2d/Linear with the BatchNorms after it.
    BatchNorms before the first Conv2d/Linear act on the network's input and stay as they are."""
    stages = []
    for call in calls:
        if isinstance(call.module, _WEIGHTED):
            if isinstance(call.module, Conv2d) and call.module.groups != 1:
                raise NotImplementedError(f"compact: {call.name!r} is a grouped conv (groups="
                                          f"{call.module.groups}); only groups=1 can be compacted")
            stages.append(_Stage(call))
        elif stages:
            _check_norm(stages[-1], call)
            stages[-1].norms.append(call)
    return stages


def _check_norm(stage, norm):
    """A BatchNorm after P must normalise P's units: axis 1 of P's output (pooling may come between a
    conv and its BatchNorm; a Linear's units are axis 1 only on (N, O) outputs)."""
    units, shape, x = stage.units, stage.output_shape, norm.input
    linear_ok = isinstance(stage.module, Conv2d) or (len(shape) == 2 and x.ndim == 2)
    if norm.module.num_features != units or x.shape[1] != units or not linear_ok:
        raise NotImplementedError(f"compact: BatchNorm {norm.name!r} (num_features={norm.module.num_features}, "
                                  f"input {x.shape[1:]}) does not normalise the {units} units of {stage.name!r} "
                                  f"(output {shape[1:]}); compact needs each BatchNorm right after its layer")


def _block(P, L) -> int:
    """How many of L's input features one output unit of P feeds, checking the link P → L.

    conv → conv: 1 (input channel c of L); linear → linear: 1 (input feature c);
    conv → flatten → linear: H·W = in_features / C (features c·H·W … (c+1)·H·W − 1).
    """
    where = f"{P.name!r} → {L.name!r}"
    units, x = P.units, L.call.input
    if isinstance(P.module, Conv2d) and isinstance(L.module, Conv2d):
        if x.shape[1] != units:
            raise NotImplementedError(f"compact: {where}: the conv gets {x.shape[1]} channels, not the {units} of "
                                      f"the layer before it; not a chain")
        return 1
    if isinstance(P.module, Conv2d) and isinstance(L.module, Linear):
        _, C, H, W = P.output_shape
        features = L.module.in_features
        if x.ndim != 2 or features % C or features // C > H * W:
            raise NotImplementedError(f"compact: {where}: the Linear's input {x.shape[1:]} is not the conv's "
                                      f"{C}×h×w output map (h·w ≤ {H}·{W}) flattened; not a chain")
        return features // C
    if isinstance(P.module, Linear) and isinstance(L.module, Linear):
        if x.shape[1:] != P.output_shape[1:]:
            raise NotImplementedError(f"compact: {where}: the Linear gets {x.shape[1:]}, not the "
                                      f"{P.output_shape[1:]} the Linear before it outputs; not a chain")
        return 1
    raise NotImplementedError(f"compact: {where}: a {type(P.module).__name__} feeding a "
                              f"{type(L.module).__name__} is not supported (conv→conv, conv→flatten→linear and "
                              f"linear→linear are)")


# --------------------------------------------------------------------------- what to remove

def _pruned(layer) -> np.ndarray:
    """Which weights count as removed: ``weight_mask == 0`` where pruning left a mask, else
    ``weight == 0`` (a layer whose masks ``remove_masks`` multiplied in)."""
    mask = layer._buffers.get("weight_mask")
    return backend.to_numpy((layer.weight if mask is None else mask).data) == 0


def _removed_units(layer) -> np.ndarray:
    """Output units whose weights are all removed (without a mask: and whose bias is 0)."""
    pruned = _pruned(layer)
    removed = np.all(pruned.reshape(pruned.shape[0], -1), axis=1)
    if "weight_mask" not in layer._buffers and layer.bias is not None:
        removed &= backend.to_numpy(layer.bias.data) == 0
    return removed


def _unused_inputs(layer, channels: int) -> np.ndarray:
    """Input channels (groups of features) whose weights are removed for every output unit."""
    pruned = _pruned(layer)
    # conv (O, C, k, k), linear after a conv (O, C·h·w), linear after a linear (O, C): all → (O, C, rest)
    return np.all(pruned.reshape(pruned.shape[0], channels, -1), axis=(0, 2))


def _zero_inputs(L, channels: int, block: int) -> np.ndarray:
    """Channels of L's traced input that are exactly 0 in every example."""
    x = L.call.input
    if isinstance(L.module, Conv2d):  # (N, C, H, W)
        return np.all(x == 0, axis=(0, 2, 3))
    # a Linear's input (..., C·block): the last axis holds channel c's features c·block … (c+1)·block − 1
    return np.all(x.reshape(-1, channels, block) == 0, axis=(0, 2))


def _beta_zero(P) -> np.ndarray:
    """Units for which every BatchNorm after P has β = 0 (what it outputs for a constant 0 in training)."""
    ok = np.ones(P.units, dtype=bool)
    for norm in P.norms:
        if norm.module.bias is not None:
            ok &= backend.to_numpy(norm.module.bias.data) == 0
    return ok


def _plan_link(P, L, kept: dict) -> np.ndarray:
    """Which units of P (and input channels of L) to remove; records masked units that must stay."""
    block = _block(P, L)
    unused = _unused_inputs(L.module, P.units)
    removed = _removed_units(P.module)
    zero_in = _zero_inputs(L, P.units, block)
    droppable = removed & zero_in & _beta_zero(P)
    drop = unused | droppable
    if drop.all():
        raise ValueError(f"compact: this would prune layer {P.name!r} to nothing: all its {P.units} output units "
                         f"are masked out or unused by {L.name!r}")
    stay = removed & ~drop
    if stay.any():
        units = np.flatnonzero(stay).tolist()
        why = (f"pruned, but what reaches {L.name!r} from them is not 0 (an unmasked bias, a BatchNorm with "
               f"β − γ·μ/√(σ² + ε) ≠ 0 in eval or β ≠ 0 in training, or an op in between) — removing them would "
               f"change the output")
        kept[P.name] = (units, why)
        warnings.warn(f"compact: {P.name!r} keeps masked units {units}: {why}", stacklevel=3)
    return drop


# --------------------------------------------------------------------------- rebuilding

def _take(a, rows, cols):
    """``a`` restricted to the index arrays ``rows`` (axis 0) and ``cols`` (axis 1); None keeps an axis."""
    xp = backend.get_array_module(a)
    if rows is not None:
        a = a[xp.asarray(rows)]
    if cols is not None:
        a = a[:, xp.asarray(cols)]
    return xp.ascontiguousarray(a)


def _slice_state(old, weight_shape, rows, cols, name):
    """Every parameter/buffer of ``old`` sliced: weight-shaped ones on both axes, (units,)-shaped
    ones on axis 0, scalars copied. Returns (parameters, buffers) dictionaries of new tensors."""
    units = weight_shape[0]
    stores = []
    for store in (old._parameters, old._buffers):
        new = {}
        for key, t in store.items():
            if t is None:
                new[key] = None
                continue
            a = t.data
            if a.shape == weight_shape:
                a = _take(a, rows, cols)
            elif a.shape == (units,):
                a = _take(a, rows, None)
            elif a.ndim == 0:
                a = a.copy()
            else:
                raise NotImplementedError(f"compact: {name!r} holds {key!r} of shape {a.shape}, which compact "
                                          f"does not know how to slice")
            new[key] = Parameter(a, requires_grad=t.requires_grad) if isinstance(t, Parameter) else Tensor(a)
        stores.append(new)
    return stores


def _rebuilt(old, rows, cols, name, **sizes):
    """A layer of ``old``'s type and settings holding the kept slices of its state.

    Built without ``__init__`` (which would draw random initial weights from minikd's seeded
    generator); it shares ``old``'s forward hooks.
    """
    weight_shape = tuple(old.weight.shape) if old.weight is not None else (old.num_features,)
    params, buffers = _slice_state(old, weight_shape, rows, cols, name)
    new = object.__new__(type(old))
    Module.__init__(new)
    registries = ("_parameters", "_buffers", "_modules", "_forward_hooks")
    for key, value in old.__dict__.items():
        if key not in registries:
            object.__setattr__(new, key, value)
    for key, value in sizes.items():
        object.__setattr__(new, key, int(value))
    object.__setattr__(new, "_forward_hooks", old._forward_hooks)
    new._parameters.update(params)
    new._buffers.update(buffers)
    return new


def _rebuilt_weighted(old, keep_out, keep_in, name):
    """Conv2d (d, d_prev, k, k) → (|keep_out|, |keep_in|, k, k); Linear (O, I) → (|keep_out|, |keep_in|)."""
    out = old.weight.shape[0] if keep_out is None else len(keep_out)
    inp = old.weight.shape[1] if keep_in is None else len(keep_in)
    if isinstance(old, Conv2d):
        return _rebuilt(old, keep_out, keep_in, name, in_channels=inp, out_channels=out)
    return _rebuilt(old, keep_out, keep_in, name, in_features=inp, out_features=out)


def _replace(model, old, new):
    """Point every parent that holds ``old`` at ``new`` (same attribute name, same place)."""
    for m in list(model.modules()):
        for key, child in m._modules.items():
            if child is old:
                m._modules[key] = new


def _params(layer) -> int:
    return sum(p.size for p in layer.parameters())


# --------------------------------------------------------------------------- compact

def compact(model: Module, input_shape, return_report: bool = False):
    """Rebuild the structurally pruned layers of ``model`` without their removed units, in place.

    ``input_shape``: one example's shape, e.g. ``(1, 28, 28)``. Returns ``model`` (its
    sub-modules replaced by smaller ones), or ``(model, CompactReport)`` with
    ``return_report=True``. A unit of a Conv2d/Linear goes, with the next layer's weights on
    it and its BatchNorm channel, when the next layer does not read it (its weights on it are
    all masked) or when the unit is masked out (``weight_mask[c]`` all 0) and reaches the next
    layer as exactly 0 (and any BatchNorm between has β = 0); layers without masks count exact
    zeros instead. The network's input channels and output units stay. Supported: conv → conv,
    conv → flatten → linear, linear → linear, BatchNorm after a conv/linear; the module
    docstring of ``minikd/prune/compact.py`` has the details and shapes.

    Raises NotImplementedError for what is not such a chain (a layer run twice, groups > 1,
    ...; also when the compacted output would differ — the model is then left unchanged) and
    ValueError for pruning a layer to nothing. Warns (UserWarning) about masked units that
    must stay. Create optimizers after compacting: the rebuilt layers hold new Parameters.

    >>> from minikd.models import TeacherModel
    >>> teacher = TeacherModel()
    >>> mask = np.ones(teacher.conv2.weight.shape, dtype=np.float32); mask[:48] = 0
    >>> teacher.conv2.register_buffer("weight_mask", mask)
    >>> teacher.conv2.register_buffer("bias_mask", (np.arange(64) >= 48).astype(np.float32))
    >>> compact(teacher, (1, 28, 28)) is teacher
    True
    >>> teacher.conv2.weight.shape, teacher.fc1.weight.shape     # 48 of 64 filters gone, 48·7·7 fc1 inputs
    ((16, 32, 3, 3), (128, 784))
    """
    x = _probe_batch(model, input_shape)
    calls, before = _trace(model, x)
    stages = _chain(calls)
    _check_not_emptied(stages)
    report = CompactReport()
    drops = [None]  # drops[i]: the units removed between stage i − 1 and stage i; the network's inputs stay
    for P, L in zip(stages, stages[1:]):
        drops.append(_plan_link(P, L, report.kept))  # a loop, not a comprehension: the warning's stacklevel
    drops.append(None)  # the network's outputs stay
    swaps = []  # (old, new) pairs, to undo if the check fails
    for i, stage in enumerate(stages):
        swaps += _rebuild_stage(stage, drops[i], drops[i + 1], report)
    for old, new in swaps:
        _replace(model, old, new)
    _check_unchanged(model, x, before, swaps)
    return (model, report) if return_report else model


def _check_not_emptied(stages):
    """ValueError if every output unit of a layer (but the last, whose outputs stay) is pruned."""
    for stage in stages[:-1]:
        if _removed_units(stage.module).all():
            raise ValueError(f"compact: this would prune layer {stage.name!r} to nothing: all its {stage.units} "
                             f"output units are masked out")


def _kept(drop, block: int = 1):
    """Indices that stay (None when nothing is dropped); each channel expanded to its ``block`` features."""
    if drop is None or not drop.any():
        return None
    return (np.flatnonzero(~drop)[:, None] * block + np.arange(block)).ravel()


def _rebuild_stage(stage, in_drop, out_drop, report) -> list:
    """The smaller layer (and BatchNorms) of one stage: (old, new) pairs, recorded in ``report``."""
    old = stage.module
    keep_out = _kept(out_drop)
    keep_in = None if in_drop is None else _kept(in_drop, old.weight.shape[1] // len(in_drop))
    if keep_out is None and keep_in is None:
        return []
    new = _rebuilt_weighted(old, keep_out, keep_in, stage.name)
    removed_out = () if keep_out is None else tuple(np.flatnonzero(out_drop).tolist())
    removed_in = () if keep_in is None else tuple(np.flatnonzero(in_drop).tolist())
    report.layers.append(LayerChange(stage.name, type(old).__name__, tuple(old.weight.shape),
                                     tuple(new.weight.shape), _params(old), _params(new), removed_out, removed_in))
    swaps = [(old, new)]
    for norm in stage.norms if keep_out is not None else ():
        bn = norm.module
        new_bn = _rebuilt(bn, keep_out, None, norm.name, num_features=len(keep_out))
        report.layers.append(LayerChange(norm.name, type(bn).__name__, (bn.num_features,), (len(keep_out),),
                                         _params(bn), _params(new_bn), removed_out))
        swaps.append((bn, new_bn))
    return swaps


def _check_unchanged(model, x, before, swaps):
    """Run the compacted model on the traced batch; if that fails or its output differs beyond
    float rounding, put the old layers back and raise NotImplementedError."""
    if not swaps:
        return
    problem = None
    try:
        after = _run(model, x)
    except Exception as e:  # e.g. a residual sum of a smaller and an unchanged map
        problem, cause = f"it no longer runs ({type(e).__name__}: {e})", e
    else:
        cause = None
        for a, b in zip(after, before):
            tol = np.sqrt(np.finfo(b.dtype).eps) if b.dtype.kind == "f" else 0
            if a.shape != b.shape or np.max(np.abs(a - b), initial=0) > tol * (1 + np.max(np.abs(b), initial=0)):
                problem = "its output differs from the original's"
    if problem is None:
        return
    for old, new in swaps:
        _replace(model, new, old)
    raise NotImplementedError(f"compact: after compacting, {problem}, so the model is not the plain chain compact "
                              f"assumes (a residual connection, an op mixing channels, ...?); the model was left "
                              f"unchanged") from cause
