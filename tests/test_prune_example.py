"""examples/prune_mnist.py --quick on the real MNIST files: every output is there and sane, and
the same sweep on the stand-in device (tests/standin.py) gives the CPU's accuracies."""

import contextlib
import io
import json

import pytest

from minikd.data import find_data_dir
from tests.util import load_example, needs_mnist


@pytest.fixture(scope="module")
def quick_cpu(tmp_path_factory):
    """One ``--quick`` sweep on the CPU, shared by the tests of this module: (folder, report, stdout)."""
    out_dir = tmp_path_factory.mktemp("quick_cpu")
    stdout = io.StringIO()
    # no --teacher, and no hands-on teacher under the working folder: the example trains one (1 epoch on a
    # subset), and being --quick, does not save it where the hands-on's teacher goes
    with contextlib.redirect_stdout(stdout), contextlib.chdir(out_dir):
        load_example("prune_mnist").main(["--quick", "--out", str(out_dir), "--no-progress"])
    return out_dir, json.loads((out_dir / "results.json").read_text()), stdout.getvalue()


@pytest.mark.slow
@needs_mnist
def test_quick_prune_sweep(quick_cpu):
    tmp_path, report, out = quick_cpu
    assert "teacher: runs/teacher_student/teacher_seed0.npz not found, training one (1 epochs)" in out
    assert "(a --quick model: not saved to runs/teacher_student/teacher_seed0.npz)" in out
    assert not (tmp_path / "runs").exists()          # a smoke teacher never passes for the hands-on's
    rows = report["rows"]
    methods = {r["method"] for r in rows}
    assert {"unstructured, L1, local", "unstructured, L1, global", "unstructured, gradient, global",
            "unstructured, random, global"} <= methods
    for r in rows:
        if r["method"].startswith("unstructured") and "iterative" not in r["method"]:
            assert r["sparsity"] == pytest.approx(r["amount"], abs=0.01)  # fc2 is left alone: a little under
        assert 0 <= r["acc_finetuned"] <= 1
    structured = sorted((r for r in rows if r["method"].startswith("structured")), key=lambda r: r["amount"])
    full, half = structured[0], structured[-1]
    assert full["params"] == 421_642 and half["params"] == 105_866  # half the filters/neurons: the student's size
    assert half["macs"] < full["macs"] and half["latency_ms"] > 0
    assert report["unpruned"]["test_acc"] > 0.5  # above chance (10 %) after one epoch on 3,000 images
    for png in ("accuracy_vs_sparsity.png", "accuracy_vs_latency.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert f"MNIST: read {find_data_dir()} (60,000 training and 10,000 test images)" in out
    seconds = load_example("common").format_seconds(report["wall_seconds"])  # "8.1 s", not "0.1 min"
    assert "SMOKE RUN" in out and out.endswith(f"({seconds})\n")  # labelled, and its time in seconds


@pytest.mark.slow
@needs_mnist
def test_quick_prune_sweep_on_the_stand_in_device_gives_the_cpus_accuracies(quick_cpu, tmp_path):
    """Training, pruning (masks, gradient scores), fine-tuning, compacting and the timed inference on
    the stand-in device, which refuses every implicit copy to the host. The accuracies are the CPU
    run's up to float32 noise: a pruning threshold between two nearly equal scores may fall the
    other way, and a test image or two changes its prediction."""
    _, cpu, _ = quick_cpu
    with contextlib.chdir(tmp_path):
        report = load_example("prune_mnist").main(["--quick", "--device", "standin", "--out", str(tmp_path),
                                                   "--no-progress"])
    assert report["settings"]["device"] == "standin"
    assert report["unpruned"]["test_acc"] == pytest.approx(cpu["unpruned"]["test_acc"], abs=0.005)
    assert len(report["rows"]) == len(cpu["rows"])
    for r, c in zip(report["rows"], cpu["rows"]):
        assert (r["method"], r["amount"]) == (c["method"], c["amount"])
        assert r["sparsity"] == pytest.approx(c["sparsity"], abs=0.002), r["method"]
        for key in ("acc_pruned", "acc_finetuned"):
            if c[key] is not None:
                assert r[key] == pytest.approx(c[key], abs=0.01), (r["method"], r["amount"], key)
        if "params" in c:
            assert r["params"] == c["params"] and r["latency_ms"] > 0   # compacted on the device, then timed
