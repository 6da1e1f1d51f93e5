"""examples/benchmark.py end to end, minikd only, with 2 timed steps per row (a few seconds)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_gpu_plan_and_report_without_a_gpu(monkeypatch, tmp_path, capsys):
    """--device cuda:N: training at 64, 128 and 1024, inference at 1000, no peak-RSS rows, the CuPy
    ceiling; the CPU defaults stay as they were. (Pretending CuPy is installed: no GPU needed.)"""
    from tests.util import load_example

    bench = load_example("benchmark")
    json_path = str(tmp_path / "b.json")
    cpu = bench.parse_args(["--json", json_path])
    assert (cpu.train_batches, cpu.infer_batches) == ([64, 128], [1, 1000])
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: object())
    args = bench.parse_args(["--device", "cuda:1", "--steps", "5", "--models", "student", "--json", json_path])
    assert args.device == "cuda:1"
    assert bench.row_plan(args) == [("train", 64, 5), ("train", 128, 5), ("train", 1024, 5), ("infer", 1000, 5)]
    rows = [{"model": "student", "kind": k, "batch": b, "minikd_img_s": 2000.0, "torch_img_s": 4000.0, "ratio": 0.5,
             "minikd_gflops": 13.0} for k, b, _ in bench.row_plan(args)]
    results = {"platform": {"processor": "some CPU", "gpu": "Some GPU", "backend": "cupy 13"}, "torch": "2.x",
               "rows": rows, "first_step_s": {"student": 1.5}, "cupy_matmul_gflops": 50000.0}
    bench.print_report(results, args, None)
    out = capsys.readouterr().out
    assert out.startswith("\nSome GPU (cupy 13), host some CPU, cuda:1")
    assert "| student | train | 1024 | 2,000 | 4,000 | 0.50× | 13.0 |" in out
    assert "CuPy kernel compile or cache load" in out and "CuPy float32 matmul 4096³: 50,000 GFLOP/s" in out
    assert "peak RSS, " not in out


def test_the_default_results_file_goes_to_runs_not_the_current_folder(monkeypatch, tmp_path):
    """Without --json the results land in runs/benchmark.json (runs/ made if missing; git ignores
    it), never as a stray file in the folder the command runs from; an explicit path's folder must
    exist."""
    from tests.util import load_example

    bench = load_example("benchmark")
    monkeypatch.chdir(tmp_path)
    args = bench.parse_args([])
    assert args.json == "runs/benchmark.json" and (tmp_path / "runs").is_dir()
    assert list(tmp_path.iterdir()) == [tmp_path / "runs"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--json", "elsewhere/b.json"])
    assert not (tmp_path / "elsewhere").exists()


def test_the_benchmark_sets_the_thread_variables_platform_info_records():
    """The parent may not import minikd (its workers set the thread variables before NumPy loads),
    so benchmark.py keeps its own list: the two must name the same variables."""
    import minikd.profile
    from tests.util import load_example

    assert load_example("benchmark").THREAD_VARS == minikd.profile.THREAD_VARS
