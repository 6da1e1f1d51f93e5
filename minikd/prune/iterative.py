"""One-shot and iterative pruning.

The lecture's two methods:

- **one-shot**: train → prune → fine-tune: ``prune(model, 0.9)`` then fine-tune once;
- **iterative**: alternate pruning steps and fine-tuning, up to the target sparsity:
  :func:`iterative_prune` with a :func:`schedule` of cumulative sparsities — linear, or
  Zhu & Gupta's (2017) cubic one that prunes fast while many weights are redundant and
  slowly near the target.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

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
    """
    if isinstance(target, bool) or not isinstance(target, numbers.Real) or not 0 <= target <= 1:
        raise ValueError(f"schedule: target is the final sparsity and must be in [0, 1]; got {target!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"schedule: steps must be a positive int; got {steps!r}")
    if kind not in KINDS:
        raise ValueError(f"schedule: unknown kind {kind!r}; expected one of {', '.join(map(repr, KINDS))}")
    if kind == "linear":
        return [target * (t / steps) for t in range(1, steps + 1)]
    return [target * (1 - (1 - t / steps) ** 3) for t in range(1, steps + 1)]


@dataclass
class PruneStep:
    """One step of :func:`iterative_prune`: the amount pruned to, the sparsity after
    fine-tuning, and what ``finetune_fn`` returned."""

    amount: float
    sparsity: Sparsity
    result: object = None


def iterative_prune(model, target: float, steps: int, finetune_fn, kind: str = "linear", **prune_kwargs) -> list:
    """Iterative pruning: for each amount of ``schedule(target, steps, kind)``, ``prune(model,
    amount, **prune_kwargs)`` then ``finetune_fn(model)``. Pruning is cumulative, so the model
    ends at ``target``. Returns one :class:`PruneStep` per step."""
    if not callable(finetune_fn):
        raise TypeError(f"iterative_prune: finetune_fn must be callable (it gets the model); got {finetune_fn!r}")
    history = []
    for amount in schedule(target, steps, kind):
        prune(model, amount, **prune_kwargs)
        result = finetune_fn(model)
        history.append(PruneStep(amount, sparsity(model), result))
    return history
