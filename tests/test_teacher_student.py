"""The hands-on example, `--quick` on the real MNIST files: every output is there and sane, and
the same run on the stand-in device (tests/standin.py) gives the CPU's numbers."""

import contextlib
import io
import json

import pytest

from minikd.data import find_data_dir
from tests.util import assert_platform, load_example, needs_mnist


@pytest.fixture(scope="module")
def quick_cpu(tmp_path_factory):
    """One ``--quick`` run on the CPU, shared by the tests of this module: (folder, report, stdout)."""
    out_dir = tmp_path_factory.mktemp("quick_cpu")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        load_example("mnist_teacher_student").main(["--quick", "--out", str(out_dir), "--no-progress"])
    return out_dir, json.loads((out_dir / "results.json").read_text()), stdout.getvalue()


@pytest.mark.slow
@needs_mnist
def test_quick_run_writes_results_checkpoints_and_pictures(quick_cpu):
    tmp_path, report, out = quick_cpu
    assert f"MNIST: read {find_data_dir()} (60,000 training and 10,000 test images)" in out  # says what it read
    seconds = load_example("common").format_seconds(report["wall_seconds"])
    assert f"\nwall time {seconds}; wrote" in out  # "4.1 s", not "wall time 0.1 min"
    assert "SMOKE RUN" in out and "99.14" not in out and "98.91" not in out  # not beside the lecture's numbers
    assert report["settings"]["quick"] is True and report["settings"]["epochs"] == 1
    assert_platform(report)
    assert set(report["summary"]) == {"teacher", "student", "kd", "fkd"}
    (runs,) = report["runs"]  # one seed
    for name, row in report["summary"].items():
        # 32 steps on 2,000 images: far from converged (the feature-KD student is slowest to
        # start), but a broken run stays at chance, 10 %
        assert row["test_acc_mean"] > 15, f"{name}: {row['test_acc_mean']:.1f} % is not above chance (10 %)"
        assert row["params"] > 0 and row["flops"] > 0 and row["memory_bytes"] == 4 * row["params"]
        assert len(runs[name]["history"]) == 1
        assert {"train_loss", "train_acc", "test_acc"} <= set(runs[name]["history"][0])
        assert runs[name]["train_seconds"] > 0
        assert (tmp_path / f"{name}_seed0.npz").stat().st_size > 0
    assert report["summary"]["teacher"]["test_acc_mean"] > 70
    assert report["summary"]["teacher"]["params"] == 421_642
    assert report["summary"]["student"]["params"] == report["summary"]["kd"]["params"] == 105_866
    for png in ("curves.png", "soft_labels.png", "accuracy_vs_params.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    assert not list(tmp_path.glob("*.tmp*")), "a temporary file was left behind"


@pytest.mark.slow
@needs_mnist
def test_quick_run_on_the_stand_in_device_gives_the_cpus_numbers(quick_cpu, tmp_path, capsys):
    """Models, batches and evaluation on the stand-in device, which refuses every implicit copy to
    the host: the run completes, and its accuracies are the CPU run's (its losses to float32 noise:
    the stand-in takes the xp code paths, the CPU the Numba kernels)."""
    _, cpu, _ = quick_cpu
    report = load_example("mnist_teacher_student").main(["--quick", "--device", "standin", "--out", str(tmp_path),
                                                         "--no-progress"])
    assert ", on standin" in capsys.readouterr().out and report["settings"]["device"] == "standin"
    (runs,), (cpu_runs,) = report["runs"], cpu["runs"]
    assert set(runs) == set(cpu_runs) == {"teacher", "student", "kd", "fkd"}
    for name, row in runs.items():
        assert row["test_acc"] == pytest.approx(cpu_runs[name]["test_acc"], abs=0.005), name
        (h,), (h_cpu,) = row["history"], cpu_runs[name]["history"]
        assert h["train_loss"] == pytest.approx(h_cpu["train_loss"], rel=1e-4), name
        assert h["train_acc"] == pytest.approx(h_cpu["train_acc"], abs=0.005), name
        assert (tmp_path / f"{name}_seed0.npz").stat().st_size > 0     # saved from the device


@pytest.mark.slow
@needs_mnist
def test_a_saved_teacher_is_reused(tmp_path):
    example = load_example("mnist_teacher_student")
    first = example.main(["--quick", "--runs", "teacher", "--out", str(tmp_path / "a"), "--no-progress"])
    saved = tmp_path / "a" / "teacher_seed0.npz"
    again = example.main(["--quick", "--runs", "kd", "--teacher", str(saved), "--out", str(tmp_path / "b"),
                          "--no-progress"])
    teacher = again["runs"][0]["teacher"]
    assert teacher["history"] == [] and teacher["train_seconds"] == 0  # loaded, not trained
    assert teacher["test_acc"] == first["runs"][0]["teacher"]["test_acc"]  # the same weights
    assert "kd" in again["summary"]


def test_bad_options_get_clear_errors(capsys):
    example = load_example("mnist_teacher_student")
    with pytest.raises(SystemExit):
        example.parse_args(["--runs", "kd"])
    assert "need a teacher" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        example.parse_args(["--device", "tpu"])
    assert "--device: unknown device 'tpu'; expected 'cpu', 'cuda' or 'cuda:N'" in capsys.readouterr().err
    assert example.parse_args(["--device", "standin"]).device == "standin"   # registered by tests/conftest.py
    with pytest.raises(SystemExit):
        example.parse_args(["--runs", "teacher,pupil"])
    assert "unknown run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        example.parse_args(["--teacher", "/no/such/teacher.npz"])
    assert "no such file" in capsys.readouterr().err


def test_a_quick_run_writes_beside_the_hands_on_models_never_over_them_and_keeps_an_explicit_epoch_count():
    """The later examples read runs/teacher_student/*_seed0.npz as the hands-on's models: a smoke run
    goes to runs/teacher_student_quick/ unless --out says otherwise."""
    example = load_example("mnist_teacher_student")
    assert (example.parse_args([]).out, example.parse_args([]).epochs) == ("runs/teacher_student", 5)
    assert (example.parse_args(["--quick"]).out, example.parse_args(["--quick"]).epochs) == (
        "runs/teacher_student_quick", 1)
    assert example.parse_args(["--quick", "--epochs", "2", "--out", "elsewhere"]).epochs == 2
    assert example.parse_args(["--quick", "--out", "elsewhere"]).out == "elsewhere"
