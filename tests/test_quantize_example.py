"""examples/quantize_mnist.py --quick on the real MNIST files: every output is there and sane."""

import json

import pytest

from minikd.data import find_data_dir
from tests.util import load_example, needs_mnist


@pytest.mark.slow
@needs_mnist
def test_quick_quantization_run(tmp_path, capsys):
    example = load_example("quantize_mnist")
    # no checkpoints: the example trains both models (1 epoch on a subset) and saves them
    example.main(["--quick", "--teacher", str(tmp_path / "t.npz"), "--student", str(tmp_path / "s.npz"),
                  "--out", str(tmp_path), "--no-progress"])

    report = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["model"], r["method"], r["bits"]): r for r in report["rows"]}
    for model in ("teacher", "student"):
        fp = rows[(model, "float32", 32)]
        assert fp["test_acc"] > 0.5  # above chance (10 %) after one epoch on 3,000 images
        for method in ("PTQ", "QAT + KD"):
            for bits in (8, 4):
                r = rows[(model, method, bits)]
                assert r["size_bytes"] == pytest.approx(fp["size_bytes"] * bits / 32)
                assert r["test_acc"] > 0.5
        assert abs(rows[(model, "PTQ", 8)]["test_acc"] - fp["test_acc"]) < 0.02  # 8 bits lose little
        integer = report["integer_w8a8"][model]
        assert integer["file_bytes_int8"] < 0.3 * integer["file_bytes_float32"]
        assert integer["same_prediction"] > 0.98
    for png in ("accuracy_vs_bits.png", "weight_histogram.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    out = capsys.readouterr().out
    assert f"MNIST: read {find_data_dir()} (60,000 training and 10,000 test images)" in out
    seconds = load_example("common").format_seconds(report["wall_seconds"])  # "8.1 s", not "0.1 min"
    assert "SMOKE RUN" in out and out.endswith(f"({seconds})\n")  # labelled, and its time in seconds
