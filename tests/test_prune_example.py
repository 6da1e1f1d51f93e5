"""examples/prune_mnist.py --quick on the real MNIST files: every output is there and sane."""

import json

import pytest

from minikd.data import find_data_dir
from tests.util import load_example, needs_mnist


@pytest.mark.slow
@needs_mnist
def test_quick_prune_sweep(tmp_path, capsys):
    example = load_example("prune_mnist")
    teacher = tmp_path / "teacher.npz"  # absent: the example trains one (1 epoch on a subset) and saves it
    example.main(["--quick", "--teacher", str(teacher), "--out", str(tmp_path), "--no-progress"])
    assert teacher.stat().st_size > 0

    report = json.loads((tmp_path / "results.json").read_text())
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
    out = capsys.readouterr().out
    assert f"MNIST: read {find_data_dir()} (60,000 training and 10,000 test images)" in out
    seconds = load_example("common").format_seconds(report["wall_seconds"])  # "8.1 s", not "0.1 min"
    assert "SMOKE RUN" in out and out.endswith(f"({seconds})\n")  # labelled, and its time in seconds
