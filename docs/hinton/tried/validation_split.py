"""Hinton's MNIST on a validation split, and the plot of two results files: the scratch script behind
docs/distillation.md, "Tried on a validation split".

    cd docs/hinton/tried
    OPENBLAS_NUM_THREADS=1 python validation_split.py alone 0.0005,0.001,0.002 --seed 0 --out alone.json
    OPENBLAS_NUM_THREADS=1 python validation_split.py kd 0.001 --seed 0 --teacher-epochs 50 --out kd.json
    python validation_split.py plot teacher50_one_thread.json teacher50_one_thread_seeds_3_4.json --out t50.png

``alone``: the student alone at each learning rate. ``kd``: the teacher (the example's settings, for
``--teacher-epochs``), then the distilled student at each learning rate. Every run trains on the first
50,000 MNIST training images and is counted on the last 10,000, never trained on: the test set is not
used. The example's own functions do the work (examples/hinton_mnist.py). ``plot``: the example's
figure of the seeds of several results files together.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import hinton_mnist as h  # noqa: E402
from common import IndexedLoader, load_mnist_data  # noqa: E402

import minikd as mk  # noqa: E402
from minikd.data import normalize  # noqa: E402

N_TRAIN = 50_000  # the rest of the 60,000 is the validation split


def validate(part: str, lrs: list, seed: int, teacher_epochs: int, out: Path) -> None:
    args = h.parse_args(["--no-progress"])  # every other setting is the example's default
    x_train, y_train, _, _ = load_mnist_data()
    xt, yt = x_train[:N_TRAIN], y_train[:N_TRAIN]
    val = (normalize(x_train[N_TRAIN:]), y_train[N_TRAIN:])
    x_plain = normalize(xt)
    batches = args.batch_size
    report = {"seed": seed, "part": part, "runs": []}
    start = time.time()
    if part == "kd":
        mk.manual_seed(seed)
        teacher = h.teacher_model(args.teacher_dropout)
        r = h.train("teacher", teacher, h.ce_step, h.jittered_batches(xt, yt, batches, seed), teacher_epochs, val, args,
                    args.teacher_optimizer, args.teacher_lr, max_norm=args.teacher_max_norm)
        report.update(teacher_epochs=teacher_epochs, teacher_val_errors=r["test_errors"],
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
    out.write_text(json.dumps(report, indent=1))


def plot(files: list, out: Path) -> None:
    runs = sorted((r for f in files for r in json.loads(Path(f).read_text())["runs"]), key=lambda r: r["seed"])
    per_seed = [{name: r[name] for name in h.RUNS} for r in runs]
    table = h.aggregate(per_seed, h.MAX_NORM)
    h.plot(table, per_seed, out, 10_000, False, h.MAX_NORM)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=("alone", "kd", "plot"))
    p.add_argument("what", nargs="+", help="alone, kd: comma-separated learning rates; plot: results files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-epochs", type=int, default=30)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.part == "plot":
        plot(a.what, Path(a.out))
    else:
        validate(a.part, [float(v) for v in a.what[0].split(",")], a.seed, a.teacher_epochs, Path(a.out))


if __name__ == "__main__":
    main()
