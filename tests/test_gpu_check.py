"""The GPU check script and the time breakdown, in their CPU dry runs (no GPU needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "gpu_check.sh"


def run_check(tmp_path, **env):
    full = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=300)


@pytest.mark.parametrize("deadline, says", [("300", "too short: the later steps reserve 300 s"),
                                            ("abc", "expected whole seconds")])
def test_a_deadline_that_leaves_step_one_no_time_is_refused_before_any_work(tmp_path, deadline, says):
    """Twice on the GPU machine a too-short DEADLINE_S gave step 1 zero seconds and lost the run."""
    out = run_check(tmp_path, DEADLINE_S=deadline)
    assert out.returncode == 2 and says in out.stderr
    assert not (tmp_path / "out" / "01_gpu.log").exists()


def test_chosen_steps_run_and_the_others_are_listed_as_skipped(tmp_path):
    out = run_check(tmp_path, GPU_CHECK_STEPS="5b")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "5b time breakdown (cpu)            PASS" in summary
    for step in ("2a device tests", "3 CUDA kernels", "4 hands-on", "5 benchmark (cpu)"):
        line = next(li for li in summary.splitlines() if li.startswith(step))
        assert "SKIPPED" in line and "not in GPU_CHECK_STEPS" in line
    assert "| minikd kernels | student | 8 |" in summary   # the breakdown's table, copied into the summary


def test_the_breakdown_checks_its_arguments_before_any_work():
    for bad, says in ((["--batches", "0"], "--batches"), (["--models", "lenet"], "--models"),
                      (["--device", "tpu"], "--device"), (["--steps", "0"], "--steps")):
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "gpu_breakdown.py"), *bad],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and says in out.stderr


def test_the_breakdown_on_the_cpu_counts_the_ops_of_a_step(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import gpu_breakdown
    finally:
        sys.path.pop(0)
    rows = gpu_breakdown.main(["--device", "cpu", "--models", "student", "--batches", "4", "--steps", "2",
                               "--json", str(tmp_path / "b.json")])
    (row,) = rows
    # conv, pool, relu twice; flatten, linear, relu, linear; cross-entropy: the student's 11 forward ops
    assert row["framework"] == "minikd kernels" and row["ops"] == 11
    assert 0 < row["host_s"] <= row["wall_s"] and row["first_sync"] == "n/a on the CPU"
    assert (tmp_path / "b.json").exists()
