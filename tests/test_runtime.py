"""minikd.runtime: freed host memory is reused, and idle BLAS threads sleep at once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minikd import runtime

# Three 6 MiB buffers allocated, touched and freed, 20 times: a training step in miniature.
# glibc gives the freed top of the heap back to the OS, so each round faults its pages in
# again (~30,000 faults in all); with minikd's setting the pages are reused (0 faults).
ROUNDS = """
import resource, numpy as np
def step():
    bufs = [np.empty(6 * 2**20 // 4, dtype=np.float32) for _ in range(3)]
    for a in bufs:
        a.fill(1)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

BLAS_TIMEOUT = """
from minikd import runtime
print(runtime.openblas_library().openblas_thread_timeout())
"""


def run_python(code: str, tune: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["MINIKD_TUNE_RUNTIME"] = "1" if tune else "0"
    return subprocess.run([sys.executable, "-c", "import minikd\n" + code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.skipif(not runtime.keep_freed_memory(), reason="needs Linux with glibc's malloc")
def test_freed_buffers_are_reused_without_page_faults():
    assert int(run_python(ROUNDS, tune=True)) < 500
    # and the opt-out really leaves glibc alone: the same rounds fault every page again
    assert int(run_python(ROUNDS, tune=False)) > 5_000


@pytest.mark.skipif(runtime.openblas_library() is None or not hasattr(runtime.openblas_library(),
                                                                       "openblas_thread_timeout"),
                    reason="NumPy is not built on OpenBLAS")
def test_idle_openblas_threads_spin_2_to_the_10_cycles():
    assert int(run_python(BLAS_TIMEOUT, tune=True)) == runtime.BLAS_THREAD_TIMEOUT
    assert int(run_python(BLAS_TIMEOUT, tune=False)) == 0  # 0: OpenBLAS's built-in default (2^28)


def test_opting_out_is_respected(monkeypatch):
    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setenv("MINIKD_TUNE_RUNTIME", "0")
    assert runtime.keep_freed_memory() is False
    assert runtime.quiet_blas_threads() is False


def test_every_process_setting_is_in_runtime_and_behind_the_one_switch():
    """OMP_WAIT_POLICY too: set by runtime.tune() (not by the kernels), reported by settings()."""
    code = "import os, minikd; print(os.environ.get('OMP_WAIT_POLICY')); print(minikd.runtime.settings())"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MINIKD_TUNE_RUNTIME")}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    off = subprocess.run([sys.executable, "-c", code], env={**env, "MINIKD_TUNE_RUNTIME": "0"},
                         capture_output=True, text=True, check=True).stdout
    assert on.splitlines()[0] == "PASSIVE" and "OMP_WAIT_POLICY=PASSIVE)': True" in on
    assert off.splitlines()[0] == "None" and "True" not in off.splitlines()[1]
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                          capture_output=True, text=True, check=True).stdout
    assert kept.splitlines()[0] == "ACTIVE"  # a value the user set is kept
    src = (Path(runtime.__file__).parent / "kernels" / "__init__.py").read_text()
    assert "os.environ" not in src
