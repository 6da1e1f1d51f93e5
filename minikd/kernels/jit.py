"""How the kernels are compiled: each loop nest twice, and the size of the work picks one.

A Numba ``parallel=True`` kernel hands the iterations of its ``prange`` loop to a pool of
threads. Waking that pool costs tens of microseconds, more than the whole loop takes on a
small input: at batch 1, im2col of the teacher's second layer (56 K values) took 23 µs on
one thread and 50–70 µs on two, and inference of the student at batch 1 went from 313 µs
to 82 µs a forward on one thread. So every kernel here is compiled twice from the same
Python source — ``parallel`` (prange over threads) and ``serial`` (prange is a plain range,
the same numbers) — and a call runs the parallel one only when its work (the number of
values it writes) reaches :data:`PARALLEL_MIN_WORK`.

    @loops
    def _scale_kernel(x, a, out):
        for i in numba.prange(x.size):
            out[i] = a * x[i]

    _scale_kernel(out.size, x, 2.0, out)   # first argument: the work, then the kernel's own
"""

from __future__ import annotations

import types

import numba

PARALLEL_MIN_WORK = 1 << 17  # ≈ values written; below this one thread is faster on this 2-core CPU


def renamed_twin(fn, suffix: str):
    """A second Python function with ``fn``'s code but the name ``fn.__name__ + suffix``.

    Why two builds need two functions: Numba caches a compiled function on disk (``cache=True``,
    so a fresh process loads machine code instead of compiling for seconds) in files named
    after the function — ``__pycache__/<module>.<qualified name>-<line>.pyXY.nbi`` and
    ``.nbc`` — and looks a build up by its argument types, the CPU and the hash of its
    bytecode. Whether it was compiled ``parallel=True`` is in none of these: compiled from the
    same function, the parallel and the serial build would share one cache entry, each would
    overwrite the other's, and a later process could load the threaded build where it asked for
    the serial one. A twin with its own qualified name (``_im2col_kernel_serial``)
    gets its own files. It runs the very same bytecode, reads the same globals (so it finds
    the same ``numba.prange`` and helper kernels) and keeps the defaults and closure; only its
    names differ.
    """
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    twin.__qualname__, twin.__module__ = fn.__qualname__ + suffix, fn.__module__
    return twin


class Loops:
    """One loop nest compiled twice by Numba, each build cached on disk in its own files:
    ``.parallel`` (prange over threads) and ``.serial`` (from :func:`renamed_twin`)."""

    def __init__(self, fn):
        self.py_func = fn
        self.parallel = numba.njit(parallel=True, cache=True)(fn)
        self.serial = numba.njit(cache=True)(renamed_twin(fn, "_serial"))
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, work, *args):
        """Run the kernel on ``args``; ``work`` (≈ values written) picks the parallel or serial build."""
        return (self.parallel if work >= PARALLEL_MIN_WORK else self.serial)(*args)

    def __repr__(self):
        return f"<Loops {self.__name__}: parallel from {PARALLEL_MIN_WORK} values, serial below>"


def loops(fn) -> Loops:
    """Decorator: compile ``fn`` (a loop nest using ``numba.prange``) as a :class:`Loops`."""
    return Loops(fn)
