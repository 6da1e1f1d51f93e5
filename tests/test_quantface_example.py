"""QuantFace on synthetic data (examples/quantface_mnist.py, issue 14): a `--quick` run that reads
only the test files, the pool checks, and bad options refused before any work."""

import json
from pathlib import Path

import numpy as np
import pytest

import minikd as mk
from minikd.data.mnist import FILES, find_data_dir
from minikd.models import StudentModel, TeacherModel
from tests.util import assert_platform, load_example, needs_mnist


@pytest.fixture
def checkpoints(tmp_path):
    """Full-precision teacher and student (untrained: the run only has to work) and a pool of 96 images."""
    mk.manual_seed(0)
    paths = {"teacher": tmp_path / "teacher.npz", "student": tmp_path / "student.npz"}
    mk.save(TeacherModel().state_dict(), paths["teacher"])
    mk.save(StudentModel().state_dict(), paths["student"])
    pool = tmp_path / "pool.npz"
    np.savez(pool, images=np.random.default_rng(0).standard_normal((96, 1, 28, 28)).astype(np.float32))
    return paths, pool


@needs_mnist
def test_quick_run_with_synthetic_data_only_reads_no_training_image(tmp_path, checkpoints):
    example = load_example("quantface_mnist")
    (paths, pool), data = checkpoints, tmp_path / "test_files_only"
    data.mkdir()
    for name in FILES["test"]:  # the folder holds the test files only: a read of the training set would fail
        (data / name).symlink_to(find_data_dir(None, FILES["test"]) / name)
    out = tmp_path / "out"
    report = example.main(["--quick", "--no-real", "--synthetic", f"noise={pool}", "--teacher", str(paths["teacher"]),
                           "--student", str(paths["student"]), "--data-dir", str(data), "--out", str(out),
                           "--no-progress"])
    rows = report["rows"]
    assert {(r["model"], r["source"], r["method"], r["bits"]) for r in rows} == (
        {(m, "-", "float32", 32) for m in ("teacher", "student")}
        | {(m, "noise", method, b) for m in ("teacher", "student") for method in example.METHODS
           for b in (8, 4)})
    for r in rows:
        assert 0.0 <= r["test_acc"] <= 1.0
    # an 8-bit PTQ copy of a model predicts what the model predicts, almost everywhere
    fp = {r["model"]: r["test_acc"] for r in rows if r["method"] == "float32"}
    for r in rows:
        if r["method"] == "PTQ" and r["bits"] == 8:
            assert abs(r["test_acc"] - fp[r["model"]]) < 0.05
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["real"] is False and saved["settings"]["synthetic"] == [["noise", str(pool)]]
    assert_platform(saved)
    assert (out / "quantface.png").stat().st_size > 10_000


def test_pool_must_hold_finite_mnist_shaped_images(tmp_path):
    example = load_example("quantface_mnist")
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected images of shape N×1×28×28.*\(4, 28, 28\)"):
        example.load_pool(bad, "x")
    np.savez(bad, pixels=np.zeros((4, 1, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="no 'images' array"):
        example.load_pool(bad, "x")
    np.savez(bad, images=np.full((2, 1, 28, 28), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        example.load_pool(bad, "x")


def test_cycled_draws_every_image_before_repeating():
    example = load_example("quantface_mnist")
    images = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 28, 28), dtype=np.float32)
    drawn = example.cycled(images, 12, seed=0)[:, 0, 0, 0]
    assert sorted(drawn[:5]) == sorted(drawn[5:10]) == [0, 1, 2, 3, 4] and len(drawn) == 12


@pytest.mark.parametrize("extra, message", [
    (["--no-real"], "--no-real without --synthetic"),
    (["--synthetic", "nopath"], "expected NAME=PATH"),
    (["--synthetic", "real=x.npz"], "the name 'real' is kept"),
    (["--synthetic", "a=/no/such/pool.npz"], "no such file"),
    (["--bits", "8,x"], "--bits: expected comma-separated integers"),
    (["--bits", "1"], "--bits: bit width b must be an integer in 2..16; got 1"),
    (["--T", "0"], "--T: the temperature T must be"),
    (["--models", "teacher,giant"], "--models: unknown 'giant' in 'teacher,giant'"),
    (["--holdout", "0"], "--holdout: the number of held-out images must be"),
    (["--lr", "-1"], "--lr: the learning rate must be"),
    (["--lr", "nan"], "--lr: the learning rate must be a finite number"),
    (["--checks", "5", "--qat-images", "4"], "--checks 5: at most one validation per QAT image"),
    (["--holdout", "60000"], "--holdout 60,000: the real rows hold it out of the 60,000 training images"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, checkpoints, capsys, extra, message):
    example = load_example("quantface_mnist")
    paths, _ = checkpoints
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]),
                            "--out", str(tmp_path / "out"), *extra])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_is_refused(tmp_path, capsys):
    example = load_example("quantface_mnist")
    with pytest.raises(SystemExit):
        example.parse_args(["--teacher", str(tmp_path / "none.npz"), "--out", str(Path(tmp_path) / "o")])
    assert "no such file" in capsys.readouterr().err


def test_a_conditional_generator_checkpoint_is_sampled_class_balanced(tmp_path):
    example = load_example("quantface_mnist")
    from minikd.models import ConditionalGenerator
    mk.manual_seed(0)
    G = ConditionalGenerator()
    state = dict(G.state_dict())
    state["meta.arch"] = np.asarray("ConditionalGenerator")
    mk.save(state, tmp_path / "generator.npz")
    images = example.load_pool(tmp_path / "generator.npz", "generator", n_generated=30, seed=0)
    assert images.shape == (30, 1, 28, 28) and images.dtype == np.float32 and np.isfinite(images).all()
    G.eval()
    with mk.no_grad():  # the first image is G(z, 0): the same weights give it back
        again = example.generate(tmp_path / "generator.npz", 30, seed=0)
    np.testing.assert_array_equal(images, again)
    assert images.std() > 0.05  # not a constant picture


@pytest.mark.parametrize("content, message", [
    (np.zeros((4, 1, 32, 32), np.float32), "expected images of shape N×1×28×28"),
    (np.zeros((0, 1, 28, 28), np.float32), "N ≥ 1"),
    (np.zeros((4, 1, 28, 28), np.uint8), "raw pixels"),
    (np.full((4, 1, 28, 28), 255.0, np.float32), "raw pixels"),
    (np.full((4, 1, 28, 28), np.inf, np.float32), "NaN or ±inf"),
    (None, "not a .npz pool of images nor a generator checkpoint (not a .npz (zip) file)"),
])
def test_a_bad_pool_is_refused_before_any_work(tmp_path, checkpoints, capsys, content, message):
    example = load_example("quantface_mnist")
    paths, _ = checkpoints
    pool = tmp_path / "pool.npz"
    if content is None:
        pool.write_text("not a zip file")
    else:
        np.savez(pool, images=content)
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--no-real",
                            "--synthetic", f"p={pool}", "--out", str(tmp_path / "out")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def save_generator(path, drop=(), **meta):
    """A conditional generator's checkpoint as train_conditional_generator.py writes it (untrained weights),
    with ``meta`` (z_dim, num_classes) as given and the weights named in ``drop`` left out."""
    from minikd.models import ConditionalGenerator

    mk.manual_seed(0)
    state = {k: v for k, v in ConditionalGenerator().state_dict().items() if k not in drop}
    state.update({f"meta.{k}": np.asarray(v) for k, v in {"arch": "ConditionalGenerator", **meta}.items()})
    mk.save(state, path)


def damaged(path, how: str):
    """``path`` truncated to half its bytes, or one byte of its data (a third of the way in) flipped."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def make_pool(tmp_path, pool, case):
    """The file of ``case`` (a damaged pool or generator, see the parameters below) in ``tmp_path``."""
    path = tmp_path / "damaged.npz"
    if case in ("truncated pool", "flipped pool"):
        path.write_bytes(pool.read_bytes())
        damaged(path, case.split()[0])
    elif case == ".npy renamed .npz":
        np.save(tmp_path / "images.npy", np.zeros((96, 1, 28, 28), np.float32))
        (tmp_path / "images.npy").rename(path)
    elif case in ("truncated generator", "flipped generator"):
        save_generator(path, z_dim=100, num_classes=10)
        damaged(path, case.split()[0])
    elif case.startswith("meta.z_dim"):
        save_generator(path, z_dim=float(case.split()[1]), num_classes=10)
    elif case == "meta.num_classes 12":
        save_generator(path, z_dim=100, num_classes=12)
    else:
        save_generator(path, drop=("up2.bias",), z_dim=100)
    return path


DAMAGED = [  # (the file, what the one error line says after "--synthetic p=PATH: ")
    ("truncated pool", "not a .npz pool of images nor a generator checkpoint (the file is a damaged or truncated "
                       ".npz archive"),
    ("flipped pool", "(entry 'images' of the file is damaged (BadZipFile: Bad CRC-32"),
    (".npy renamed .npz", "(the file holds a single array (a .npy file), not an .npz archive of named arrays)"),
    ("truncated generator", "(the file is a damaged or truncated .npz archive"),
    ("flipped generator", "(entry 'fc.weight' of the file is damaged (BadZipFile: Bad CRC-32"),
    ("meta.z_dim 64", "a conditional generator's checkpoint that does not load: its meta.z_dim is 64.0, but its "
                      "weights are a generator's with z_dim 100"),
    ("meta.z_dim 1e11", "does not load: its meta.z_dim is 100000000000.0, but its weights are a generator's with "
                        "z_dim 100"),
    ("meta.num_classes 12", "does not load: its meta.num_classes is 12, but its weights are a generator's with "
                            "num_classes 10"),
    ("a weight missing", "does not load: load_state_dict into ConditionalGenerator failed: missing keys: up2.bias"),
]


@pytest.mark.parametrize("case, message", DAMAGED, ids=[c for c, _ in DAMAGED])
def test_a_damaged_pool_or_generator_is_refused_by_the_checks_naming_the_file(tmp_path, checkpoints, capsys, case,
                                                                              message):
    """The check reads the whole file, as the run would, and rebuilds a generator: a truncated or byte-flipped
    file, a .npy under an .npz name, a generator whose weights do not fit its meta (z_dim 1e11 would ask for
    petabytes) or lack one, is one error line naming --synthetic and the file, status 2 — no traceback, and
    not a crash after the test set is read."""
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    path = make_pool(tmp_path, pool, case)
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--holdout", "16",
                            "--synthetic", f"p={path}", "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"error: --synthetic p={path}: " in errors[0] and message in errors[0], captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_a_sound_generator_checkpoint_passes_the_check(tmp_path, checkpoints):
    example = load_example("quantface_mnist")
    paths, _ = checkpoints
    save_generator(tmp_path / "generator.npz", z_dim=100, num_classes=10)
    args = example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]),
                               "--synthetic", f"g={tmp_path / 'generator.npz'}", "--out", str(tmp_path / "out")])
    assert args.synthetic == [("g", str(tmp_path / "generator.npz"))]


def test_a_pool_name_given_twice_is_refused(tmp_path, checkpoints, capsys):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    with pytest.raises(SystemExit):
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]),
                            "--synthetic", f"a={pool}", "--synthetic", f"a={pool}", "--holdout", "16"])
    assert "the name 'a' is given twice" in capsys.readouterr().err


def test_a_data_free_teacher_checkpoint_with_meta_entries_is_accepted(tmp_path, checkpoints):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    state = dict(mk.load(paths["teacher"]))
    state["meta.arch"] = np.asarray("slide")     # what data_free_kd.py --train-teacher slide adds
    mk.save(state, tmp_path / "teacher_slide.npz")
    args = example.parse_args(["--teacher", str(tmp_path / "teacher_slide.npz"), "--models", "teacher",
                               "--synthetic", f"p={pool}", "--holdout", "16", "--out", str(tmp_path / "o")])
    assert args.models == ["teacher"]
    weights = example.weights_of(tmp_path / "teacher_slide.npz")
    assert "meta.arch" not in weights
    TeacherModel().load_state_dict(weights)  # raises on a missing or extra key


@needs_mnist
def test_seeds_take_each_seeds_files_and_report_mean_and_std(tmp_path):
    """--seeds 0,1 with {seed} in the paths: seed s quantizes the models and pool of seed s; the
    summary is the mean and sample std over the seeds, the per-seed values beside them."""
    example = load_example("quantface_mnist")
    for seed in (0, 1):
        mk.manual_seed(seed)
        mk.save(StudentModel().state_dict(), tmp_path / f"student_seed{seed}.npz")
        images = np.random.default_rng(seed).standard_normal((64, 1, 28, 28)).astype(np.float32)
        np.savez(tmp_path / f"pool_seed{seed}.npz", images=images)
    report = example.main(["--quick", "--no-real", "--models", "student", "--seeds", "0,1", "--bits", "8",
                           "--student", str(tmp_path / "student_seed{seed}.npz"),
                           "--synthetic", f"noise={tmp_path / 'pool_seed{seed}.npz'}",
                           "--out", str(tmp_path / "out"), "--no-progress"])
    assert [r["seed"] for r in report["runs"]] == [0, 1]
    fp = {r["seed"]: r["test_acc"] for r in report["rows"] if r["method"] == "float32"}
    assert fp[0] != fp[1]          # two different untrained students: each seed loaded its own file
    key = ("model", "source", "method", "bits")
    for s in report["summary"]:
        values = [r["test_acc"] for r in report["rows"] if all(r[k] == s[k] for k in key)]
        assert s["per_seed"] == {"0": values[0], "1": values[1]}
        assert s["test_acc"] == pytest.approx(np.mean(values))
        assert s["test_acc_std"] == pytest.approx(np.std(values, ddof=1))
        changes = [v - fp[seed] for seed, v in enumerate(values)]     # each seed against its own float32 model
        assert s["change"] == pytest.approx(np.mean(changes))
        assert s["change_std"] == pytest.approx(np.std(changes, ddof=1))
    assert {(s["method"], s["bits"]) for s in report["summary"]} == {
        ("float32", 32), ("PTQ", 8), ("QAT (QuantFace)", 8), ("QAT, validated", 8)}


def test_a_file_missing_for_one_seed_is_refused_naming_the_seed(tmp_path, checkpoints, capsys):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    pool.rename(tmp_path / "pool_seed0.npz")      # seed 0's pool exists, seed 1's does not
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--seeds", "0,1",
                            "--synthetic", f"am={tmp_path / 'pool_seed{seed}.npz'}", "--holdout", "16",
                            "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert f"--synthetic am={tmp_path / 'pool_seed1.npz'} (seed 1): no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        example.parse_args(["--teacher", str(tmp_path / "teacher_seed{seed}.npz"), "--seeds", "0,1",
                            "--out", str(tmp_path / "o")])
    assert "teacher_seed0.npz" in capsys.readouterr().err


@needs_mnist  # --no-real still needs the test files, and they are checked first
def test_a_pool_no_larger_than_the_holdout_is_refused(tmp_path, checkpoints, capsys):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints                      # 96 images
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--no-real",
                            "--synthetic", f"p={pool}", "--holdout", "96", "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    assert "the pool holds 96 images, and --holdout 96 of them are held out" in capsys.readouterr().err
    args = example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--no-real",
                               "--synthetic", f"p={pool}", "--holdout", "95", "--out", str(tmp_path / "out")])
    assert args.holdout == 95


def test_the_heldout_split_is_disjoint_and_seeded():
    example = load_example("quantface_mnist")
    images = np.arange(50, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 28, 28), dtype=np.float32)
    train, held = example.split_heldout(images, 12, seed=3)
    a, b = set(train[:, 0, 0, 0]), set(held[:, 0, 0, 0])
    assert len(held) == 12 and len(train) == 38 and not a & b and a | b == set(range(50))
    np.testing.assert_array_equal(held, example.split_heldout(images, 12, seed=3)[1])
    assert set(example.split_heldout(images, 12, seed=4)[1][:, 0, 0, 0]) != b


def test_heldout_loss_is_zero_for_the_model_itself_and_leaves_the_mode_alone():
    example = load_example("quantface_mnist")
    mk.manual_seed(0)
    fp = StudentModel().eval()
    held = np.random.default_rng(0).standard_normal((70, 1, 28, 28)).astype(np.float32)
    validate = example.heldout_loss(fp, held, T=3.0, batch_size=32)   # 3 batches, the last one short
    assert validate(fp) == pytest.approx(0.0, abs=1e-6)
    q = mk.quant.prepare_qat(fp, w_bits=2, a_bits=2)
    with mk.no_grad():
        q(mk.tensor(held[:32]))                    # a training forward sets the input ranges
    loss = validate(q)
    assert loss > 1e-3 and q.training              # a 2-bit copy is not the model; still in training mode
    # the mean over all 70 images, each batch weighted by its size
    q.eval()
    total = 0.0
    with mk.no_grad():
        for a in (0, 32, 64):
            x = mk.tensor(held[a:a + 32])
            total += mk.quant.quantface_loss(*q(x, return_features=True), *fp(x, return_features=True)).item() * len(x)
    assert loss == pytest.approx(total / 70, rel=1e-5)


@needs_mnist
def test_the_validated_row_is_the_lowest_heldout_loss_of_ptq_and_the_checkpoints(tmp_path, checkpoints):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    report = example.main(["--quick", "--no-real", "--models", "student", "--bits", "8,4", "--synthetic", f"n={pool}",
                           "--student", str(paths["student"]), "--out", str(tmp_path / "out"), "--no-progress"])
    rows = {(r["method"], r["bits"]): r for r in report["rows"]}
    for bits in (8, 4):
        ptq, qat, best = rows["PTQ", bits], rows["QAT (QuantFace)", bits], rows["QAT, validated", bits]
        curve = best["heldout_curve"]                  # --quick: validated at 0 (PTQ), 128 and 256 images
        assert [n for n, _ in curve] == [0, 128, 256]
        assert curve[0][1] == ptq["heldout_loss"] and curve[-1][1] == qat["heldout_loss"]
        seen, loss = min(curve, key=lambda c: c[1])
        assert best["heldout_loss"] == loss
        assert best["picked"] == ("PTQ" if seen == 0 else seen)
        if seen == 0:
            assert best["test_acc"] == ptq["test_acc"]
        elif seen == 256:
            assert best["test_acc"] == qat["test_acc"]
        assert best["images"] == 128 + 256 + 32      # --quick: calibration, the pass, the held-out images


def test_no_real_without_any_test_files_names_only_the_test_files(tmp_path, checkpoints, capsys, monkeypatch):
    example = load_example("quantface_mnist")
    paths, pool = checkpoints
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        example.parse_args(["--teacher", str(paths["teacher"]), "--student", str(paths["student"]), "--no-real",
                            "--synthetic", f"p={pool}", "--holdout", "16", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "with --no-real only the test files t10k-images-idx3-ubyte.gz" in err
    assert not (tmp_path / "out").exists()
