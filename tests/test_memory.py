"""minikd.memory: freed host memory is kept for the next step instead of going back to the OS."""

import os
import subprocess
import sys

import pytest

from minikd import memory

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


def page_faults(keep_memory: bool) -> int:
    env = dict(os.environ, MINIKD_KEEP_MEMORY="1" if keep_memory else "0")
    out = subprocess.run([sys.executable, "-c", "import minikd\n" + ROUNDS], env=env, capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not memory.keep_freed_memory(), reason="needs Linux with glibc's malloc")
def test_freed_buffers_are_reused_without_page_faults():
    assert page_faults(keep_memory=True) < 500
    # and the opt-out really leaves glibc alone: the same rounds fault every page again
    assert page_faults(keep_memory=False) > 5_000


def test_opting_out_is_respected(monkeypatch):
    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setenv("MINIKD_KEEP_MEMORY", "0")
    assert memory.keep_freed_memory() is False
