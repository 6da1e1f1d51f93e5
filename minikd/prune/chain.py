"""The chain ``compact`` rewires: finding it, checking it, and what compact reports.

Read :mod:`minikd.prune.compact` first: it has the maths (which units go, how the next
layer's inputs are sliced). This module holds what makes that safe.

**Tracing.** The chain is found by running the model once (eval mode, no graph) on a batch
of two examples — zeros and a fixed random one — with forward hooks that record the order in
which the parameterised layers run and the shapes and values they receive (:func:`trace`).
Each Conv2d/Linear becomes a :class:`Stage` with the BatchNorm layers that ran after it
(:func:`stages_of`); :func:`features_per_unit` checks each link P → L and says how many of
L's input features one unit of P feeds.

**BatchNorm and constants: when a masked unit really sends 0.** A unit of P whose weights
are all masked (structures ``'filter'`` and ``'neuron'``) is removed only if what arrives at
L on its channel is exactly 0 in the trace (so L's weights on it add nothing) *and* every
BatchNorm between has β_c = 0 (in training mode a BatchNorm maps a constant-0 channel to
β_c): :func:`reaches_as_zero`. A removed unit outputs exactly 0 when its bias is masked too
(``bias_mask[c] = 0``); a BatchNorm after it then outputs β_c − γ_c·μ_c/√(σ²_c + ε) in eval
mode. If that, an unmasked bias or any op between makes channel c reach L as a non-zero
constant, the unit is **kept** (still masked) and a ``UserWarning`` names it
(:func:`keep_with_warning`): folding the constant into L's bias would not be exact next to a
conv's zero padding.

**Safety net.** After rebuilding, the model runs again on the traced batch; if its output
differs (beyond float rounding) — a structure the hooks cannot see, such as a residual
connection or an op mixing channels — the old layers are put back and NotImplementedError
is raised (:func:`check_unchanged`). Layers run twice, grouped convs, BatchNorms whose width
does not match their producer, a Linear whose input is not its conv's flattened map, and
parameterised layers of other types raise NotImplementedError up front.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from ..nn.module import Module
from ..tensor import Tensor, no_grad

WEIGHTED = (Conv2d, Linear)
NORMS = (BatchNorm1d, BatchNorm2d)


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
class Call:
    """One parameterised layer as it ran: the batch it received and its output's shape."""

    name: str
    module: Module
    input: np.ndarray
    output_shape: tuple


@dataclass
class Stage:
    """A Conv2d/Linear of the chain and the BatchNorm layers that ran after it."""

    call: Call
    norms: list = field(default_factory=list)

    name = property(lambda self: self.call.name)
    module = property(lambda self: self.call.module)
    units = property(lambda self: self.call.module.weight.shape[0])
    output_shape = property(lambda self: self.call.output_shape)


def run(model, x):
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


def probe_batch(model, input_shape) -> Tensor:
    """Two examples: zeros (what ``profile.summary`` runs) and a fixed random one (a local
    generator: compacting must not shift minikd's seeded random stream)."""
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.float32
    device = params[0].device if params else "cpu"
    random = np.random.default_rng(0).standard_normal(tuple(input_shape))
    x = np.stack([np.zeros(tuple(input_shape)), random]).astype(dtype)
    return Tensor(backend.to_device(x, device))


def trace(model, x) -> tuple[list, list]:
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
        if not isinstance(layer, WEIGHTED + NORMS):
            raise NotImplementedError(f"compact: layer {names[id(layer)]!r} ({type(layer).__name__}) has parameters "
                                      f"but is not a Conv2d, Linear or BatchNorm; compact cannot rebuild it")
        calls.append(Call(names[id(layer)], layer, backend.to_numpy(inputs[0].data).copy(), tuple(output.shape)))

    for m in model.modules():
        if any(p is not None for p in m._parameters.values()):
            handles.append(m.register_forward_hook(hook))
    try:
        outputs = run(model, x)
    finally:
        for h in handles:
            h.remove()
    return calls, outputs


# --------------------------------------------------------------------------- the chain

def stages_of(calls) -> list:
    """Group the traced calls into stages: each Conv2d/Linear with the BatchNorms after it.
    BatchNorms before the first Conv2d/Linear act on the network's input and stay as they are."""
    stages = []
    for call in calls:
        if isinstance(call.module, WEIGHTED):
            if isinstance(call.module, Conv2d) and call.module.groups != 1:
                raise NotImplementedError(f"compact: {call.name!r} is a grouped conv (groups="
                                          f"{call.module.groups}); only groups=1 can be compacted")
            stages.append(Stage(call))
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


def features_per_unit(P, L) -> int:
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


# --------------------------------------------------------------------------- BatchNorm and constants

def reaches_as_zero(P, L, block: int) -> np.ndarray:
    """Units c of P whose channel reaches L as exactly 0 in every traced example, with β_c = 0 in
    every BatchNorm between (what a BatchNorm outputs for a constant 0 in training mode)."""
    x = L.call.input
    if isinstance(L.module, Conv2d):  # (N, C, H, W)
        zero = np.all(x == 0, axis=(0, 2, 3))
    else:  # a Linear's input (..., C·block): the last axis holds channel c's features c·block … (c+1)·block − 1
        zero = np.all(x.reshape(-1, P.units, block) == 0, axis=(0, 2))
    for norm in P.norms:
        if norm.module.bias is not None:
            zero &= backend.to_numpy(norm.module.bias.data) == 0
    return zero


def keep_with_warning(P, L, stay: np.ndarray, kept: dict) -> None:
    """Record (in ``kept``) and warn about P's masked units ``stay`` that must stay: what they
    send to L is a non-zero constant."""
    if not stay.any():
        return
    units = np.flatnonzero(stay).tolist()
    why = (f"pruned, but what reaches {L.name!r} from them is not 0 (an unmasked bias, a BatchNorm with "
           f"β − γ·μ/√(σ² + ε) ≠ 0 in eval or β ≠ 0 in training, or an op in between) — removing them would "
           f"change the output")
    kept[P.name] = (units, why)
    # stacklevel 4: this function, compact's _plan_link, compact, the caller of compact
    warnings.warn(f"compact: {P.name!r} keeps masked units {units}: {why}", stacklevel=4)


# --------------------------------------------------------------------------- swapping and the safety net

def replace(model, old, new):
    """Point every parent that holds ``old`` at ``new`` (same attribute name, same place)."""
    for m in list(model.modules()):
        for key, child in m._modules.items():
            if child is old:
                m._modules[key] = new


def check_unchanged(model, x, before, swaps):
    """Run the compacted model on the traced batch; if that fails or its output differs beyond
    float rounding, put the old layers back and raise NotImplementedError."""
    if not swaps:
        return
    problem = None
    try:
        after = run(model, x)
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
        replace(model, new, old)
    raise NotImplementedError(f"compact: after compacting, {problem}, so the model is not the plain chain compact "
                              f"assumes (a residual connection, an op mixing channels, ...?); the model was left "
                              f"unchanged") from cause
