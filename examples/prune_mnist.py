"""Pruning the hands-on's teacher: what each choice of the lecture costs in accuracy and saves in size and time.

    python examples/prune_mnist.py                       # reuses runs/teacher_student/teacher_seed0.npz
    python examples/prune_mnist.py --teacher PATH        # any saved TeacherModel
    python examples/prune_mnist.py --quick               # a smoke run on a subset

Starting from the trained teacher (trained here with the lecture's settings if no checkpoint
is found), it sweeps the sparsity and, at each point, prunes a copy of the teacher, measures
the test accuracy, fine-tunes briefly, and measures it again:

- **criterion**: weight magnitude (L1), gradient-based (|w · ∂L/∂w| accumulated over a few
  minibatches, Molchanov et al. 2017), random — unstructured, global;
- **scope**: local (the same fraction of every layer) vs global (one threshold);
- **structure**: unstructured (single weights, masked) vs structured (whole conv filters and
  fc neurons, L1), the structured models then made physically smaller with
  ``prune.compact`` and their inference time measured;
- **method**: one-shot (prune → fine-tune) vs iterative (a cubic schedule of pruning steps,
  each followed by a short fine-tuning) at the same final sparsity.

The final classifier (fc2) is never pruned. Outputs in ``--out`` (default ``runs/prune``):
``results.json``, ``accuracy_vs_sparsity.png`` and ``accuracy_vs_latency.png``. With
``--device cuda`` everything — training, pruning, fine-tuning, compacting, the timed
inference — runs on the GPU (the data stay on the host; each minibatch is uploaded once), so
the latencies are the GPU's.

Every option is checked before any work (a bad one is a one-line error, exit status 2).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import plots
from common import (
    DATA_DIR_HELP,
    DEVICE_HELP,
    add_out_option,
    ce_step,
    check,
    check_data_dir,
    check_out,
    check_training_options,
    device_option,
    evaluate,
    fit,
    format_seconds,
    hands_on_model_option,
    load_mnist_data,
    load_or_train,
    mark_smoke_run,
    quick_defaults,
    run_cli,
    run_settings,
    write_json,
)
from tqdm import tqdm

from minikd import functional as F
from minikd import optim, prune
from minikd.checks import check_int
from minikd.data import DataLoader, normalize
from minikd.models import TeacherModel
from minikd.profile import measure_latency, summary

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
STRUCTURED = (0.0, 0.25, 0.5, 0.7, 0.85)  # fraction of conv filters and fc1 neurons removed
ITERATIVE = (0.8, 0.9, 0.95)


def finetune(model, x, y, args, images=None):
    """A short fine-tuning: Adam at lr/10, cross-entropy, one pass over ``images`` training images
    (masks keep pruned weights at 0)."""
    n = args.finetune_images if images is None else images
    opt = optim.Adam(model.parameters(), lr=args.lr / 10)
    loader = DataLoader(x[:n], y[:n], args.batch_size, shuffle=True, seed=args.seed, device=args.device)
    fit(model, opt, ce_step, loader, progress=False)


def gradient_scores(model, x, y, args):
    """Molchanov's criterion: |w · ∂L/∂w| summed over a few minibatches of training data."""
    batches = list(DataLoader(x[:args.batch_size * 20], y[:args.batch_size * 20], args.batch_size,
                              device=args.device))
    return prune.accumulate_gradients(model, batches, F.cross_entropy, n_batches=len(batches))


def point(teacher, data, args, **prune_kwargs):
    """Prune a copy of the teacher; accuracy before and after fine-tuning."""
    x_train, y_train, x_test, y_test = data
    model = copy.deepcopy(teacher)
    prune.prune(model, **prune_kwargs)
    before = evaluate(model, x_test, y_test)
    finetune(model, x_train, y_train, args)
    return model, before, evaluate(model, x_test, y_test)


def sweep(teacher, data, args, grads):
    rows = []
    settings = [("L1, local", dict(criterion="l1", scope="local")),
                ("L1, global", dict(criterion="l1", scope="global")),
                ("gradient, global", dict(criterion="gradient", scope="global", grads=grads)),
                ("random, global", dict(criterion="random", scope="global", seed=args.seed))]
    bar = tqdm(total=len(settings) * len(args.sparsities) + len(args.structured) + len(args.iterative),
               desc="pruning sweep", disable=not args.progress)
    for label, kwargs in settings:
        for amount in args.sparsities:
            model, before, after = point(teacher, data, args, amount=amount, structure="unstructured", **kwargs)
            rows.append(dict(method=f"unstructured, {label}", amount=amount, sparsity=_sparsity(model),
                             acc_pruned=before, acc_finetuned=after))
            bar.update()

    # structured: whole filters of conv1/conv2 and neurons of fc1, then physically removed
    x_train, y_train, x_test, y_test = data
    for amount in args.structured:
        model = copy.deepcopy(teacher)
        if amount > 0:
            prune.prune(model, amount, criterion="l1", scope="local", structure="filter", layers=["conv1", "conv2"])
            prune.prune(model, amount, criterion="l1", scope="local", structure="neuron", layers=["fc1"])
        before = evaluate(model, x_test, y_test)
        finetune(model, x_train, y_train, args)
        prune.compact(model, (1, 28, 28))
        after = evaluate(model, x_test, y_test)
        s = summary(model, (1, 28, 28))
        lat = measure_latency(model, (1, 28, 28), batch_size=args.latency_batch, warmup=3, repeats=args.latency_repeats)
        rows.append(dict(method="structured (filters + neurons), L1, compacted", amount=amount,
                         sparsity=1 - s.total_params / args.teacher_params, params=s.total_params, macs=s.total_macs,
                         acc_pruned=before, acc_finetuned=after, latency_ms=lat.median_ms,
                         images_per_s=lat.images_per_s))
        bar.update()

    # iterative: the same final sparsity reached in steps, fine-tuning after each
    for target in args.iterative:
        model = copy.deepcopy(teacher)
        steps = prune.schedule(target, args.iterative_steps, kind="cubic")
        per_step = max(1, args.finetune_images // len(steps))  # the same fine-tuning budget as one-shot
        for amount in steps:
            prune.prune(model, amount, criterion="l1", scope="global", structure="unstructured")
            finetune(model, x_train, y_train, args, images=per_step)
        rows.append(dict(method="unstructured, L1, global, iterative", amount=target, sparsity=_sparsity(model),
                         acc_pruned=None, acc_finetuned=evaluate(model, x_test, y_test), steps=list(steps)))
        bar.update()
    bar.close()
    return rows


def _sparsity(model) -> float:
    return float(prune.sparsity(model).total)


# --------------------------------------------------------------------------- pictures and table

# one marker and line style per method, so that lines lying on one another stay distinguishable
METHOD_STYLES = {
    "unstructured, L1, local": dict(marker="o", ls="-", color="tab:blue"),
    "unstructured, L1, global": dict(marker="s", ls="-", color="tab:orange", mfc="none"),
    "unstructured, gradient, global": dict(marker="D", ls="-", color="tab:green", ms=5),
    "unstructured, random, global": dict(marker="v", ls="-", color="tab:red"),
    "structured (filters + neurons), L1, compacted": dict(marker="^", ls="-.", color="tab:purple"),
    "unstructured, L1, global, iterative": dict(marker="x", ls="--", color="tab:brown", ms=8, mew=2),
}


def plot_accuracy_vs_sparsity(rows, path: Path):
    """Two panels: the test accuracy over the whole range, and the test error (100 − accuracy) on a
    log scale, which spreads out the top of the range where the good methods differ by tenths of a
    point (a zoom would cut the poor methods off)."""
    plt = plots.pyplot()
    fig, (ax_acc, ax_err) = plt.subplots(1, 2, figsize=(13, 5))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["sparsity"])
        style = dict(METHOD_STYLES.get(method, dict(marker="o", ls="-")), label=method, lw=1.5, alpha=0.9)
        x = [100 * r["sparsity"] for r in rs]
        ax_acc.plot(x, [100 * r["acc_finetuned"] for r in rs], **style)
        ax_err.plot(x, [100 * (1 - r["acc_finetuned"]) for r in rs], **style)
    ax_acc.set(ylabel="test accuracy after fine-tuning (%)", title="Accuracy vs sparsity, the whole range")
    plots.log_axis(ax_err, "y", ticks=[0.5, 1, 2, 5, 10, 20, 50])
    ax_err.set(ylabel="test error after fine-tuning (%, log scale)",
               title="The same as test error, log scale: the top spread out")
    for ax in (ax_acc, ax_err):
        ax.set(xlabel="sparsity (% of all conv/linear weights that are zero)", xlim=(-3, 103))
        ax.grid(alpha=0.3, which="both")
    plots.legend_below(fig, [ax_acc, ax_err], ncol=3)
    plots.finish(fig, path, title="Pruning the teacher: accuracy after fine-tuning, by criterion, scope, "
                                  "structure and method")


def plot_accuracy_vs_latency(rows, path: Path):
    """Structured pruning, then ``prune.compact``: accuracy against the measured inference time,
    each point labelled (filters/neurons removed, parameters, speed-up), every label inside the frame."""
    plt = plots.pyplot()
    rs = sorted((r for r in rows if "latency_ms" in r), key=lambda r: r["latency_ms"])
    fig, ax = plt.subplots(figsize=(9, 5))
    xs, ys = [r["latency_ms"] for r in rs], [100 * r["acc_finetuned"] for r in rs]
    ax.plot(xs, ys, "^-", color=METHOD_STYLES["structured (filters + neurons), L1, compacted"]["color"])
    ax.margins(x=0.08, y=0.12)
    texts = [(f"{100 * r['amount']:.0f} % removed" if r["amount"] > 0 else "unpruned teacher")
             + f", {100 * r['acc_finetuned']:.2f} %\n{r['params']:,} params"
             + (f"\n{r['speedup']:.1f}× faster" if r.get("speedup") and r["amount"] > 0 else "") for r in rs]
    plots.label_points(ax, xs, ys, texts)
    batch = rs[0].get("batch")
    ax.set(xlabel="measured inference time per batch" + (f" of {batch} images" if batch else "") + " (ms)",
           ylabel="test accuracy after fine-tuning (%)",
           title="Structured pruning + compact: accuracy vs measured time\n(% of conv filters and fc1 neurons removed)")
    ax.grid(alpha=0.3)
    plots.finish(fig, path)


def print_table(rows, base_acc, base_latency):
    print(f"\nunpruned teacher: test accuracy {100 * base_acc:.2f} %, {base_latency:.2f} ms per batch")
    print("amount: the fraction pruned (of the weights; structured: of the filters and neurons), sparsity: of the "
          "parameters — structured pruning removes more of them (a unit's inputs to the next layer go with it)")
    head = f"{'method':<48}{'amount':>7}{'sparsity':>9}{'pruned':>9}{'fine-tuned':>11}{'latency':>10}{'speed-up':>9}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        pruned = f"{100 * r['acc_pruned']:.2f}" if r["acc_pruned"] is not None else "-"
        lat = f"{r['latency_ms']:.2f}" if "latency_ms" in r else "-"
        speed = f"{r['speedup']:.2f}x" if "latency_ms" in r else "-"
        print(f"{r['method']:<48}{100 * r['amount']:>6.0f}%{100 * r['sparsity']:>8.1f}%{pruned:>9}"
              f"{100 * r['acc_finetuned']:>11.2f}{lat:>10}{speed:>9}")


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=None,
                   help="a saved TeacherModel (.npz). Default: the hands-on's, runs/teacher_student/teacher_seed0.npz,"
                        " trained here (and saved there, except by --quick) if it does not exist")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu", help=DEVICE_HELP + "; the latencies are measured there")
    add_out_option(p, "runs/prune", "results.json and the PNGs")
    p.add_argument("--epochs", type=int, default=None,
                   help="teacher training epochs, if it must be trained (default 5; --quick: 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finetune-images", type=int, default=None,
                   help="training images of each fine-tuning (default 20000; --quick: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-batch", type=int, default=64)
    p.add_argument("--latency-repeats", type=int, default=None, help="(default 30; --quick: 5)")
    p.add_argument("--quick", action="store_true", help="a smoke run: subsets, three sparsities, 1 epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    check_training_options(p, args)
    quick_defaults(args, finetune_images=(20000, 1000), latency_repeats=(30, 5))
    check(p, check_int, args.finetune_images, "--finetune-images", "the number of fine-tuning images", low=1)
    check(p, check_int, args.latency_batch, "--latency-batch", "the latency batch size", low=1)
    check(p, check_int, args.latency_repeats, "--latency-repeats", "the number of latency repeats", low=1)
    args.device = check(p, device_option, args.device)
    hands_on_model_option(p, args, "teacher", TeacherModel, "teacher_seed0.npz")
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    args.sparsities, args.structured, args.iterative, args.iterative_steps = SPARSITIES, STRUCTURED, ITERATIVE, 4
    if args.quick:
        args.sparsities, args.structured, args.iterative, args.iterative_steps = (0.0, 0.5, 0.9), (0.0, 0.5), (0.9,), 2
    return args


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_mnist_data(args.data_dir)  # prints the folder it read
    x_train, x_test = normalize(x_train), normalize(x_test)
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
        print("SMOKE RUN (--quick: 3,000 training and 1,000 test images, a 1-epoch teacher if one is trained, "
              "short fine-tuning): the accuracies only show the code runs")
    data = (x_train, y_train, x_test, y_test)

    start = time.perf_counter()
    teacher = load_or_train("teacher", TeacherModel, args.teacher, x_train, y_train, args)
    args.teacher_params = summary(teacher, (1, 28, 28)).total_params
    base_acc = evaluate(teacher, x_test, y_test)
    base = measure_latency(teacher, (1, 28, 28), batch_size=args.latency_batch, warmup=3, repeats=args.latency_repeats)

    grads = gradient_scores(teacher, x_train, y_train, args)
    rows = sweep(teacher, data, args, grads)
    # speed-ups against the unpruned teacher timed inside the sweep (its 0 % structured row,
    # compacted to nothing smaller), so both times come from the same warm state
    ref = next((r["latency_ms"] for r in rows if "latency_ms" in r and r["amount"] == 0), base.median_ms)
    for r in rows:
        r["batch"] = args.latency_batch
        if "latency_ms" in r:
            r["speedup"] = ref / r["latency_ms"]
    print_table(rows, base_acc, ref)
    plot_accuracy_vs_sparsity(rows, out / "accuracy_vs_sparsity.png")
    plot_accuracy_vs_latency(rows, out / "accuracy_vs_latency.png")
    report = {"settings": run_settings(args),
              "unpruned": {"test_acc": base_acc, "latency_ms": ref, "params": args.teacher_params},
              "rows": rows, "platform": base.platform, "wall_seconds": time.perf_counter() - start}
    write_json(report, out / "results.json")
    print(f"\nwrote {out / 'results.json'}, accuracy_vs_sparsity.png, accuracy_vs_latency.png "
          f"({format_seconds(report['wall_seconds'])})")
    return report


if __name__ == "__main__":
    run_cli(main)
