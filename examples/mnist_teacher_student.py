"""The lecture's hands-on: a teacher CNN, a student alone, and the student distilled from the teacher.

    python examples/mnist_teacher_student.py            # the lecture's settings, ≈ 4 min on 2 cores
    python examples/mnist_teacher_student.py --quick    # a small real subset, one epoch: a smoke run

Four trainings on MNIST, each with Adam at lr 1e-3 for 5 epochs (the lecture's settings):

1. ``teacher``  — the slide's TeacherModel, cross-entropy                     (lecture: 99.14 %)
2. ``student``  — StudentModel alone, cross-entropy                           (lecture: 98.91 %)
3. ``kd``       — StudentModel with logit distillation from the frozen teacher:
                  L = (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s),  λ = 0.5, T = 3  (lecture: 99.0 %)
4. ``fkd``      — StudentModel with feature distillation (the second hands-on): the student's
                  64-d penultimate features pass a learnable linear adapter g(·) to the
                  teacher's 128-d ones;  L = λ·‖F_T − g(F_S)‖² + (1 − λ)·CE,  λ = 0.5

The teacher is frozen during distillation: eval mode, outputs computed without a graph.
Every student run starts from the same initial weights (the seed), so the runs differ only
in their loss. Outputs, in ``--out`` (default ``runs/teacher_student``): one checkpoint per
run (``<run>_seed<s>.npz``; pass a saved teacher back with ``--teacher PATH`` to skip its
training), ``results.json``, and three pictures — ``curves.png`` (training curves),
``soft_labels.png`` (the teacher's and the student's probabilities for one test digit at
T = 1 and T = 3: the slide's "Softened" column) and ``accuracy_vs_params.png``.
``--seeds 0,1,2`` repeats everything per seed and reports mean ± std.

Every option is checked before any work (T a positive finite number, λ in [0, 1], epochs,
batch size, lr, seeds, the data folder, the teacher checkpoint): a bad one is a one-line
error with exit status 2. ``--quick`` is a smoke run: its accuracies are printed without the
lecture's numbers beside them, since 2,000 images and one epoch are not the lecture's run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import (
    DATA_DIR_HELP,
    ce_step,
    check,
    check_checkpoint,
    check_data_dir,
    check_training_options,
    check_writable_dir,
    evaluate,
    fit,
    format_seconds,
    load_mnist_data,
    make_kd_step,
    parse_int_list,
    run_cli,
    save_figure,
    write_json,
)

import minikd as mk
from minikd import kd, optim
from minikd.checks import check_number, check_temperature
from minikd.data import DataLoader, normalize
from minikd.models import StudentModel, TeacherModel
from minikd.profile import summary

RUNS = ("teacher", "student", "kd", "fkd")
TITLES = {"teacher": "teacher (CE)", "student": "student alone (CE)", "kd": "student, logit KD",
          "fkd": "student, feature KD"}
LECTURE = {"teacher": 99.14, "student": 98.91, "kd": 99.0, "fkd": None}
QUICK_TRAIN, QUICK_TEST = 2000, 1000  # --quick: a small real subset


# --------------------------------------------------------------------------- data

def load_data(raw, quick: bool, seed: int):
    """Normalised (x, y) for training and testing from the raw (uint8) arrays of
    :func:`common.load_mnist_data`; with ``quick`` a fixed random subset per seed."""
    x_train, y_train, x_test, y_test = raw
    if quick:
        rng = np.random.default_rng(seed)
        i, j = rng.choice(len(x_train), QUICK_TRAIN, replace=False), rng.choice(len(x_test), QUICK_TEST, replace=False)
        x_train, y_train, x_test, y_test = x_train[i], y_train[i], x_test[j], y_test[j]
    return normalize(x_train), y_train, normalize(x_test), y_test


# --------------------------------------------------------------------------- the four losses
# each returns (loss, logits) for a minibatch; common.fit trains with it
#   teacher, student: common.ce_step       CE(y, p)
#   kd:               common.make_kd_step  (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s), the teacher frozen
#   fkd:              make_fkd_step        λ·‖F_T − g(F_S)‖² + (1 − λ)·CE(y, p_s), through the adapter g(·)

def make_fkd_step(teacher, adapter, lam):
    """Feature distillation from the frozen ``teacher``: its penultimate features are the target
    of the student's, mapped by ``adapter`` (g, trained with the student)."""
    def step(student, x, y):
        logits, features = student(x, return_features=True)
        with mk.no_grad():
            _, teacher_features = teacher(x, return_features=True)
        return kd.feature_kd_loss(logits, features, teacher_features, y, adapter, lam=lam), logits
    return step


# --------------------------------------------------------------------------- one training run

def train(name, model, step, data, args, extra_params=()):
    """Train ``model`` with the loss ``step`` (and Adam on its parameters and ``extra_params``) for
    ``args.epochs`` with :func:`common.fit`; return the history (one entry per epoch, with the test
    accuracy) and the seconds spent training (evaluation excluded)."""
    x_train, y_train, x_test, y_test = data
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    opt = optim.Adam(list(model.parameters()) + list(extra_params), lr=args.lr)
    return fit(model, opt, step, loader, args.epochs, name=f"{name:>7}", test=(x_test, y_test),
               progress=args.progress)


def complexity(model) -> dict:
    s = summary(model, (1, 28, 28))
    return {"params": s.total_params, "flops": s.total_flops, "macs": s.total_macs,
            "memory_bytes": s.total_memory_bytes}


def run_seed(seed, data, args, out: Path) -> dict:
    """All selected runs for one seed; returns {run: result}."""
    args.seed = seed
    results = {}
    teacher = None
    if args.teacher or "teacher" in args.runs:
        mk.manual_seed(seed)
        teacher = TeacherModel()
        if args.teacher:
            teacher.load_state_dict(mk.load(args.teacher))
            history, seconds = [], 0.0
            print(f"teacher: loaded {args.teacher}")
        else:
            history, seconds = train("teacher", teacher, ce_step, data, args)
            mk.save(teacher.state_dict(), out / f"teacher_seed{seed}.npz")
        results["teacher"] = dict(complexity(teacher), test_acc=evaluate(teacher, data[2], data[3]),
                                  train_seconds=seconds, history=history)
        teacher.eval()  # frozen from here on

    for name in ("student", "kd", "fkd"):
        if name not in args.runs:
            continue
        mk.manual_seed(seed)      # the same initial student in every run
        student = StudentModel()
        extra = ()
        if name == "student":
            step = ce_step
        elif name == "kd":
            step = make_kd_step(teacher, args.T, args.lam)
        else:
            adapter = kd.LinearAdapter(student.feature_dim, teacher.feature_dim)  # g(·): 64 → 128
            step, extra = make_fkd_step(teacher, adapter, args.lam), adapter.parameters()
        history, seconds = train(name, student, step, data, args, extra)
        mk.save(student.state_dict(), out / f"{name}_seed{seed}.npz")
        results[name] = dict(complexity(student), test_acc=history[-1]["test_acc"], train_seconds=seconds,
                             history=history)
        results[name]["model"] = student  # for the pictures; dropped before writing JSON
    if teacher is not None:
        results["teacher"]["model"] = teacher
    return results


# --------------------------------------------------------------------------- table and pictures

def aggregate(per_seed: list[dict]) -> dict:
    """Mean and (sample) standard deviation over seeds of accuracy and training time."""
    table = {}
    for name in RUNS:
        rows = [r[name] for r in per_seed if name in r]
        if not rows:
            continue
        acc = np.array([r["test_acc"] for r in rows]) * 100
        secs = np.array([r["train_seconds"] for r in rows])
        table[name] = {"params": rows[0]["params"], "flops": rows[0]["flops"], "macs": rows[0]["macs"],
                       "memory_bytes": rows[0]["memory_bytes"], "test_acc_mean": float(acc.mean()),
                       "test_acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                       "test_acc_runs": acc.tolist(), "train_seconds_mean": float(secs.mean()),
                       "lecture_test_acc": LECTURE[name]}
    return table


def print_table(table: dict, n_seeds: int, quick: bool = False):
    """The results beside the lecture's; a ``quick`` smoke run leaves the lecture's column out and
    says so: accuracies after one epoch on a subset are not comparable with the lecture's."""
    head = f"{'run':<22}{'params':>10}{'FLOPs':>13}{'memory':>11}{'test acc':>18}"
    head += ("" if quick else f"{'lecture':>9}") + f"{'train time':>12}"
    if quick:
        print(f"\nSMOKE RUN (--quick: {QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, one epoch) — "
              "these accuracies only show the code runs; they are not comparable with the lecture's")
    print("\n" + head + "\n" + "-" * len(head))
    for name, t in table.items():
        acc = f"{t['test_acc_mean']:.2f} %" + (f" ± {t['test_acc_std']:.2f}" if n_seeds > 1 else "")
        lecture = "" if quick else f"{t['lecture_test_acc']:.2f} %" if t["lecture_test_acc"] else "-"
        print(f"{TITLES[name]:<22}{t['params']:>10,}{t['flops']:>13,}{t['memory_bytes'] / 1024:>8.1f} KiB"
              f"{acc:>18}{lecture:>{0 if quick else 9}}{t['train_seconds_mean']:>10.1f} s")
    print(f"(FLOPs per image, the lecture's convention; memory of float32 parameters; "
          f"{'mean ± std over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else 'one seed'})")


def plot_curves(results: dict, path: Path):
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results.items():
        if not r["history"]:
            continue
        epochs = [h["epoch"] for h in r["history"]]
        ax_loss.plot(epochs, [h["train_loss"] for h in r["history"]], marker="o", label=TITLES[name])
        ax_acc.plot(epochs, [100 * h["test_acc"] for h in r["history"]], marker="o", label=TITLES[name])
    ax_loss.set(xlabel="epoch", ylabel="training loss (each run's own loss)", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_soft_labels(teacher, student, x_test, y_test, path: Path, T: float, student_label: str = "student"):
    """Teacher and student probabilities for one test digit at T = 1 and at T (the slide's table)."""
    import matplotlib.pyplot as plt

    with mk.no_grad():
        teacher_logits = teacher(mk.tensor(x_test[:200])).numpy()
    # the digit where the teacher's second choice is most probable at T: where the soft
    # labels carry the most "dark knowledge"
    soft = kd.softmax_with_temperature(mk.tensor(teacher_logits), T).numpy()
    i = int(np.argmax(np.sort(soft, axis=1)[:, -2]))
    x = mk.tensor(x_test[i:i + 1])
    student.eval()
    with mk.no_grad():
        logits = {"teacher": teacher(x), student_label: student(x)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [1, 3, 3]})
    axes[0].imshow(x_test[i, 0], cmap="gray")
    axes[0].set(title=f"test #{i}, label {y_test[i]}", xticks=[], yticks=[])
    classes = np.arange(10)
    for ax, temp in zip(axes[1:], (1.0, T)):
        for k, (who, z) in enumerate(logits.items()):
            p = kd.softmax_with_temperature(z, temp).numpy()[0]
            ax.bar(classes + (k - 0.5) * 0.4, p, width=0.4, label=who)
        ax.set(xticks=classes, xlabel="class", ylabel="probability", ylim=(0, 1),
               title=f"T = {temp:g}" + (" (hard: softmax)" if temp == 1 else " (softened)"))
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_accuracy_vs_params(table: dict, path: Path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (name, t) in enumerate(table.items()):
        # the three students have the same size: spread them a little so all stay visible
        x = t["params"] * (1 + 0.06 * (k - 1)) if name != "teacher" else t["params"]
        ax.errorbar(x, t["test_acc_mean"], yerr=t["test_acc_std"], fmt="o", capsize=4, label=TITLES[name])
    sizes = sorted({t["params"] for t in table.values()})
    ax.set(xscale="log", xlabel="parameters", ylabel="test accuracy (%)", title="Accuracy vs size")
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlim(sizes[0] / 2, sizes[-1] * 2)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--T", type=float, default=3.0, help="distillation temperature")
    p.add_argument("--lam", type=float, default=0.5, help="weight λ of the distillation term")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2 (overrides --seed)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--out", default="runs/teacher_student", help="folder for checkpoints, results.json, PNGs")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    p.add_argument("--teacher", default=None, help="a saved teacher (.npz) to reuse instead of training one")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_TRAIN} training and {QUICK_TEST} test images, one epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    check_training_options(p, args)
    check(p, check_temperature, args.T, "--T")
    check(p, check_number, args.lam, "--lam", "λ, the weight of the distillation term,", low=0, high=1)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown:
        p.error(f"--runs: unknown run(s) {unknown}; choose from {list(RUNS)}")
    if not args.runs:
        p.error(f"--runs: no run given; choose from {list(RUNS)}")
    if {"kd", "fkd"} & set(args.runs) and "teacher" not in args.runs and not args.teacher:
        p.error("--runs: the kd and fkd runs need a teacher: include 'teacher' in --runs or pass --teacher PATH")
    if args.teacher:
        check_checkpoint(p, args.teacher, "--teacher", TeacherModel, must_exist=True)
    args.seeds = parse_int_list(p, args.seeds, "--seeds", low=0, what="seeds") if args.seeds else [args.seed]
    check_data_dir(p, args.data_dir)
    check_writable_dir(p, args.out, "--out")
    if args.quick:
        args.epochs = 1
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"MNIST, {args.epochs} epoch(s), batch {args.batch_size}, Adam lr {args.lr}, T = {args.T}, "
          f"λ = {args.lam}, seeds {args.seeds}, runs {args.runs}" + (" (quick: a subset)" if args.quick else ""))
    for name, model in (("teacher", TeacherModel()), ("student", StudentModel())):
        c = complexity(model)
        print(f"{name}: {c['params']:,} parameters, {c['macs']:,} MACs per image")

    per_seed, seed_walls, first_data = [], [], None
    wall = time.perf_counter()
    raw = load_mnist_data(args.data_dir)  # prints the folder it read
    for seed in args.seeds:
        start = time.perf_counter()
        data = load_data(raw, args.quick, seed)
        first_data = first_data or data
        per_seed.append(run_seed(seed, data, args, out))
        seed_walls.append(time.perf_counter() - start)  # the subset, the runs and their evaluations
    wall = time.perf_counter() - wall

    table = aggregate(per_seed)
    print_table(table, len(args.seeds), args.quick)
    first = per_seed[0]
    plot_curves(first, out / "curves.png")
    if "teacher" in first and ({"kd", "student"} & set(first)):
        which = "kd" if "kd" in first else "student"
        plot_soft_labels(first["teacher"]["model"], first[which]["model"], first_data[2], first_data[3],
                         out / "soft_labels.png", args.T, TITLES[which])
    plot_accuracy_vs_params(table, out / "accuracy_vs_params.png")

    settings = {k: v for k, v in vars(args).items() if k != "progress"}
    report = {"settings": settings, "wall_seconds": wall, "wall_seconds_per_seed": seed_walls, "summary": table,
              "runs": [{name: {k: v for k, v in r.items() if k != "model"} for name, r in seed_runs.items()}
                       for seed_runs in per_seed]}
    write_json(report, out / "results.json")
    print(f"\nwall time {format_seconds(wall)}; wrote {out / 'results.json'}, curves.png, soft_labels.png, "
          f"accuracy_vs_params.png and the checkpoints in {out}/")
    return report


if __name__ == "__main__":
    run_cli(main)
