"""'Modify it to learn' (issue 15): each task's reference solution passes its check, a wrong
solution fails it with a message that names what is wrong, and the command line
``python -m minikd.exercises`` answers list / show / check with the right exit status."""

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

import minikd as mk
from minikd import exercises
from minikd.exercises import CheckFailed, run_check
from minikd.exercises.__main__ import main
from minikd.exercises.mse_kd import mse_kd_loss
from minikd.exercises.prune_criterion import l1_normalized
from minikd.exercises.stochastic_rounding import quantize_stochastic, stochastic_round
from minikd.exercises.swish import Swish
from minikd.prune.criteria import per_unit
from minikd.quant import int_dtype, qrange

# --------------------------------------------------------------------------- the reference solutions pass


@pytest.mark.parametrize("name", list(exercises.TASKS))
def test_the_reference_solution_passes_its_check(name):
    said = []
    run_check(name, exercises.TASKS[name].reference, say=said.append)
    assert said and all(line.startswith(("ok", "compare")) for line in said)


def test_every_task_has_its_text_starter_names_and_reference():
    for name, task in exercises.TASKS.items():
        assert task.NAME == name and task.TITLE and task.NAMES
        assert "What to observe" in task.TASK and "In the engine" in task.TASK
        for n in task.NAMES:
            assert hasattr(task.reference, n) and f"def {n}(" in task.STARTER
        compile(task.STARTER, f"{name} starter", "exec")  # the starter is valid Python


def test_an_unknown_task_and_a_missing_name_are_said():
    with pytest.raises(ValueError, match="no task 'softmax'; the tasks are: swish"):
        run_check("softmax", SimpleNamespace())
    with pytest.raises(CheckFailed, match="needs stochastic_round, quantize_stochastic, not defined"):
        run_check("stochastic_rounding", SimpleNamespace())


# --------------------------------------------------------------------------- wrong solutions fail, saying why


def _fails(name, match, **impl):
    with pytest.raises(CheckFailed, match=match):
        run_check(name, SimpleNamespace(**impl), say=lambda line: None)


class NoUpstream(Swish):
    def backward(self, gy):
        s = self.s
        return s * (1 + self.x * (1 - s))  # bug: dropped gy


class Naive(Swish):
    def forward(self, x):
        self.x = x
        self.s = 1 / (1 + self.xp.exp(-x))  # overflows for x = −1000
        return x * self.s


class Float64Out(Swish):
    def forward(self, x):
        return super().forward(x.astype(np.float64))


class HalfDerivative(Swish):
    def backward(self, gy):
        return gy * self.s  # bug: σ(x) only, the x·σ'(x) term forgotten


class WritesIntoGy(Swish):
    def backward(self, gy):
        gy *= self.s * (1 + self.x * (1 - self.s))  # bug: gy may be another input's gradient too
        return gy


class Starter(Swish):
    def forward(self, x):
        ...  # the starter's body, unedited: returns None


def test_swish_wrong_solutions_fail():
    _fails("swish", r"gradient dL/dx = .* wrong at input index \(0, 0\): got .*, expected .* \(x = ",
           swish=NoUpstream.apply)
    _fails("swish", r"gradient .* wrong at input index", swish=HalfDerivative.apply)
    # a new user's trial: these two passed, or failed with a message about something else
    _fails("swish", r"gradient of swish\(x\) \+ x, .* wrong at input index \(0, 0\).*Your backward seems to write "
           r"into gy \(gy \*= \.\.\.\)", swish=WritesIntoGy.apply)
    _fails("swish", "swish raised TypeError: Starter.forward returned None; it must return the output array",
           swish=Starter.apply)
    _fails("swish", r"value of swish\(x\) \(float64\) wrong at input index \(0, 0\)",
           swish=lambda x: Swish.apply(x) * 2)
    _fails("swish", "composed existing ops", swish=lambda x: x * mk.functional.sigmoid(x))
    _fails("swish", "overflowed at x = ±1000", swish=Naive.apply)
    _fails("swish", "gave dtype float64: keep the input's dtype", swish=Float64Out.apply)
    _fails("swish", "must return a Tensor", swish=lambda x: Swish.apply(x).numpy())
    _fails("swish", "swish raised ZeroDivisionError", swish=lambda x: 1 / 0)
    _fails("swish", r"swish must be a function; your file defines it as 3 \(int\)", swish=3)


def test_mse_kd_wrong_solutions_fail():
    def summed_over_classes(z_s, z_t, y, lam=0.5):  # Σ_i, mean over the batch: another convention
        d = z_s - z_t.detach()
        return mk.functional.cross_entropy(z_s, y) * (1 - lam) + (d * d).sum() * (lam / z_s.shape[0])

    def teacher_trained(z_s, z_t, y, lam=0.5):
        return mk.functional.cross_entropy(z_s, y) * (1 - lam) + mk.functional.mse_loss(z_s, z_t) * lam

    def weights_swapped(z_s, z_t, y, lam=0.5):
        return mse_kd_loss(z_s, z_t, y, lam=1 - lam)

    _fails("mse_kd", r"loss wrong at lam=1.0: .* the MSE part", mse_kd_loss=summed_over_classes)
    _fails("mse_kd", "the teacher's logits received a gradient", mse_kd_loss=teacher_trained)
    _fails("mse_kd", r"loss wrong at lam=0.0: .* the cross-entropy part", mse_kd_loss=weights_swapped)
    _fails("mse_kd", "must return a scalar Tensor", mse_kd_loss=lambda *a, **k: 0.5)

    def detached(z_s, z_t, y, lam=0.5):  # right for Tensors; examples/hinton_mnist.py passes an array
        return mk.functional.cross_entropy(z_s, y) * (1 - lam) + mk.functional.mse_loss(z_s, z_t.detach()) * lam

    _fails("mse_kd", r"teacher_logits a NumPy array, as examples/hinton_mnist.py passes them\) raised AttributeError",
           mse_kd_loss=detached)


def test_prune_criterion_wrong_solutions_fail():
    def plain_l1(layer, weight, structure, grads, rng):
        return per_unit(np.abs(weight), structure)

    def no_zero_guard(layer, weight, structure, grads, rng):
        s = per_unit(np.abs(weight), structure)
        with np.errstate(invalid="ignore"):
            return s / s.mean()

    def in_place(layer, weight, structure, grads, rng):
        np.abs(weight, out=weight)
        return l1_normalized(layer, weight, structure, grads, rng)

    def channel_as_filter(layer, weight, structure, grads, rng):
        return l1_normalized(layer, weight, "filter" if structure == "channel" else structure, grads, rng)

    _fails("prune_criterion", r"scores of a Conv2d weight \(4, 3, 3, 3\), structure 'unstructured' wrong at "
           r"input index \(0, 0, 0, 0\)", l1_normalized=plain_l1)
    _fails("prune_criterion", "non-finite scores", l1_normalized=no_zero_guard)
    # a new user's trial: the unedited starter (its body is ...) was told "wrong shape: got ()"
    _fails("prune_criterion", r"structure 'unstructured': got None — does your function return its result\?",
           l1_normalized=lambda *args: None)
    _fails("prune_criterion", "changed the weight it was given", l1_normalized=in_place)
    _fails("prune_criterion", r"structure 'channel': wrong shape: got \(4,\), expected \(3,\)",
           l1_normalized=channel_as_filter)


def test_stochastic_rounding_wrong_solutions_fail():
    def nearest(x, rng):
        return np.round(x)

    def truncating(x, rng):  # trunc is not floor for negative x: −0.25 always goes to 0
        down = np.trunc(x)
        return down + (rng.random(np.shape(x)) < x - down)

    def global_state(x, rng):
        return stochastic_round(x, np.random.default_rng())

    def up_with_wrong_probability(x, rng):  # up with probability 1 − (x − ⌊x⌋): reversed
        down = np.floor(x)
        frac = x - down
        return np.where(frac == 0, down, down + (rng.random(np.shape(x)) >= frac))

    def off_by_one(x, rng):
        return stochastic_round(x, rng) + (np.asarray(x) > 5)

    def unclipped(x, b, s, z, rng):
        return stochastic_round(np.asarray(x) / s - z, rng).astype(int_dtype(b))

    def float_levels(x, b, s, z, rng):
        lo, hi = qrange(b)
        return np.clip(stochastic_round(np.asarray(x) / s - z, rng), lo, hi)

    ok = {"quantize_stochastic": quantize_stochastic}
    _fails("stochastic_rounding", "always gave the nearest integer", stochastic_round=nearest, **ok)
    _fails("stochastic_rounding", r"biased at x = -2.75: the mean of 20000 draws is -2.0000",
           stochastic_round=truncating, **ok)
    _fails("stochastic_rounding", "same seed gave different roundings", stochastic_round=global_state, **ok)
    _fails("stochastic_rounding", r"biased at x = -2.75: the mean of 20000 draws is -2.2\d+, expected -2.7500 ± ",
           stochastic_round=up_with_wrong_probability, **ok)
    _fails("stochastic_rounding", r"at index \(0, 10\): x = 7 became 8; .* only ⌊x⌋ = 7 or ⌈x⌉ = 7",
           stochastic_round=off_by_one, **ok)
    sr = {"stochastic_round": stochastic_round}
    _fails("stochastic_rounding", "outside the 4-bit range -8..7: clip", quantize_stochastic=unclipped, **sr)
    _fails("stochastic_rounding", "must return int8 integers", quantize_stochastic=float_levels, **sr)

    def floor_minus_one(x, b, s, z, rng):  # in range and int8, but not a neighbour of its level
        lo, hi = qrange(b)
        return np.clip(np.floor(np.asarray(x) / s - z) - 1, lo, hi).astype(int_dtype(b))

    # the message names the level, v = x/s − z, not the input x of the function
    _fails("stochastic_rounding", r"its level v = x/s − z \(clipped\), at index \(\d+, \d+\): v = \S+ became \S+; "
           r"stochastic rounding gives only ⌊v⌋ = \S+ or ⌈v⌉", quantize_stochastic=floor_minus_one, **sr)


# --------------------------------------------------------------------------- the command line

SWISH_FILE = textwrap.dedent('''
    from minikd.function import Function


    class Swish(Function):
        def forward(self, x):
            xp = self.xp
            e = xp.exp(-xp.abs(x))
            self.x = x
            self.s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
            return x * self.s

        def backward(self, gy):
            return gy * self.s * (1 + self.x * (1 - self.s)){bug}


    def swish(x):
        return Swish.apply(x)
''')


def run(capsys, *argv):
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_list_names_every_task(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    for name in ("swish", "mse_kd", "prune_criterion", "stochastic_rounding"):
        assert name in out


@pytest.mark.parametrize("name", list(exercises.TASKS))
def test_check_solution_passes_with_status_0(capsys, name):
    status, out, _ = run(capsys, "check", name, "--solution")
    assert status == 0 and f"PASS {name}" in out and "  ok  " in out


def test_show_prints_the_task_and_a_starter(capsys):
    status, out, _ = run(capsys, "show", "prune_criterion")
    assert status == 0 and "CRITERIA[\"l1_normalized\"]" in out and "def l1_normalized(" in out


def test_a_missing_file_prints_the_task_and_says_what_to_create(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "check", "swish")
    assert status == 2
    assert "class Swish(Function)" in out  # the task and its starter
    assert f"no file {tmp_path / 'my_exercises.py'}: create it with swish" in err


def test_an_unknown_task_is_status_2(capsys):
    status, _, err = run(capsys, "check", "softmax", "--solution")
    assert status == 2 and "no task 'softmax'; the tasks are: swish, prune_criterion" in err
    assert run(capsys, "show", "nope")[0] == 2


def test_the_learners_file_passes_or_fails(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_exercises.py").write_text(SWISH_FILE.format(bug=""))
    status, out, _ = run(capsys, "check", "swish")
    assert status == 0 and "PASS swish" in out

    (tmp_path / "mine.py").write_text(SWISH_FILE.format(bug=" * 2"))
    status, out, _ = run(capsys, "check", "swish", "--file", str(tmp_path / "mine.py"))
    assert status == 1
    assert "FAIL swish: gradient dL/dx = dL/dy · σ(x)·(1 + x·(1 − σ(x))) wrong at input index (0, 0): got" in out


def test_a_file_without_the_name_is_status_2_and_a_broken_file_status_1(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_exercises.py").write_text("def swish(x):\n    return x\n")
    status, _, err = run(capsys, "check", "stochastic_rounding")
    assert status == 2 and "defines no stochastic_round, quantize_stochastic: add them" in err

    (tmp_path / "my_exercises.py").write_text("def swish(x):\n    return x +\n")
    status, _, err = run(capsys, "check", "swish")
    assert status == 1 and "SyntaxError" in err and "could not be imported" in err

    (tmp_path / "my_exercises.py").write_text("def swish(x):\n    raise KeyError('oops')\n")
    status, out, err = run(capsys, "check", "swish")
    # the failure, then the lines of the learner's file it came through: not the engine's frames
    assert status == 1 and out.endswith("FAIL swish: swish raised KeyError: 'oops'\n  where, in my_exercises.py:\n"
                                        "    line 2, in swish: raise KeyError('oops')\n") and "Traceback" not in err


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "minikd.exercises", "check", "stochastic_rounding", "--solution"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PASS stochastic_rounding" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "minikd.exercises", "check"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "the following arguments are required: name" in bad.stderr
