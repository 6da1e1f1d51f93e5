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
``--seeds 0,1,2`` repeats everything per seed and reports mean ± std. ``--device cuda`` trains
and evaluates on a GPU (the data stay on the host; each minibatch is uploaded once).

Every option is checked before any work (T a positive finite number, λ in [0, 1], epochs,
batch size, lr, seeds, the device, the data folder, the teacher checkpoint): a bad one is a one-line
error with exit status 2. ``--quick`` is a smoke run: its accuracies are printed without the
lecture's numbers beside them, since 2,000 images and one epoch are not the lecture's run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import plots
from common import (
    DATA_DIR_HELP,
    DEVICE_HELP,
    HANDS_ON_DIR,
    add_out_option,
    ce_step,
    check,
    check_checkpoint,
    check_data_dir,
    check_out,
    check_training_options,
    device_option,
    evaluate,
    fit,
    format_seconds,
    load_mnist_data,
    load_weights,
    make_kd_step,
    mark_smoke_run,
    model_device,
    parse_int_list,
    run_cli,
    run_platform,
    run_settings,
    sample_std,
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
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed, device=args.device)
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
        teacher = TeacherModel().to(args.device)  # on its device before its optimizer is built
        if args.teacher:
            load_weights(teacher, args.teacher)
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
        student = StudentModel().to(args.device)
        extra = ()
        if name == "student":
            step = ce_step
        elif name == "kd":
            step = make_kd_step(teacher, args.T, args.lam)
        else:
            adapter = kd.LinearAdapter(student.feature_dim, teacher.feature_dim).to(args.device)  # g(·): 64 → 128
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
                       "test_acc_std": sample_std(acc),
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
    """Seed 0's training curves: each run's own training loss on a log scale (the KD losses carry
    their soft term and sit an order of magnitude above the CE ones: on a linear scale the CE
    curves would lie flat on the axis), and the test accuracy after each epoch."""
    plt = plots.pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.4))
    epochs = []
    for name, r in results.items():
        if not r["history"]:
            continue
        epochs = [h["epoch"] for h in r["history"]]
        style = dict(marker="o", color=plots.RUN_COLORS[name], label=TITLES[name])
        ax_loss.plot(epochs, [h["train_loss"] for h in r["history"]], **style)
        ax_acc.plot(epochs, [100 * h["test_acc"] for h in r["history"]], **style)
    plots.log_axis(ax_loss, "y", ticks=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5])
    ax_loss.set(xlabel="epoch", ylabel="training loss (log scale)",
                title="Training loss, each run its own (KD: CE + soft term)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy after each epoch")
    for ax in (ax_loss, ax_acc):
        plots.integer_ticks(ax, epochs)  # epochs are whole numbers
        ax.grid(alpha=0.3, which="both")
    plots.legend_below(fig, [ax_loss, ax_acc])
    plots.finish(fig, path)


def choose_digit(teacher_logits, y, T: float) -> int:
    """The rule that picks the digit of :func:`plot_soft_labels`: of the test images the teacher
    classifies correctly, the one whose second most probable class (at temperature T) is the most
    probable — where the teacher's soft label says most about which digits look alike."""
    p = kd.softmax_with_temperature(mk.tensor(teacher_logits), T).numpy()
    second = np.sort(p, axis=1)[:, -2]
    second[p.argmax(1) != y] = -1.0  # never a digit the teacher gets wrong
    return int(np.argmax(second))


SOFT_LABEL_TEMPERATURES = (1, 2, 3, 5, 10)
SOFT_LABEL_POOL = 1000  # the digit is chosen among the first 1,000 test images


def plot_soft_labels(teacher, student, x_test, y_test, path: Path, T: float, student_label: str = "student"):
    """The slide's "probability" and "Softened" columns for one test digit, chosen by
    :func:`choose_digit` (the rule is in the title): the digit with the two predictions marked
    right (green) or wrong (red); the teacher's softmax at several temperatures on a log scale
    (what T does: raise the small probabilities, the "dark knowledge"); and the teacher's soft
    label next to the student's at the distillation's T."""
    plt = plots.pyplot()
    n = min(SOFT_LABEL_POOL, len(x_test))
    teacher.eval()
    student.eval()
    device = model_device(teacher)
    with mk.no_grad():
        teacher_logits = teacher(mk.tensor(x_test[:n], device=device)).numpy()
    i = choose_digit(teacher_logits, y_test[:n], T)
    student_run = next((k for k, v in TITLES.items() if v == student_label), "kd")  # its colour
    with mk.no_grad():
        x = mk.tensor(x_test[i:i + 1], device=device)
        logits = {"teacher": teacher(x).numpy(), student_label: student(x).numpy()}
    label = int(y_test[i])

    def probs(z, temp):
        return kd.softmax_with_temperature(mk.tensor(z), temp).numpy()[0]

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6), gridspec_kw={"width_ratios": [1.1, 3, 3]})
    ax = axes[0]
    ax.imshow(x_test[i, 0], cmap="gray")
    ax.set(xticks=[], yticks=[], title=f"test image #{i}, label {label}")
    for k, (who, z) in enumerate(logits.items()):
        p = probs(z, 1.0)
        guess = int(p.argmax())
        ok = guess == label
        verdict = "right" if ok else "WRONG"
        ax.text(0.5, -0.08 - 0.13 * k, f"{who}: {guess} ({100 * p[guess]:.0f} % at T = 1) {verdict}",
                transform=ax.transAxes, ha="center", va="top", fontsize=9, color=plots.RIGHT if ok else plots.WRONG,
                fontweight="bold")

    classes = np.arange(10)
    floor = 1e-6
    ax = axes[1]
    cmap = plt.get_cmap("viridis")
    temps = sorted(set(SOFT_LABEL_TEMPERATURES) | {float(T)})
    for k, temp in enumerate(temps):
        p = np.maximum(probs(logits["teacher"], temp), floor)
        entropy = float(-(p * np.log2(p)).sum())
        ax.plot(classes, p, "o-", color=cmap(0.85 * k / max(1, len(temps) - 1)), lw=3 if temp == T else 1.2,
                ms=6 if temp == T else 4, label=f"teacher, T = {temp:g}  (entropy {entropy:.2f} bits)"
                + ("  ← the distillation's T" if temp == T else ""))
    ax.set(title="What T does: the teacher's softmax(z / T), log scale", ylim=(floor, 1.5))

    ax = axes[2]
    for k, (who, z) in enumerate(logits.items()):
        ax.bar(classes + (k - 0.5) * 0.4, np.maximum(probs(z, T), floor), width=0.4,
               color=plots.RUN_COLORS["teacher" if k == 0 else student_run], label=f"{who}, T = {T:g}")
    ax.set(title=f"At T = {T:g}: the teacher's soft label and the student's", ylim=(floor, 1.5))
    for ax in axes[1:]:
        plots.log_axis(ax, "y", ticks=[1e-6, 1e-4, 1e-2, 1])
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"$10^{{{np.log10(v):.0f}}}$"))
        ax.set(xlabel="class", ylabel=f"probability (log scale, floor $10^{{{np.log10(floor):.0f}}}$)")
        ax.set_xticks(classes, [f"{c}\nlabel" if c == label else str(c) for c in classes])
        ax.get_xticklabels()[label].set(fontweight="bold")  # the true class
        ax.grid(alpha=0.3, axis="y")
    plots.legend_below(fig, list(axes[1:]), ncol=3, fontsize=8.5)
    plots.finish(fig, path, title=f"Soft labels of test image #{i}, chosen by a rule: of the first {n:,} test "
                                  f"images the teacher gets right,\nthe one whose second choice is the most "
                                  f"probable at T = {T:g}")
    return i


def plot_accuracy_vs_params(table: dict, path: Path, lecture: bool = True):
    """Test accuracy of the four runs, their sizes in the row labels: one row per run (the three
    students have the same size, so they are rows, not points side by side on a size axis). Each
    seed is a small dot, the mean a large one, with ± the standard deviation as a bar when there
    are several seeds, and the value written; ``lecture``: the lecture's hands-on numbers as
    hollow diamonds (left out for a smoke run)."""
    plt = plots.pyplot()
    names = list(table)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.75 * len(names)))
    teacher_params = table["teacher"]["params"] if "teacher" in table else None
    labels = []
    for row, name in enumerate(names):
        t = table[name]
        y = len(names) - 1 - row  # the first run on top
        runs = t.get("test_acc_runs", [t["test_acc_mean"]])
        color = plots.RUN_COLORS[name]
        ax.plot(runs, [y] * len(runs), "o", ms=4, color=color, alpha=0.5, zorder=2)
        if len(runs) > 1:
            ax.errorbar(t["test_acc_mean"], y, xerr=t["test_acc_std"], fmt="none", ecolor=color, capsize=4, zorder=2)
        ax.plot(t["test_acc_mean"], y, "o", ms=10, color=color, zorder=3)
        value = f"{t['test_acc_mean']:.2f} %" + (f" ± {t['test_acc_std']:.2f}" if len(runs) > 1 else "")
        ax.annotate(value, (t["test_acc_mean"], y), textcoords="offset points", xytext=(0, 9), ha="center",
                    va="bottom", fontsize=8.5, color=color, fontweight="bold")
        if lecture and t.get("lecture_test_acc"):
            ax.plot(t["lecture_test_acc"], y, "D", ms=9, mfc="none", mec="black", mew=1.5, zorder=4)
            ax.annotate(f"lecture {t['lecture_test_acc']:.2f} %", (t["lecture_test_acc"], y),
                        textcoords="offset points", xytext=(0, -9), ha="center", va="top", fontsize=8)
        size = f"{t['params']:,} parameters"
        if teacher_params and name != "teacher":
            size += f" ({teacher_params / t['params']:.1f}× fewer)"
        labels.append(f"{TITLES[name]}\n{size}")
    # the legend explains the marks, in grey: the colours are the runs, named on the left
    n_seeds = max(len(t.get("test_acc_runs", [0])) for t in table.values())
    if n_seeds > 1:
        ax.plot([], [], "o", ms=4, color="gray", alpha=0.5, label="one seed")
        ax.errorbar([], [], xerr=[], fmt="o", ms=10, color="gray", capsize=4, label=f"mean ± std over {n_seeds} seeds")
    else:
        ax.plot([], [], "o", ms=10, color="gray", label="one seed (no error bar)")
    if lecture and any(t.get("lecture_test_acc") for t in table.values()):
        ax.plot([], [], "D", ms=9, mfc="none", mec="black", mew=1.5, label="the lecture's hands-on table")
    ax.set_yticks(range(len(names))[::-1], labels)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.margins(x=0.12)
    ax.set(xlabel="test accuracy (%)", title="Accuracy of the teacher and of the three students of 4× fewer "
                                             "parameters")
    ax.grid(alpha=0.3, axis="x")
    plots.legend_below(fig, ax)
    plots.finish(fig, path)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default 5; --quick: 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--T", type=float, default=3.0, help="distillation temperature")
    p.add_argument("--lam", type=float, default=0.5, help="weight λ of the distillation term")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2 (overrides --seed)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    add_out_option(p, HANDS_ON_DIR, "checkpoints, results.json, PNGs (the later examples look for the models "
                                    "in the default)")
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
    args.device = check(p, device_option, args.device)
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
    args.seeds = [args.seed] if args.seeds is None else parse_int_list(p, args.seeds, "--seeds", low=0,
                                                                              what="seeds")
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"MNIST, {args.epochs} epoch(s), batch {args.batch_size}, Adam lr {args.lr}, T = {args.T}, "
          f"λ = {args.lam}, seeds {args.seeds}, runs {args.runs}" + (" (quick: a subset)" if args.quick else "")
          + (f", on {args.device}" if args.device != "cpu" else ""))
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
    plot_accuracy_vs_params(table, out / "accuracy_vs_params.png", lecture=not args.quick)

    settings = run_settings(args)
    report = {"settings": settings, "platform": run_platform(args), "wall_seconds": wall,
              "wall_seconds_per_seed": seed_walls, "summary": table,
              "runs": [{name: {k: v for k, v in r.items() if k != "model"} for name, r in seed_runs.items()}
                       for seed_runs in per_seed]}
    write_json(report, out / "results.json")
    print(f"\nwall time {format_seconds(wall)}; wrote {out / 'results.json'}, curves.png, soft_labels.png, "
          f"accuracy_vs_params.png and the checkpoints in {out}/")
    return report


if __name__ == "__main__":
    run_cli(main)
