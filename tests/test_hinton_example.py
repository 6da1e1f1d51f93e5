"""Hinton's MNIST experiment (examples/hinton_mnist.py): the jitter, a `--quick` run on the real
MNIST files, and bad options refused before any work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.util import assert_platform, load_example, needs_mnist

ROOT = Path(__file__).resolve().parents[1]


def test_jitter_shifts_each_image_by_at_most_two_pixels_filling_with_background():
    example = load_example("hinton_mnist")
    images = np.zeros((500, 28, 28), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255  # a bar in the middle: every shift keeps it whole
    shifted = example.jitter(images, np.random.default_rng(0))
    assert shifted.shape == images.shape and shifted.dtype == np.uint8
    assert (images[:, 10:18, 12:16] == 255).all()  # the input is not changed
    moves = set()
    for before, after in zip(images, shifted):
        assert after.sum() == before.sum()  # the whole bar, only moved
        rows, cols = np.nonzero(after)
        moves.add((rows.min() - 10, cols.min() - 12))
    assert moves == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}  # all 25 shifts, none further
    again = example.jitter(images, np.random.default_rng(0))
    np.testing.assert_array_equal(again, shifted)  # seeded: the same shifts again


def test_jitter_fills_what_is_shifted_in_with_background_zeros():
    example = load_example("hinton_mnist")
    full = np.full((200, 28, 28), 255, dtype=np.uint8)
    for out in example.jitter(full, np.random.default_rng(1)):
        assert set(np.unique(out)) <= {0, 255}
        rows, cols = (out == 255).any(axis=1).sum(), (out == 255).any(axis=0).sum()
        assert rows >= 26 and cols >= 26 and (out == 255).sum() == rows * cols  # one rectangle, cut by ≤ 2 px


@pytest.mark.slow
@needs_mnist
def test_quick_run_writes_errors_per_seed_and_the_picture(tmp_path, capsys):
    example = load_example("hinton_mnist")
    report = example.main(["--quick", "--seeds", "0,1", "--out", str(tmp_path), "--no-progress"])

    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert "SMOKE RUN" in out and "paper" not in header and "paper 0.51" not in out  # not beside the paper's numbers
    saved = json.loads((tmp_path / "results.json").read_text())
    settings = saved["settings"]
    assert settings["quick"] is True and settings["epochs"] == settings["teacher_epochs"] == 1
    assert settings["data_dir"] == str(Path(os.environ["MINIKD_DATA"]).resolve())  # the folder read, not None
    assert saved["settings"]["seeds"] == [0, 1] and saved["test_images"] == 1000
    assert set(saved["summary"]) == {"teacher", "student", "kd"}
    assert_platform(saved)  # what the bits depend on
    assert saved["settings"]["teacher_max_norm"] == 1.0  # the default: the teacher constrained, and named so
    assert saved["summary"]["teacher"]["title"] == "teacher 1200-1200, dropout + jitter + max-norm 1"
    for name, row in saved["summary"].items():
        assert len(row["test_errors_runs"]) == 2
        # 20 steps on 2,000 images: far from trained, but a broken run stays at chance (900 errors of 1,000)
        assert all(e < 600 for e in row["test_errors_runs"]), (name, row)
        assert row["test_errors_mean"] == pytest.approx(np.mean(row["test_errors_runs"]))
        assert row["paper_test_errors"] == {"teacher": 67, "student": 146, "kd": 74}[name]
    for seed_runs in saved["runs"]:
        for name in ("teacher", "student", "kd"):
            (epoch,) = seed_runs[name]["history"]
            assert epoch["test_errors"] == seed_runs[name]["test_errors"] and seed_runs[name]["train_seconds"] > 0
    assert saved["kd_over_student"] == pytest.approx(report["kd_over_student"])
    assert len(saved["wall_seconds_per_seed"]) == 2 and saved["wall_seconds"] > 0
    png = (tmp_path / "hinton_mnist.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not list(tmp_path.glob("*.tmp*")), "a temporary file was left behind"


def test_the_students_learning_rate_leaves_the_teachers_alone_and_each_optimizer_has_its_default():
    example = load_example("hinton_mnist")
    args = example.parse_args(["--lr", "0.01"])
    assert (args.optimizer, args.lr, args.teacher_optimizer, args.teacher_lr) == ("adam", 0.01, "adam", 1e-3)
    args = example.parse_args(["--optimizer", "sgd", "--teacher-optimizer", "sgd"])
    assert (args.lr, args.teacher_lr) == (0.05, 0.05)
    args = example.parse_args(["--teacher-lr", "2e-3"])
    assert (args.lr, args.teacher_lr) == (1e-3, 2e-3)


def test_quick_keeps_an_explicit_epoch_count():
    example = load_example("hinton_mnist")
    assert (example.parse_args(["--quick"]).epochs, example.parse_args(["--quick"]).teacher_epochs) == (1, 1)
    args = example.parse_args(["--quick", "--epochs", "2", "--teacher-epochs", "3"])
    assert (args.epochs, args.teacher_epochs) == (2, 3)
    assert (example.parse_args([]).epochs, example.parse_args([]).teacher_epochs) == (20, 30)


def test_the_teachers_max_norm_holds_every_layer_within_the_ball_after_every_step():
    example = load_example("hinton_mnist")
    args = example.parse_args([])
    assert args.teacher_max_norm == example.MAX_NORM == 1.0
    assert example.parse_args(["--teacher-max-norm", "0"]).teacher_max_norm == 0
    args.progress = False
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 60)

    def row_norms(model):
        return [float(np.sqrt((layer.weight.data ** 2).sum(axis=1)).max()) for layer in model.modules()
                if isinstance(layer, example.nn.Linear)]

    def train(c, epochs=2, steps_seen=None):
        example.mk.manual_seed(0)
        model = example.mlp(16)
        loader = example.DataLoader(x, y, 20, shuffle=True, seed=0)

        def step(m, xb, yb):  # the loss, and a look at the weights the previous step left
            if steps_seen is not None:
                steps_seen.append(row_norms(m))
            return example.ce_step(m, xb, yb)
        example.train("t", model, step, loader, epochs, (x[:10], y[:10]), args, "sgd", 3.0, max_norm=c)
        return row_norms(model)

    free = train(0.0)  # unconstrained, at this learning rate every layer goes outside the ball of 1
    assert min(free) > 1.2, free  # every layer, so the constrained run below tests each one
    seen = []
    held = train(1.0, steps_seen=seen)
    assert all(n <= 1 + 1e-5 for n in held), held  # each layer, the output layer's too
    assert all(n <= 1 + 1e-5 for norms in seen for n in norms), seen  # and after every step, not only the last


def test_only_the_teacher_is_constrained_and_its_title_names_c(monkeypatch):
    example = load_example("hinton_mnist")
    got = {}

    def fake_train(name, model, step, loader, epochs, test, args, optimizer, lr, max_norm=0.0):
        got[name.split()[-1]] = max_norm
        return {"test_errors": 7, "train_seconds": 1.0, "history": []}

    monkeypatch.setattr(example, "train", fake_train)
    raw = (np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10, np.zeros((5, 28, 28), np.uint8), np.arange(5))
    example.run_seed(0, raw, example.parse_args(["--teacher-max-norm", "2.5"]))
    assert got == {"teacher": 2.5, "student": 0.0, "kd": 0.0}
    per_seed = [{name: {"test_errors": 7, "train_seconds": 1.0} for name in example.RUNS}]
    with_c, without = example.aggregate(per_seed, 2.5), example.aggregate(per_seed, 0.0)
    assert with_c["teacher"]["title"] == "teacher 1200-1200, dropout + jitter + max-norm 2.5"
    assert without["teacher"]["title"] == "teacher 1200-1200, dropout + jitter"
    assert with_c["kd"]["title"] == without["kd"]["title"] == "student 800-800, distilled"


@pytest.mark.slow
@needs_mnist
def test_a_run_that_diverges_ends_with_one_error_line_naming_the_run_and_the_learning_rate(tmp_path):
    """SGD at a learning rate far too high turns the students' loss into nan within the first epoch:
    the example stops there with status 1 and one line, not 20 epochs of 'loss nan' and a table."""
    command = [sys.executable, "examples/hinton_mnist.py", "--quick", "--seeds", "0", "--optimizer", "sgd",
               "--lr", "1e4", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "seed 0 student epoch 1/1" in line and "diverged" in line and "learning rate" in line and "10000" in line
    assert not (tmp_path / "results.json").exists()


BAD = [  # (arguments, what the one error line says)
    (["--T", "0"], "--T: the temperature T must be a positive finite number"),
    (["--lam", "1.5"], "--lam: λ, the weight of the distillation term, must be in [0, 1]; got 1.5"),
    (["--seeds", "0,0"], "--seeds: 0 is given twice in '0,0'"),
    (["--seeds", "a"], "--seeds: expected comma-separated seeds ≥ 0"),
    (["--epochs", "0"], "--epochs: the number of epochs must be positive; got 0"),
    (["--teacher-epochs", "-3"], "--teacher-epochs: the number of the teacher's epochs must be positive; got -3"),
    (["--lr", "-1"], "--lr: the learning rate must be"),
    (["--teacher-lr", "0"], "--teacher-lr: the teacher's learning rate must be"),
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["--batch-size", "0"], "--batch-size: the batch size must be positive; got 0"),
    (["--teacher-max-norm", "-1"], "--teacher-max-norm: the max-norm radius c (0: none) must be ≥ 0; got -1.0"),
    (["--data-dir", "{tmp}/empty"], "the folder lacks all four MNIST files"),
    (["--out", "{tmp}/a_file"], "--out {tmp}/a_file: exists and is not a folder"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_option_is_one_error_line_and_status_2_before_any_work(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    # no MNIST anywhere: a program that got past its checks would fail at the data instead (status 1)
    env = dict(os.environ, MINIKD_DATA=str(tmp_path / "empty"), HOME=str(tmp_path),
               MINIKD_MNIST_MIRRORS=(tmp_path / "no_mirror").as_uri())
    command = [sys.executable, "examples/hinton_mnist.py", *args]
    if "--out" not in args:
        command += ["--out", str(tmp_path / "out")]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message.replace("{tmp}", str(tmp_path)) in errors[0], proc.stderr
    assert not (tmp_path / "out").exists()  # nothing was written
