"""Range choice: observers watch the values a tensor takes and pick the range [β, α] to quantize.

The lecture: "usually α and β are max(r) and min(r)". An observer keeps them over the batches
it has seen and turns them into (s, z) with :func:`~minikd.quant.ops.qparams`:

- :class:`MinMaxObserver`: the running min and max over every batch (weights: one call is
  enough; activations: a calibration pass over a few batches);
- :class:`MovingAverageMinMaxObserver`: an exponential moving average of each batch's min and
  max, min ← (1 − momentum)·min + momentum·batch_min (the first batch initialises), so one
  outlier batch does not stretch the range for ever — the usual choice for activations
  during quantization-aware training.

Both are per-tensor (``axis=None``: one range for the whole tensor) or per-channel (``axis``:
one range per index along that axis, reducing over all the others: ``axis=0`` gives one
range per conv filter of a (d, d_prev, k, k) weight and per row of a Linear (out, in)
weight), symmetric or asymmetric, at any bit width b in 2..16.

    obs = MinMaxObserver(b=8, symmetric=True, axis=0)
    obs.observe(conv.weight)
    s, z = obs.qparams()        # arrays of shape (d,)
"""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .ops import check_bits, qparams


class MinMaxObserver:
    """The running min and max of everything observed: β = min, α = max.

    ``b``: bit width (2..16); ``symmetric``: z = 0 and the range [−m, m], m = max(|α|, |β|);
    ``axis``: None per-tensor, or the channel axis for per-channel ranges.
    Attributes ``min_val`` and ``max_val`` (numbers per-tensor, float64 arrays of shape (C,)
    per-channel; None before the first batch) and ``batches``, the number of batches seen.
    """

    def __init__(self, b: int = 8, symmetric: bool = False, axis: int | None = None):
        self.b = check_bits(b)
        self.symmetric = bool(symmetric)
        self.axis = axis
        self.reset()

    def reset(self):
        """Forget everything observed."""
        self.min_val = None
        self.max_val = None
        self.batches = 0

    def _batch_range(self, x):
        """(min, max) of one batch: numbers per-tensor, (C,) arrays per-channel."""
        x = x.data if isinstance(x, Tensor) else x
        xp = backend.get_array_module(x)
        x = xp.asarray(x, dtype=xp.float64)
        if x.size == 0:
            raise ValueError("cannot observe an empty tensor")
        if self.axis is None:
            return float(x.min()), float(x.max())
        axis = self.axis % x.ndim
        rest = tuple(i for i in range(x.ndim) if i != axis)
        lo, hi = x.min(axis=rest), x.max(axis=rest)
        if self.min_val is not None and lo.shape != self.min_val.shape:
            raise ValueError(f"per-channel observer saw {self.min_val.shape[0]} channels before, "
                             f"{lo.shape[0]} now (axis {self.axis})")
        return lo, hi

    def _update(self, lo, hi):
        xp = backend.get_array_module(lo)
        self.min_val = min(self.min_val, lo) if self.axis is None else xp.minimum(self.min_val, lo)
        self.max_val = max(self.max_val, hi) if self.axis is None else xp.maximum(self.max_val, hi)

    def observe(self, x):
        """Update the range with the batch ``x`` (a Tensor or array); returns ``x`` unchanged."""
        lo, hi = self._batch_range(x)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self._update(lo, hi)
        self.batches += 1
        return x

    def qparams(self):
        """(s, z) of the observed range [min_val, max_val] at ``b`` bits (see ``ops.qparams``)."""
        if self.min_val is None:
            raise RuntimeError(f"{type(self).__name__}.qparams() before any observe(): no range yet")
        return qparams(self.max_val, self.min_val, self.b, symmetric=self.symmetric)

    def __repr__(self):
        return (f"{type(self).__name__}(b={self.b}, symmetric={self.symmetric}, axis={self.axis}, "
                f"min_val={self.min_val}, max_val={self.max_val})")


class MovingAverageMinMaxObserver(MinMaxObserver):
    """An exponential moving average of the batch min and max:

        min ← (1 − momentum)·min + momentum·batch_min,   max ← (1 − momentum)·max + momentum·batch_max

    The first batch initialises min and max. ``momentum`` in (0, 1]; 1 keeps only the last batch.
    """

    def __init__(self, b: int = 8, symmetric: bool = False, axis: int | None = None, momentum: float = 0.1):
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1]; got {momentum!r}")
        self.momentum = float(momentum)
        super().__init__(b=b, symmetric=symmetric, axis=axis)

    def _update(self, lo, hi):
        m = self.momentum
        self.min_val = (1 - m) * self.min_val + m * lo
        self.max_val = (1 - m) * self.max_val + m * hi
