"""Range choice: observers watch the values a tensor takes and pick the range [β, α] to quantize.

The lecture: "Usually α and β are min(r) and max(r)" — with α the top of the range, as its
formula s = (α − β)/(2^b − 1) needs: α = max(r), β = min(r) (docs/quantization.md, exercise 2,
on the two namings). An observer keeps them over the batches it has seen and turns them into
(s, z) with :func:`~minikd.quant.ops.qparams`:

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

**Only finite values.** A NaN or ±inf in a batch raises ValueError naming the observer, the
batch and (per-channel) the channels, and leaves the range as it was: silently skipped
(``min(−1, nan)`` is −1) it would hide a diverging layer, and kept it would make the range
— and so s and z — meaningless (a range reaching ±inf has an infinite scale).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..checks import check_axis, check_int, check_number
from ..tensor import Tensor
from .ops import check_bits, qparams


class MinMaxObserver:
    """The running min and max of everything observed: β = min, α = max.

    ``b``: bit width (2..16); ``symmetric``: z = 0 and the range [−m, m], m = max(|α|, |β|);
    ``axis``: None per-tensor, or the channel axis for per-channel ranges.
    Attributes ``min_val`` and ``max_val`` (numbers per-tensor, float64 arrays of shape (C,)
    per-channel; None before the first batch) and ``batches``, the number of batches seen.

    Raises ValueError for a bit width outside 2..16, TypeError for a ``symmetric`` that is not
    a bool or an ``axis`` that is not an int or None. :meth:`observe` raises ValueError for a
    batch holding a NaN or ±inf, an empty batch, an axis out of range or a channel count that
    changed, and TypeError for a batch that is not real numbers.
    """

    def __init__(self, b: int = 8, symmetric: bool = False, axis: int | None = None):
        name = type(self).__name__
        self.b = check_bits(b, name)
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"{name}: symmetric must be True or False; got {symmetric!r}")
        self.symmetric = bool(symmetric)
        self.axis = None if axis is None else check_int(axis, name, "axis (None: per-tensor)")
        self.reset()

    def reset(self):
        """Forget everything observed."""
        self.min_val = None
        self.max_val = None
        self.batches = 0

    def _batch_range(self, x):
        """(min, max) of one batch: numbers per-tensor, (C,) arrays per-channel."""
        name = type(self).__name__
        x = x.data if isinstance(x, Tensor) else x
        xp = backend.get_array_module(x)
        x = xp.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name}: observes real numbers; got an array of dtype {x.dtype}")
        x = x.astype(xp.float64, copy=False)
        if x.size == 0:
            raise ValueError(f"{name}: cannot observe an empty tensor (shape {tuple(x.shape)})")
        if self.axis is None:
            lo, hi = x.min(), x.max()
        else:
            axis = check_axis(self.axis, x.ndim, name)
            rest = tuple(i for i in range(x.ndim) if i != axis)
            lo, hi = x.min(axis=rest), x.max(axis=rest)
            if self.min_val is not None and lo.shape != self.min_val.shape:
                raise ValueError(f"{name}: per-channel observer saw {self.min_val.shape[0]} channels before, "
                                 f"{lo.shape[0]} now (axis {self.axis})")
        # min and max propagate NaN and reach ±inf: checking them checks every value
        if not bool(xp.all(xp.isfinite(lo)) and xp.all(xp.isfinite(hi))):
            raise ValueError(self._non_finite_message(x, lo, hi, xp))
        if self.axis is None:
            return float(lo), float(hi)
        return lo, hi

    def _non_finite_message(self, x, lo, hi, xp) -> str:
        counts = [(int(xp.count_nonzero(xp.isnan(x))), "NaN"), (int(xp.count_nonzero(x == xp.inf)), "+inf"),
                  (int(xp.count_nonzero(x == -xp.inf)), "-inf")]
        what = ", ".join(f"{n} {kind}" for n, kind in counts if n)
        where = ""
        if self.axis is not None:
            bad = backend.to_numpy(~(xp.isfinite(lo) & xp.isfinite(hi))).nonzero()[0]
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            where = f" in channel{'s' if len(bad) > 1 else ''} {shown} (axis {self.axis})"
        return (f"{type(self).__name__}: observed {what} in batch {self.batches + 1} (shape {tuple(x.shape)})"
                f"{where}; a range needs finite values — the range so far is kept unchanged. Look for the "
                f"layer or input that produced them (a diverging loss, a division by zero)")

    def _update(self, lo, hi):
        xp = backend.get_array_module(lo)
        self.min_val = min(self.min_val, lo) if self.axis is None else xp.minimum(self.min_val, lo)
        self.max_val = max(self.max_val, hi) if self.axis is None else xp.maximum(self.max_val, hi)

    def observe(self, x):
        """Update the range with the batch ``x`` (a Tensor or array); returns ``x`` unchanged.

        Raises ValueError (naming the observer, the batch and the non-finite values) when ``x``
        holds a NaN or ±inf, and for an empty batch or a changed channel count; the range is
        unchanged then."""
        lo, hi = self._batch_range(x)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self._update(lo, hi)
        self.batches += 1
        return x

    def qparams(self):
        """(s, z) of the observed range [min_val, max_val] at ``b`` bits (see ``ops.qparams``).

        Raises RuntimeError before any batch was observed, ValueError when the range is so wide
        that s overflows float64."""
        if self.min_val is None:
            raise RuntimeError(f"{type(self).__name__}.qparams() before any observe(): no range yet")
        try:
            return qparams(self.max_val, self.min_val, self.b, symmetric=self.symmetric)
        except ValueError as e:
            if "too wide" not in str(e):
                raise
            # e.g. [−1e308, 1e308]: α − β overflows float64 (ops.qparams refuses it); said by the observer's name
            raise ValueError(f"{type(self).__name__}: the observed range [{self.min_val}, {self.max_val}] is too wide: "
                             f"its scale s = (α − β)/(2^b − 1) overflows to inf") from None

    def __repr__(self):
        return (f"{type(self).__name__}(b={self.b}, symmetric={self.symmetric}, axis={self.axis}, "
                f"min_val={self.min_val}, max_val={self.max_val})")


class MovingAverageMinMaxObserver(MinMaxObserver):
    """An exponential moving average of the batch min and max:

        min ← (1 − momentum)·min + momentum·batch_min,   max ← (1 − momentum)·max + momentum·batch_max

    The first batch initialises min and max. ``momentum`` in (0, 1]; 1 keeps only the last batch.
    A batch with a NaN or ±inf raises ValueError, as for :class:`MinMaxObserver` (averaged in,
    it would make the range NaN or infinite for good).

    Raises TypeError for a ``momentum`` that is not a number and ValueError outside (0, 1].
    """

    def __init__(self, b: int = 8, symmetric: bool = False, axis: int | None = None, momentum: float = 0.1):
        self.momentum = check_number(momentum, type(self).__name__, "momentum", low=0, high=1, low_open=True)
        super().__init__(b=b, symmetric=symmetric, axis=axis)

    def _update(self, lo, hi):
        m = self.momentum
        self.min_val = (1 - m) * self.min_val + m * lo
        self.max_val = (1 - m) * self.max_val + m * hi
