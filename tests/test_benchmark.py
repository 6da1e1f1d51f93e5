"""examples/benchmark.py end to end, minikd only, with 2 timed steps per row (a few seconds)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "examples/benchmark.py", "--no-torch", "--steps", "2", "--models", "student",
           "--json", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    results = json.loads(out.read_text())
    rows = {(r["kind"], r["batch"]): r for r in results["rows"]}
    assert set(rows) == {("train", 64), ("train", 128), ("infer", 1), ("infer", 1000)}
    for row in rows.values():
        assert row["model"] == "student"
        assert row["minikd_img_s"] > 0 and row["minikd_gflops"] > 0
        assert row["torch_img_s"] is None and row["ratio"] is None
    assert results["numpy_matmul_gflops"] > 0
    assert results["first_step_s"]["student"] > 0
    assert results["peak_rss_mib_student_train64"]["minikd"] > 0
    assert results["torch"] is None
