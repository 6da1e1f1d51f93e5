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

**What gets removed.** Where pruning left masks, the masks decide (the contract of
``Module.masked``): a weight counts as removed where ``weight_mask`` is 0. A layer without
``weight_mask`` — e.g. after ``remove_masks`` multiplied the masks into the weights — counts
a weight as removed where it is exactly 0, and an output unit as removed only if its bias
is 0 too. For each pair producer P → consumer L of the chain, P's output unit c (filter or
neuron) and L's input channel c are removed together when

- L never reads it — every weight of L on input channel c is removed (pruning structure
  ``'channel'``); then P's unit c, its bias and its BatchNorm channel are unused; or
- P's unit c is removed — all its weights are (``P.weight_mask[c]`` all 0: structures
  ``'filter'`` and ``'neuron'``) — *and* it reaches L as exactly 0 (through a BatchNorm:
  only with β_c = 0; the cases where a masked unit still sends a constant, and stays, are
  in :mod:`minikd.prune.chain`).

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

How the chain is found (tracing), checked, and put back when the output would change:
:mod:`minikd.prune.chain`, which also holds the report types.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..checks import check_module
from ..nn.layers import Conv2d
from ..nn.module import Module, Parameter, rebuild
from ..tensor import Tensor
from .chain import (
    CompactReport,
    LayerChange,
    check_unchanged,
    features_per_unit,
    keep_with_warning,
    probe_batch,
    reaches_as_zero,
    replace,
    stages_of,
    trace,
)

__all__ = ["CompactReport", "LayerChange", "compact"]


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
    docstrings of ``minikd/prune/compact.py`` (the shapes) and ``minikd/prune/chain.py`` (the
    checks and edge cases) have the details.

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
    check_module(model, "compact", "model")
    x = probe_batch(model, input_shape)
    calls, before = trace(model, x)
    stages = stages_of(calls)  # each Conv2d/Linear with the BatchNorms after it, in run order
    for stage in stages[:-1]:  # the last layer's outputs stay
        if _removed_units(stage.module).all():
            raise ValueError(f"compact: this would prune layer {stage.name!r} to nothing: all its {stage.units} "
                             f"output units are masked out")
    report = CompactReport()
    drops = [None]  # drops[i]: the units removed between stage i − 1 and stage i; the network's inputs stay
    for P, L in zip(stages, stages[1:]):
        drops.append(_plan_link(P, L, report.kept))  # a loop, not a comprehension: the warning's stacklevel
    drops.append(None)  # the network's outputs stay
    swaps = []  # (old, new) pairs, to undo if the check fails
    for i, stage in enumerate(stages):
        swaps += _rebuild_stage(stage, drops[i], drops[i + 1], report)
    for old, new in swaps:
        replace(model, old, new)
    check_unchanged(model, x, before, swaps)  # same output, or the old layers back and NotImplementedError
    return (model, report) if return_report else model


# --------------------------------------------------------------------------- which units go

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


def _plan_link(P, L, kept: dict) -> np.ndarray:
    """Which units of P (and input channels of L) to remove: drop = unused ∪ (removed ∩ reaches L as 0)."""
    block = features_per_unit(P, L)  # 1, or H·W where a flatten comes between
    unused = _unused_inputs(L.module, P.units)
    removed = _removed_units(P.module)
    drop = unused | (removed & reaches_as_zero(P, L, block))
    if drop.all():
        raise ValueError(f"compact: this would prune layer {P.name!r} to nothing: all its {P.units} output units "
                         f"are masked out or unused by {L.name!r}")
    keep_with_warning(P, L, removed & ~drop, kept)  # masked, but they send L a constant: they stay
    return drop


# --------------------------------------------------------------------------- slicing the layers

def _kept(drop, block: int = 1):
    """Indices that stay (None when nothing is dropped); each channel c expanded to its ``block``
    features c·block … (c+1)·block − 1 (the columns of a Linear after a flatten)."""
    if drop is None or not drop.any():
        return None
    return (np.flatnonzero(~drop)[:, None] * block + np.arange(block)).ravel()


def _take(a, rows, cols):
    """``a`` restricted to the index arrays ``rows`` (axis 0) and ``cols`` (axis 1); None keeps an axis."""
    xp = backend.get_array_module(a)
    if rows is not None:
        a = a[xp.asarray(rows)]
    if cols is not None:
        a = a[:, xp.asarray(cols)]
    return xp.ascontiguousarray(a)


def _sliced(old, rows, cols, name, **sizes):
    """A layer like ``old`` holding the kept slices of every parameter and buffer: weight-shaped
    ones on both axes, (units,)-shaped ones (bias, masks, BatchNorm's γ, β, μ, σ²) on axis 0,
    scalars copied. Built by ``nn.module.rebuild``: no fresh random weights, same forward hooks."""
    weight_shape = tuple(old.weight.shape) if old.weight is not None else (old.num_features,)
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
            elif a.shape == (weight_shape[0],):
                a = _take(a, rows, None)
            elif a.ndim == 0:
                a = a.copy()
            else:
                raise NotImplementedError(f"compact: {name!r} holds {key!r} of shape {a.shape}, which compact "
                                          f"does not know how to slice")
            new[key] = Parameter(a, requires_grad=t.requires_grad) if isinstance(t, Parameter) else Tensor(a)
        stores.append(new)
    return rebuild(old, parameters=stores[0], buffers=stores[1], share_hooks=True, **sizes)


def _rebuild_stage(stage, in_drop, out_drop, report) -> list:
    """The smaller layer (and BatchNorms) of one stage: (old, new) pairs, recorded in ``report``.

    Conv2d (d, d_prev, k, k) → (|keep_out|, |keep_in|, k, k); Linear (O, I) → (|keep_out|, |keep_in|)."""
    old = stage.module
    keep_out = _kept(out_drop)
    keep_in = None if in_drop is None else _kept(in_drop, old.weight.shape[1] // len(in_drop))
    if keep_out is None and keep_in is None:
        return []
    out = old.weight.shape[0] if keep_out is None else len(keep_out)
    inp = old.weight.shape[1] if keep_in is None else len(keep_in)
    if isinstance(old, Conv2d):
        new = _sliced(old, keep_out, keep_in, stage.name, in_channels=inp, out_channels=out)
    else:
        new = _sliced(old, keep_out, keep_in, stage.name, in_features=inp, out_features=out)
    removed_out = () if keep_out is None else tuple(np.flatnonzero(out_drop).tolist())
    removed_in = () if keep_in is None else tuple(np.flatnonzero(in_drop).tolist())
    report.layers.append(LayerChange(stage.name, type(old).__name__, tuple(old.weight.shape), tuple(new.weight.shape),
                                     old.num_parameters(), new.num_parameters(), removed_out, removed_in))
    swaps = [(old, new)]
    for norm in stage.norms if keep_out is not None else ():
        bn = norm.module
        new_bn = _sliced(bn, keep_out, None, norm.name, num_features=len(keep_out))
        report.layers.append(LayerChange(norm.name, type(bn).__name__, (bn.num_features,), (len(keep_out),),
                                         bn.num_parameters(), new_bn.num_parameters(), removed_out))
        swaps.append((bn, new_bn))
    return swaps
