"""minikd's random numbers: one seeded NumPy generator for initialisation, dropout and
shuffling, so ``manual_seed(s)`` makes a whole run repeatable."""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset minikd's generator: the same seed gives the same weights and batches. ``seed``: an
    int ≥ 0 (None would seed from the operating system: runs no longer repeat)."""
    from .checks import check_int

    global _rng
    _rng = np.random.default_rng(check_int(seed, "manual_seed", "seed", low=0))


def get_rng() -> np.random.Generator:
    return _rng
