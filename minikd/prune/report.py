"""``sparsity``: how much of a model pruning removed, per layer and in total."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .. import backend
from ..checks import check_module
from .pruning import prunable_layers


class SparsityRow(NamedTuple):
    """Zero weights, all weights and their ratio; ``float(row)`` is the fraction."""

    zeros: int
    total: int
    fraction: float

    def __float__(self):
        return float(self.fraction)


@dataclass
class Sparsity:
    """Per-layer rows ``{name: (zeros, total, fraction)}`` and the ``total`` row; ``str()`` is a table."""

    layers: dict
    total: SparsityRow

    @property
    def fraction(self) -> float:
        """Fraction of zero weights over all the prunable layers."""
        return self.total.fraction

    def __str__(self):
        rows = [[name, f"{r.zeros:,}", f"{r.total:,}", f"{100 * r.fraction:.2f} %"]
                for name, r in [*self.layers.items(), ("total", self.total)]]
        head = ["layer", "zeros", "weights", "sparsity"]
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(4)]

        def line(row):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(line(head))
        return "\n".join([line(head), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def sparsity(model) -> Sparsity:
    """Fraction of zero weights of every Linear and Conv2d (the prunable layers, the final
    classifier included) — each layer's weight as the forward pass uses it (times its mask) —
    and over all of them together. Biases are not counted.

    >>> from minikd import nn
    >>> layer = nn.Linear(4, 2)
    >>> layer.weight.data[0] = 0
    >>> sparsity(nn.Sequential(layer)).layers["0"]
    SparsityRow(zeros=4, total=8, fraction=0.5)
    """
    check_module(model, "sparsity", "model")
    rows = {}
    for name, layer in prunable_layers(model).items():
        w = layer.masked("weight").data
        zeros = int(w.size - backend.get_array_module(w).count_nonzero(w))
        rows[name] = SparsityRow(zeros, int(w.size), zeros / w.size)
    zeros, total = sum(r.zeros for r in rows.values()), sum(r.total for r in rows.values())
    return Sparsity(rows, SparsityRow(zeros, total, zeros / total if total else 0.0))
