"""Every process-wide setting minikd makes, in one place, behind one switch.

``import minikd`` calls :func:`tune`, which applies three settings that a CPU training loop
needs (measured in docs/performance.md, "Process settings"):

1. Keep freed host memory for reuse (:func:`keep_freed_memory`).
2. Let idle BLAS threads sleep at once (:func:`quiet_blas_threads`).
3. Let idle OpenMP (Numba) threads wait passively (:func:`passive_openmp_wait`).

Nothing else in minikd changes the process. Opt out of all three with the environment
variable ``MINIKD_TUNE_RUNTIME=0`` (set before ``import minikd``); :func:`settings` says what
was applied, and ``examples/benchmark.py`` prints it.

**1. Freed memory.**
Every training step allocates the same arrays again: im2col matrices, activations,
gradients, a few MiB each. glibc's ``malloc`` serves large requests with fresh ``mmap``
pages and gives memory back to the operating system as soon as enough of it is free at the
top of the heap. The next step then touches brand-new pages, and each first touch of a
4 KiB page is a page fault that the kernel must serve (zeroing the page).

Measured on the hands-on student at batch 64 (2-core CPU): ≈ 2,300 page faults a step and
6.0 ms a step; with the settings below, 0 faults and 3–4 ms a step. (The teacher's larger
buffers happened to raise glibc's own thresholds, so it saw no faults either way.)

:func:`keep_freed_memory` raises the two thresholds with ``mallopt`` so freed blocks stay
in the process for the next step. Peak memory (RSS) does not grow, it just stays at its
peak instead of being handed back between steps. It is a no-op off glibc (macOS, Windows,
musl).

**2. Spinning BLAS threads.** A convolution alternates NumPy's matrix products (run by
OpenBLAS's thread pool) with Numba kernels (run by Numba's pool). After each product,
OpenBLAS's idle threads keep spinning for 2^28 CPU cycles (≈ 0.1 s) before they sleep, so
every Numba kernel that follows finds a core taken and runs as slowly as its slowest
thread: on 2 cores, im2col and col2im took 2–4× their time in isolation. OpenBLAS reads
its ``OPENBLAS_THREAD_TIMEOUT`` (log2 of the spin, in cycles) only when its threads start,
which happened when NumPy was imported; :func:`quiet_blas_threads` sets it to 2^10 cycles
and restarts the (idle) pool — the same shutdown and restart OpenBLAS performs around every
``fork()``. Measured on the teacher at batch 64: ≈ 17 → 15.5 ms a step. A value already in
the environment is kept; a NumPy built on another BLAS is left alone.

**3. Spinning OpenMP threads.** The same from the other side: Numba's OpenMP threads
spin-wait after each parallel kernel by default, and the BLAS threads of the next matrix
product find the cores busy (measured: GEMM 2× slower on 2 cores). ``OMP_WAIT_POLICY=PASSIVE``
hands the cores over at once. OpenMP reads it when it first starts, at the first parallel
kernel call, so :func:`tune` sets it before any kernel runs; a value the user set is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import numpy as np

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1  # free memory at the top of the heap beyond this goes back to the OS
M_MMAP_THRESHOLD = -3  # requests at least this large get their own mmap (returned on free)

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024

BLAS_THREAD_TIMEOUT = 10  # log2 of the cycles an idle OpenBLAS thread spins: ≈ 0.3 µs

_applied: bool | None = None


def _enabled() -> bool:
    return os.environ.get("MINIKD_TUNE_RUNTIME", "1") != "0" and sys.platform.startswith("linux")


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse. Returns True if it was applied."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not _enabled():
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def openblas_library():
    """The OpenBLAS shared library NumPy loaded (a ``ctypes.CDLL``), or None."""
    np.ones(1) @ np.ones(1)  # make sure NumPy's BLAS is loaded
    try:
        with open("/proc/self/maps") as maps:
            path = next((line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()), None)
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


def quiet_blas_threads() -> bool:
    """Make NumPy's idle OpenBLAS threads sleep after ≈ 2^10 cycles instead of spinning for
    2^28. Returns True if it was applied (False: opted out, not OpenBLAS, or a timeout was
    already set in the environment by the user)."""
    if not _enabled() or "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    lib = openblas_library()
    needed = ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_", "blas_thread_init")
    if lib is None or not all(hasattr(lib, name) for name in needed):
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(BLAS_THREAD_TIMEOUT)  # putenv: visible to C getenv
    lib.openblas_read_env()            # OpenBLAS parses its environment variables again
    lib.blas_thread_shutdown_()        # stop the idle pool (as before a fork) ...
    lib.blas_thread_init()             # ... and start it with the new timeout
    return lib.openblas_thread_timeout() == BLAS_THREAD_TIMEOUT


def passive_openmp_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for Numba's OpenMP threads (before they start). Returns
    True if it was applied (False: opted out, or the user set a policy already)."""
    if not _enabled() or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


_report: dict = {}


def tune() -> None:
    """Apply the three settings (called once by ``import minikd``, before any kernel runs)."""
    if _report:
        return
    _report.update({
        "freed memory kept (mallopt)": keep_freed_memory(),
        f"idle BLAS threads sleep (OPENBLAS_THREAD_TIMEOUT={BLAS_THREAD_TIMEOUT})": quiet_blas_threads(),
        "idle OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE)": passive_openmp_wait(),
    })


def settings() -> dict:
    """What :func:`tune` applied in this process: {setting: True/False}, plus the switch."""
    return {"MINIKD_TUNE_RUNTIME": os.environ.get("MINIKD_TUNE_RUNTIME", "1 (default)"), **_report}
