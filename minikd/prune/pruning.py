"""``prune``: remove the least important weights, filters, channels or neurons — by masks.

The lecture's choices, as arguments:

- **criterion** — what "least important" means: weight magnitude (``"l1"``, ``"l2"``),
  gradient-based (``"gradient"``), ``"random"`` (:mod:`minikd.prune.criteria`);
- **scope** — ``"local"``: remove the same fraction from each layer; ``"global"``: one
  threshold over all the chosen layers (layers with many unimportant weights lose more);
- **structure** — ``"unstructured"``: single weights wherever they are; structured: whole
  conv filters (``"filter"``, output channels), conv input channels (``"channel"``) or
  Linear output neurons (``"neuron"``).

**Masks.** Pruning a layer registers the buffer ``weight_mask`` (0 = pruned, 1 = kept; the
weight's shape and dtype) and, for filters and neurons, ``bias_mask`` (the bias of a removed
unit goes with it). ``Linear``/``Conv2d`` multiply by them in the forward pass
(``Module.masked``), so a pruned weight's gradient is exactly 0 and SGD/Adam leave it at 0
during fine-tuning (create the optimizer after pruning: momentum from earlier steps would
still move the stored value, though the forward pass keeps using 0); the weight data is
zeroed too, so ``profile.summary``'s "non-zero" column counts the pruning. Masks are
buffers: ``state_dict``/``minikd.save`` keep them and :func:`load_pruned` restores them into
a fresh model. ``compact`` turns structured masks into physically smaller layers;
:func:`remove_masks` bakes masks into the weights and drops them.

**Cumulative.** Pruning to ``amount`` p means that afterwards p of *all* the layer's weights
(or units) are zero: already-pruned ones count first (they score −∞) and stay pruned, so
``prune(m, 0.5); prune(m, 0.8)`` ends at 80 %. The count removed is the nearest whole
number, round(p · n) (halves up); ties in the scores go to the earlier weight (row-major
order, layers in module order), so the result is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .. import backend, nn
from ..checks import check_int, check_module, is_number
from ..tensor import Tensor, no_grad, zeros
from .criteria import CRITERIA, UNIT_AXIS, unit_count

SCOPES = ("local", "global")
MASK_BUFFERS = ("weight_mask", "bias_mask")  # the buffers pruning registers on a layer (0 = pruned)
#: structure → the layer types it applies to
STRUCTURES = {"unstructured": (nn.Linear, nn.Conv2d), "filter": (nn.Conv2d,), "channel": (nn.Conv2d,),
              "neuron": (nn.Linear,)}
_UNITS = {"unstructured": "weights", "filter": "filters (output channels)", "channel": "input channels",
          "neuron": "neurons (output features)"}


def prune(model, amount, criterion: str = "l1", scope: str = "local", structure: str = "unstructured",
          layers=None, seed: int = 0, grads: dict | None = None, input_shape=None):
    """Prune ``model`` in place so that a fraction ``amount`` of the chosen weights (or units) is zero.

    ``amount``: a number in [0, 1] — of each layer's weights/units (``scope="local"``) or of
    all the chosen layers' together (``"global"``). ``criterion``: a name in ``CRITERIA``;
    ``structure``: ``"unstructured"`` (Linear and Conv2d), ``"filter"`` or ``"channel"``
    (Conv2d), ``"neuron"`` (Linear). ``layers``: None (every layer the structure applies to),
    or one or a list of: layer names (``"conv1"``), the layer modules themselves
    (``model.conv1``, as in PyTorch) and layer types (``nn.Conv2d``); types and None leave the
    final classifier alone (the last Linear — in module order, or the last to run when
    ``input_shape`` is given: then one forward pass on zeros of shape (1, *input_shape) finds
    it); with ``structure="channel"`` None also leaves the first Conv2d (in module order) alone,
    whose input channels are the image's; a name or a module prunes that layer, the classifier
    too. ``seed``: an int ≥ 0, for
    ``"random"``; ``grads``: for ``"gradient"`` (from ``accumulate_gradients``).

    The count removed from n weights (or units) is round(p·n), p = ``amount``, halves up, the
    already-pruned counted first (the module docstring: "Cumulative"). Source: the lecture's
    pruning section (criteria, local and global scope, unstructured and structured pruning);
    the magnitude criterion is Han et al.'s ("Learning both Weights and Connections", NeurIPS
    2015), filter pruning by L1 norm Li et al.'s ("Pruning Filters for Efficient ConvNets",
    ICLR 2017).

    Returns ``{layer name: weight_mask}`` (NumPy, each of its layer's weight shape) of the
    layers pruned. Raises TypeError for
    an argument of the wrong type (a model that is not a Module, ``amount="half"``,
    ``seed=1.5``, ``layers=[3]``, ``criterion=None``) and
    ValueError for a wrong value (an amount outside [0, 1], an unknown criterion, scope or
    structure, a layer the model does not have — by name or a module that is not part of
    it —, a layer the structure does not apply to) or a structured pruning that would leave a
    layer with no unit; nothing is changed then.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"prune: model must be an nn.Module; got {type(model).__name__}")
    _check_amount(amount)
    _check_choice("criterion", criterion, CRITERIA)
    _check_choice("scope", scope, SCOPES)
    _check_choice("structure", structure, STRUCTURES)
    seed = check_int(seed, "prune", "seed", low=0)
    chosen = select_layers(model, layers, structure, input_shape)
    rng = np.random.default_rng(seed)
    scores, pruned = {}, {}
    for name, layer in chosen.items():
        weight = backend.to_numpy(layer.weight.data).astype(np.float64)
        layer_grads = _layer_grads(grads, name, layer) if criterion == "gradient" else None
        scores[name] = _check_scores(CRITERIA[criterion](layer, weight, structure, layer_grads, rng),
                                     criterion, name, weight, structure)
        pruned[name] = already_pruned(layer, structure)
    remove = plan(scores, pruned, amount, scope)
    if structure != "unstructured":
        _check_not_empty(remove, chosen, structure, amount, scope)
    for name, layer in chosen.items():
        apply_mask(layer, remove[name], structure)
    return {name: backend.to_numpy(layer.weight_mask.data) for name, layer in chosen.items()}


# --------------------------------------------------------------------------- choosing the layers

def prunable_layers(model) -> dict:
    """Every Linear and Conv2d of ``model``, {dotted name: layer}, in module order."""
    check_module(model, "prunable_layers", "model")
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def final_classifier(model, input_shape=None) -> str | None:
    """The name of the final classifier: the last Linear the forward pass runs (found by
    tracing one pass on zeros when ``input_shape`` is given), else the last Linear in module order."""
    check_module(model, "final_classifier", "model")
    linears = {id(m): name for name, m in prunable_layers(model).items() if isinstance(m, nn.Linear)}
    if input_shape is None:
        return list(linears.values())[-1] if linears else None
    ran = []
    handles = [m.register_forward_hook(lambda layer, inputs, output: ran.append(layer))
               for m in model.modules() if id(m) in linears]
    params = list(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(zeros(1, *input_shape, dtype=params[0].dtype if params else np.float32,
                        device=params[0].device if params else "cpu"))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return linears[id(ran[-1])] if ran else None


def select_layers(model, layers, structure: str, input_shape=None) -> dict:
    """{name: layer} to prune, in module order (see :func:`prune` for ``layers``)."""
    available = prunable_layers(model)
    classifier = final_classifier(model, input_shape)
    kinds = STRUCTURES[structure]
    if layers is None:
        chosen = {n for n, m in available.items() if isinstance(m, kinds) and n != classifier}
        if structure == "channel":  # the first conv's input channels are the network's input: not its to remove
            chosen.discard(next((n for n, m in available.items() if isinstance(m, kinds)), None))
    else:
        if isinstance(layers, (str, type, nn.Module)):
            layers = [layers]
        elif isinstance(layers, Mapping) or not isinstance(layers, Iterable):
            raise TypeError(f"prune: layers= is None, a layer name, module or type, or a list of them; "
                            f"got {type(layers).__name__}")
        chosen = set()
        for item in layers:
            chosen |= _select_one(model, available, item, structure, classifier)
    if not chosen:
        raise ValueError(f"prune: no layer to prune with structure={structure!r} in {type(model).__name__} "
                         f"(it needs {' or '.join(k.__name__ for k in kinds)} layers; the final classifier "
                         f"{classifier!r} is left alone unless named in layers=)")
    return {n: m for n, m in available.items() if n in chosen}


def _select_one(model, available, item, structure, classifier) -> set:
    kinds = STRUCTURES[structure]
    if isinstance(item, type):
        if not issubclass(item, (nn.Linear, nn.Conv2d)):
            raise ValueError(f"prune: layers= type {item.__name__} cannot be pruned; prune handles Linear and Conv2d")
        if not issubclass(item, kinds):
            raise ValueError(f"prune: structure={structure!r} applies to {_names(kinds)} layers, not to "
                             f"{item.__name__}{_hint(item)}")
        return {n for n, m in available.items() if isinstance(m, item) and n != classifier}
    if isinstance(item, nn.Module):
        item = _name_of(model, item)
    if not isinstance(item, str):
        raise TypeError(f"prune: layers= holds layer names (str), layer modules or layer types; got {item!r} "
                        f"({type(item).__name__})")
    if item not in available:
        modules = dict(model.named_modules())
        if item in modules:
            raise ValueError(f"prune: layer {item!r} is a {type(modules[item]).__name__}; prune handles Linear and "
                             f"Conv2d layers ({', '.join(available) or 'none in this model'})")
        raise ValueError(f"prune: no layer named {item!r} in {type(model).__name__}; its Linear and Conv2d layers "
                         f"are: {', '.join(available) or 'none'}")
    layer = available[item]
    if not isinstance(layer, kinds):
        raise ValueError(f"prune: structure={structure!r} removes {_UNITS[structure]} and needs a "
                         f"{_names(kinds)}, but layer {item!r} is a {type(layer).__name__}{_hint(type(layer))}")
    if structure == "channel" and layer.groups != 1:
        raise ValueError(f"prune: structure='channel' needs a Conv2d with groups=1; layer {item!r} has "
                         f"groups={layer.groups}")
    return {item}


def _name_of(model, module) -> str:
    """The dotted name of ``module`` inside ``model`` (found by identity, not equality)."""
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ValueError(f"prune: layers= holds a {type(module).__name__} that is not part of {type(model).__name__} "
                     f"(a layer of another model, or a copy?); pass the model's own layers, e.g. model.conv1, "
                     f"or their names")


def _names(kinds):
    return " or ".join(k.__name__ for k in kinds)


def _hint(kind):
    return " (use structure='neuron' for Linear layers)" if issubclass(kind, nn.Linear) else \
        " (use structure='filter' or 'channel' for Conv2d layers)"


# --------------------------------------------------------------------------- choosing what to remove

def already_pruned(layer, structure: str) -> np.ndarray:
    """Boolean per weight (unstructured) or per unit: True where the mask is already 0 (whole unit)."""
    mask = layer._buffers.get("weight_mask")
    if mask is None:
        return np.zeros(layer.weight.shape if structure == "unstructured" else unit_count(layer.weight, structure),
                        dtype=bool)
    zero = backend.to_numpy(mask.data) == 0
    if structure == "unstructured":
        return zero
    axis = UNIT_AXIS[structure]
    return np.moveaxis(zero, axis, 0).reshape(zero.shape[axis], -1).all(axis=1)


def count(amount: float, n: int) -> int:
    """How many of ``n`` weights (or units) pruning to ``amount`` leaves at zero: round(p · n), halves up."""
    return min(n, math.floor(amount * n + 0.5))


def smallest(scores: np.ndarray, pruned: np.ndarray, k: int) -> np.ndarray:
    """Boolean like ``scores``: True for the already pruned entries and the k lowest scores
    (already pruned ones first; ties to the earlier entry: a stable sort)."""
    s = np.where(pruned, -np.inf, scores).ravel()
    remove = pruned.ravel().copy()
    remove[np.argsort(s, kind="stable")[:k]] = True
    return remove.reshape(scores.shape)


def plan(scores: dict, pruned: dict, amount: float, scope: str) -> dict:
    """{name: boolean array, True = remove}: local — ``amount`` of each layer; global — ``amount``
    of all together, one threshold on the concatenated scores (layers in the dict's order)."""
    if scope == "local":
        return {n: smallest(s, pruned[n], count(amount, s.size)) for n, s in scores.items()}
    flat = np.concatenate([s.ravel() for s in scores.values()])
    done = np.concatenate([pruned[n].ravel() for n in scores])
    remove = smallest(flat, done, count(amount, flat.size))
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = remove[start:start + s.size].reshape(s.shape)
        start += s.size
    return out


# --------------------------------------------------------------------------- masks

def apply_mask(layer, remove: np.ndarray, structure: str) -> None:
    """Zero the removed weights (or units) in the layer's ``weight_mask`` (and ``bias_mask`` for
    filters and neurons) — multiplied into any mask it already has — and in the weight data."""
    keep = np.ones(layer.weight.shape, dtype=bool)
    bias_keep = None
    if structure == "unstructured":
        keep = ~remove
    elif structure == "channel":
        keep[:, remove] = False
    else:  # filter, neuron: the unit's whole row, and its bias
        keep[remove] = False
        if layer.bias is not None:
            bias_keep = ~remove
    _multiply_mask(layer, "weight", keep)
    if bias_keep is not None:
        _multiply_mask(layer, "bias", bias_keep)


def _multiply_mask(layer, name: str, keep: np.ndarray) -> None:
    param = getattr(layer, name)
    new = backend.to_device(keep.astype(param.dtype), param.device)
    old = layer._buffers.get(name + "_mask")
    if old is not None:
        new = new * old.data
    layer.register_buffer(name + "_mask", new)
    param.data *= new


def remove_masks(model):
    """Make pruning permanent: multiply every ``weight_mask``/``bias_mask`` into its parameter and
    drop the buffers (fine-tuning may then move those weights again). Returns ``model``."""
    check_module(model, "remove_masks", "model")
    for m in model.modules():
        for name in ("weight", "bias"):
            mask = m._buffers.get(name + "_mask")
            if mask is None:
                continue
            param = m._parameters.get(name)
            if param is not None:
                param.data *= mask.data
            delattr(m, name + "_mask")
    return model


def load_pruned(model, state_dict, strict: bool = True):
    """``model.load_state_dict(state_dict)`` for a checkpoint of a pruned model: first registers
    the checkpoint's ``*.weight_mask``/``*.bias_mask`` buffers on a fresh ``model``'s layers
    (so a strict load matches), then loads, then applies the masks to the weights.

    Raises TypeError when ``model`` is not a Module or ``state_dict`` not a mapping, ValueError
    for a mask whose shape differs from its weight's or that holds anything but 0 and 1 (a
    mask of 0.5 would silently scale the weights)."""
    check_module(model, "load_pruned", "model")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_pruned: state_dict must be a mapping name → array (e.g. mk.load(path)); got "
                        f"{type(state_dict).__name__}")
    modules = dict(model.named_modules())
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        if name not in MASK_BUFFERS or prefix not in modules:
            continue
        layer = modules[prefix]
        param = layer._parameters.get(name[:-len("_mask")])
        if param is None:
            continue
        array = _numpy(value)
        if array.shape != param.shape:
            raise ValueError(f"load_pruned: {key} has shape {array.shape}, the layer's {name[:-5]} has {param.shape}")
        binary = np.isin(array, (0, 1))
        if not binary.all():
            bad = array[~binary].ravel()[0]
            raise ValueError(f"load_pruned: {key} must hold only 0 (pruned) and 1 (kept); it holds {float(bad):g}")
        layer.register_buffer(name, backend.to_device(array.astype(param.dtype), param.device))
    result = model.load_state_dict(state_dict, strict=strict)
    for m in model.modules():
        for name in ("weight", "bias"):
            mask, param = m._buffers.get(name + "_mask"), m._parameters.get(name)
            if mask is not None and param is not None:
                param.data *= mask.data
    return result


# --------------------------------------------------------------------------- argument checks

def _check_amount(amount, op: str = "prune", name: str = "amount"):
    """A fraction to remove: a number (``checks.is_number``: not a bool, not a string) in [0, 1]."""
    if not is_number(amount):
        raise TypeError(f"{op}: {name} is the fraction to remove, a number in [0, 1]; got {amount!r} "
                        f"({type(amount).__name__})")
    if not 0 <= amount <= 1:  # NaN fails this too
        raise ValueError(f"{op}: {name} is the fraction to remove and must be in [0, 1]; got {amount}")
    return float(amount)


def _check_choice(what, value, allowed):
    if not isinstance(value, str):
        raise TypeError(f"prune: {what} must be a string, one of {', '.join(map(repr, allowed))}; got {value!r} "
                        f"({type(value).__name__})")
    if value not in allowed:
        raise ValueError(f"prune: unknown {what} {value!r}; expected one of {', '.join(map(repr, allowed))}")


def _layer_grads(grads, name, layer):
    if grads is None:
        raise ValueError("prune: criterion='gradient' needs grads=accumulate_gradients(model, batches, loss_fn, "
                         "n_batches) (the accumulated |w · ∂L/∂w|)")
    if name not in grads:
        raise ValueError(f"prune: criterion='gradient': grads has no entry for layer {name!r} "
                         f"(it has {', '.join(grads) or 'none'})")
    g = _numpy(grads[name])
    if g.shape != layer.weight.shape:
        raise ValueError(f"prune: grads[{name!r}] has shape {g.shape}; layer {name!r}'s weight has "
                         f"{layer.weight.shape}")
    return g.astype(np.float64)


def _numpy(value) -> np.ndarray:
    """A Tensor or a backend array as a NumPy array."""
    return value.numpy() if isinstance(value, Tensor) else backend.to_numpy(value)


def _check_scores(scores, criterion, name, weight, structure):
    scores = np.asarray(scores, dtype=np.float64)
    expected = weight.shape if structure == "unstructured" else (unit_count(weight, structure),)
    if scores.shape != expected:
        raise ValueError(f"prune: criterion {criterion!r} returned scores of shape {scores.shape} for layer "
                         f"{name!r}; structure={structure!r} needs {expected}")
    return scores


def _check_not_empty(remove, chosen, structure, amount, scope):
    for name, r in remove.items():
        if r.all():
            raise ValueError(f"prune: structure={structure!r} with amount={amount} (scope={scope!r}) would remove "
                             f"all {r.size} {_UNITS[structure]} of layer {name!r}; at least one must stay — use a "
                             f"smaller amount or leave the layer out of layers=")
