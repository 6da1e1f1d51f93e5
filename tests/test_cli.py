"""The command lines of the examples and of ``python -m minikd.profile`` (issue #11).

Every bad argument is refused before any work — before data is loaded or a model trained —
with argparse's one-line error and exit status 2, never a traceback. The subprocess runs see
an empty ``MINIKD_DATA``, an empty home (no ~/.cache) and a mirror that does not exist: a
program that got as far as loading data would fail there instead, with status 1 and an
"MNIST files missing" message, so status 2 and an error naming the option prove the check
came first. A closed pipe on stdout ends a program quietly; ``--data-dir`` is never silently
replaced by another folder; the data folder read is printed.
"""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minikd.data.download import MD5
from tests.test_data import fake_mnist
from tests.util import load_example

ROOT = Path(__file__).resolve().parents[1]
FILES = list(MD5)  # the four MNIST file names


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """An environment where no MNIST can be found or downloaded: empty MINIKD_DATA and home, a bogus mirror."""
    env = {"MINIKD_DATA": str(tmp_path / "empty_data"), "HOME": str(tmp_path / "home"),
           "MINIKD_MNIST_MIRRORS": (tmp_path / "no_mirror").as_uri()}
    (tmp_path / "empty_data").mkdir()
    (tmp_path / "home").mkdir()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return tmp_path


def run(args, tmp_path, stdout=subprocess.PIPE):
    """Run a command line from the repository root in the current (monkeypatched) environment."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ), timeout=120)


TS, PRUNE, QUANT, MLP, BENCH = (f"examples/{n}.py" for n in
                                ("mnist_teacher_student", "prune_mnist", "quantize_mnist", "mnist_mlp", "benchmark"))
PROFILE = ("-m", "minikd.profile")

BAD = [  # (command line, what the one error line must name)
    ((TS, "--T", "-1"), "--T: the temperature T must be a positive finite number; got T=-1.0"),
    ((TS, "--lam", "2"), "--lam: λ, the weight of the distillation term, must be in [0, 1]; got 2.0"),
    ((TS, "--seeds", "0,x"), "--seeds: expected comma-separated seeds ≥ 0 (e.g. 0,1,2); got '0,x'"),
    ((TS, "--epochs", "0"), "--epochs: the number of epochs must be positive; got 0"),
    ((TS, "--lr", "nan"), "--lr: the learning rate must be a finite number; got nan"),
    ((TS, "--data-dir", "{empty}"), "--data-dir {empty}: the folder lacks all four MNIST files: " + ", ".join(FILES)),
    ((PRUNE, "--finetune-images", "0"), "--finetune-images: the number of fine-tuning images must be positive"),
    ((PRUNE, "--teacher", "{empty}"), "--teacher {empty}: is a folder, not a checkpoint file"),
    ((PRUNE, "--teacher", "{empty}/typo.txt"), "--teacher {empty}/typo.txt: no such file"),   # not trained and saved
    ((QUANT, "--student", "{empty}/typo.npz"), "--student {empty}/typo.npz: no such file"),
    ((QUANT, "--calibration-batches", "0"), "--calibration-batches: the number of calibration batches must be "
                                            "positive; got 0"),
    ((MLP, "--batch-size", "-64"), "--batch-size: the batch size must be positive; got -64"),
    ((TS, "--device", "gpu"), "--device: unknown device 'gpu'; expected 'cpu', 'cuda' or 'cuda:N'"),
    ((PRUNE, "--device", "cuda:x"), "--device: unknown device 'cuda:x'; expected 'cpu', 'cuda' or 'cuda:N'"),
    ((QUANT, "--device", "standin"), "--device: unknown device 'standin'"),  # registered in the tests only
    ((BENCH, "--steps", "0"), "--steps: must be a positive integer; got 0"),
    ((BENCH, "--device", "standin"), "--device: expected cpu, cuda or cuda:N; got 'standin' (each framework runs "
                                     "in a fresh interpreter"),
    ((BENCH, "--json", "{empty}/no/such/folder/b.json"), "--json {empty}/no/such/folder/b.json: the folder"),
    ((*PROFILE, "--model", "nosuch:thing"), "--model nosuch:thing: cannot import the module 'nosuch'"),
    ((*PROFILE, "--input-shape", "1,28"), "--input-shape 1,28: minikd.models:TeacherModel cannot run on an input "
                                          "of shape (1, 1, 28): Conv2d(1→32, k=3) expects (N, 1, H, W)"),
    ((*PROFILE, "--input-shape", "1,x"), "--input-shape: expected one example's shape as comma-separated positive "
                                         "integers"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a[-3:]) for a, _ in BAD])
def test_a_bad_argument_is_one_error_line_and_status_2_before_any_work(no_data, args, message):
    empty = str(no_data / "empty_data")
    args = [a.replace("{empty}", empty) for a in args]
    message = message.replace("{empty}", empty)
    out = run(args, no_data)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]], out.stderr  # one error line, the last (argparse's usage lines come before it)
    assert lines[-1].startswith("usage:") is False and message in lines[-1], lines[-1]
    assert out.stdout == ""  # nothing was printed, so nothing was profiled, loaded or trained
    assert "downloading" not in out.stderr and "MNIST files missing" not in out.stderr  # no data was looked for
    assert os.listdir(empty) == [] and not (no_data / "home" / ".cache").exists()


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
@pytest.mark.parametrize("script", [TS, PRUNE, QUANT, "examples/kd_methods_mnist.py", BENCH])
def test_a_gpu_without_cupy_is_refused_before_any_work_naming_the_extra(no_data, script):
    out = run([script, "--device", "cuda"], no_data)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stdout == ""
    last = out.stderr.strip().splitlines()[-1]
    assert "error: --device" in last and "CuPy" in last and '".[gpu-cuda12]"' in last and "gpu-cuda13" in last, last
    assert os.listdir(no_data / "empty_data") == []


def test_without_the_bad_argument_the_same_environment_fails_at_the_data_instead(no_data):
    """The control for the test above: with valid arguments the program does reach the data, and fails
    there with status 1 and a message naming all four files; it leaves no empty folder behind."""
    out = run([MLP], no_data)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: MNIST files missing: " + ", ".join(FILES) + "." in out.stderr
    assert os.listdir(no_data / "empty_data") == [] and not (no_data / "home" / ".cache").exists()


# --------------------------------------------------------------------------- closed pipes

def run_with_closed_stdout(args, buffered: bool):
    """Start ``args`` with its stdout a pipe whose reader has already gone (as after ``| head -1``).

    ``buffered``: Python's default for a pipe (the first write that fails is a flush, perhaps the
    one at exit), else ``PYTHONUNBUFFERED=1`` (the first print fails).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the only reader: every write now fails with EPIPE
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_profile_piped_into_a_reader_that_stops_exits_quietly(no_data, buffered):
    code, err = run_with_closed_stdout([*PROFILE, "--model", "minikd.models:StudentModel"], buffered)
    assert code == 1 and err == ""  # Python's documented status for EPIPE, no traceback, no "Exception ignored"


def test_profile_piped_into_head_prints_the_first_lines_and_no_traceback():
    # unbuffered: each line is its own write, so the writes after head has gone fail for sure
    out = subprocess.run(f"{sys.executable} -m minikd.profile --markdown | head -3", shell=True, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert out.stdout.splitlines()[1] == "minikd.models:TeacherModel  (input (1, 28, 28), convention 'lecture')"
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_an_example_whose_reader_went_away_ends_quietly_or_with_its_own_error(no_data, buffered):
    # it prints its settings, then stops at the missing data. Buffered, the settings are still in
    # the buffer when the data error ends the run: that error is reported, and no BrokenPipeError.
    # Unbuffered, the first print fails: the run ends there, quietly.
    code, err = run_with_closed_stdout([TS, "--quick"], buffered)
    assert code == 1
    if buffered:
        assert "\nerror: MNIST files missing: " + ", ".join(FILES) + "." in "\n" + err
    else:
        assert err == ""
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception ignored" not in err


# --------------------------------------------------------------------------- checks in-process (no subprocess)

@pytest.mark.parametrize("name, argv, message", [
    ("mnist_teacher_student", ["--T", "0"], "--T: the temperature T must be a positive finite number; got T=0.0"),
    ("mnist_teacher_student", ["--T", "inf"], "--T: the temperature T must be a positive finite number; got T=inf"),
    ("mnist_teacher_student", ["--lam", "-0.1"], "--lam: λ, the weight of the distillation term, must be in [0, 1]"),
    ("mnist_teacher_student", ["--seeds", "0,0"], "--seeds: 0 is given twice in '0,0'"),
    ("mnist_teacher_student", ["--seeds", "1,-2"], "--seeds: every value must be ≥ 0; got -2 in '1,-2'"),
    ("mnist_teacher_student", ["--seed", "-1"], "--seed: the seed must be ≥ 0; got -1"),
    ("mnist_teacher_student", ["--batch-size", "0"], "--batch-size: the batch size must be positive; got 0"),
    ("mnist_teacher_student", ["--runs", ","], "--runs: no run given"),
    ("mnist_teacher_student", ["--out", "{file}"], "--out {file}: exists and is not a folder"),
    ("mnist_teacher_student", ["--teacher", "{file}"], "--teacher {file}: not a readable checkpoint: load:"),
    ("prune_mnist", ["--lr=-1e-3"], "--lr: the learning rate must be > 0; got -0.001"),
    ("prune_mnist", ["--latency-batch", "0"], "--latency-batch: the latency batch size must be positive; got 0"),
    ("prune_mnist", ["--latency-repeats", "0"], "--latency-repeats: the number of latency repeats must be positive"),
    ("prune_mnist", ["--epochs", "-1"], "--epochs: the number of epochs must be positive; got -1"),
    ("quantize_mnist", ["--qat-images", "0"], "--qat-images: the number of QAT images must be positive; got 0"),
    ("quantize_mnist", ["--models", ","], "--models: no model given"),
    ("quantize_mnist", ["--student", "{file}"], "--student {file}: not a readable checkpoint: load:"),
    ("mnist_mlp", ["--lr", "inf"], "--lr: the learning rate must be a finite number; got inf"),
    ("mnist_mlp", ["--data-dir", "{tmp}/nowhere"], "--data-dir {tmp}/nowhere: no such folder"),
    # from a sceptical trial of the command lines
    ("quantize_mnist", ["--models", "teacher,teacher"], "--models: teacher is given twice in 'teacher,teacher'"),
    ("quantize_mnist", ["--models", "teacher", "--student", "{file}"],
     "--student has no effect here: --models teacher does not quantize the student"),
    ("deploy_student", ["--quick", "--student", "{file}"], "--student has no effect here: --quick trains a student"),
    ("hinton_mnist", ["--out", "/proc/minikd_trial"], "--out /proc/minikd_trial: cannot write there"),
    ("kd_methods_mnist", ["--out", "/proc/minikd_trial"], "--out /proc/minikd_trial: cannot write there"),
    ("kd_methods_mnist", ["--seeds", ""], "--seeds: expected comma-separated seeds ≥ 0"),
    ("mnist_teacher_student", ["--seeds", ""], "--seeds: expected comma-separated seeds ≥ 0"),
    ("kd_methods_mnist", ["--chart-from", "{json}", "--methods", "kd"],
     "--methods has no effect with --chart-from, which trains nothing"),
    ("kd_methods_mnist", ["--chart-from", "{json}", "--qui"], "--quick has no effect with --chart-from"),
])
def test_every_numeric_and_path_option_is_checked(tmp_path, capsys, name, argv, message):
    (tmp_path / "file").write_text("not a checkpoint")
    (tmp_path / "results.json").write_text((ROOT / "docs/kd_methods/results.json").read_text())
    subs = {"{file}": str(tmp_path / "file"), "{tmp}": str(tmp_path), "{json}": str(tmp_path / "results.json")}
    for k, v in subs.items():
        argv = [a.replace(k, v) for a in argv]
        message = message.replace(k, v)
    example = load_example(name)
    with pytest.raises(SystemExit) as info:
        example.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: " in err and message in err, err


def test_a_checkpoint_is_checked_by_loading_it_without_shifting_the_seeded_stream(tmp_path, capsys):
    import minikd as mk
    from minikd.models import StudentModel, TeacherModel
    from minikd.random import get_rng

    mk.save(TeacherModel().state_dict(), tmp_path / "teacher.npz")
    mk.save(StudentModel().state_dict(), tmp_path / "student.npz")
    example = load_example("mnist_teacher_student")
    mk.manual_seed(3)
    expected = get_rng().random()
    mk.manual_seed(3)
    args = example.parse_args(["--runs", "kd", "--teacher", str(tmp_path / "teacher.npz"), "--out", str(tmp_path)])
    assert args.runs == ["kd"] and get_rng().random() == expected
    with pytest.raises(SystemExit) as info:  # a student's weights are not a teacher's
        example.parse_args(["--runs", "kd", "--teacher", str(tmp_path / "student.npz")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--teacher {tmp_path / 'student.npz'}: not a TeacherModel checkpoint: load_state_dict into " \
           "TeacherModel failed: wrong shapes: conv1.weight: checkpoint has shape (16, 1, 3, 3)" in err  # one line
    assert err.endswith("(it holds a StudentModel)")


def test_a_compacted_pruned_student_is_named_as_such(tmp_path, capsys):
    """A learner's trial: the deploy example's compacted student, given as --student, got seven lines of shapes."""
    import minikd as mk
    from minikd import prune
    from minikd.models import StudentModel

    student = StudentModel()
    prune.prune(student, 0.5, structure="filter", layers=["conv1", "conv2"])
    mk.save(prune.compact(student, (1, 28, 28)).state_dict(), tmp_path / "pruned.npz")
    with pytest.raises(SystemExit):
        load_example("quantize_mnist").parse_args(["--student", str(tmp_path / "pruned.npz")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("(the layers of a StudentModel with fewer units: a structurally pruned, compacted model, "
                        "which this option does not take)")


def test_an_integer_models_checkpoint_given_for_a_float_model_is_named_as_such(tmp_path, capsys):
    import minikd as mk
    from minikd import quant
    from minikd.models import StudentModel

    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    fake = quant.quantize_model(StudentModel().eval(), 8, 8, calibration_batches=[mk.tensor(x)])
    int8 = quant.convert_to_integer(fake)
    mk.save(int8.state_dict(), tmp_path / "int8.npz")
    with pytest.raises(SystemExit):
        load_example("quantize_mnist").parse_args(["--student", str(tmp_path / "int8.npz")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "not a StudentModel checkpoint: load_state_dict into StudentModel failed: unexpected keys: " in err
    assert "(an integer-quantized model, quant.convert_to_integer's: load it into a model converted the same way, " \
           "or give the float model's checkpoint)" in err


def test_a_data_dir_missing_some_files_names_exactly_those(tmp_path, capsys):
    fake_mnist(tmp_path / "part")
    (tmp_path / "part" / FILES[3]).unlink()
    (tmp_path / "part" / FILES[0]).unlink()
    with pytest.raises(SystemExit) as info:
        load_example("quantize_mnist").parse_args(["--data-dir", str(tmp_path / "part")])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f"--data-dir {tmp_path / 'part'}: the folder lacks 2 of the four MNIST files: {FILES[0]}, {FILES[3]}")


def test_a_full_data_dir_is_accepted_and_read_even_when_minikd_data_holds_other_files(tmp_path, monkeypatch, capsys):
    fake_mnist(tmp_path / "given", n_train=5, n_test=3)
    fake_mnist(tmp_path / "env", n_train=7, n_test=4)
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "env"))
    common = load_example("common")
    args = load_example("mnist_mlp").parse_args(["--data-dir", str(tmp_path / "given")])
    x_train, y_train, x_test, y_test = common.load_mnist_data(args.data_dir)
    assert len(x_train) == 5 and len(x_test) == 3
    assert f"MNIST: read {tmp_path / 'given'} (5 training and 3 test images)" in capsys.readouterr().out
    x_train, *_ = common.load_mnist_data(None)  # without --data-dir: MINIKD_DATA, and it says so
    assert len(x_train) == 7 and f"MNIST: read {tmp_path / 'env'} " in capsys.readouterr().out


def test_missing_data_ends_the_example_with_every_missing_file_named(no_data):
    with pytest.raises(SystemExit) as info:
        load_example("common").load_mnist_data(None)
    msg = str(info.value.code)
    assert msg.startswith("error: MNIST files missing: " + ", ".join(FILES) + ".")
    assert os.listdir(no_data / "empty_data") == [] and not (no_data / "home" / ".cache").exists()


# --------------------------------------------------------------------------- --quick: seconds, and no lecture column

def test_durations_are_printed_in_seconds_under_a_minute():
    common = load_example("common")
    assert common.format_seconds(3.94) == "3.9 s" and common.format_seconds(0.04) == "0.0 s"
    assert common.format_seconds(222) == "3.7 min (222 s)"


def test_a_quick_run_is_labelled_a_smoke_run_without_the_lectures_numbers(capsys):
    example = load_example("mnist_teacher_student")
    row = {"params": 105_866, "flops": 2_170_826, "macs": 1, "memory_bytes": 423_464, "test_acc_mean": 82.5,
           "test_acc_std": 0.0, "train_seconds_mean": 0.2}
    table = {name: dict(row, lecture_test_acc=example.LECTURE[name]) for name in ("teacher", "student", "kd")}
    example.print_table(table, 1)
    full = capsys.readouterr().out
    assert "lecture" in full and "99.14 %" in full and "98.91 %" in full and "SMOKE RUN" not in full
    example.print_table(table, 1, quick=True)
    quick = capsys.readouterr().out
    assert "SMOKE RUN" in quick and "not comparable with the lecture's" in quick
    assert "99.14" not in quick and "98.91" not in quick and "99.00" not in quick
    assert " lecture " not in quick.splitlines()[3]  # the table's head has no lecture column
    assert all(line.rstrip().endswith(" s") for line in quick.splitlines()[5:8])


def test_profile_cli_checks_every_model_before_printing_any(capsys):
    from minikd.profile import main

    with pytest.raises(SystemExit) as info:
        main(["--model", "minikd.models:StudentModel", "--model", "minikd.models:NoSuchModel"])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "--model minikd.models:NoSuchModel: the module 'minikd.models' has no attribute" in err
    with pytest.raises(SystemExit):
        main(["--model", "numpy:float32"])  # a factory, but not of a model
    assert "numpy:float32: float32() returned a float32, not an nn.Module" in capsys.readouterr().err


@pytest.mark.parametrize("name, argv, kept", [
    ("quantize_mnist", ["--quick", "--qat-images", "5000", "--calibration-batches", "7"],
     {"qat_images": 5000, "calibration_batches": 7}),
    ("quantize_mnist", ["--quick"], {"qat_images": 1000, "calibration_batches": 2}),
    ("quantize_mnist", [], {"qat_images": 20000, "calibration_batches": 10}),
    ("prune_mnist", ["--quick", "--finetune-images", "5000", "--latency-repeats", "50"],
     {"finetune_images": 5000, "latency_repeats": 50}),
    ("prune_mnist", ["--quick"], {"finetune_images": 1000, "latency_repeats": 5}),
    ("deploy_student", ["--quick", "--finetune-images", "50000", "--repeats", "100"],
     {"finetune_images": 50000, "repeats": 100, "calibration_images": 256}),
    ("train_conditional_generator", ["--quick", "--epochs", "7"], {"epochs": 7}),
    ("train_conditional_generator", ["--quick"], {"epochs": 1}),
])
def test_quick_keeps_the_values_given(tmp_path, name, argv, kept):
    """--quick sets smaller defaults, never overrides a value the user gave (the trial: it discarded them)."""
    args = load_example(name).parse_args([*argv, "--out", str(tmp_path / "out")])
    assert {k: getattr(args, k) for k in kept} == kept


def test_a_damaged_mnist_file_ends_the_run_with_one_line_naming_it(tmp_path):
    common = load_example("common")
    for damage in (lambda b: b[:len(b) // 2], lambda b: bytes(reversed(b))):   # truncated, garbled
        fake_mnist(tmp_path, n_train=50)
        images = tmp_path / "train-images-idx3-ubyte.gz"
        images.write_bytes(damage(images.read_bytes()))
        with pytest.raises(SystemExit) as info:
            common.load_mnist_data(tmp_path)
        message = str(info.value.code)
        assert message.startswith("error: ") and images.name in message and "\n" not in message, message
        test_images = tmp_path / "t10k-images-idx3-ubyte.gz"      # a data-free run reads the test split alone
        test_images.write_bytes(damage(test_images.read_bytes()))
        with pytest.raises(SystemExit) as info:
            common.read_mnist_split("test", tmp_path)
        assert str(info.value.code).startswith("error: ") and test_images.name in str(info.value.code)


def test_a_checkpoint_with_its_architecture_loads_as_its_check_read_it(tmp_path):
    """data_free_kd.py saves ``meta.*`` beside the weights: the checks set them aside, the runs did not
    (``load_state_dict(mk.load(path))``: "unexpected keys: meta.arch" after the data had loaded)."""
    from types import SimpleNamespace

    from minikd.models import TeacherModel

    common = load_example("common")
    teacher = TeacherModel()
    common.save_checkpoint(teacher, tmp_path / "teacher.npz", arch="slide")
    load_example("mnist_teacher_student").parse_args(
        ["--runs", "kd", "--teacher", str(tmp_path / "teacher.npz"), "--out", str(tmp_path / "o")])
    args = SimpleNamespace(seed=0, device="cpu")     # no data, no epochs: it must load, not train
    loaded = common.load_or_train("teacher", TeacherModel, tmp_path / "teacher.npz", None, None, args)
    for (k, a), (_, b) in zip(sorted(teacher.state_dict().items()), sorted(loaded.state_dict().items()), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=k)
    raw = [f.name for f in (ROOT / "examples").glob("*.py") if "load_state_dict(mk.load(" in f.read_text()]
    assert raw == [], f"these load a checkpoint without setting its meta.* aside: {raw}"


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.update(settings="abc"), "has no runs and settings"),
    (lambda r: r["settings"].update(lr=[0.1]), "its setting lr is [0.1]; expected a number or a name"),
    (lambda r: r["runs"][0].update(seed=True), "its runs are not a list of {seed, rows}"),
    (lambda r: r["runs"][0]["rows"].update(kd=5), "seed 0, row 'kd': expected a row of measurements, got int"),
    (lambda r: r["runs"][0]["rows"]["kd"].pop("test_acc"), "seed 0, row 'kd': test_acc is None"),
    (lambda r: r["runs"][0]["rows"]["kd"].pop("verification"), "row 'kd': has no verification measurements"),
    (lambda r: r["runs"][0]["rows"]["kd"].update(test_acc="high"), "row 'kd': test_acc is 'high'"),
])
def test_chart_from_refuses_results_of_the_wrong_shape_in_one_line(tmp_path, capsys, mutate, message):
    report = json.loads((ROOT / "docs/kd_methods/results.json").read_text())
    mutate(report)
    (tmp_path / "r.json").write_text(json.dumps(report))
    with pytest.raises(SystemExit) as info:
        load_example("kd_methods_mnist").parse_args(["--chart-from", str(tmp_path / "r.json"), "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--chart-from" in err and message in err, err


VALIDATION_SPLIT = ROOT / "docs/hinton/tried/validation_split.py"


@pytest.mark.parametrize("argv, message", [
    (["plot", "{tmp}/nope.json", "--out", "{tmp}/v.png"], "plot {tmp}/nope.json: not a readable results file"),
    (["plot", "{kd_methods}", "--out", "{tmp}/v.png"], "not a results.json of examples/hinton_mnist.py"),
    (["plot", "{kd_methods}", "--out", "{tmp}/v.txt"], "a picture's name, ending .png, .pdf or .svg"),
    (["alone", "0.001", "--T", "50", "--out", "{tmp}/a.json"], "alone distils nothing: --T would have no effect"),
    (["alone", "0.001,0.001", "--out", "{tmp}/a.json"], "learning rate 0.001 is given twice"),
    (["alone", "inf", "--out", "{tmp}/a.json"], "learning rates must be finite and > 0; got 'inf'"),
    (["alone", "0.001", "--seed", "-1", "--out", "{tmp}/a.json"], "--seed: the seed must be ≥ 0; got -1"),
    (["alone", "0.001", "--out", "{tmp}"], "is a folder; give the results file's name"),
    (["kd", "0.001", "--teacher-epochs", "0", "--out", "{tmp}/a.json"], "--teacher-epochs: the number of the"),
])
def test_the_validation_script_checks_its_arguments_before_any_data(tmp_path, monkeypatch, capsys, argv, message):
    subs = {"{tmp}": str(tmp_path), "{kd_methods}": str(ROOT / "docs/kd_methods/results.json")}
    for k, v in subs.items():
        argv = [a.replace(k, v) for a in argv]
        message = message.replace(k, v)
    spec = importlib.util.spec_from_file_location("validation_split", VALIDATION_SPLIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "load_mnist_data", lambda *a: pytest.fail("read data before the checks"))
    monkeypatch.setattr(sys, "argv", ["validation_split.py", *argv])
    with pytest.raises(SystemExit) as info:
        module.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: " in err and message in err, err


def test_the_out_check_leaves_no_folder_behind(tmp_path, capsys):
    """--out is tried by making it; a command refused later (or never run) must not leave it there."""
    common = load_example("common")
    parser = __import__("argparse").ArgumentParser()
    common.check_writable_dir(parser, tmp_path / "a" / "b", "--out")
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    common.check_writable_dir(parser, tmp_path / "kept", "--out")
    assert (tmp_path / "kept").is_dir()


# ------------------------------------------------- the command lines the documentation prints

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
EXAMPLE_CALL = r"python examples/([a-z_0-9]+)\.py"


def documented_commands():
    """Every ``python examples/NAME.py ...`` the README and docs/ print: in code blocks (a trailing
    ``\\`` joins the next line, `` # `` starts a comment) and in inline code, which may wrap lines.
    Yields (file, example name, argv)."""
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = md.read_text()
        lines = [line for block in FENCE.findall(text) for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
        spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", FENCE.sub("", text))]
        found = [re.search(EXAMPLE_CALL + r"(.*)$", line) for line in lines]
        found += [re.fullmatch(EXAMPLE_CALL + r"(.*)", span) for span in spans]
        for m in filter(None, found):
            rest = re.sub(r"\s#\s.*$", "", m.group(2))
            if "..." not in rest:  # "--synthetic actmax=..." stands for any pool, not a command to run
                yield md.relative_to(ROOT), m.group(1), shlex.split(rest)


def test_every_command_the_docs_print_is_accepted_by_its_example(monkeypatch, capsys):
    """A renamed or removed option leaves the docs printing a command that argparse refuses. Each
    documented command goes through its example's own argument check (run from the repository root,
    as the docs say). The only refusals allowed are a file under runs/ that an earlier documented
    command writes (a teacher, a generator: this checkout has not run them) and --device cuda
    without CuPy; any other refusal is a docs/CLI mismatch."""
    monkeypatch.chdir(ROOT)
    commands = list(documented_commands())
    assert len(commands) >= 90, len(commands)  # about a hundred today: the extraction itself still works
    written = {load_example("common").HANDS_ON_DIR}
    written |= {argv[argv.index("--out") + 1] for _, _, argv in commands if "--out" in argv}
    have_cupy = importlib.util.find_spec("cupy") is not None
    modules, refused = {}, []
    for md, name, argv in commands:
        module = modules.get(name) or modules.setdefault(name, load_example(name))
        try:
            module.parse_args(argv)
            continue
        except SystemExit as e:
            assert e.code == 2, (md, name, argv)
        err = capsys.readouterr().err.strip().splitlines()[-1]
        missing = re.search(r"error: --[a-z-]+ (\S+): no such file", err)
        if missing and Path(missing.group(1)).parent.as_posix() in written:
            continue
        if "needs CuPy" in err and "cuda" in argv and not have_cupy:
            continue
        refused.append(f"{md}: python examples/{name}.py {shlex.join(argv)}\n    {err}")
    assert not refused, "\n".join(refused)



#: the examples whose parse_args needs no model file: (their argv, their full run's default --out)
OUT_DEFAULTS = {"data_free_kd": (["--train-teacher", "slide"], "runs/data_free"), "hinton_mnist": ([], "runs/hinton"),
                "kd_methods_mnist": ([], "runs/kd_methods"), "prune_mnist": ([], "runs/prune"),
                "quantize_mnist": ([], "runs/quantize"), "mnist_teacher_student": ([], "runs/teacher_student"),
                "deploy_student": (None, "runs/deploy")}


@pytest.mark.parametrize("name", sorted(OUT_DEFAULTS))
def test_a_quick_run_writes_beside_the_full_runs_folder_never_into_it(name, tmp_path, monkeypatch):
    """A new user's trial: train_conditional_generator.py --quick and data_free_kd.py --train-teacher
    slide --quick wrote runs/data_free/generator.npz and teacher_slide.npz, which the full commands
    of docs/data_free.md then loaded as the real ones (a 1-epoch teacher, a noise generator); the
    other examples' smoke runs replaced a full run's results.json and pictures. Every example's
    default --out now gets "_quick" under --quick; a folder given is kept."""
    monkeypatch.chdir(tmp_path)                      # the default folders are relative: made in tmp_path
    argv, full = OUT_DEFAULTS[name]
    example = load_example(name)
    if argv is not None:                             # deploy_student needs the hands-on's model without --quick
        assert example.parse_args(argv).out == full
    argv = argv or []
    assert example.parse_args([*argv, "--quick"]).out == full + "_quick"
    assert example.parse_args([*argv, "--quick", "--out", "mine"]).out == "mine"


def test_every_example_with_an_out_folder_takes_its_default_from_check_out():
    """The same rule for the examples the test above cannot parse without models (quantface, the
    generator's trainer): each declares --out with add_out_option and fills it with check_out."""
    for path in sorted((ROOT / "examples").glob("*.py")):
        src = path.read_text()
        if '"--out"' in src or "add_out_option(" in src:
            assert path.stem == "common" or ("add_out_option(p, " in src and "check_out(p, args)" in src
                                             and '"--out"' not in src), path.name
