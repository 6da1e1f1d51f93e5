"""One-shot and iterative pruning.

The lecture's two methods:

- **one-shot**: train → prune → fine-tune: ``prune(model, 0.9)`` then fine-tune once;
- **iterative**: alternate pruning steps and fine-tuning, up to the target sparsity:
  :func:`iterative_prune` with a :func:`schedule` of cumulative sparsities — linear, or
  Zhu & Gupta's (2017) cubic one that prunes fast while many weights are redundant and
  slowly near the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_int, check_number
from .pruning import prune
from .report import Sparsity, sparsity

KINDS = ("linear", "cubic")


def schedule(target: float, steps: int, kind: str = "linear") -> list:
    """The cumulative sparsity after each of ``steps`` pruning steps, ending at ``target``.

    linear: s_t = s_f · t/n;  cubic (Zhu & Gupta 2017): s_t = s_f · (1 − (1 − t/n)³),  t = 1..n.

    >>> [round(s, 3) for s in schedule(0.8, 4)]
    [0.2, 0.4, 0.6, 0.8]
    >>> [round(s, 3) for s in schedule(0.9, 3, kind="cubic")]
    [0.633, 0.867, 0.9]

    Raises TypeError for a ``target`` that is not a number or ``steps`` that is not an int, and
    ValueError for a target outside [0, 1], steps < 1 or an unknown kind.
    """
    target = check_number(target, "schedule", "target (the final sparsity)", low=0, high=1)
    steps = check_int(steps, "schedule", "steps", low=1)
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"schedule: unknown kind {kind!r}; expected one of {', '.join(map(repr, KINDS))}")
    if kind == "linear":
        return [target * (t / steps) for t in range(1, steps + 1)]
    return [target * (1 - (1 - t / steps) ** 3) for t in range(1, steps + 1)]


@dataclass
class PruneStep:
    """One step of :func:`iterative_prune`: the amount the pruned layers were pruned to, the
    whole model's sparsity after fine-tuning (every Linear and Conv2d, pruned or not), and what
    ``finetune_fn`` returned."""

    amount: float
    sparsity: Sparsity
    result: object = None


def iterative_prune(model, target: float, steps: int, finetune_fn, kind: str = "linear", **prune_kwargs) -> list:
    """Iterative pruning: for each amount of ``schedule(target, steps, kind)``, ``prune(model,
    amount, **prune_kwargs)`` then ``finetune_fn(model)``. Pruning is cumulative, so the pruned
    layers end at ``target`` (with the default layers the final classifier is left whole, so the
    whole model's sparsity, ``PruneStep.sparsity``, ends a little below it). Returns one
    :class:`PruneStep` per step.

    ``prune_kwargs`` are :func:`prune`'s (``criterion``, ``scope``, ``structure``, ``layers``
    as names, modules or types, ...). Raises TypeError when ``finetune_fn`` is not callable,
    and what :func:`schedule` and :func:`prune` raise for their arguments (a bad one stops
    the first step before it changes the model)."""
    if not callable(finetune_fn):
        raise TypeError(f"iterative_prune: finetune_fn must be callable (it gets the model); got {finetune_fn!r}")
    history = []
    for amount in schedule(target, steps, kind):
        prune(model, amount, **prune_kwargs)
        result = finetune_fn(model)
        history.append(PruneStep(amount, sparsity(model), result))
    return history
