"""Hinton's MNIST on a validation split, and the plot of several results files: the scratch script behind
docs/distillation.md, "Tried on a validation split".

    cd docs/hinton/tried
    OPENBLAS_NUM_THREADS=1 python validation_split.py alone 0.0005,0.001,0.002 --seed 0 --out alone.json
    OPENBLAS_NUM_THREADS=1 python validation_split.py kd 0.001 --seed 0 --teacher-epochs 50 --out kd.json
    OPENBLAS_NUM_THREADS=1 python validation_split.py kd 0.001 --seed 0 --teacher-max-norm 0.75 --out c075.json
    python validation_split.py plot teacher50_one_thread.json teacher50_one_thread_seeds_3_4.json --out t50.png

``alone``: the student alone at each learning rate. ``kd``: the teacher, then the distilled student at
each learning rate. The example's training options (``--teacher-epochs``, ``--teacher-max-norm``,
``--teacher-optimizer``, ``--T``, ...) pass to its own parser, which checks them; the rest are its
defaults. Its ``--seeds``, ``--lr``, ``--data-dir`` and ``--quick`` are refused: here the seed is
``--seed``, the learning rates the list, and the data MINIKD_DATA.
Every run trains on the first 50,000 MNIST training images and is counted on the last 10,000, never
trained on: the test set is not used. The example's own functions do the work (examples/hinton_mnist.py).
``plot``: the example's figure of the seeds of several results files together.
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import hinton_mnist as h  # noqa: E402
from common import IndexedLoader, check_writable_dir, load_mnist_data, read_json, write_json  # noqa: E402

import minikd as mk  # noqa: E402
from minikd.data import normalize  # noqa: E402

N_TRAIN = 50_000  # the rest of the 60,000 is the validation split


def validate(part: str, lrs: list, seed: int, example_argv: list, out: Path) -> None:
    args = h.parse_args(["--no-progress", *example_argv])  # checked there; the rest: the example's defaults
    x_train, y_train, _, _ = load_mnist_data()
    xt, yt = x_train[:N_TRAIN], y_train[:N_TRAIN]
    val = (normalize(x_train[N_TRAIN:]), y_train[N_TRAIN:])
    x_plain = normalize(xt)
    batches = args.batch_size
    report = {"seed": seed, "part": part, "example_argv": example_argv,
              "student": {k: getattr(args, k) for k in ("epochs", "optimizer", "T", "lam", "batch_size")},
              "runs": []}
    start = time.time()
    if part == "kd":
        mk.manual_seed(seed)
        teacher = h.teacher_model(args.teacher_dropout)
        r = h.train("teacher", teacher, h.ce_step, h.jittered_batches(xt, yt, batches, seed), args.teacher_epochs, val,
                    args, args.teacher_optimizer, args.teacher_lr, max_norm=args.teacher_max_norm)
        report.update(teacher_epochs=args.teacher_epochs, teacher_optimizer=args.teacher_optimizer,
                      teacher_lr=args.teacher_lr, teacher_dropout=args.teacher_dropout,
                      teacher_max_norm=args.teacher_max_norm, teacher_val_errors=r["test_errors"],
                      teacher_val_errors_per_epoch=[row["test_errors"] for row in r["history"]])
        step = h.make_kd_step(h.teacher_logits(teacher, x_plain), args.T, args.lam)
    else:
        step = h.plain_step
    for lr in lrs:
        mk.manual_seed(seed)
        r = h.train(f"{part} lr {lr:g}", h.student_model(), step, IndexedLoader(x_plain, yt, batches, seed=seed),
                    args.epochs, val, args, args.optimizer, lr)
        report["runs"].append({"lr": lr, "val_errors": r["test_errors"], "train_seconds": r["train_seconds"],
                               "val_errors_per_epoch": [row["test_errors"] for row in r["history"]]})
        print(part, f"lr {lr:g}:", r["test_errors"], "validation errors", flush=True)
    report["wall_seconds"] = time.time() - start
    write_json(report, out)  # through a temporary file: never half written


def read_runs(parser, files: list) -> list:
    """The runs of the example's results files, each checked: a file that is missing, not JSON, or not
    of the example's shape (runs of seeds, each with the three runs' errors per epoch) is a parser error."""
    runs = []
    for f in files:
        report = read_json(parser, f, "plot", "results file")
        ok = isinstance(report, dict) and isinstance(report.get("runs"), list) and report["runs"] and all(
            isinstance(r, dict) and isinstance(r.get("seed"), int) and all(
                isinstance(r.get(name), dict) and isinstance(r[name].get("history"), list) and r[name]["history"]
                and all(isinstance(row, dict) and isinstance(row.get("test_errors"), int) for row in r[name]["history"])
                for name in h.RUNS) for r in report["runs"])
        if not ok:
            parser.error(f"plot {f}: not a results.json of examples/hinton_mnist.py (runs of seeds, each with "
                         f"{', '.join(h.RUNS)} and their errors per epoch)")
        runs += report["runs"]
    return sorted(runs, key=lambda r: r["seed"])


def plot(parser, files: list, out: Path) -> None:
    per_seed = [{name: r[name] for name in h.RUNS} for r in read_runs(parser, files)]
    table = h.aggregate(per_seed, h.MAX_NORM)
    h.plot(table, per_seed, out, 10_000, False, h.MAX_NORM)


REFUSED = ("--seeds", "--lr", "--data-dir", "--quick")  # the example's options that would have no effect here


def main():
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),
                                epilog="Any other option is the example's (examples/hinton_mnist.py --help), "
                                       "checked by its parser; " + ", ".join(REFUSED) + " are refused, and alone "
                                       "takes no --teacher-* option.")
    p.add_argument("part", choices=("alone", "kd", "plot"))
    p.add_argument("what", nargs="+", help="alone, kd: one comma-separated list of learning rates; plot: results files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a, example_argv = p.parse_known_args()  # the rest: the example's options, e.g. --teacher-epochs 50
    names = [arg.split("=")[0] for arg in example_argv if arg.startswith("--")]
    # argparse takes any unambiguous prefix (--qu for --quick): refuse those too
    refused = [n for n in names if len(n) > 2 and any(r.startswith(n) for r in REFUSED)]
    if refused:
        p.error(f"{refused[0]} would have no effect here: the seed is --seed, the learning rates the list, "
                f"the data MINIKD_DATA")
    if a.part == "alone" and any(n.startswith("--teacher") for n in names):
        p.error(f"alone trains no teacher: {[n for n in names if n.startswith('--teacher')]} would have no effect")
    if a.part == "plot":
        if example_argv or a.seed != 0:
            p.error(f"plot takes no training options, got {example_argv or ['--seed']}")
        if Path(a.out).suffix.lower() not in (".png", ".pdf", ".svg"):
            p.error(f"--out {a.out}: a picture's name, ending .png, .pdf or .svg")
        check_writable_dir(p, Path(a.out).parent, "--out")
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)    # every check passed: now it may be made
        plot(p, a.what, Path(a.out))
        return
    if len(a.what) != 1:
        p.error(f"{a.part} takes one comma-separated list of learning rates, got {a.what}")
    try:
        lrs = [float(v) for v in a.what[0].split(",")]
    except ValueError:
        p.error(f"learning rates must be numbers, comma-separated; got {a.what[0]!r}")
    if not all(0 < lr < math.inf for lr in lrs):
        p.error(f"learning rates must be finite and > 0; got {a.what[0]!r}")
    twice = sorted({lr for lr in lrs if lrs.count(lr) > 1})
    if twice:
        p.error(f"learning rate {twice[0]:g} is given twice in {a.what[0]!r} (it would train twice)")
    if a.seed < 0:
        p.error(f"--seed: the seed must be ≥ 0; got {a.seed}")
    if a.part == "alone":
        distilling = [n for n in names if any(o.startswith(n) for o in ("--T", "--lam"))]
        if distilling:
            p.error(f"alone distils nothing: {distilling[0]} would have no effect")
    out = Path(a.out)
    if out.is_dir():
        p.error(f"--out {a.out}: is a folder; give the results file's name")
    check_writable_dir(p, out.parent, "--out")
    h.parse_args(["--no-progress", *example_argv])   # the example's options checked now, before any data
    out.parent.mkdir(parents=True, exist_ok=True)    # every check passed: now it may be made
    validate(a.part, lrs, a.seed, example_argv, out)

if __name__ == "__main__":
    main()
