"""Deploy the distilled student: prune it, quantize it, export each stage to ONNX, run it in ONNX Runtime.

    python examples/deploy_student.py                    # the hands-on's student, runs/teacher_student/kd_seed0.npz
    python examples/deploy_student.py --student PATH     # any saved StudentModel
    python examples/deploy_student.py --quick            # a smoke run: trains a student for a few seconds

The lecture's point is deployability: memory, latency and cost on a real device. This takes
the student the hands-on distilled (``examples/mnist_teacher_student.py``) through three
stages and takes each one *out* of minikd:

1. **float**: the distilled student as it is (105,866 parameters);
2. **pruned**: ``--amount`` of the filters of conv1 and conv2 and of the neurons of fc1
   removed (structured, L1), fine-tuned for one pass at lr/10, then ``prune.compact``-ed:
   a physically smaller network, not zeros in a big one;
3. **int8**: stage 2 quantized after training (w8a8, per-channel weights, calibrated on
   ``--calibration-images`` training images) and converted to integer layers
   (``quant.convert_to_integer``).

Each stage is written as a ``.safetensors`` checkpoint (which PyTorch loads) and as an
``.onnx`` file (``minikd.export.to_onnx``), then run by ONNX Runtime on the whole MNIST test
set. One table compares: parameters, ONNX file size, accuracy in minikd and in ONNX Runtime,
how many predictions agree, and the latency per image at batch 1 and at batch 1000 in both
engines (median of ``--repeats`` runs; both on this machine's CPU threads).

Needs the deploy extra: ``pip install -e ".[deploy]"`` (onnx, onnxruntime, safetensors).
Outputs in ``--out`` (default ``runs/deploy``): the files of each stage and ``results.json``.
Every option is checked before any work (a bad one is a one-line error, exit status 2).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import (
    DATA_DIR_HELP,
    add_out_option,
    ce_step,
    check,
    check_checkpoint,
    check_data_dir,
    check_out,
    evaluate,
    fit,
    format_seconds,
    given_options,
    load_mnist_data,
    load_weights,
    quick_defaults,
    refuse_unused,
    run_cli,
    run_platform,
    run_settings,
    seeded_stream_kept,
    write_json,
)

import minikd as mk
from minikd import optim, prune, quant
from minikd.checks import check_int, check_number
from minikd.data import DataLoader
from minikd.data.mnist import normalize
from minikd.models import StudentModel
from minikd.profile import measure_latency, summary

DEFAULT_STUDENT = "runs/teacher_student/kd_seed0.npz"


def deploy_modules():
    """onnx and onnxruntime, or a one-line error naming the extra to install."""
    try:
        import onnxruntime
        import safetensors  # noqa: F401

        from minikd.export import to_onnx
    except ImportError as e:
        raise SystemExit(f'error: this example needs the deploy extra: pip install -e ".[deploy]" ({e})') from None
    return onnxruntime, to_onnx


# --------------------------------------------------------------------------- the stages


def train_quick_student(x, y, args):
    """--quick only: a student trained from scratch for one short pass (no teacher): it shows the code runs."""
    mk.manual_seed(args.seed)
    model = StudentModel()
    fit(model, optim.Adam(model.parameters(), lr=1e-3), ce_step,
        DataLoader(x, y, 64, shuffle=True, seed=args.seed), 1, "student (quick)", progress=args.progress)
    return model


def pruned(student, x, y, args):
    """Structured pruning (filters of conv1/conv2, neurons of fc1; L1, local), one pass of
    fine-tuning at lr 1e-4, then compacted and its masks dropped (the pruned units are gone)."""
    model = copy.deepcopy(student)
    prune_units(model, args.amount)
    n = args.finetune_images
    fit(model, optim.Adam(model.parameters(), lr=1e-4), ce_step,
        DataLoader(x[:n], y[:n], 64, shuffle=True, seed=args.seed), 1, "fine-tune pruned", progress=args.progress)
    prune.compact(model, (1, 28, 28))
    prune.remove_masks(model)
    return model.eval()


def prune_units(model, amount: float) -> None:
    """The structured pruning of the ``pruned`` stage: ``amount`` of the filters of conv1 and conv2
    and of the neurons of fc1, the smallest by L1 norm in each layer."""
    prune.prune(model, amount, criterion="l1", structure="filter", layers=["conv1", "conv2"])
    prune.prune(model, amount, criterion="l1", structure="neuron", layers=["fc1"])


def quantized(model, x, args):
    """PTQ w8a8 (per-channel weights), calibrated on training images, converted to int8 layers."""
    n = args.calibration_images
    batches = [mk.tensor(x[i:i + 256]) for i in range(0, n, 256)]
    qmodel = quant.quantize_model(model, w_bits=8, a_bits=8, calibration_batches=batches)
    return quant.convert_to_integer(qmodel)


# --------------------------------------------------------------------------- measuring


def ort_predict(session, x, batch=1000):
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def minikd_predict(model, x, batch=1000):
    with mk.no_grad():
        return np.concatenate([model.eval()(mk.tensor(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def ort_latency_ms(session, batch, repeats, warmup=3):
    """Median milliseconds per image of ``session.run`` at ``batch`` images."""
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        session.run(None, {name: x})
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)) / batch


def minikd_latency_ms(model, batch, repeats):
    return measure_latency(model, (1, 28, 28), batch_size=batch, warmup=3, repeats=repeats).median_ms / batch


def measure(stage, model, x_test, y_test, out, args, ort, to_onnx):
    """Write the stage's files, run it in both engines, return its row of the table."""
    safetensors_path, onnx_path = out / f"{stage}.safetensors", out / f"{stage}.onnx"
    mk.save(model.state_dict(), safetensors_path)
    to_onnx(model, (1, 1, 28, 28), onnx_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    mine, theirs = minikd_predict(model, x_test), ort_predict(session, x_test)
    pred_mine, pred_theirs = mine.argmax(1), theirs.argmax(1)
    row = dict(stage=stage, params=summary(model, (1, 28, 28)).total_params,
               onnx_bytes=os.path.getsize(onnx_path), safetensors_bytes=os.path.getsize(safetensors_path),
               acc_minikd=float((pred_mine == y_test).mean()), acc_onnxruntime=float((pred_theirs == y_test).mean()),
               disagreements=int((pred_mine != pred_theirs).sum()),
               max_abs_logit_diff=float(np.abs(mine - theirs).max()))
    for batch in (1, 1000):
        row[f"minikd_ms_per_image_b{batch}"] = minikd_latency_ms(model, batch, args.repeats)
        row[f"onnxruntime_ms_per_image_b{batch}"] = ort_latency_ms(session, batch, args.repeats)
    return row


def print_table(rows, n_test):
    print(f"\nEach stage on the {n_test:,} test images, in minikd and in ONNX Runtime "
          f"(latency: median ms per image)\n")
    head = (f"{'stage':<7} {'params':>8} {'ONNX file':>11} {'safetensors':>11} {'acc minikd':>10} {'acc ORT':>8} "
            f"{'agree':>13} "
            f"{'minikd b1':>9} {'ORT b1':>7} {'minikd b1000':>12} {'ORT b1000':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        agree = f"{n_test - r['disagreements']:,}/{n_test:,}"
        print(f"{r['stage']:<7} {r['params']:>8,} {r['onnx_bytes'] / 1024:>7.1f} KiB "
              f"{r['safetensors_bytes'] / 1024:>7.1f} KiB {100 * r['acc_minikd']:>9.2f}% "
              f"{100 * r['acc_onnxruntime']:>7.2f}% {agree:>13} {r['minikd_ms_per_image_b1']:>9.3f} "
              f"{r['onnxruntime_ms_per_image_b1']:>7.3f} {r['minikd_ms_per_image_b1000']:>12.4f} "
              f"{r['onnxruntime_ms_per_image_b1000']:>9.4f}")
    size = {r["stage"]: r["onnx_bytes"] for r in rows}
    print(f"\nONNX file sizes: pruned {size['pruned'] / size['float']:.2f}× the float student; int8 "
          f"{size['int8'] / size['pruned']:.2f}× the pruned float model, {size['int8'] / size['float']:.2f}× the "
          f"float student")


# --------------------------------------------------------------------------- command line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--student", default=None,
                   help="a saved StudentModel (.npz or .safetensors): the hands-on's distilled student by default")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    add_out_option(p, "runs/deploy", "each stage's .safetensors and .onnx and results.json")
    p.add_argument("--amount", type=float, default=0.5, help="fraction of conv filters and fc1 neurons removed")
    p.add_argument("--finetune-images", type=int, default=None, help="training images of the pruned model's "
                   "fine-tuning pass (default 60000; --quick: 2000)")
    p.add_argument("--calibration-images", type=int, default=None,
                   help="training images that calibrate int8 (default 1024; --quick: 256)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per latency, the median reported (default 30; --quick: 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime's threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run: a student trained briefly, subsets")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    ok = partial(check, p)
    quick_defaults(args, finetune_images=(60000, 2000), calibration_images=(1024, 256), repeats=(30, 3))
    ok(check_number, args.amount, "--amount", "the pruned fraction", low=0, high=1, high_open=True)
    try:  # on a throwaway student: an amount that would empty a layer is refused now, not after training
        with seeded_stream_kept():
            prune_units(StudentModel(), args.amount)
    except ValueError as e:
        p.error(f"--amount {args.amount:g}: {e}")
    ok(check_int, args.finetune_images, "--finetune-images", "the number of fine-tuning images", low=1)
    ok(check_int, args.calibration_images, "--calibration-images", "the number of calibration images", low=1)
    ok(check_int, args.repeats, "--repeats", "the number of timed runs", low=1)
    ok(check_int, args.threads, "--threads", "the number of threads", low=1)
    ok(check_int, args.seed, "--seed", "the seed", low=0)
    if args.quick:
        refuse_unused(p, given_options(p, argv, args),
                      {"student": "--student has no effect here: --quick trains a student of its own"})
    if not args.quick:
        args.student = DEFAULT_STUDENT if args.student is None else args.student
        if not Path(args.student).exists():
            p.error(f"--student {args.student}: no such file; run python examples/mnist_teacher_student.py first "
                    f"(it writes {DEFAULT_STUDENT}), pass a saved StudentModel, or use --quick")
        check_checkpoint(p, args.student, "--student", StudentModel, must_exist=True)
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    ort, to_onnx = deploy_modules()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = load_mnist_data(args.data_dir)  # prints the folder it read
    x_train, x_test = normalize(x_train), normalize(x_test)
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:6000], y_train[:6000], x_test[:2000], y_test[:2000]
        print("SMOKE RUN (--quick: a student trained for one pass over 6,000 images, 2,000 test images, 3 timed runs): "
              "the numbers only show the code runs")
        student = train_quick_student(x_train, y_train, args)
    else:
        student = StudentModel()
        load_weights(student, args.student)
        print(f"student: loaded {args.student} (test accuracy {100 * evaluate(student, x_test, y_test):.2f} %)")
    student.eval()

    stages = {"float": student}
    stages["pruned"] = pruned(student, x_train, y_train, args)
    stages["int8"] = quantized(stages["pruned"], x_train, args)
    rows = [measure(name, model, x_test, y_test, out, args, ort, to_onnx) for name, model in stages.items()]
    print_table(rows, len(y_test))
    for r in rows:
        if r["disagreements"]:
            print(f"{r['stage']}: {r['disagreements']} predictions differ between minikd and ONNX Runtime "
                  f"(max |logit difference| {r['max_abs_logit_diff']:.2g})")
    wall = time.perf_counter() - start
    write_json({"settings": run_settings(args), "platform": run_platform(args), "rows": rows,
                "onnxruntime": ort.__version__, "wall_seconds": wall}, out / "results.json")
    print(f"\nfiles and results.json in {out}/ ({format_seconds(wall)})")


if __name__ == "__main__":
    run_cli(main)
