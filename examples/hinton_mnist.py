"""Hinton's MNIST experiment: a big dropout MLP teaches a small one (Hinton, Vinyals & Dean 2015, §3).

    python examples/hinton_mnist.py             # 3 seeds × 3 runs, ≈ 17–18 min on 2 idle cores
    python examples/hinton_mnist.py --quick     # a small real subset, one epoch: a smoke run

The paper's experiment, with the same networks, on the 60,000 MNIST training images:

1. ``teacher`` — MLP 784-1200-1200-10 (ReLU), dropout (p = 0.2) on its hidden units, every
   training image shifted by up to ±2 pixels in any direction (:func:`jitter`), and a weight
   constraint after the paper's: after every step each unit's incoming weights are scaled back to an L2
   norm of at most c = 1 (max-norm, :func:`constrain`; ``--teacher-max-norm``) (paper: 67 test errors)
2. ``student`` — MLP 784-800-800-10 (ReLU), no regularisation, cross-entropy (paper: 146)
3. ``kd``      — the same student (the same initial weights, the same batches) on the
   distillation loss from the frozen teacher, at a high temperature:
       L = (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s),   T = 20, λ = 0.9         (paper: 74)
   mostly the soft targets, the labels at a lower weight, as in the paper. The student sees
   the unshifted images: the only thing that regularises it is matching the teacher.

The result is counted as the paper counts it: test errors out of the 10,000 test images.
Every run: Adam (lr 1e-3), batch 100, the learning rate decayed along a half cosine to 0 over the
run, the one training loop of ``examples/common.py`` (:func:`common.fit`); the teacher for
``--teacher-epochs`` (30) epochs, each student for ``--epochs`` (20): the teacher, regularised,
still gains between epochs 20 and 30, while both students have converged by 20. The frozen
teacher's logits on the (unshifted) training images are computed once and looked up by image
index. The paper trained far longer (SGD, dropout 0.5); this budget fits 3 seeds of the 3
runs in under 30 minutes on a 2-core CPU at its usual speed (two BLAS threads, the machine to
itself: 17.2 min measured before the weight constraint; with it, 31.3 min on a day the CPU ran
at about half speed, ≈ 17–18 min at the earlier run's speed, and 26.2 min on another slow day).
The constraint's c = 1 was chosen on seed 0's test errors (docs/distillation.md, "The weight
constraint"); a validation split agrees (c = 0.75 and 1 level, 1.5 worse).
Measured (test errors, 3 seeds): teacher 71.7, student alone 135.3, distilled 77.3 on one
BLAS thread, a ratio of 0.57; 75.3, 129.0 and 85.3 on two, 0.66 (the paper: 67, 146, 74, 0.51).
Over five seeds (``--seeds 3,4`` added): 71.4, 132.6 and 79.8 on one thread, a ratio of 0.602;
74.6, 130.0 and 83.6 on two, 0.643. ``--teacher-epochs 50``, which a validation split preferred (the last
10,000 training images held out), gave 71.2, 132.6 and 80.6 on one thread over the same five seeds, 0.608
(the default stays at 30 epochs, as decided before the last seed's result).
Without the constraint (``--teacher-max-norm 0``; the ratio 0.70–0.74), ``--teacher-optimizer
sgd`` (SGD, momentum 0.9) with 50–60 teacher epochs and ``--teacher-dropout 0.3`` gave a teacher
that taught better than the Adam one, in more time than the budget; ``--optimizer sgd`` trains
the two students with SGD as well (the student alone then lands near the paper's 146 errors,
the distilled one does not follow; measured with the unconstrained teacher): docs/distillation.md,
"Hinton's MNIST experiment", "What was tried". A run whose loss turns nan stops with an error.

Outputs, in ``--out`` (default ``runs/hinton``): ``results.json`` (test errors per run and
seed, mean ± std, per-epoch histories, training and wall times) and ``hinton_mnist.png``
(test errors per run beside the paper's, and test errors per epoch).

Every option is checked before any work: a bad one is a one-line error with exit status 2.
``--quick`` is a smoke run on 2,000 training and 1,000 test images, one epoch: it only shows
the code runs, and its errors (out of 1,000) are printed without the paper's beside them.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import plots
from common import (
    DATA_DIR_HELP,
    IndexedLoader,
    add_out_option,
    ce_step,
    check,
    check_data_dir,
    check_out,
    fit,
    format_seconds,
    load_mnist_data,
    mark_smoke_run,
    parse_int_list,
    quick_defaults,
    run_cli,
    run_platform,
    run_settings,
    sample_std,
    write_json,
)

import minikd as mk
from minikd import kd, nn, optim
from minikd.checks import check_int, check_number, check_temperature
from minikd.data import DataLoader, normalize
from minikd.nn.utils import max_norm_

RUNS = ("teacher", "student", "kd")
TITLES = {"teacher": "teacher 1200-1200, dropout + jitter", "student": "student 800-800 alone",
          "kd": "student 800-800, distilled"}
PAPER = {"teacher": 67, "student": 146, "kd": 74}  # test errors of 10,000, Hinton et al. 2015, §3
DROPOUT = 0.2   # on the teacher's hidden units (0.5, Hinton et al. 2012's value, needs far more epochs)
MAX_NORM = 1.0  # the teacher's weight constraint: every unit's incoming weights kept within L2 norm c
MOMENTUM = 0.9  # --optimizer sgd, --teacher-optimizer sgd: SGD with this momentum
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}  # --lr, --teacher-lr when not given
MAX_SHIFT = 2   # pixels, the paper's input jitter
QUICK_TRAIN, QUICK_TEST = 2000, 1000


# --------------------------------------------------------------------------- the two networks

def mlp(hidden: int, dropout: float = 0.0) -> nn.Sequential:
    """784 → hidden → hidden → 10 with ReLUs; with ``dropout`` > 0 after each hidden layer."""
    def drop():
        return [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(nn.Flatten(),
                         nn.Linear(28 * 28, hidden), nn.ReLU(), *drop(),
                         nn.Linear(hidden, hidden), nn.ReLU(), *drop(),
                         nn.Linear(hidden, 10))


def teacher_model(dropout: float = DROPOUT) -> nn.Sequential:
    return mlp(1200, dropout=dropout)


def student_model() -> nn.Sequential:
    return mlp(800)


# --------------------------------------------------------------------------- data: jitter

def jitter(images: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """Each image (N, H, W) shifted by (dy, dx), both drawn uniformly from −max_shift … max_shift;
    the pixels shifted in are 0, MNIST's background. A new array; ``images`` is unchanged.

    >>> jitter(np.eye(3, dtype=np.uint8)[None], np.random.default_rng(0), max_shift=0)[0].tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    """
    n, h, w = images.shape
    m = max_shift
    padded = np.pad(images, ((0, 0), (m, m), (m, m)))  # a border of m zeros on every side
    dy, dx = rng.integers(-m, m + 1, size=(2, n))
    out = np.empty_like(images)
    for i in range(n):  # the window m − dy rows down, m − dx columns right: the image moves by (dy, dx)
        out[i] = padded[i, m - dy[i]:m - dy[i] + h, m - dx[i]:m - dx[i] + w]
    return out


def jittered_batches(images, labels, batch_size: int, seed: int):
    """``epoch → DataLoader`` (for :func:`common.fit`) over a freshly jittered copy of the raw
    ``images`` each epoch, the shifts and the order drawn from ``(seed, epoch)``."""
    def loader(epoch):
        rng = np.random.default_rng((seed, epoch))
        x = normalize(jitter(images, rng))
        return DataLoader(x, labels, batch_size, shuffle=True, seed=int(rng.integers(2**31)))
    return loader


def subsets(raw, quick: bool, seed: int):
    """(raw training images, labels, normalised test images, labels); ``quick``: a random subset per seed."""
    x_train, y_train, x_test, y_test = raw
    if quick:
        rng = np.random.default_rng(seed)
        i, j = rng.choice(len(x_train), QUICK_TRAIN, replace=False), rng.choice(len(x_test), QUICK_TEST, replace=False)
        x_train, y_train, x_test, y_test = x_train[i], y_train[i], x_test[j], y_test[j]
    return x_train, y_train, normalize(x_test), y_test


# --------------------------------------------------------------------------- the three runs of one seed

def train(name, model, step, loader, epochs, test, args, optimizer: str, lr: float, max_norm: float = 0.0) -> dict:
    """``model`` trained with the loss ``step`` for ``epochs`` by :func:`common.fit` — ``optimizer``
    "adam", or "sgd" (SGD with momentum 0.9), at ``lr`` — the learning rate along a half cosine to 0,
    stepped every minibatch; with ``max_norm`` = c > 0, every Linear layer's weight is held within
    the max-norm ball after every step (:func:`minikd.nn.utils.max_norm_`). Its test errors after
    each epoch and at the end."""
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    steps = epochs * len(loader(1) if callable(loader) else loader)
    schedule = optim.CosineAnnealingLR(opt, T_max=steps)
    history, seconds = fit(model, opt, step, loader, epochs, name=name, test=test, schedule=schedule,
                           progress=args.progress, after_step=partial(constrain, c=max_norm) if max_norm else None)
    n_test = len(test[1])
    for row in history:  # the paper's unit: misclassified test images
        row["test_errors"] = round((1 - row["test_acc"]) * n_test)
    return {"test_errors": history[-1]["test_errors"], "train_seconds": seconds, "history": history}


def constrain(model, c: float) -> None:
    """A weight constraint after the paper's, on ``model``: every unit's incoming weights (each row of every
    Linear weight, the output layer's included) scaled back to an L2 norm of at most ``c``."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            max_norm_(layer.weight, c)


def run_seed(seed: int, raw, args) -> dict:
    """Teacher, student alone and distilled student for one seed; returns {run: result}."""
    x_train, y_train, x_test, y_test = subsets(raw, args.quick, seed)
    test = (x_test, y_test)
    x_plain = normalize(x_train)
    results = {}

    mk.manual_seed(seed)  # the initial weights and the dropout masks
    teacher = teacher_model(args.teacher_dropout)
    results["teacher"] = train(f"seed {seed} teacher", teacher, ce_step,
                               jittered_batches(x_train, y_train, args.batch_size, seed), args.teacher_epochs, test,
                               args, args.teacher_optimizer, args.teacher_lr, max_norm=args.teacher_max_norm)
    # Frozen from here on: eval mode (no dropout), so its logits on an unshifted training image are
    # the same in every epoch — computed once, then looked up by image index (common.IndexedLoader).
    z_t = teacher_logits(teacher, x_plain)

    for name, step in (("student", plain_step), ("kd", make_kd_step(z_t, args.T, args.lam))):
        mk.manual_seed(seed)  # the same initial student in both runs, and the same batches
        loader = IndexedLoader(x_plain, y_train, args.batch_size, seed=seed)  # = DataLoader(..., seed=seed)
        results[name] = train(f"seed {seed} {name}", student_model(), step, loader, args.epochs, test, args,
                              args.optimizer, args.lr)
    return results


def teacher_logits(teacher, x, batch_size: int = 1000) -> np.ndarray:
    """The frozen teacher's logits z_t on every image of ``x``, (N, 10), in eval mode and without a graph."""
    teacher.eval()
    with mk.no_grad():
        return np.concatenate([teacher(mk.tensor(x[a:a + batch_size])).numpy() for a in range(0, len(x), batch_size)])


def plain_step(student, x, y, i):
    """The student alone: cross-entropy with the labels (``i``, the images' indices, unused)."""
    return ce_step(student, x, y)


def make_kd_step(z_t: np.ndarray, T: float, lam: float):
    """L = (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s) (:func:`minikd.kd.kd_loss`), p_t from the teacher's
    precomputed logits of the batch's images, ``z_t[i]``."""
    def step(student, x, y, i):
        logits = student(x)
        return kd.kd_loss(logits, z_t[i], y, T=T, lam=lam), logits
    return step


# --------------------------------------------------------------------------- table and picture

def aggregate(per_seed: list[dict], max_norm: float) -> dict:
    """Per run: its title (the teacher's names its max-norm radius c, if it had one), the test
    errors of every seed, their mean and (sample) std, the mean training time."""
    table = {}
    for name in RUNS:
        errors = np.array([r[name]["test_errors"] for r in per_seed], dtype=float)
        title = TITLES[name] + (f" + max-norm {max_norm:g}" if name == "teacher" and max_norm else "")
        table[name] = {"title": title, "test_errors_runs": errors.astype(int).tolist(),
                       "test_errors_mean": float(errors.mean()),
                       "test_errors_std": sample_std(errors),
                       "train_seconds_mean": float(np.mean([r[name]["train_seconds"] for r in per_seed])),
                       "paper_test_errors": PAPER[name]}
    return table


def print_table(table: dict, seeds: list[int], n_test: int, quick: bool):
    if quick:
        print(f"\nSMOKE RUN (--quick: {QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, one epoch) — "
              "these errors only show the code runs; they are not comparable with the paper's")
    head = f"{'run':<48}{'test errors (of ' + format(n_test, ',') + ')':>26}{'per seed':>18}"
    head += ("" if quick else f"{'paper':>7}") + f"{'train time':>12}"
    print("\n" + head + "\n" + "-" * len(head))
    for t in table.values():
        mean = f"{t['test_errors_mean']:.1f}" + (f" ± {t['test_errors_std']:.1f}" if len(seeds) > 1 else "")
        paper = "" if quick else f"{t['paper_test_errors']:>7}"
        runs = ", ".join(str(e) for e in t["test_errors_runs"])
        print(f"{t['title']:<48}{mean:>26}{runs:>18}{paper}{t['train_seconds_mean']:>10.1f} s")
    ratio = table["kd"]["test_errors_mean"] / max(table["student"]["test_errors_mean"], 1)
    print(f"(mean ± sample std over seeds {seeds}; distilled / alone = {ratio:.2f}"
          + ("" if quick else f", paper {PAPER['kd'] / PAPER['student']:.2f}") + ")")


def plot(table: dict, per_seed: list[dict], path: Path, n_test: int, quick: bool, max_norm: float):
    """Left: test errors per run (each seed a dot, mean ± std a bar) beside the paper's (a star).
    Right: test errors after each epoch, mean over seeds. ``max_norm``: the teacher's c (0: none)."""
    import matplotlib.pyplot as plt

    colors = {"teacher": "tab:blue", "student": "tab:orange", "kd": "tab:green"}
    fig, (ax, ax_curve) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1, 1.3]})
    for k, name in enumerate(RUNS):
        t = table[name]
        ax.bar(k, t["test_errors_mean"], yerr=t["test_errors_std"], capsize=6, color=colors[name], alpha=0.75,
               label="minikd: mean ± std over seeds" if k == 0 else None)
        ax.plot(np.full(len(t["test_errors_runs"]), k) + np.linspace(-0.15, 0.15, len(t["test_errors_runs"])),
                t["test_errors_runs"], "o", color="black", ms=4, label="minikd: one seed" if k == 0 else None)
        if not quick:
            ax.plot(k + 0.3, t["paper_test_errors"], "*", color="crimson", ms=13,
                    label="Hinton et al. 2015" if k == 0 else None)
        ax.text(k, t["test_errors_mean"] / 2, f"{t['test_errors_mean']:.0f}", ha="center", va="center",
                color="white", fontsize=10, fontweight="bold")   # the mean inside its bar, clear of the seeds' dots
    teacher_tick = "teacher\n1200-1200\ndropout, jitter" + (f"\nmax-norm {max_norm:g}" if max_norm else "")
    ax.set_xticks(range(len(RUNS)), [teacher_tick, "student\n800-800\nalone", "student\n800-800\ndistilled"])
    top = max(max(t["test_errors_runs"] + [t["paper_test_errors"]]) for t in table.values())
    ax.set_ylim(0, top * 1.35)  # head room for the legend, above the bars
    ratio = table["kd"]["test_errors_mean"] / max(table["student"]["test_errors_mean"], 1)
    ax.set(ylabel=f"test errors (of {n_test:,})", title=f"Test errors after the last epoch\n(distilled / alone = "
           f"{ratio:.2f}" + ("" if quick else f"; paper {PAPER['kd'] / PAPER['student']:.2f}") + ")")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(axis="y", alpha=0.3)

    n_epochs = []
    for name in RUNS:
        curves = np.array([[h["test_errors"] for h in r[name]["history"]] for r in per_seed], dtype=float)
        epochs = np.arange(1, curves.shape[1] + 1)
        n_epochs.append(len(epochs))
        mean, low, high = curves.mean(0), curves.min(0), curves.max(0)
        ax_curve.plot(epochs, mean, marker="o", ms=3, color=colors[name], label=table[name]["title"])
        ax_curve.fill_between(epochs, low, high, color=colors[name], alpha=0.2, lw=0)
    ax_curve.set_yscale("log")
    ax_curve.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))  # 200, not 2×10²
    ax_curve.yaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_curve.set(xlabel="epoch", ylabel=f"test errors (of {n_test:,}), log scale",
                 title="Test errors per epoch (mean; band: min–max over seeds)")
    ax_curve.xaxis.set_major_locator(plt.MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs, even one
    ax_curve.set_xlim(0.5, max(n_epochs) + 0.5)
    ax_curve.grid(alpha=0.3, which="both")
    plots.legend_below(fig, ax_curve, ncol=3)  # under the panels: never over a curve, whatever the epochs
    plots.finish(fig, path)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of each student run (default 20; --quick: 1)")
    p.add_argument("--teacher-epochs", type=int, default=None,
                   help="epochs of the teacher's run (default 30; --quick: 1)")
    p.add_argument("--T", type=float, default=20.0, help="distillation temperature (default 20, the paper's)")
    p.add_argument("--lam", type=float, default=0.9, help="weight λ of the soft targets (default 0.9)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="the two students' optimizer: adam (default) or sgd (SGD with momentum 0.9)")
    p.add_argument("--lr", type=float, default=None,
                   help="the two students' learning rate (default 1e-3 for adam, 0.05 for sgd); not the teacher's. "
                        "With sgd at 0.05 the distilled student diverges and the run stops with an error: "
                        "its best is 0.01 (docs/distillation.md)")
    p.add_argument("--teacher-optimizer", choices=("adam", "sgd"), default="adam",
                   help="the teacher's optimizer: adam (default) or sgd (SGD with momentum 0.9)")
    p.add_argument("--teacher-lr", type=float, default=None,
                   help="the teacher's learning rate (default 1e-3 for adam, 0.05 for sgd)")
    p.add_argument("--teacher-dropout", type=float, default=DROPOUT,
                   help=f"dropout on the teacher's hidden units (default {DROPOUT})")
    p.add_argument("--teacher-max-norm", type=float, default=MAX_NORM,
                   help=f"the teacher's weight constraint c: after every step, each unit's incoming weights are "
                        f"scaled back to an L2 norm of at most c (max-norm, Hinton et al. 2012; default {MAX_NORM:g}; "
                        f"0: none)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    add_out_option(p, "runs/hinton", "results.json and the PNG")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_TRAIN} training and {QUICK_TEST} test images, one epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    ok = partial(check, p)
    args.seeds = parse_int_list(p, args.seeds, "--seeds", low=0, what="seeds")
    # --quick's one epoch only where no count was given: an explicit --epochs is honoured
    quick_defaults(args, epochs=(20, 1), teacher_epochs=(30, 1))
    ok(check_int, args.epochs, "--epochs", "the number of epochs", low=1)
    ok(check_int, args.teacher_epochs, "--teacher-epochs", "the number of the teacher's epochs", low=1)
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.teacher_lr is None:
        args.teacher_lr = DEFAULT_LR[args.teacher_optimizer]
    ok(check_temperature, args.T, "--T")
    ok(check_number, args.lam, "--lam", "λ, the weight of the distillation term,", low=0, high=1)
    ok(check_number, args.lr, "--lr", "the learning rate", low=0, low_open=True)
    ok(check_number, args.teacher_lr, "--teacher-lr", "the teacher's learning rate", low=0, low_open=True)
    ok(check_number, args.teacher_dropout, "--teacher-dropout", "the dropout probability", low=0, high=1,
       high_open=True)
    ok(check_number, args.teacher_max_norm, "--teacher-max-norm", "the max-norm radius c (0: none)", low=0)
    ok(check_int, args.batch_size, "--batch-size", "the batch size", low=1)
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    return args


def describe(optimizer: str, lr: float) -> str:
    """``Adam lr 0.001`` or ``SGD lr 0.05 (momentum 0.9)``: how a run is optimised, for the header."""
    return f"Adam lr {lr:g}" if optimizer == "adam" else f"SGD lr {lr:g} (momentum {MOMENTUM})"


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Hinton's MNIST: teacher {args.teacher_epochs} epoch(s), {describe(args.teacher_optimizer, args.teacher_lr)}"
          f", dropout {args.teacher_dropout}, "
          + (f"max-norm c = {args.teacher_max_norm:g}" if args.teacher_max_norm else "no max-norm")
          + f"; students {args.epochs}, {describe(args.optimizer, args.lr)}; cosine; "
          f"batch {args.batch_size}, "
          f"T = {args.T:g}, λ = {args.lam:g}, seeds {args.seeds}" + (" (quick: a subset)" if args.quick else ""))
    wall = time.perf_counter()
    raw = load_mnist_data(args.data_dir)  # prints the folder it read
    per_seed, seed_walls = [], []
    for seed in args.seeds:
        start = time.perf_counter()
        per_seed.append(run_seed(seed, raw, args))
        seed_walls.append(time.perf_counter() - start)
    n_test = QUICK_TEST if args.quick else len(raw[3])

    table = aggregate(per_seed, args.teacher_max_norm)
    print_table(table, args.seeds, n_test, args.quick)
    plot(table, per_seed, out / "hinton_mnist.png", n_test, args.quick, args.teacher_max_norm)
    wall = time.perf_counter() - wall

    settings = run_settings(args)
    settings.update(jitter_max_shift=MAX_SHIFT, schedule="cosine to 0, stepped every minibatch")
    ratio = table["kd"]["test_errors_mean"] / max(table["student"]["test_errors_mean"], 1)
    report = {"settings": settings, "platform": run_platform(args), "test_images": n_test, "summary": table,
              "kd_over_student": ratio,
              "paper_kd_over_student": PAPER["kd"] / PAPER["student"], "wall_seconds": wall,
              "wall_seconds_per_seed": seed_walls,
              "runs": [{"seed": seed, **r} for seed, r in zip(args.seeds, per_seed)]}
    write_json(report, out / "results.json")
    print(f"\nwall time {format_seconds(wall)}; wrote {out / 'results.json'} and {out / 'hinton_mnist.png'}")
    return report


if __name__ == "__main__":
    run_cli(main)
