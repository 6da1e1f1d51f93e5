"""examples/quantize_mnist.py --quick on the real MNIST files: every output is there and sane, and
the same run on the stand-in device (tests/standin.py) gives the CPU's accuracies."""

import contextlib
import io
import json

import pytest

from minikd.data import find_data_dir
from tests.util import assert_platform, load_example, needs_mnist


def quick(out_dir, *extra):
    """``--quick`` without checkpoints (no hands-on models under ``out_dir``, the working folder): the
    example trains both models (1 epoch on a subset) and, being --quick, keeps them in memory only."""
    with contextlib.chdir(out_dir):
        report = load_example("quantize_mnist").main(["--quick", "--out", str(out_dir), "--no-progress", *extra])
    assert not (out_dir / "runs").exists()
    return report


@pytest.fixture(scope="module")
def quick_cpu(tmp_path_factory):
    """One ``--quick`` run on the CPU, shared by the tests of this module: (folder, report, stdout)."""
    out_dir = tmp_path_factory.mktemp("quick_cpu")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        quick(out_dir)
    return out_dir, json.loads((out_dir / "results.json").read_text()), stdout.getvalue()


@pytest.mark.slow
@needs_mnist
def test_quick_quantization_run(quick_cpu):
    tmp_path, report, out = quick_cpu
    assert_platform(report)
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
    assert f"MNIST: read {find_data_dir()} (60,000 training and 10,000 test images)" in out
    seconds = load_example("common").format_seconds(report["wall_seconds"])  # "8.1 s", not "0.1 min"
    assert "SMOKE RUN" in out and out.endswith(f"({seconds})\n")  # labelled, and its time in seconds


@pytest.mark.slow
@needs_mnist
def test_quick_quantization_on_the_stand_in_device_gives_the_cpus_accuracies(quick_cpu, tmp_path):
    """Training, calibration, PTQ, QAT and the int8 model on the stand-in device, which refuses every
    implicit copy to the host. The float32 models and the 8-bit integer model match the CPU's to a
    test image or two; the quantized ones to a few (float32 noise moves a value across a rounding
    boundary of the grid, and QAT carries that on), so they get a wider margin."""
    _, cpu, _ = quick_cpu
    report = quick(tmp_path, "--device", "standin")
    assert report["settings"]["device"] == "standin"
    rows = {(r["model"], r["method"], r["bits"]): r for r in report["rows"]}
    cpu_rows = {(r["model"], r["method"], r["bits"]): r for r in cpu["rows"]}
    assert set(rows) == set(cpu_rows)
    for key, c in cpu_rows.items():
        margin = 0.005 if key[1] == "float32" else 0.02
        assert rows[key]["test_acc"] == pytest.approx(c["test_acc"], abs=margin), key
        assert rows[key]["size_bytes"] == c["size_bytes"], key
    for model, c in cpu["integer_w8a8"].items():
        r = report["integer_w8a8"][model]
        assert r["test_acc"] == pytest.approx(c["test_acc"], abs=0.005), model
        assert r["same_prediction"] > 0.98 and r["file_bytes_int8"] == c["file_bytes_int8"], model
