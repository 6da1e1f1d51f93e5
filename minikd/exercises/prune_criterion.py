"""Task ``prune_criterion``: add a pruning criterion, layer-normalised magnitude.

Global pruning ranks the weights of all layers on one scale. Plain magnitude (``"l1"``) then
mostly prunes the layers whose weights are small, which are often the wide ones (initialised
with a small scale, ∝ 1/√fan_in), not the unimportant ones. Dividing each layer's scores by
their mean puts every layer on the same scale:

    score(w) = |w| / mean_layer |w|                    (unstructured)
    score(unit) = Σ_unit |w| / mean_units Σ_unit |w|   (filters, channels, neurons)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minikd import nn, prune
from minikd.prune.criteria import CRITERIA, per_unit

from .common import CheckFailed, call, expect_close

NAME = "prune_criterion"
TITLE = "Add a pruning criterion (layer-normalised L1) and compare global pruning with plain L1"
NAMES = ("l1_normalized",)

TASK = """\
Add a pruning criterion: the L1 magnitude divided by its mean over the layer, so that global
pruning compares layers on one scale.

    l1_normalized(layer, weight, structure, grads, rng) -> scores
    unstructured:                 score = |w| / mean over the layer's weights of |w|
    "filter", "channel", "neuron": score = Σ_unit |w| / mean over the layer's units of Σ_unit |w|
    a layer whose weights are all 0 scores 0 everywhere (not NaN)

Read minikd/prune/criteria.py first: a criterion is a function with this signature (weight is a
float64 NumPy array, structure one of "unstructured", "filter", "channel", "neuron"; grads
and rng are there for other criteria and may be ignored), returning one score per weight
(the weight's shape) or one per unit. per_unit from minikd.prune.criteria sums over units.
Do not change `weight` in place: it is the layer's.

The check compares your scores with NumPy on a conv weight (unstructured, filter, channel)
and a Linear weight (unstructured, neuron), then registers your function for the duration of
the check, CRITERIA["l1_normalized"] = l1_normalized, and prunes a small network globally
with it.

What to observe (the check prints it): at 50 % global sparsity, plain "l1" prunes the wide
layer, whose weights are small, far more than the narrow one; "l1_normalized" spreads the
pruning over the layers.

In the engine: one function in minikd/prune/criteria.py and one entry in CRITERIA — then
prune.prune(model, 0.5, criterion="l1_normalized", scope="global") selects it by name.
"""

STARTER = '''\
import numpy as np
from minikd.prune.criteria import per_unit


def l1_normalized(layer, weight, structure, grads, rng):
    """|w| / mean |w| over the layer (per unit: Σ_unit |w| / its mean over the units)."""
    ...
'''


def numpy_scores(weight, structure):
    if structure == "unstructured":
        s = np.abs(weight)
    else:
        axis = 0 if structure in ("filter", "neuron") else 1
        s = np.abs(np.moveaxis(weight, axis, 0)).reshape(weight.shape[axis], -1).sum(axis=1)
    mean = s.mean()
    return s / mean if mean > 0 else np.zeros_like(s)


def _network(seed=0):
    """A narrow layer (fan_in 4) and a wide one (fan_in 64) before the classifier."""
    from minikd import random

    saved = random.get_rng()  # the learner's own seeded stream is left where it was
    random.manual_seed(seed)
    try:
        return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    finally:
        random._rng = saved


def _prune_with(fn):
    model = _network()
    CRITERIA["_exercise"] = fn
    try:
        return prune.prune(model, 0.5, criterion="_exercise", scope="global")
    finally:
        del CRITERIA["_exercise"]


def check(impl, say=print) -> None:
    """Raise :class:`CheckFailed` unless ``impl.l1_normalized`` is the layer-normalised L1 criterion."""
    fn = impl.l1_normalized
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(3, 4, kernel_size=3)
    linear = nn.Linear(6, 5)
    cases = [(conv, "unstructured"), (conv, "filter"), (conv, "channel"), (linear, "unstructured"),
             (linear, "neuron")]
    for layer, structure in cases:
        weight = rng.standard_normal(layer.weight.shape) * 0.3
        before = weight.copy()
        scores = call(fn, "l1_normalized", layer, weight, structure, None, np.random.default_rng(0))
        if not np.array_equal(weight, before):
            raise CheckFailed(f"l1_normalized changed the weight it was given ({structure}): compute on "
                              "np.abs(weight), never assign into weight")
        kind = type(layer).__name__
        expect_close(scores, numpy_scores(weight, structure), f"scores of a {kind} weight {weight.shape}, "
                     f"structure {structure!r}", rtol=1e-9, atol=1e-12, inputs=None)
    say("ok  scores match |w| / mean|w| (unstructured) and Σ_unit|w| / mean (filter, channel, neuron)")

    zero = np.zeros(linear.weight.shape)
    for structure in ("unstructured", "neuron"):
        scores = np.asarray(call(fn, "l1_normalized", linear, zero, structure, None, np.random.default_rng(0)))
        if not np.all(np.isfinite(scores)):
            raise CheckFailed(f"an all-zero weight ({structure}) gave non-finite scores (0/0): give 0 when the "
                              "mean is 0")
        expect_close(scores, numpy_scores(zero, structure), f"scores of an all-zero weight ({structure})")
    say("ok  an all-zero layer scores 0, not NaN")

    masks = call(_prune_with, "prune.prune(..., criterion=l1_normalized, scope='global')", fn)
    expected = _prune_with(reference.l1_normalized)
    for name, mask in masks.items():
        if not np.array_equal(mask, expected[name]):
            raise CheckFailed(f"prune.prune(model, 0.5, criterion='l1_normalized', scope='global') kept other "
                              f"weights of layer {name!r} than the reference criterion: "
                              f"{int(mask.sum())} kept, expected {int(expected[name].sum())}")
    plain = _prune_with(CRITERIA["l1"])
    say("ok  registered in CRITERIA, it prunes a network globally as expected")

    def shares(ms):
        return ", ".join(f"layer {n} ({m.size:,} weights): {1 - m.mean():.0%}" for n, m in ms.items())
    say(f"compare at 50 % global sparsity — l1: {shares(plain)};  l1_normalized: {shares(masks)}")


# --------------------------------------------------------------------------- the reference solution


def l1_normalized(layer, weight, structure, grads, rng):
    """|w| / mean |w| over the layer; per unit Σ_unit |w| / its mean over the units; 0 for an all-zero layer."""
    scores = per_unit(np.abs(weight), structure)
    mean = scores.mean()
    return scores / mean if mean > 0 else np.zeros_like(scores)


reference = SimpleNamespace(l1_normalized=l1_normalized)
