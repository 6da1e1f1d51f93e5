"""Pruning: remove the least important weights, filters, channels or neurons of a network.

    from minikd import prune
    prune.prune(model, 0.5, criterion="l1", scope="global")                 # unstructured, by masks
    prune.prune(model, 0.5, structure="filter", layers=["conv1", "conv2"])  # whole conv filters
    prune.compact(model, (1, 28, 28))                                       # ... physically removed
    print(prune.sparsity(model))

The lecture's choices — criterion (magnitude L1/L2, gradient-based, random), scope (local,
global), structure (unstructured, filters/channels/neurons) and method (one-shot, iterative)
— are arguments of :func:`prune` and :func:`iterative_prune`. Masks are the buffers
``weight_mask``/``bias_mask`` of each pruned layer, applied in its forward pass.
"""

from .compact import compact
from .criteria import CRITERIA, accumulate_gradients
from .iterative import PruneStep, iterative_prune, schedule
from .pruning import SCOPES, STRUCTURES, final_classifier, load_pruned, prunable_layers, prune, remove_masks
from .report import Sparsity, SparsityRow, sparsity

__all__ = [
    "CRITERIA", "PruneStep", "SCOPES", "STRUCTURES", "Sparsity", "SparsityRow", "accumulate_gradients", "compact",
    "final_classifier", "iterative_prune", "load_pruned", "prunable_layers", "prune", "remove_masks", "schedule",
    "sparsity",
]
