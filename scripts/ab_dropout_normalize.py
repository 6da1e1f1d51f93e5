"""A/B of docs/performance.md, item 9, in one process: dropout's forward + backward on the Hinton
teacher's (100, 1200) hidden layer, and ``normalize`` of 60,000 MNIST-sized images, each the formula
used before (kept here as the baseline) against minikd's present code, alternating, medians.

    python scripts/ab_dropout_normalize.py

Nothing else should run meanwhile (a busy second process collapses 2-thread speed).
"""

import time

import numpy as np

import minikd.kernels as K
from minikd.data import normalize
from minikd.data.mnist import MEAN, STD


def median_ms(f, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 1200)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    p = 0.2

    def dropout_before():  # the mask as a float copy, then NumPy's branching where, forward and backward
        keep = rng.random(x.shape) >= p
        mask = keep.astype(x.dtype)
        mask *= 1.0 / (1.0 - p)
        np.where(keep, x * mask, x.dtype.type(0)), np.where(keep, g * mask, g.dtype.type(0))

    def dropout_now():  # minikd.ops.norm.Dropout's forward and backward
        keep = rng.random(x.shape) >= p
        s = x.dtype.type(1.0 / (1.0 - p))
        K.scaled_select(keep, x, s), K.scaled_select(keep, g, s)

    def draw_only():
        return rng.random(x.shape) >= p

    images = rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8)

    def normalize_before():
        z = images.astype(np.float32) / 255.0
        return ((z - MEAN) / STD)[:, None]

    dropout_before(), dropout_now(), normalize_before(), normalize(images)  # warm: compile, page in
    rounds = 5
    old, new, draw = zip(*[(median_ms(dropout_before, 200), median_ms(dropout_now, 200), median_ms(draw_only, 200))
                           for _ in range(rounds)])
    print(f"dropout (100, 1200), forward + backward: before {np.median(old):.3f} ms, now {np.median(new):.3f} ms "
          f"(drawing the mask: {np.median(draw):.3f} ms); medians of {rounds} x 200 calls")
    old, new = zip(*[(median_ms(normalize_before, 5), median_ms(lambda: normalize(images), 5)) for _ in range(rounds)])
    print(f"normalize, 60,000 images: before {np.median(old):.1f} ms, now {np.median(new):.1f} ms; "
          f"medians of {rounds} x 5 calls")


if __name__ == "__main__":
    main()
