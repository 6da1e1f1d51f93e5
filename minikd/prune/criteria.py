"""Pruning criteria: how important is each weight (or each filter, channel, neuron)?

The lecture's criteria, each a small function in the registry :data:`CRITERIA`:

- **weight magnitude** (``"l1"``, ``"l2"``): small weights matter little. Unstructured: |w|
  (L1 and L2 give the same order); structured: the L1 norm Σ|w| or the L2 norm √(Σw²) of
  the unit's weights;
- **gradient-based** (``"gradient"``, the lecture's "gradient × weight", a first-order Taylor
  estimate): removing w changes the loss by about |w · ∂L/∂w|; accumulated over a few
  minibatches by :func:`accumulate_gradients`, summed over the unit's weights for structured
  pruning. Molchanov et al. (CVPR 2019) score a weight by the square (g·w)² — the same order —
  and a group by the square of its summed g·w; their earlier criterion (ICLR 2017) scores a
  feature map by its activations times their gradients, not by the weights;
- **random** (``"random"``): a seeded baseline that any criterion should beat.

A criterion is ``fn(layer, weight, structure, grads, rng) -> scores``:

- ``layer``: the Linear or Conv2d being scored, ``weight``: its weight as a float64 NumPy
  array, ``structure``: ``"unstructured"``, ``"filter"``, ``"channel"`` or ``"neuron"``,
  ``grads``: this layer's accumulated |w · g| (weight-shaped) or None, ``rng``: a seeded
  ``numpy.random.Generator``;
- ``scores``: one number per weight (the weight's shape) when unstructured, one per unit
  (``unit_count(weight, structure)`` of them) otherwise. The lowest scores are pruned first.

Adding a criterion is one function and one line: ``CRITERIA["mine"] = my_fn``.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..checks import check_int, check_module
from ..tensor import Tensor

#: Which axis of the weight holds the units each structure removes: conv weights are
#: (d, d_prev, k, k) and Linear weights (out, in), so filters and neurons are rows (axis 0)
#: and conv input channels are axis 1.
UNIT_AXIS = {"filter": 0, "neuron": 0, "channel": 1}


def unit_count(weight, structure: str) -> int:
    """How many units ``structure`` can remove from ``weight`` (its size when unstructured)."""
    return weight.size if structure == "unstructured" else weight.shape[UNIT_AXIS[structure]]


def per_unit(values: np.ndarray, structure: str) -> np.ndarray:
    """Sum weight-shaped ``values`` over each unit (unchanged when unstructured): the score of a
    filter is the sum of its weights' scores."""
    if structure == "unstructured":
        return values
    axis = UNIT_AXIS[structure]
    return np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).sum(axis=1)


def _unit_size(weight, structure: str) -> int:
    """How many weights one unit of ``structure`` holds (1 when unstructured)."""
    return weight.size // unit_count(weight, structure)


def l1(layer, weight, structure, grads, rng):
    """Weight magnitude, L1: |w| per weight; per filter/channel/neuron the mean of its |w|, the
    lecture's "L1 mean of neuron weights" — a mean, not the sum, so that units of different sizes
    compare under one global threshold (a conv1 filter of the teacher holds 9 weights, a conv2
    filter 288: by their sums a global threshold took conv1's filters first, all of them at 40 %)."""
    return per_unit(np.abs(weight), structure) / _unit_size(weight, structure)


def l2(layer, weight, structure, grads, rng):
    """Weight magnitude, L2: |w| per weight (the same order as w²); per unit the root of the mean
    of its w² (the lecture's "L2 mean", comparable across units of different sizes as :func:`l1`)."""
    if structure == "unstructured":
        return np.abs(weight)
    return np.sqrt(per_unit(weight * weight, structure) / _unit_size(weight, structure))


def gradient(layer, weight, structure, grads, rng):
    """Gradient-based, the lecture's gradient × weight (first-order Taylor; the per-weight score of
    Molchanov et al., CVPR 2019, up to their square): |w · ∂L/∂w| accumulated over minibatches
    (``grads``, from :func:`accumulate_gradients`), summed over each unit's weights."""
    if grads is None:
        raise ValueError("criterion 'gradient' needs the accumulated scores: "
                         "prune(..., grads=accumulate_gradients(model, batches, loss_fn, n_batches))")
    return per_unit(grads, structure)


def random(layer, weight, structure, grads, rng):
    """Random (seeded): a uniform random score per weight or per unit."""
    return rng.random(weight.shape if structure == "unstructured" else unit_count(weight, structure))


#: name → criterion ``fn(layer, weight, structure, grads, rng) -> scores`` (see the module docstring)
CRITERIA = {"l1": l1, "l2": l2, "gradient": gradient, "random": random}


def accumulate_gradients(model, batches, loss_fn, n_batches: int | None = None) -> dict:
    """The first-order Taylor criterion (the lecture's gradient × weight; Molchanov et al., CVPR
    2019, square it): Σ over minibatches of |w · ∂L/∂w|, per weight.

    ``batches``: a DataLoader or any iterable of ``(x, y)`` pairs (Tensors or arrays);
    ``loss_fn(output, y)`` returns the scalar loss; at most ``n_batches`` minibatches are
    used (all of them when None). Each one runs forward and backward; the model's mode is
    left as it is (``model.train()`` or ``model.eval()`` first, as you want it measured) and
    its gradients are cleared at the end.

    Returns ``{layer name: float64 array of the weight's shape}`` for every Linear and Conv2d,
    to pass as ``prune(model, amount, criterion="gradient", grads=...)``. Structured pruning
    sums a unit's entries (Σ|w·g|; the 2019 paper squares the unit's summed w·g instead).

    Raises TypeError when ``n_batches`` is not an int (or None), ValueError when it is below 1,
    when a minibatch is not a pair (x, y), or when there is no minibatch.
    """
    check_module(model, "accumulate_gradients", "model")
    if not callable(loss_fn):
        raise TypeError(f"accumulate_gradients: loss_fn must be a function loss_fn(output, y) → scalar Tensor; got "
                        f"{loss_fn!r:.40}")
    from .pruning import prunable_layers

    if n_batches is not None:
        n_batches = check_int(n_batches, "accumulate_gradients", "n_batches (None: all)", low=1)
    layers = prunable_layers(model)
    scores = {name: np.zeros(layer.weight.shape, dtype=np.float64) for name, layer in layers.items()}
    device = next(iter(layers.values())).weight.device if layers else "cpu"
    used = 0
    for batch in batches:
        if n_batches is not None and used >= n_batches:
            break
        x, y = _pair(batch, used)
        model.zero_grad()
        loss = loss_fn(model(_tensor(x, device)), _tensor(y, device))
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"accumulate_gradients: loss_fn must return a scalar Tensor (to differentiate); got "
                            f"{type(loss).__name__}{'' if not isinstance(loss, Tensor) else f' of shape {loss.shape}'}")
        loss.backward()
        for name, layer in layers.items():
            g = layer.weight.grad
            if g is not None:
                w = backend.to_numpy(layer.weight.data).astype(np.float64)
                scores[name] += np.abs(w * backend.to_numpy(g).astype(np.float64))
        used += 1
    model.zero_grad()
    if used == 0:
        raise ValueError("accumulate_gradients: no minibatches (the loader or list is empty)")
    return scores


def _pair(batch, i):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"accumulate_gradients: minibatch {i} should be a pair (x, y); got {type(batch).__name__}")
    return batch


def _tensor(a, device):
    return a if isinstance(a, Tensor) else Tensor(backend.to_device(np.asarray(a), device))
