"""Task ``stochastic_rounding``: add stochastic rounding to the quantizer.

Round-to-nearest maps x to the same integer every time, so an update smaller than half a
step is lost, however often it is applied. Stochastic rounding rounds up with probability
equal to the fractional part:

    SR(x) = ⌊x⌋ + 1  with probability x − ⌊x⌋,   ⌊x⌋ otherwise,      so  E[SR(x)] = x

(Gupta et al., 2015, "Deep learning with limited numerical precision").
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minikd.quant import dequantize, int_dtype, qparams, qrange, quantize

from .common import CheckFailed, call, index_text

NAME = "stochastic_rounding"
TITLE = "Add stochastic rounding to the quantizer: unbiased, E[round(x)] = x"
NAMES = ("stochastic_round", "quantize_stochastic")

TASK = """\
Add stochastic rounding to the lecture's quantizer (minikd/quant/ops.py rounds to nearest,
halves to even):

    stochastic_round(x, rng)
        x: a float NumPy array; rng: a numpy.random.Generator (use it, and only it, for the
        randomness, so a seed makes a run repeatable). Returns an array of x's shape whose
        entries are ⌊x⌋ + 1 with probability x − ⌊x⌋ and ⌊x⌋ otherwise (floats holding
        integers; x itself where x is already an integer).

    quantize_stochastic(x, b, s, z, rng)
        Q(x, b) with stochastic rounding: clip(SR(x/s − z), −2^(b−1), 2^(b−1) − 1), computed in
        float64, as the integer dtype quant.quantize returns (quant.int_dtype(b)).
        Per-tensor s and z (numbers) are enough.

Hint: one uniform draw u = rng.random(x.shape) per element; round up where u < x − ⌊x⌋.
Mind negative x: ⌊−0.25⌋ = −1, not 0.

The check draws many roundings and tests that each value is ⌊x⌋ or ⌈x⌉, that their mean is x
within a few standard errors (unbiased), that the same seed gives the same result, and the
same for quantize_stochastic against quant.quantize's range, dtype and clipping.

What to observe (the check prints it): add 0.3·s to an 8-bit weight 500 times. With
round-to-nearest it never moves (each update rounds back); with stochastic rounding it grows
by about 150·s, the sum of the updates.

In the engine: a parameter rounding="nearest" | "stochastic" of transform (and so quantize)
and of FakeQuantize.forward in minikd/quant/ops.py, with its generator from
minikd.random.get_rng() so that mk.manual_seed makes a run repeatable.
"""

STARTER = '''\
import numpy as np
from minikd import quant


def stochastic_round(x, rng):
    """⌊x⌋ + 1 with probability x − ⌊x⌋, else ⌊x⌋."""
    ...


def quantize_stochastic(x, b, s, z, rng):
    """clip(stochastic_round(x/s − z), −2^(b−1), 2^(b−1) − 1) as quant.int_dtype(b)."""
    ...
'''

DRAWS = 20000
POINTS = np.array([-2.75, -1.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5, 0.9, 3.3, 7.0, 7.01])


def _neighbours(values, x, what, name="x"):
    """Every value is ⌊x⌋ or ⌈x⌉ of the x at its place; ``name``: what x is called in the message
    (``v`` for quantize_stochastic's level x/s − z)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != x.shape:
        raise CheckFailed(f"{what}: wrong shape: got {values.shape}, expected {x.shape}")
    ok = (values == np.floor(x)) | (values == np.ceil(x))
    if not ok.all():
        idx = np.unravel_index(int(np.argmin(ok)), ok.shape)
        v = name
        raise CheckFailed(f"{what} at index {index_text(idx)}: {v} = {x[idx]:.6g} became {values[idx]:.6g}; "
                          f"stochastic rounding gives only ⌊{v}⌋ = {np.floor(x[idx]):.0f} or ⌈{v}⌉ = "
                          f"{np.ceil(x[idx]):.0f}")


def _unbiased(mean, x, n, what):
    """|mean − x| within 5 standard errors of a mean of n Bernoulli(x − ⌊x⌋) draws."""
    frac = x - np.floor(x)
    tol = 5 * np.sqrt(frac * (1 - frac) / n) + 1e-12
    bad = np.abs(mean - x) > tol
    if bad.any():
        i = int(np.argmax(bad))
        raise CheckFailed(f"{what} is biased at x = {x[i]:.6g}: the mean of {n} draws is {mean[i]:.4f}, expected "
                          f"{x[i]:.4f} ± {tol[i]:.4f}. Round up with probability x − ⌊x⌋ = {frac[i]:.4g}")


def check(impl, say=print) -> None:
    """Raise :class:`CheckFailed` unless ``impl.stochastic_round`` and ``impl.quantize_stochastic`` are unbiased."""
    sr, qs = impl.stochastic_round, impl.quantize_stochastic

    x = np.broadcast_to(POINTS, (DRAWS, POINTS.size)).copy()
    r = call(sr, "stochastic_round", x, np.random.default_rng(0))
    _neighbours(r, x, "stochastic_round(x)")
    r = np.asarray(r, dtype=np.float64)
    if np.all(r == np.round(x)):
        raise CheckFailed("stochastic_round(x) always gave the nearest integer: draw u = rng.random(x.shape) "
                          "and round up where u < x − ⌊x⌋")
    _unbiased(r.mean(axis=0), POINTS, DRAWS, "stochastic_round")
    say(f"ok  only ⌊x⌋ or ⌈x⌉, and unbiased: the mean of {DRAWS} draws is x within 5 standard errors")

    small = np.random.default_rng(5).uniform(-4, 4, (6, 7))
    kept = small.copy()
    a = np.asarray(call(sr, "stochastic_round", small, np.random.default_rng(42)))
    b = np.asarray(call(sr, "stochastic_round", small, np.random.default_rng(42)))
    if not np.array_equal(a, b):
        raise CheckFailed("two generators with the same seed gave different roundings: draw from the rng you are "
                          "given (rng.random), not from np.random's global state")
    if not np.array_equal(small, kept):
        raise CheckFailed("stochastic_round changed its input x in place: return a new array")
    say("ok  the same seed gives the same rounding")

    b4, (lo, hi) = 4, qrange(4)
    s, z = qparams(1.5, -0.5, b4)
    xs = np.array([-3.0, -0.5, -0.31, 0.0, 0.07, 0.5, 1.0, 1.23, 1.5, 9.0])
    q = call(qs, "quantize_stochastic", xs, b4, s, z, np.random.default_rng(0))
    if getattr(q, "dtype", None) != int_dtype(b4):
        raise CheckFailed(f"quantize_stochastic at b = 4 must return {np.dtype(int_dtype(b4))} integers, as "
                          f"quant.quantize does; got {getattr(q, 'dtype', type(q).__name__)}")
    q12 = call(qs, "quantize_stochastic", xs, 12, *qparams(1.5, -0.5, 12), np.random.default_rng(0))
    if getattr(q12, "dtype", None) != int_dtype(12):
        raise CheckFailed(f"quantize_stochastic at b = 12 must return {np.dtype(int_dtype(12))}; "
                          f"got {getattr(q12, 'dtype', None)}")
    v = np.clip(xs / s - z, lo, hi)
    many = np.broadcast_to(xs, (DRAWS, xs.size)).copy()
    qm = np.asarray(call(qs, "quantize_stochastic", many, b4, s, z, np.random.default_rng(1)), dtype=np.float64)
    if qm.min() < lo or qm.max() > hi:
        raise CheckFailed(f"quantize_stochastic gave {qm.min():.0f}..{qm.max():.0f}, outside the 4-bit range "
                          f"{lo}..{hi}: clip after rounding")
    _neighbours(qm, np.broadcast_to(v, qm.shape), "quantize_stochastic(x), its level v = x/s − z (clipped),", name="v")
    _unbiased(qm.mean(axis=0), v, DRAWS, "quantize_stochastic")
    on_grid = s * (np.arange(lo, hi + 1) + z)
    exact = np.asarray(call(qs, "quantize_stochastic", on_grid, b4, s, z, np.random.default_rng(0)))
    if not np.array_equal(exact, quantize(on_grid, b4, s, z)):
        raise CheckFailed("values on the quantization grid (x/s − z an integer) must quantize exactly as "
                          "quant.quantize does: compute x/s − z in float64")
    say("ok  quantize_stochastic: int8, in range, clipped, unbiased, exact on the grid")

    b8, steps, runs = 8, 500, 100
    s8, z8 = qparams(1.5, -0.5, b8)
    rng = np.random.default_rng(0)
    w_near, w_sr = 0.0, np.zeros(runs)  # one weight by round-to-nearest, 100 by stochastic rounding
    for _ in range(steps):
        w_near = float(dequantize(quantize(w_near + 0.3 * s8, b8, s8, z8), s8, z8))
        w_sr = dequantize(qs(w_sr + 0.3 * s8, b8, s8, z8, rng), s8, z8)
    say(f"compare: {steps} updates of +0.3·s to an 8-bit weight from 0 (s = {s8:.5f}), which sum to "
        f"{steps * 0.3 * s8:.4f} — round-to-nearest ends at {w_near:.4f}; stochastic rounding at "
        f"{w_sr.mean():.4f} on average over {runs} runs (standard deviation {w_sr.std():.4f})")


# --------------------------------------------------------------------------- the reference solution


def stochastic_round(x, rng):
    """⌊x⌋ + 1 with probability x − ⌊x⌋, else ⌊x⌋: unbiased, E[SR(x)] = x."""
    x = np.asarray(x, dtype=np.float64)
    down = np.floor(x)
    return down + (rng.random(x.shape) < x - down)


def quantize_stochastic(x, b, s, z, rng):
    """clip(SR(x/s − z), −2^(b−1), 2^(b−1) − 1) as the smallest signed integer dtype of b bits."""
    lo, hi = qrange(b)
    v = np.asarray(x, dtype=np.float64) / s - z
    return np.clip(stochastic_round(v, rng), lo, hi).astype(int_dtype(b))


reference = SimpleNamespace(stochastic_round=stochastic_round, quantize_stochastic=quantize_stochastic)
