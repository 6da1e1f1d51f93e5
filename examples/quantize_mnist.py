"""Quantizing the hands-on's teacher and student: PTQ and QAT at 8, 6, 4 and 2 bits, and real int8 inference.

    python examples/quantize_mnist.py        # reuses runs/teacher_student/{teacher,student}_seed0.npz
    python examples/quantize_mnist.py --quick

For each model and each bit width b it measures the test accuracy of

- **PTQ** (post-training quantization), wbab in QuantFace's notation: weights quantized per
  output channel (symmetric), input activations of every conv/linear layer per tensor
  (asymmetric), their ranges calibrated on a few training batches — no training;
- **QAT** (quantization-aware training): the same fake-quantized model fine-tuned briefly with
  the straight-through estimator, distilled from its own full-precision version (QuantFace's
  idea: the full-precision model is the teacher of its quantized self):
  L = (1 − λ)·CE + λ·T²·KL(p_fp ‖ p_q), λ = 0.5, T = 3;

and, at 8 bits, runs the PTQ model with **integer arithmetic** (int8 weights and activations,
int32 accumulation) and compares it with the fake-quantized one and the file sizes on disk.
Outputs in ``--out`` (default ``runs/quantize``): ``results.json``, ``accuracy_vs_bits.png``
and ``weight_histogram.png`` (the teacher's fc1 weights before and after 4-bit quantization).
With ``--device cuda`` the training, calibration, QAT, evaluation and the integer inference run
on the GPU (the data stay on the host; each minibatch is uploaded once).

Every option is checked before any work (a bad one is a one-line error, exit status 2).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import plots
from common import (
    DATA_DIR_HELP,
    DEVICE_HELP,
    add_out_option,
    check,
    check_data_dir,
    check_out,
    check_training_options,
    device_option,
    evaluate,
    fit,
    format_seconds,
    given_options,
    hands_on_model_option,
    load_mnist_data,
    load_or_train,
    make_kd_step,
    mark_smoke_run,
    parse_name_list,
    quick_defaults,
    refuse_unused,
    run_cli,
    run_platform,
    run_settings,
    write_json,
)
from tqdm import tqdm

import minikd as mk
from minikd import optim, quant
from minikd.checks import check_int
from minikd.data import DataLoader, normalize
from minikd.models import StudentModel, TeacherModel
from minikd.profile import summary

BITS = (8, 6, 4, 2)
MODELS = {"teacher": TeacherModel, "student": StudentModel}


def calibration_batches(x, args):
    n = args.calibration_batches * args.batch_size
    return [xb for xb, _ in DataLoader(x[:n], np.zeros(n, dtype=np.int64), args.batch_size, device=args.device)]


def qat(fp_model, bits, data, args):
    """Fake-quantized fine-tuning, distilled from the full-precision model (frozen, eval mode):
    Adam at lr/10, one pass over ``args.qat_images`` training images."""
    x, y = data[0][:args.qat_images], data[1][:args.qat_images]
    model = quant.prepare_qat(copy.deepcopy(fp_model), w_bits=bits, a_bits=bits)
    opt = optim.Adam(model.parameters(), lr=args.lr / 10)
    loader = DataLoader(x, y, args.batch_size, shuffle=True, seed=args.seed, device=args.device)
    fit(model, opt, make_kd_step(fp_model, T=3.0, lam=0.5), loader, progress=False)
    return model


def size_bytes(model) -> float:
    """Memory of the parameters as profile.summary counts it (each layer at its weight_bits)."""
    return summary(model, (1, 28, 28)).total_memory_bytes


def run(args):
    x_train, y_train, x_test, y_test = load_mnist_data(args.data_dir)  # prints the folder it read
    x_train, x_test = normalize(x_train), normalize(x_test)
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
        print("SMOKE RUN (--quick: 3,000 training and 1,000 test images, 1-epoch models if they are trained, "
              "short QAT): the accuracies only show the code runs")
    data = (x_train, y_train, x_test, y_test)
    calib = calibration_batches(x_train, args)
    out = Path(args.out)

    rows, extra = [], {}
    for name in args.models:
        fp = load_or_train(name, MODELS[name], getattr(args, name), data[0], data[1], args)
        fp_acc = evaluate(fp, x_test, y_test)
        fp_size = size_bytes(fp)
        rows.append(dict(model=name, method="float32", bits=32, test_acc=fp_acc, size_bytes=fp_size))
        for bits in tqdm(args.bits, desc=f"{name}: PTQ and QAT", disable=not args.progress):
            ptq = quant.quantize_model(fp, w_bits=bits, a_bits=bits, calibration_batches=calib)
            rows.append(dict(model=name, method="PTQ", bits=bits, test_acc=evaluate(ptq, x_test, y_test),
                             size_bytes=size_bytes(ptq)))
            q = qat(fp, bits, data, args)
            rows.append(dict(model=name, method="QAT + KD", bits=bits, test_acc=evaluate(q, x_test, y_test),
                             size_bytes=size_bytes(q)))
            if bits == 8:
                extra[name] = integer_check(ptq, fp, data, out, name, args.device)
        if name == "teacher":
            plot_weight_histogram(fp, out / "weight_histogram.png")
    return rows, extra


def integer_check(ptq, fp, data, out: Path, name: str, device: str = "cpu") -> dict:
    """w8a8 with integer arithmetic: accuracy, agreement with fake quantization, size on disk."""
    x_test, y_test = data[2], data[3]
    integer = quant.convert_to_integer(ptq)
    with mk.no_grad():
        xb = mk.tensor(x_test[:1000], device=device)
        y_fake, y_int = ptq(xb).numpy(), integer(xb).numpy()
    float_file, int_file = out / f"{name}_float32.npz", out / f"{name}_int8.npz"
    mk.save(fp.state_dict(), float_file)
    mk.save(integer.state_dict(), int_file)
    return {"test_acc": evaluate(integer, x_test, y_test), "max_abs_diff_vs_fake": float(np.abs(y_fake - y_int).max()),
            "same_prediction": float((y_fake.argmax(1) == y_int.argmax(1)).mean()),
            "file_bytes_float32": float_file.stat().st_size, "file_bytes_int8": int_file.stat().st_size}


# --------------------------------------------------------------------------- pictures and table

MODEL_COLORS = {"teacher": "tab:blue", "student": "tab:orange"}  # as in the hands-on's pictures
METHOD_STYLES = {"PTQ": dict(marker="o", ls="-"), "QAT + KD": dict(marker="s", ls="--", mfc="none")}


def plot_accuracy_vs_bits(rows, path: Path):
    """Accuracy against the bit width and against the parameter memory, one colour per model: its
    float32 accuracy a dotted line (left) and a star (right) of the same colour, named in the
    legend under the panels."""
    plt = plots.pyplot()
    fig, (ax_bits, ax_size) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in dict.fromkeys(r["model"] for r in rows):
        color = MODEL_COLORS.get(name)
        fp = next(r for r in rows if r["model"] == name and r["method"] == "float32")
        for method, style in METHOD_STYLES.items():
            rs = sorted((r for r in rows if r["model"] == name and r["method"] == method), key=lambda r: r["bits"])
            kw = dict(style, color=color, label=f"{name}, {method}")
            ax_bits.plot([r["bits"] for r in rs], [100 * r["test_acc"] for r in rs], **kw)
            ax_size.plot([r["size_bytes"] / 1024 for r in rs], [100 * r["test_acc"] for r in rs], **kw)
        fp_label = f"{name}, float32: {100 * fp['test_acc']:.2f} %, {fp['size_bytes'] / 1024:,.0f} KiB"
        ax_bits.axhline(100 * fp["test_acc"], lw=1.2, ls=":", color=color, label=fp_label)
        ax_size.plot([fp["size_bytes"] / 1024], [100 * fp["test_acc"]], "*", ms=14, color=color, mec="black",
                     mew=0.6, ls="none", label=fp_label)
    bits = sorted({r["bits"] for r in rows if r["method"] != "float32"})
    plots.integer_ticks(ax_bits, bits)
    ax_bits.set(xlabel="bits b (weights and activations: wbab)", ylabel="test accuracy (%)",
                title="Accuracy vs bit width (dotted: each model's float32)")
    plots.log_axis(ax_size, "x", ticks=[25, 50, 100, 200, 400, 800, 1600])
    ax_size.set(xlabel="parameter memory (KiB, log scale)", ylabel="test accuracy (%)",
                title="Accuracy vs parameter memory (★: each model's float32)")
    for ax in (ax_bits, ax_size):
        ax.grid(alpha=0.3)
    low = [r for r in rows if r["method"] != "float32" and r["bits"] == min(bits)]  # where the methods differ
    plots.label_points(ax_bits, [r["bits"] for r in low], [100 * r["test_acc"] for r in low],
                       [f"{100 * r['test_acc']:.1f} %" for r in low])
    plots.legend_below(fig, [ax_bits, ax_size], ncol=2)  # a column per model
    plots.finish(fig, path, title="Quantizing the teacher and the student: post-training (PTQ) and "
                                  "quantization-aware training with KD")


def plot_weight_histogram(model, path: Path, bits: int = 4):
    """fc1's weights in float32 and after b-bit quantization with one symmetric scale for the
    layer: the levels of the grid show as spikes (per-channel scales, which the PTQ
    and QAT runs use, give every row its own grid and blur the picture). The legend sits under
    the plot, off the spikes."""
    plt = plots.pyplot()
    w = model.fc1.weight.numpy()
    s, z = quant.qparams(float(w.max()), float(w.min()), bits, symmetric=True)
    wq = quant.fake_quantize(mk.tensor(w), bits, s, z).numpy()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.hist(w.ravel(), bins=200, alpha=0.6, label=f"float32 ({w.size:,} weights)")
    k = np.unique(np.round(wq / s)).astype(int)  # the grid's levels k·s that the weights use
    ax.hist(wq.ravel(), bins=200, alpha=0.8, label=f"{bits}-bit, one symmetric scale s = {s:.3f}: "
                                                   f"{len(k)} levels k·s used, k = {k.min()}…{k.max()}")
    ax.set(xlabel="weight value", ylabel="count (log scale)", yscale="log",
           title=f"Teacher fc1 weights before and after {bits}-bit quantization")
    ax.grid(alpha=0.3, axis="y")
    plots.legend_below(fig, ax, ncol=1)
    plots.finish(fig, path)


def print_table(rows, extra):
    print(f"\n{'model':<9}{'method':<10}{'bits':>6}{'test acc':>10}{'param memory':>14}")
    print("-" * 49)
    for r in rows:
        print(f"{r['model']:<9}{r['method']:<10}{r['bits']:>6}{100 * r['test_acc']:>9.2f}%"
              f"{r['size_bytes'] / 1024:>11.1f} KiB")
    for name, e in extra.items():
        print(f"{name} w8a8 with integer arithmetic: {100 * e['test_acc']:.2f} %, same prediction as the "
              f"fake-quantized model on {100 * e['same_prediction']:.1f} % of 1,000 test images, max |Δlogit| "
              f"{e['max_abs_diff_vs_fake']:.2e}; on disk {e['file_bytes_int8']:,} B vs {e['file_bytes_float32']:,} B "
              f"float32 ({e['file_bytes_int8'] / e['file_bytes_float32']:.2f}×)")


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=None,
                   help="a saved TeacherModel (.npz). Default: the hands-on's, runs/teacher_student/teacher_seed0.npz,"
                        " trained here (and saved there, except by --quick) if it does not exist")
    p.add_argument("--student", default=None,
                   help="a saved StudentModel (.npz). Default: the hands-on's student trained alone, "
                        "runs/teacher_student/student_seed0.npz, trained here likewise if it does not exist")
    p.add_argument("--models", default="teacher,student")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    add_out_option(p, "runs/quantize", "results.json and the PNGs")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs, if a model must be trained (default 5; --quick: 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--qat-images", type=int, default=None,
                   help="training images of each QAT fine-tuning (default 20000; --quick: 1000)")
    p.add_argument("--calibration-batches", type=int, default=None, help="(default 10; --quick: 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run: subsets, 8 and 4 bits, 1 epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    check_training_options(p, args)
    quick_defaults(args, qat_images=(20000, 1000), calibration_batches=(10, 2))
    check(p, check_int, args.qat_images, "--qat-images", "the number of QAT images", low=1)
    check(p, check_int, args.calibration_batches, "--calibration-batches", "the number of calibration batches",
          low=1)
    args.device = check(p, device_option, args.device)
    args.models = parse_name_list(p, args.models, "--models", sorted(MODELS), what="model")
    refuse_unused(p, given_options(p, argv, args), {
        name: f"--{name} has no effect here: --models {','.join(args.models)} does not quantize the {name}"
        for name in MODELS if name not in args.models})
    for name in args.models:
        hands_on_model_option(p, args, name, MODELS[name], f"{name}_seed0.npz")
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    args.bits = BITS
    if args.quick:
        args.bits = (8, 4)
    return args


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows, extra = run(args)
    print_table(rows, extra)
    plot_accuracy_vs_bits(rows, Path(args.out) / "accuracy_vs_bits.png")
    report = {"settings": run_settings(args), "platform": run_platform(args), "rows": rows,
              "integer_w8a8": extra, "wall_seconds": time.perf_counter() - start}
    write_json(report, Path(args.out) / "results.json")
    print(f"\nwrote {Path(args.out) / 'results.json'}, accuracy_vs_bits.png, weight_histogram.png "
          f"({format_seconds(report['wall_seconds'])})")
    return report


if __name__ == "__main__":
    run_cli(main)
