"""examples/kd_methods_mnist.py (issue #13): every distillation method of the lecture, side by side.

The smoke run (``--quick``: every method and the QUD ablation on 2,000 real MNIST images, one
epoch) writes results.json with every row and the pictures; a bad option is one error line and
exit status 2 before any work; and the two things the example added to ``common.fit`` — batches
that carry their images' indices, a callback at the end of each epoch — behave as documented.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minikd as mk
from minikd import optim
from minikd.data import DataLoader
from tests.util import assert_platform, load_example, needs_mnist

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "examples/kd_methods_mnist.py"
ROWS = {"teacher", "student", "kd", "fkd", "rkd", "dml_peer1", "dml_peer2", "byot", "ban_gen1", "ban_gen2", "ban_gen3",
        "ta_assistant", "ta_small_alone", "ta_small_kd", "ta_small_ta", "pocketnet", "adadistill", "adadistill_nomse",
        "arcface", "qud"}


def run(args, env=None):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def quick_report(tmp_path, *args):
    """The results.json of a smoke run with ``args``, one thread each (it must succeed)."""
    out = run(["--quick", *args, "--out", str(tmp_path), "--no-progress"],
              env={"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads((tmp_path / "results.json").read_text())


@pytest.fixture(scope="module")
def quick_cpu(tmp_path_factory):
    """The smoke run of every method and the QUD ablation on the CPU, shared by the tests of this
    module: (folder, the finished process, report)."""
    # One thread each for Numba and BLAS: on a shared 2-core machine a second busy process makes
    # two-thread kernels wait on each other (measured 15-60x slower); the smoke run takes ≈ 15 s.
    tmp_path = tmp_path_factory.mktemp("quick_cpu")
    methods = "student,kd,fkd,rkd,dml,byot,ban,ta,pocketnet,adadistill,arcface,qud,adadistill_nomse"
    out = run(["--quick", "--methods", methods, "--qud-ablation", "--out", str(tmp_path), "--no-progress"],
              env={"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    report = json.loads((tmp_path / "results.json").read_text()) if out.returncode == 0 else None
    return tmp_path, out, report


@pytest.mark.slow
@needs_mnist
def test_quick_run_of_every_method_writes_every_row(quick_cpu):
    tmp_path, out, report = quick_cpu
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SMOKE RUN" in out.stdout and "Traceback" not in out.stderr

    assert report["smoke_run"] is True and report["settings"]["epochs"] == 1 and report["settings"]["seeds"] == [0]
    assert_platform(report)
    assert set(report["summary"]) == ROWS
    for name, row in report["summary"].items():
        assert {"test_acc_mean", "test_acc_std", "verification_mean", "tar_far_1e-2_mean", "tar_far_1e-3_mean",
                "params", "train_seconds_mean", "labels"} <= set(row), name
        assert 50 <= row["verification_mean"] <= 100, name                                    # not broken
        # AdaDistill classifies by its distilled centres, which for the first ~100 steps are the last
        # teacher embeddings seen (α′ ≈ 0), while the student's embedding does not point at them yet:
        # after the smoke run's 32 steps it is at chance (11.1 %); 99.04 % after 5 epochs
        assert row["test_acc_mean"] > (5 if name.startswith("adadistill") else 20), name
        assert row["labels"] is (name != "qud")
    summary = report["summary"]
    assert summary["teacher"]["params"] == 421_642 and summary["student"]["params"] == 105_866
    assert summary["ta_small_alone"]["params"] == 26_698
    assert summary["ban_gen1"]["test_acc_mean"] == summary["student"]["test_acc_mean"]   # the same run
    assert len(summary["byot"]["exit_test_acc_mean"]) == 3
    (seed,) = report["runs"]
    assert seed["rows"]["fkd"]["verification"]["pairs"] == 6000
    # --ban-init new (the default): generations 2 and 3 from their own weights, seeds 1000·gen + seed
    assert [seed["rows"][f"ban_gen{g}"]["init_seed"] for g in (2, 3)] == [2000, 3000]
    # the TA chain's assistant is its own run, trained with the teacher's budget, and the chain names it
    assert seed["rows"]["ta_small_ta"]["assistant"] == "ta_assistant"
    assert summary["ta_assistant"]["params"] == 105_866
    assert {"verification_64d", "teacher_alignment", "teacher_alignment_centred"} <= set(seed["rows"]["qud"])
    assert seed["rows"]["qud"]["labels"] is False and seed["rows"]["qud"]["tau"] == 2.0
    assert report["settings"]["ada_lam"] == 0.1
    assert {"teacher_alignment_mean", "teacher_alignment_centred_mean"} <= set(summary["qud"])
    assert len(report["adadistill_alpha"]["0"]) == 32                 # one α′ per step: 2,000 images / 64
    assert all(0 <= a <= 1 for a, _ in report["adadistill_alpha"]["0"])
    assert set(report["qud_ablation"]) == {"tau=0.05,n=1024", "tau=0.1,n=1024", "tau=0.2,n=1024", "tau=0.4,n=1024",
                                           "tau=1,n=1024", "tau=2,n=1024", "tau=2,n=256", "tau=2,n=4096"}
    assert report["qud_ablation"]["tau=2,n=1024"] == seed["rows"]["qud"]     # the qud row, not trained twice
    assert all({"teacher_alignment", "teacher_alignment_centred"} <= set(a) for a in report["qud_ablation"].values())
    assert {t["target"].split(" (")[0] for t in report["targets"]} >= {"RKD + KD ≥ KD alone", "BAN gen 2 ≥ gen 1"}
    for png in ("kd_methods.png", "adadistill_alpha.png", "qud_ablation.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.slow
@needs_mnist
def test_quick_run_on_the_stand_in_device_gives_the_cpus_numbers(quick_cpu, tmp_path):
    """A few methods — the frozen teacher's outputs looked up per batch (logit and feature KD),
    verification through an adapter, AdaDistill's centres, QUD's queue — on the stand-in device,
    which refuses every implicit copy to the host: their accuracies are the CPU run's (each method
    starts from the seed alone, so a subset reproduces the full run's rows) to float32 noise."""
    _, out, cpu = quick_cpu
    assert out.returncode == 0, out.stderr[-2000:]
    report = load_example("kd_methods_mnist").main(["--quick", "--methods", "kd,fkd,adadistill,qud", "--device",
                                                    "standin", "--out", str(tmp_path), "--no-progress"])
    assert report["settings"]["device"] == "standin"
    (rows,), (cpu_rows,) = [s["rows"] for s in report["runs"]], [s["rows"] for s in cpu["runs"]]
    assert set(rows) == {"teacher", "kd", "fkd", "adadistill", "qud"}
    for name, row in rows.items():
        assert row["test_acc"] == pytest.approx(cpu_rows[name]["test_acc"], abs=0.01), name
        assert row["verification"]["accuracy"] == pytest.approx(cpu_rows[name]["verification"]["accuracy"],
                                                                 abs=0.01), name
    np.testing.assert_allclose(report["adadistill_alpha"]["0"], cpu["adadistill_alpha"]["0"], atol=1e-3)


@pytest.mark.slow
@needs_mnist
def test_qud_tau_sets_the_qud_rows_temperature(tmp_path):
    report = quick_report(tmp_path, "--methods", "qud", "--qud-tau", "0.4")
    assert report["settings"]["qud_tau"] == 0.4
    (run0,) = report["runs"]
    assert run0["rows"]["qud"]["tau"] == 0.4 and run0["rows"]["qud"]["labels"] is False


@pytest.mark.slow
@needs_mnist
def test_adadistill_with_an_arcface_teacher_trains_that_teacher_instead(tmp_path):
    """--ada-teacher arcface: the margin runs' teacher is the slide's network with an ArcFace head (its own
    row); no CE teacher is trained for them."""
    kd_methods = load_example("kd_methods_mnist")
    report = kd_methods.main(["--quick", "--methods", "adadistill,arcface", "--ada-teacher", "arcface",
                              "--out", str(tmp_path), "--no-progress"])
    (run0,) = report["runs"]
    assert set(run0["rows"]) == {"teacher_arcface", "adadistill", "arcface"}
    assert report["settings"]["ada_teacher"] == "arcface"
    assert run0["rows"]["adadistill"]["aligned_with"] == run0["rows"]["arcface"]["aligned_with"] == "teacher_arcface"
    assert report["summary"]["adadistill"]["title"] == "AdaDistill (α′) + MSE ← ArcFace"
    # the slide's teacher without its fc2 (1,290), an adapter 128 → 128 and 10 class centres of width 128
    assert run0["rows"]["teacher_arcface"]["params"] == 421_642 - 1_290 + 128 * 128 + 128 + 10 * 128


@needs_mnist
def test_the_fine_tuned_arcface_teacher_starts_from_the_ce_teachers_weights(tmp_path):
    """--ada-teacher ce-arcface: a copy of the trained CE teacher's body, a new adapter and ArcFace head,
    fine-tuned for --ada-teacher-epochs (cosine, whatever the teacher's schedule); the CE teacher itself
    is not trained again, nor changed, nor sharing an array with the copy."""
    kd_methods = load_example("kd_methods_mnist")
    args = kd_methods.parse_args(["--quick", "--methods", "adadistill", "--ada-teacher", "ce-arcface",
                                  "--ada-teacher-epochs", "2", "--teacher-schedule", "constant",
                                  "--out", str(tmp_path), "--no-progress"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 1, 28, 28)).astype(np.float32), np.arange(1000) % 10
    seed = kd_methods.Seed(0, (x, y, x, y), args)
    ce = kd_methods.TeacherModel()
    for p in ce.parameters():
        p.data[...] = 0.25          # a mark no initialisation draws
    seed._teacher = ce               # as if trained: teacher() returns it
    calls, train = [], seed.train
    seed.train = lambda name, *a, **k: calls.append((name, k["epochs"], k["schedule"])) or train(name, *a, **k)
    margin = seed.margin_teacher()
    assert calls == [("teacher_ce_arcface", 2, "cosine")]    # --ada-teacher-epochs, not --teacher-epochs (1)
    tuned = seed.models["teacher_ce_arcface"]
    assert margin.row == "teacher_ce_arcface" and margin.train.shape == (1000, kd_methods.EMBED_DIM)
    for name in ("conv1", "conv2", "fc1"):
        for q, p in zip(getattr(tuned, name).parameters(), getattr(ce, name).parameters()):
            assert not np.shares_memory(q.numpy(), p.numpy())
            # 32 Adam steps at lr 1e-3 move a weight by at most ~0.03: it started at the CE teacher's 0.25
            np.testing.assert_allclose(q.numpy(), 0.25, atol=0.05)
        assert not np.all(getattr(tuned, name).weight.numpy() == 0.25)     # and it was trained
    assert all((p.numpy() == 0.25).all() for p in ce.parameters())
    assert set(seed.rows) == {"teacher_ce_arcface"}


@pytest.mark.slow
@needs_mnist
def test_adadistill_from_the_fine_tuned_ce_teacher_trains_both_teachers(tmp_path):
    kd_methods = load_example("kd_methods_mnist")
    report = kd_methods.main(["--quick", "--methods", "adadistill", "--ada-teacher", "ce-arcface",
                              "--out", str(tmp_path), "--no-progress"])
    (run0,) = report["runs"]
    assert set(run0["rows"]) == {"teacher", "teacher_ce_arcface", "adadistill"}
    assert report["settings"]["ada_teacher_epochs"] == 1
    assert run0["rows"]["adadistill"]["aligned_with"] == "teacher_ce_arcface"
    assert report["summary"]["adadistill"]["title"] == "AdaDistill (α′) + MSE ← CE + ArcFace"
    assert run0["rows"]["teacher_ce_arcface"]["params"] == 421_642 - 1_290 + 128 * 128 + 128 + 10 * 128


@pytest.mark.slow
@needs_mnist
def test_adadistill_from_the_centred_ce_teacher_distils_f_t_minus_its_mean(tmp_path):
    """--ada-teacher ce-centred: the margin runs distil the CE teacher's features minus their mean μ
    over the training images; the teacher row reports how that centred embedding verifies."""
    kd_methods = load_example("kd_methods_mnist")
    report = kd_methods.main(["--quick", "--methods", "adadistill", "--ada-teacher", "ce-centred",
                              "--out", str(tmp_path), "--no-progress"])
    (run0,) = report["runs"]
    assert set(run0["rows"]) == {"teacher", "adadistill"}
    assert report["summary"]["adadistill"]["title"] == "AdaDistill (α′) + MSE ← CE − μ"
    assert run0["rows"]["adadistill"]["aligned_with"] == "teacher − μ"     # measured against f_t − μ
    centred = run0["rows"]["teacher"]["embedding"]["verification_centred"]
    assert 0.5 < centred <= 1
    assert report["summary"]["teacher"]["verification_centred_mean"] == pytest.approx(100 * centred)


def test_the_centred_teacher_embedding_is_the_features_minus_their_training_mean():
    kd_methods = load_example("kd_methods_mnist")
    seed = kd_methods.Seed.__new__(kd_methods.Seed)      # only what margin_teacher reads
    train = np.array([[1.0, 0.0], [3.0, 2.0]])
    test = np.array([[2.0, 2.0], [2.0, 0.0], [3.0, 1.0], [1.0, 1.0]])      # minus μ = (2, 1): up, down, right, left
    seed.args, seed._margin_teacher = type("A", (), {"ada_teacher": "ce-centred"})(), None
    seed.t_embeddings = kd_methods.Embeddings("teacher", train, test, train.mean(axis=0))
    seed.teacher = lambda: None
    seed.rows = {"teacher": {"embedding": {}}}
    # 10 pairs (one per fold): (0, 1), (0, 2) and (2, 3) "different", (1, 1) and (3, 3) "same"; centred, the
    # different pairs' cosines are -1 or 0 and the same pairs' 1, so a threshold between them is always right
    i, j = np.array([0, 1, 0, 2, 3, 0, 1, 0, 2, 3]), np.array([1, 1, 2, 3, 3, 1, 1, 2, 3, 3])
    seed.pairs = (i, j, i == j)
    centred = seed.margin_teacher()
    assert centred.row == "teacher − μ"
    np.testing.assert_array_equal(centred.train, [[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(centred.test, [[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(centred.mean, [0.0, 0.0])
    assert seed.rows["teacher"]["embedding"]["verification_centred"] == 1.0


@pytest.mark.parametrize("ban_init", ["new", "same"])
def test_ban_generations_start_from_their_own_weights_or_gen_1s(ban_init):
    """--ban-init new (default): generation k starts from the weights of seed 1000·k + seed, which no
    other run of the table starts from; same: from gen 1's (the seed's)."""
    kd_methods = load_example("kd_methods_mnist")
    args = kd_methods.parse_args(["--methods", "ban", "--ban-init", ban_init, "--out", "/tmp/unused-kd-out"])
    assert kd_methods.parse_args(["--out", "/tmp/unused-kd-out"]).ban_init == "new"
    seeds = {kd_methods.ban_init_seed(seed, gen) for seed in range(100) for gen in (2, 3)}
    assert len(seeds) == 200 and not seeds & set(range(100))     # distinct, and never a table seed
    seed = kd_methods.Seed.__new__(kd_methods.Seed)
    seed.seed, seed.args, seed.device = 3, args, "cpu"
    gen1 = seed.new()
    gen2 = seed.new(init_seed=kd_methods.ban_init_seed(3, 2) if ban_init == "new" else None)
    same = np.array_equal(gen1.conv1.weight.numpy(), gen2.conv1.weight.numpy())
    assert same == (ban_init == "same")
    again = seed.new(init_seed=kd_methods.ban_init_seed(3, 2))
    assert ban_init == "same" or np.array_equal(gen2.conv1.weight.numpy(), again.conv1.weight.numpy())


def test_the_chart_of_one_run_spans_at_least_half_a_point(tmp_path, monkeypatch):
    """One row (``--methods student``, one seed): each axis spans at least half a point around its
    bar, not the thousandths it would zoom to."""
    kd_methods = load_example("kd_methods_mnist")
    figures = []
    monkeypatch.setattr(kd_methods, "save_figure", lambda fig, path: figures.append(fig))
    row = {"title": "student alone (CE)", "family": "baseline", "labels": True, "params": 105_866,
           "test_acc_mean": 98.9, "test_acc_std": 0.0, "verification_mean": 94.63, "verification_std": 0.0}
    kd_methods.plot_methods({"student": row}, tmp_path / "chart.png")
    for ax, value in zip(figures[0].axes, (98.9, 94.63)):
        left, right = ax.get_xlim()
        assert right - left >= 0.5 and left < value < right


def test_chart_from_pools_seeds_each_row_of_each_seed_from_the_last_file_that_has_it(tmp_path, capsys):
    """--chart-from pools the seeds of rows measured by separate commands (--methods ban) and on
    other seeds (--seeds 3): each row of each seed from the last file that has it, in the table's
    order, without training; its targets compare the means and, seed by seed, the paired
    differences. Runs of different budgets or AdaDistill teachers, or a file that is not a
    results.json, are refused."""
    kd_methods = load_example("kd_methods_mnist")

    def row(acc, ver=0.94):
        return {"test_acc": acc, "labels": True, "params": 100, "train_seconds": 1.0,
                "verification": {"accuracy": ver, "tar@far=1e-2": 0.8, "tar@far=1e-3": 0.5}}

    settings = {"epochs": 5, "teacher_epochs": 15, "lr": 0.001}
    full = {"settings": settings, "runs": [
        {"seed": s, "rows": {"student": row(0.988 + s / 1000), "ban_gen1": row(0.988 + s / 1000),
                             "ban_gen2": row(0.980), "teacher": row(0.994)}} for s in (0, 1)]}
    ban = {"settings": settings, "runs": [{"seed": s, "rows": {"ban_gen2": row(0.990 - s / 1000)}} for s in (0, 1)]}
    more = {"settings": settings, "runs": [{"seed": 3, "rows": {"student": row(0.987), "ban_gen1": row(0.987),
                                                                "ban_gen2": row(0.986), "teacher": row(0.993)}}]}
    per_seed = kd_methods.merge_runs([full, ban, more])
    assert [s.seed for s in per_seed] == [0, 1, 3]
    assert [s.rows["ban_gen2"]["test_acc"] for s in per_seed] == [0.990, 0.989, 0.986]   # the later file's
    table = kd_methods.aggregate(per_seed)
    assert list(table) == ["teacher", "student", "ban_gen1", "ban_gen2"]      # the table's order, not the files'
    assert table["ban_gen2"]["seeds"] == [0, 1, 3]
    assert table["ban_gen2"]["test_acc_mean"] == pytest.approx(100 * (0.990 + 0.989 + 0.986) / 3)
    (ban_target,) = [t for t in kd_methods.targets(table) if t["target"].startswith("BAN")]
    d = np.array([0.990 - 0.988, 0.989 - 0.989, 0.986 - 0.987]) * 100     # gen 2 − gen 1, seed by seed
    assert ban_target["seeds"] == [0, 1, 3] and ban_target["seeds_reached"] == 2
    assert ban_target["difference"] == pytest.approx(d.mean())
    assert ban_target["difference_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert ban_target["reached"] == (d.mean() >= 0)

    paths = []
    for k, report in enumerate((full, ban, more, {**ban, "settings": {"epochs": 15, "teacher_epochs": 15}},
                                {"settings": settings, "summary": {}})):
        paths.append(tmp_path / f"r{k}.json")
        paths[-1].write_text(json.dumps(report))
    ada = [tmp_path / f"ada_{t}.json" for t in ("ce", "arcface")]
    for k, (path, teacher) in enumerate(zip(ada, ("ce", "arcface"))):
        path.write_text(json.dumps({"settings": {**settings, "ada_teacher": teacher},
                                    "runs": [{"seed": k, "rows": {"adadistill": row(0.99, 0.99)}}]}))
    old_ta, new_ta, other_lr, broken = (tmp_path / f"{name}.json" for name in ("old_ta", "new_ta", "lr", "broken"))
    old_ta.write_text(json.dumps({"settings": settings,            # before --assistant: the 5-epoch KD student
                                  "runs": [{"seed": 0, "rows": {"ta_small_ta": row(0.985)}}]}))
    new_ta.write_text(json.dumps({"settings": {**settings, "assistant": "trained"},
                                  "runs": [{"seed": 1, "rows": {"ta_small_ta": row(0.985)}}]}))
    other_lr.write_text(json.dumps({**more, "settings": {**settings, "lr": 0.01}}))
    broken.write_text(json.dumps({"settings": settings, "runs": [{"rows": {}}]}))
    out = tmp_path / "chart"
    capsys.readouterr()
    report = kd_methods.main(["--chart-from", *map(str, paths[:3]), "--out", str(out)])
    printed = capsys.readouterr().out
    assert (out / "kd_methods.png").stat().st_size > 0 and list(report["summary"]) == list(table)
    assert "rows of seeds [0, 1, 3] from 3 results file(s)" in printed and "train time" not in printed
    assert "BAN gen 2 ≥ gen 1 (test accuracy): 98.83 vs 98.80 %; reached on 2 of 3 seeds" in printed
    assert "rows with fewer seeds" not in printed
    kd_methods.main(["--chart-from", *map(str, paths[:2]), str(ada[0]), "--out", str(out)])
    assert "rows with fewer seeds (theirs): AdaDistill (α′) + MSE (0)" in capsys.readouterr().out
    # a file older than --teacher-epochs trained its teacher for the students' epochs
    old_budget = tmp_path / "teacher5.json"
    old_budget.write_text(json.dumps({"settings": {"epochs": 5}, "runs": full["runs"]}))
    kd_methods.main(["--chart-from", str(old_budget), "--out", str(out)])
    assert "5 epoch(s) for every student, 5 for the teacher" in capsys.readouterr().out

    for bad, message in (([paths[0], paths[3]], "--chart-from: the runs have different budgets"),
                         (ada, "--chart-from: the seeds of the row 'adadistill' come from runs of different "
                               "--ada-teacher: ['arcface', 'ce']"),
                         ([old_ta, new_ta], "the seeds of the row 'ta_small_ta' come from runs of different "
                                            "--assistant: ['kd', 'trained']"),
                         ([paths[0], other_lr], "--chart-from: the runs differ in lr: ['0.001', '0.01']"),
                         ([broken], "broken.json: its runs are not a list of {seed, rows}"),
                         ([paths[4]], "r4.json: has no runs and settings"),
                         ([ROOT / "README.md"], "README.md: not a readable results.json"),
                         ([tmp_path / "none.json"], "none.json: not a readable results.json")):
        with pytest.raises(SystemExit):
            kd_methods.parse_args(["--chart-from", *map(str, bad), "--out", str(out)])
        done = run(["--chart-from", *map(str, bad), "--out", str(out)])
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_a_target_met_exactly_counts_as_reached():
    """QUD's "at most 0.3 below" holds at 0.3 below exactly, whatever the float rounding of the difference."""
    kd_methods = load_example("kd_methods_mnist")
    table = {row: {"seeds": [0], "test_acc_mean": acc, "test_acc_runs": [acc], "verification_mean": 94.0,
                   "verification_runs": [94.0]} for row, acc in (("qud", 98.99), ("fkd", 99.29))}
    (accuracy, _) = kd_methods.targets(table)
    assert 98.99 < 99.29 - 0.3 and 98.99 - 99.29 < -0.3           # in floats, just past the slack
    assert accuracy["reached"] and accuracy["seeds_reached"] == 1 and accuracy["same_seeds"]


@pytest.mark.parametrize("args, message", [
    (["--ada-teacher", "resnet"], "argument --ada-teacher: invalid choice: 'resnet'"),
    (["--ban-init", "zero"], "argument --ban-init: invalid choice: 'zero'"),
    (["--ada-teacher", "ce-centred", "--methods", "ban"], "--ada-teacher ce-centred: only the margin runs use it"),
    (["--ada-teacher", "arcface", "--methods", "kd"], "--ada-teacher arcface: only the margin runs use it"),
    (["--ada-teacher-epochs", "2"], "--ada-teacher-epochs: only --ada-teacher ce-arcface fine-tunes "
                                    "(got --ada-teacher ce, the default)"),
    (["--ada-teacher", "ce-arcface", "--methods", "adadistill", "--ada-teacher-epochs", "0"],
     "--ada-teacher-epochs: the number of fine-tuning epochs must be positive; got 0"),
    (["--methods", "kd,pupil"], "--methods: unknown method 'pupil'"),
    (["--methods", ","], "--methods: no method given"),
    (["--seeds", "0,0"], "--seeds: 0 is given twice"),
    (["--epochs", "0"], "--epochs: the number of epochs must be positive; got 0"),
    (["--teacher-epochs", "0"], "--teacher-epochs: the number of the teacher's epochs must be positive; got 0"),
    (["--schedule", "step"], "argument --schedule: invalid choice: 'step'"),
    (["--batch-size", "1"], "--batch-size: the batch size must be"),
    (["--lam", "1.5"], "--lam: λ, the weight of the distillation term, must be in [0, 1]"),
    (["--ada-lam", "-0.1"], "--ada-lam: λ, the weight of AdaDistill's MSE term, must be in [0, 1]"),
    (["--T", "0"], "--T: the temperature T must be a positive finite number"),
    (["--qud-tau", "-0.1"], "--qud-tau: QUD's temperature τ must be > 0; got -0.1"),
    (["--data-dir", "{empty}"], "--data-dir {empty}: the folder lacks all four MNIST files"),
])
def test_a_bad_option_is_one_error_line_before_any_work(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.replace("{empty}", str(empty)) for a in args]
    # no MNIST anywhere: a program that went on to load data would fail there, with status 1
    out = run([*args, "--out", str(tmp_path / "out")],
              env={"MINIKD_DATA": str(empty), "HOME": str(tmp_path), "MINIKD_MNIST_MIRRORS": (tmp_path / "x").as_uri()})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert [line for line in lines if "error:" in line] == [lines[-1]] and "Traceback" not in out.stderr
    assert message.replace("{empty}", str(empty)) in lines[-1], lines[-1]
    assert out.stdout == "" and not (tmp_path / "out").exists() and os.listdir(empty) == []


@pytest.mark.parametrize("E, T_e, stages", [
    (5, 15, [3, 6, 9, 12, 15]),      # the default: every third teacher epoch, the teacher itself last
    (5, 5, [1, 2, 3, 4, 5]),         # as many teacher epochs as student epochs: epoch e distils from e
    (5, 3, [1, 2, 2, 3, 3]),         # fewer: stages repeat, none skipped, none beyond the teacher
    (1, 15, [15]),
])
def test_pocketnet_walks_the_teachers_checkpoints_evenly_to_the_teacher(E, T_e, stages):
    example = load_example("kd_methods_mnist")
    assert example.pocketnet_stages(E, T_e) == stages


def test_pocketnet_stages_refuse_an_empty_schedule():
    example = load_example("kd_methods_mnist")
    with pytest.raises(ValueError, match="pocketnet_stages: T_e"):
        example.pocketnet_stages(5, 0)


@pytest.mark.slow
@needs_mnist
def test_pocketnet_distils_from_the_teachers_intermediate_checkpoints(tmp_path):
    # 2 student epochs, 4 teacher epochs: stages [2, 4], so the teacher of epoch 2 is reloaded from its checkpoint
    out = run(["--quick", "--methods", "pocketnet", "--epochs", "2", "--teacher-epochs", "4", "--out", str(tmp_path),
               "--no-progress"], env={"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["settings"]["epochs"] == 2 and report["settings"]["teacher_epochs"] == 4
    run0 = report["runs"][0]
    assert run0["rows"]["pocketnet"]["teacher_stages"] == [2, 4]
    assert set(run0["cache_seconds"]) == {"teacher", "teacher_epoch2"}     # the checkpoint's outputs, computed once
    assert run0["rows"]["pocketnet"]["test_acc"] > 0.5


def test_indexed_batches_are_the_data_loaders_batches_with_their_indices():
    common = load_example("common")
    x = np.arange(50, dtype=np.float32).reshape(10, 5)
    y = np.arange(10) % 3
    for (xa, ya), (xb, yb, i) in zip(DataLoader(x, y, 4, shuffle=True, seed=7),
                                     common.IndexedLoader(x, y, 4, seed=7)):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        np.testing.assert_array_equal(x[i], xb.numpy())


def test_fit_hands_extra_batch_parts_to_the_loss_and_calls_back_after_each_epoch():
    common = load_example("common")
    mk.manual_seed(0)
    model = mk.nn.Linear(5, 3)
    x, y = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32), np.arange(12) % 3
    seen, ends = [], []

    def loss_fn(m, xb, yb, i):
        seen.append(i)
        return common.ce_step(m, xb, yb)

    common.fit(model, optim.Adam(model.parameters()), loss_fn, common.IndexedLoader(x, y, 4, seed=0), epochs=2,
               progress=False, on_epoch_end=lambda epoch, m: ends.append((epoch, m is model)))
    assert ends == [(1, True), (2, True)]
    assert len(seen) == 6 and sorted(np.concatenate(seen[:3]).tolist()) == list(range(12))


def test_fit_calls_after_step_after_every_optimizer_step_and_before_the_schedule():
    common = load_example("common")
    mk.manual_seed(0)
    model = mk.nn.Linear(5, 3)
    x, y = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32), np.arange(12) % 3
    opt = optim.SGD(model.parameters(), lr=0.5)
    schedule = optim.CosineAnnealingLR(opt, T_max=6)
    calls = []

    def after_step(m):  # sees the weights the optimizer just wrote, and the learning rate of that step
        calls.append((m is model, opt.lr))
        model.weight.data[...] = 0  # what it does to the weights is what the next step starts from

    common.fit(model, opt, common.ce_step, mk.data.DataLoader(x, y, 4), epochs=2, schedule=schedule,
               progress=False, after_step=after_step)
    assert len(calls) == 6 and all(same for same, _ in calls)  # 2 epochs × 3 batches
    assert calls[0][1] == 0.5 and calls[1][1] < 0.5  # before the schedule's step: the first at the base rate
    assert (model.weight.data == 0).all()


def test_fit_stops_at_the_end_of_the_epoch_whose_loss_is_not_finite():
    """A loss that overflows to inf or nan: fit raises TrainingDiverged after that epoch, naming the
    run, the epoch and the learning rate, instead of training on and reporting meaningless numbers."""
    common = load_example("common")
    mk.manual_seed(0)
    model = mk.nn.Linear(5, 3)
    x, y = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32), np.arange(12) % 3
    ends = []

    def loss_fn(m, xb, yb):
        loss, logits = common.ce_step(m, xb, yb)
        return (loss * float("nan") if len(ends) == 1 else loss), logits   # epoch 2 goes wrong

    with pytest.raises(common.TrainingDiverged, match=r"net epoch 2/3: the training loss is nan .*diverged.*0\.01"):
        common.fit(model, optim.SGD(model.parameters(), lr=0.01), loss_fn, DataLoader(x, y, 4), epochs=3,
                   name="net", progress=False, on_epoch_end=lambda epoch, m: ends.append(epoch))
    assert ends == [1]                                                     # epoch 1 finished, epoch 2 did not
    common.stop_if_diverged(1.5, "fine", 0.1)                              # a finite loss passes
    with pytest.raises(common.TrainingDiverged, match="G's loss is inf"):
        common.stop_if_diverged(float("inf"), "cGAN epoch 1/4", 2e-4, "G's loss")


def test_a_model_an_example_trained_is_kept_at_the_hands_ons_path_by_a_full_run_only(tmp_path, capsys):
    common = load_example("common")
    model, path = mk.nn.Linear(2, 2), tmp_path / "runs" / "teacher_student" / "teacher_seed0.npz"
    common.keep_trained_model(model, path, quick=True)
    assert not path.exists() and "a --quick model: not saved" in capsys.readouterr().out
    common.keep_trained_model(model, path, quick=False)
    assert sorted(mk.load(path)) == ["bias", "weight"]


def test_fit_on_a_device_waits_for_it_once_per_epoch_and_gives_the_cpus_history():
    """Without a progress bar, ``common.fit`` reads the losses and hits of an epoch's batches from
    the device at the epoch's end (each read a wait for a GPU), not after every step; the history is
    the CPU's. IndexedLoader's batches go to the device, its indices stay on the host."""
    from tests import standin

    common = load_example("common")
    x, y = np.random.default_rng(0).standard_normal((12, 5)).astype(np.float32), np.arange(12) % 3
    histories, syncs = [], []
    for device in ("cpu", "standin"):
        mk.manual_seed(0)
        model = mk.nn.Linear(5, 3).to(device)
        syncs = []

        def loss_fn(m, xb, yb, i, device=device, syncs=syncs):
            assert xb.device == yb.device == device and isinstance(i, np.ndarray)
            syncs.append(standin.HOST_SYNCS["count"])
            return common.ce_step(m, xb, yb)

        loader = common.IndexedLoader(x, y, 4, seed=0, device=device)
        history, _ = common.fit(model, optim.Adam(model.parameters()), loss_fn, loader, epochs=2, progress=False)
        histories.append(history)
    assert syncs[:3] == [syncs[0]] * 3 and syncs[3:] == [syncs[3]] * 3     # no wait between the steps of an epoch
    assert syncs[3] > syncs[2]                                             # the reading at the end of epoch 1
    cpu, dev = histories
    for a, b in zip(cpu, dev):
        assert a["train_acc"] == b["train_acc"] and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)


def test_quds_teacher_head_reads_a_centred_embedding_as_the_teachers_own():
    """QUD's label-free classifier: an embedding pointing along f_t − μ, of any length, gives the
    teacher's own logits fc(f_t) when r is ‖f_t − μ‖; pointing along f_t instead, it does not."""
    example = load_example("kd_methods_mnist")
    mk.manual_seed(0)
    fc = mk.nn.Linear(6, 4)
    rng = np.random.default_rng(1)
    f_t = np.maximum(rng.standard_normal((5, 6)), 0).astype(np.float32) + 1.0   # post-ReLU-like: a large mean
    mu = f_t.mean(axis=0)
    r = np.linalg.norm(f_t[0] - mu)
    head = example.TeacherHead(fc, mu, r)
    want = fc(mk.tensor(f_t[:1])).numpy()
    np.testing.assert_allclose(head(mk.tensor(3.0 * (f_t[:1] - mu))).numpy(), want, rtol=1e-5, atol=1e-5)
    assert np.abs(head(mk.tensor(f_t[:1])).numpy() - want).max() > 0.1


@pytest.mark.slow
@needs_mnist
def test_ban_init_same_starts_every_generation_from_gen_1s_weights(tmp_path):
    report = quick_report(tmp_path, "--methods", "ban", "--ban-init", "same")
    rows = report["runs"][0]["rows"]
    assert [rows[f"ban_gen{g}"]["init_seed"] for g in (2, 3)] == [0, 0]
    assert report["settings"]["ban_init"] == "same"


@pytest.mark.slow
@needs_mnist
def test_the_assistant_kd_is_the_kd_runs_student(tmp_path):
    report = quick_report(tmp_path, "--methods", "ta", "--assistant", "kd")
    assert set(report["summary"]) == {"teacher", "kd", "ta_small_alone", "ta_small_kd", "ta_small_ta"}
    assert report["runs"][0]["rows"]["ta_small_ta"]["assistant"] == "kd"
    assert report["settings"]["assistant"] == "kd"
