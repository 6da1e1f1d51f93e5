"""QuantFace on MNIST: quantize the hands-on's teacher and student with synthetic data only.

    python examples/quantface_mnist.py --synthetic generator=runs/data_free/generator.npz \
        --synthetic actmax=runs/df_actmax/pool_actmax_seed0.npz     # real data, G's and actmax's images
    python examples/quantface_mnist.py --no-real --synthetic actmax=runs/df_actmax/pool_actmax_seed0.npz
    python examples/quantface_mnist.py --quick --synthetic actmax=PATH.npz       # a smoke run
    python examples/quantface_mnist.py --seeds 0,1,2 --synthetic generator=runs/data_free/generator.npz \
        --synthetic actmax=runs/df_actmax/pool_actmax_seed{seed}.npz               # {seed}: each seed's file

QuantFace (Boutros, Damer, Kuijper, ICPR 2022) quantizes a face-recognition model without
its training data: the images come from a generator or from noise, and the labels are not
needed, because the full-precision model teaches its own quantized copy. For each model
(``--models``: the hands-on teacher and student) and each bit width wbab (``--bits``, default
8, 6, 4) this example measures, on the real test set:

- **PTQ**: the activation ranges calibrated on ``--calibration-batches`` batches of the
  data source (:func:`minikd.quant.quantize_model`), no training;
- **QAT + KD** (QuantFace): the fake-quantized copy (:func:`minikd.quant.prepare_qat`) fine-tuned
  for one pass over ``--qat-images`` images of the data source (Adam, lr/10 as in
  ``quantize_mnist.py``) on :func:`minikd.quant.quantface_loss`: the squared distance between
  the quantized and the full-precision model's L2-normalised embeddings, 2 − 2·cos per image
  (QuantFace's loss, summed over the entries where its code averages them), plus T²·KL between
  their softened logits (T = 3); no labels;
- **QAT, validated**: the same pass, validated. ``--holdout`` images of the source (default
  4,000) are held out before anything is calibrated or trained; the QuantFace loss against the
  full-precision model on them is measured for the PTQ model and after each of ``--checks``
  equal parts of the pass (default 4), and the lowest wins: PTQ, or the checkpoint after 1/4,
  2/4, 3/4 or all of the pass. The held-out images come from the same source, so the synthetic
  rows still never see a real image; the test set is never used to choose.

The data sources: ``real`` (the MNIST training images: the reference, like-for-like with the
synthetic runs) and every ``--synthetic NAME=PATH``: a ``.npz`` pool of synthetic images
written by ``examples/data_free_kd.py`` (``pool_<method>_seed<s>.npz``, key ``images``:
N×1×28×28 float32, in the teacher's input space — normalised MNIST), or the conditional
generator of ``examples/train_conditional_generator.py`` (``generator.npz``), from which
``--qat-images`` + ``--holdout`` images are drawn, the classes balanced. What is left of a
source after the held-out images is cycled through when it has fewer than ``--qat-images``.
``--no-real`` skips the real rows: the run then never reads a training image (the
full-precision checkpoints must exist).

``--seeds 0,1,2`` repeats the whole measurement per seed s: every path may hold ``{seed}``,
replaced by s (the defaults do: ``runs/teacher_student/teacher_seed{seed}.npz``, the models of
``mnist_teacher_student.py --seeds 0,1,2``), and s also draws the calibration images, the QAT
order and G's samples. The table is then the mean ± std over the seeds (sample std).

Outputs in ``--out`` (default ``runs/quantface``): ``results.json`` (every row with its seed,
the mean ± std per row and its change from the float32 model, the wall time per seed) and
``quantface.png`` (the change from float32 per bit width, a line per data source and method;
error bars: the std over the seeds). Every option is checked before
any work, for every seed.
"""

from __future__ import annotations

import argparse
import copy
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import (
    DATA_DIR_HELP,
    HANDS_ON_HINT,
    add_out_option,
    check,
    check_checkpoint,
    check_data_dir,
    check_out,
    evaluate,
    fit,
    format_seconds,
    load_mnist_data,
    mark_smoke_run,
    parse_int_list,
    parse_name_list,
    read_checkpoint,
    read_mnist_split,
    run_cli,
    run_platform,
    run_settings,
    sample_std,
    save_figure,
    seeded_stream_kept,
    write_json,
)
from tqdm import tqdm
from train_conditional_generator import load_generator

import minikd as mk
from minikd import optim, quant
from minikd.checks import check_int, check_number, check_temperature
from minikd.data import DataLoader, normalize
from minikd.data.mnist import FILES, find_data_dir, missing_files
from minikd.models import StudentModel, TeacherModel

MODELS = {"teacher": TeacherModel, "student": StudentModel}
DEFAULT_BITS = (8, 6, 4)
IMAGE_SHAPE = (1, 28, 28)
QUICK_TEST = 1000   # --quick: the first test images only
METHODS = ("PTQ", "QAT (QuantFace)", "QAT, validated")


# --------------------------------------------------------------------------- data sources

def weights_of(path) -> dict:
    """A checkpoint's weights, its ``meta.*`` entries aside (:func:`common.read_checkpoint`)."""
    return read_checkpoint(path)[0]


def check_pool(path: Path, name: str) -> int | None:
    """Before any work: ``path`` must be a conditional generator's checkpoint that loads, or a pool of finite
    float images N×1×28×28 (N ≥ 1) in the normalised input space; ValueError naming the option, the file and
    what is wrong. The file is read in full, as the run reads it (every array, its CRC checked), and a
    generator is rebuilt from it: a damaged or truncated file, or a generator whose weights do not match its
    meta, is refused here, not after the test set is read. Returns N for a pool, None for a generator (which
    draws as many images as asked)."""
    what = f"--synthetic {name}={path}"
    try:
        state = mk.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: not a .npz pool of images nor a generator checkpoint ({unreadable(e, path)})"
                         ) from None
    if "meta.arch" in state and str(state["meta.arch"]) == "ConditionalGenerator":
        try:
            with seeded_stream_kept():      # building G to check it must not shift the seeded stream
                load_generator(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{what}: a conditional generator's checkpoint that does not load: "
                             f"{unreadable(e, path)}") from None
        return None
    if "images" not in state:
        raise ValueError(f"{what}: no 'images' array in the file (found {sorted(state)}), and not a "
                         "conditional generator's checkpoint (generator.npz)")
    images = state["images"]
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE or len(images) == 0:
        raise ValueError(f"{what}: expected images of shape N×1×28×28 with N ≥ 1; got {images.shape}")
    if images.dtype.kind != "f":
        raise ValueError(f"{what}: expected float images in the teacher's input space (normalised MNIST, "
                         f"(pixel/255 − 0.1307)/0.3081); got dtype {images.dtype} — raw pixels?")
    if not np.isfinite(images).all():
        raise ValueError(f"{what}: the images hold NaN or ±inf")
    low, high = float(images.min()), float(images.max())
    if low < -5 or high > 10:
        hint = " — are these raw pixels (0–255)?" if low >= 0 and high > 10 else ""
        raise ValueError(f"{what}: pixel values from {low:g} to {high:g}; normalised MNIST lies in about "
                         f"[−0.42, 2.82]{hint}")
    return len(images)


def unreadable(error: Exception, path: Path) -> str:
    """Why ``path`` could not be read or loaded (:func:`mk.load`'s error and the like), on one line, the file
    (named already by the caller) called "the file"."""
    text = " ".join(str(error).split()).removeprefix("load: ").replace(repr(str(path)), "the file")
    if "does not start as a zip file" in text:
        return "not a .npz (zip) file"
    return text if isinstance(error, ValueError) else f"{type(error).__name__}: {text}"


def load_pool(path: Path, name: str, n_generated: int = 20000, seed: int = 0) -> np.ndarray:
    """The synthetic images of ``path``: (N, 1, 28, 28) float32, checked by :func:`check_pool`.

    ``path`` is a pool (``.npz`` with an ``images`` array: ``pool_<method>_seed<s>.npz`` of
    ``data_free_kd.py``) or the checkpoint of a conditional generator (``generator.npz`` of
    ``train_conditional_generator.py``): then ``n_generated`` images are drawn from it, the
    classes balanced."""
    if check_pool(path, name) is None:        # a generator
        return generate(path, n_generated, seed)
    return mk.load(path)["images"].astype(np.float32, copy=False)


def generate(path: Path, n: int, seed: int, batch_size: int = 500) -> np.ndarray:
    """``n`` images of the conditional generator G saved at ``path``: y = 0, 1, …, 9, 0, … and z ~ N(0, I)."""
    G, _ = load_generator(path)
    rng = np.random.default_rng((seed, 7))
    y = np.arange(n) % G.num_classes
    out = []
    with mk.no_grad():
        for a in range(0, n, batch_size):
            z = rng.standard_normal((len(y[a:a + batch_size]), G.z_dim)).astype(np.float32)
            out.append(G(mk.tensor(z), mk.tensor(y[a:a + batch_size])).numpy())
    return np.concatenate(out)


def cycled(images: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` images drawn from ``images`` in a shuffled order, cycling through the pool when n > len."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(images)) for _ in range(-(-n // len(images)))])[:n]
    return images[order]


# --------------------------------------------------------------------------- PTQ and QuantFace's QAT

def quantface_step(fp_model, T: float):
    """The loss of :func:`common.fit` for QuantFace's QAT: the frozen full-precision model's
    logits and embeddings are the targets; the batch's labels (dummies) are never read."""
    def step(qmodel, x, _unused_labels):
        logits, features = qmodel(x, return_features=True)
        with mk.no_grad():
            fp_logits, fp_features = fp_model(x, return_features=True)
        return quant.quantface_loss(logits, features, fp_logits, fp_features, T=T), logits
    return step


def quantface_qat(fp_model, bits: int, images: np.ndarray, args, validate, start_loss: float):
    """One pass of QuantFace's label-free QAT over ``images`` (Adam at lr/10), validated.

    The pass is cut into ``args.checks`` equal parts (``images`` is already in a random order) and
    ``validate`` (model → held-out loss) runs after each. ``start_loss`` is the held-out loss of the
    PTQ model, the candidate before any step. Returns ``(qmodel, curve, best, train_seconds)``:
    the model after the whole pass; ``curve``, the held-out loss after each part as ``[images
    seen, loss]``; ``best``, ``(images seen, loss, a copy of that checkpoint)`` for the lowest loss
    of the curve if it is below ``start_loss``, else None (keep PTQ); and the seconds of training
    alone (the validations and copies not counted)."""
    qmodel = quant.prepare_qat(copy.deepcopy(fp_model), w_bits=bits, a_bits=bits)
    opt = optim.Adam(qmodel.parameters(), lr=args.lr / 10)
    step = quantface_step(fp_model, args.T)
    curve, best, seen, seconds = [], None, 0, 0.0
    best_loss = start_loss
    for k, part in enumerate(np.array_split(np.arange(len(images)), args.checks)):
        loader = DataLoader(images[part], np.zeros(len(part), dtype=np.int64), args.batch_size, shuffle=True,
                            seed=args.seed + 1000 * k)
        start = time.perf_counter()
        fit(qmodel, opt, step, loader, progress=False)
        seconds += time.perf_counter() - start
        seen += len(part)
        loss = validate(qmodel)
        curve.append([seen, loss])
        if loss < best_loss:  # only the best checkpoint is kept in memory
            best_loss, best = loss, (seen, loss, copy.deepcopy(qmodel).eval())
    return qmodel.eval(), curve, best, seconds


def heldout_loss(fp_model, held: np.ndarray, T: float, batch_size: int = 500):
    """model → its mean QuantFace loss against ``fp_model`` on the held-out images ``held``.

    The validation of a data-free QAT: the images come from the same source as the training
    images (a split of the pool, more of G's samples, or training images for the real rows),
    never from the test set. The full-precision outputs are computed once."""
    batches = [mk.tensor(held[a:a + batch_size]) for a in range(0, len(held), batch_size)]
    with mk.no_grad():
        targets = [fp_model(x, return_features=True) for x in batches]

    def validate(model) -> float:
        was_training = model.training
        model.eval()
        total = 0.0
        with mk.no_grad():
            for x, (fp_logits, fp_features) in zip(batches, targets):
                logits, features = model(x, return_features=True)
                total += float(quant.quantface_loss(logits, features, fp_logits, fp_features, T=T).item()) * len(x)
        model.train(was_training)
        return total / len(held)
    return validate


def with_seed(path, seed: int) -> Path:
    """``path`` with every ``{seed}`` replaced by ``seed`` (a path without one: the same file for every seed)."""
    return Path(str(path).replace("{seed}", str(seed)))


def load_test(args):
    """(x_test, y_test, x_train or None), normalised; the training images only with the real rows."""
    x_train = None
    if args.real:
        x_train, _, x_test, y_test = load_mnist_data(args.data_dir)
        x_train = normalize(x_train)
    else:  # never read a training image: only the two test files
        x_test, y_test = read_mnist_split("test", args.data_dir, download=False)
    x_test = normalize(x_test)
    if args.quick:
        x_test, y_test = x_test[:QUICK_TEST], y_test[:QUICK_TEST]
        print(f"SMOKE RUN (--quick: {QUICK_TEST:,} test images, {args.qat_images} QAT images, "
              f"{args.calibration_batches} calibration batches, {args.holdout} held-out images, {args.checks} checks, "
              f"bits {args.bits}): the accuracies only show the code runs")
    return x_test, y_test, x_train


def split_heldout(images: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the images to calibrate and train on, ``n`` held-out images to validate on): a seeded
    random split, so no held-out image is ever trained on."""
    order = np.random.default_rng((seed, 11)).permutation(len(images))
    return images[order[n:]], images[order[:n]]


def run(args, seed: int, x_test, y_test, x_train=None) -> list[dict]:
    """Every row of one seed: each model in float32, then per data source and bit width PTQ,
    QuantFace's QAT (one pass) and the validated pick among PTQ and the QAT's checkpoints."""
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    sources = ({"real": x_train} if args.real else {}) | {
        name: load_pool(with_seed(path, seed), name, args.qat_images + args.holdout, seed)
        for name, path in args.synthetic}
    n_calib = args.calibration_batches * args.batch_size

    rows = []
    for model_name in args.models:
        fp = MODELS[model_name]()
        fp.load_state_dict(weights_of(with_seed(getattr(args, model_name), seed)))
        fp.eval()
        rows.append(dict(model=model_name, source="-", method="float32", bits=32, seed=seed,
                         test_acc=evaluate(fp, x_test, y_test), images=0, seconds=0.0))
        for source, images in sources.items():
            images, held = split_heldout(images, args.holdout, seed)
            validate = heldout_loss(fp, held, args.T)
            calib = cycled(images, n_calib, seed)
            train = cycled(images, args.qat_images, seed + 1)
            batches = [mk.tensor(calib[i:i + args.batch_size]) for i in range(0, n_calib, args.batch_size)]
            for bits in tqdm(args.bits, desc=f"seed {seed}: {model_name} on {source}", disable=not args.progress):
                row = dict(model=model_name, source=source, bits=bits, seed=seed)
                start = time.perf_counter()
                ptq = quant.quantize_model(fp, w_bits=bits, a_bits=bits, calibration_batches=batches)
                ptq_seconds = time.perf_counter() - start
                ptq_row = row | dict(method="PTQ", test_acc=evaluate(ptq, x_test, y_test), images=n_calib,
                                     seconds=ptq_seconds, heldout_loss=validate(ptq))
                start = time.perf_counter()
                qat, curve, best, qat_seconds = quantface_qat(fp, bits, train, args, validate,
                                                              ptq_row["heldout_loss"])
                all_seconds = time.perf_counter() - start
                qat_row = row | dict(method="QAT (QuantFace)", test_acc=evaluate(qat, x_test, y_test),
                                     images=args.qat_images, seconds=qat_seconds, heldout_loss=curve[-1][1])
                # the validated pick: the lowest held-out loss among PTQ (0 images) and the checkpoints
                seen, loss, pick = best or (0, ptq_row["heldout_loss"], ptq)
                acc = (ptq_row["test_acc"] if seen == 0 else qat_row["test_acc"] if seen == args.qat_images
                       else evaluate(pick, x_test, y_test))
                rows += [ptq_row, qat_row, row | dict(
                    # images: everything the row used (calibration, the whole pass, the held-out images)
                    method="QAT, validated", test_acc=acc, images=n_calib + args.qat_images + args.holdout,
                    picked="PTQ" if seen == 0 else seen, seconds=ptq_seconds + all_seconds, heldout_loss=loss,
                    heldout_curve=[[0, ptq_row["heldout_loss"]]] + curve)]
    return rows


def summarise(rows) -> list[dict]:
    """One row per (model, source, method, bits): the test accuracy's mean and sample std over the
    seeds (std 0 for one seed), the per-seed values, the mean images and seconds, the change from the
    float32 model of the same seed (``change``, ``change_std``): what quantizing cost, without the
    spread between the seeds' models; for ``QAT, validated`` also each seed's pick (``picked``:
    "PTQ" or the images the picked checkpoint had seen)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["source"], r["method"], r["bits"]), []).append(r)
    fp = {(r["model"], r["seed"]): r["test_acc"] for r in rows if r["method"] == "float32"}
    out = []
    for (model, source, method, bits), rs in groups.items():
        acc = np.array([r["test_acc"] for r in rs])
        change = np.array([r["test_acc"] - fp[model, r["seed"]] for r in rs])
        out.append(dict(model=model, source=source, method=method, bits=bits, test_acc=float(acc.mean()),
                        test_acc_std=sample_std(acc), change=float(change.mean()), change_std=sample_std(change),
                        per_seed={str(r["seed"]): r["test_acc"] for r in rs},
                        images=int(round(np.mean([r["images"] for r in rs]))),
                        seconds=float(np.mean([r["seconds"] for r in rs])))
                   | ({"picked": {str(r["seed"]): r["picked"] for r in rs}} if "picked" in rs[0] else {}))
    return out


# --------------------------------------------------------------------------- table and picture

def print_table(summary, n_seeds: int):
    """The summary rows; with several seeds the accuracy is mean ± std over them."""
    acc = "test acc" if n_seeds == 1 else f"test acc ({n_seeds} seeds)"
    head = f"{'model':<9}{'data':<16}{'method':<17}{'bits':>5}{acc:>20}{'images':>9}{'time':>8}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in summary:
        bits = f"w{r['bits']}a{r['bits']}" if r["bits"] < 32 else "fp32"
        value = f"{100 * r['test_acc']:.2f} %" + (f" ± {100 * r['test_acc_std']:.2f}" if n_seeds > 1 else "")
        picked = ("  picked: " + ", ".join(f"{p:,}" if isinstance(p, int) else p for p in r["picked"].values())
                  if "picked" in r else "")
        print(f"{r['model']:<9}{r['source']:<16}{r['method']:<17}{bits:>5}"
              f"{value:>20}{r['images']:>9,}{r['seconds']:>7.1f}s{picked}")


def plot(rows, path: Path, n_test: int, n_seeds: int = 1):
    """The change of test accuracy from the float32 model per bit width, a line per data source and
    method; ``rows``: :func:`summarise`'s. With several seeds: the mean change over the seeds, each seed
    against its own float32 model, with the std as error bars (the lines side by side, a little apart)."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    sources = list(dict.fromkeys(r["source"] for r in rows if r["source"] != "-"))
    # a colour per data source, a marker and line style per method; the legend's columns are the methods
    lines = [(source, method) for method in METHODS for source in sources]
    colour = {source: f"C{k}" for k, source in enumerate(sources)}
    legend_rows = -(-len(lines) // len(METHODS))
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 4.6 + 0.22 * legend_rows), squeeze=False,
                             sharey=True)  # one scale: the models' costs compare by eye
    for ax, name in zip(axes[0], models):
        fp = next(r for r in rows if r["model"] == name and r["method"] == "float32")
        ax.axhline(0, color="gray", ls=":", lw=1)  # the float32 model (in the title: not a legend entry,
        #                                            which would shift the legend's method columns)
        for k, (source, method) in enumerate(lines):
            rs = sorted((r for r in rows if r["model"] == name and r["source"] == source and r["method"] == method),
                        key=lambda r: r["bits"])
            dodge = 0.06 * (k - (len(lines) - 1) / 2)  # side by side: equal values stay visible
            ax.errorbar([r["bits"] + dodge for r in rs], [100 * r["change"] for r in rs],
                        yerr=[100 * r["change_std"] for r in rs] if n_seeds > 1 else None,
                        fmt={"PTQ": "o-", "QAT (QuantFace)": "s--"}.get(method, "^:"), capsize=3,
                        color=colour[source], label=f"{source}, {method}")
        spread = f" (the mean of {n_seeds} seeds); bars: std over the seeds" if n_seeds > 1 else ""
        if ax is axes[0][0]:
            ax.set_ylabel(f"change from float32 (points; {100 / n_test:g} = 1 test image)")
        ax.set(xlabel="bits (wbab)",
               title=f"{name}: quantized with each data source\nfloat32 {100 * fp['test_acc']:.2f} %{spread}")
        ax.set_xticks(sorted({r["bits"] for r in rows if r["bits"] < 32}))
        ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.035 * legend_rows, 1, 1))   # room below the panels for the one legend
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=len(METHODS), frameon=False)
    save_figure(fig, path)


# --------------------------------------------------------------------------- main

def parse_synthetic(parser, items, seeds, holdout: int) -> list[tuple[str, str]]:
    """``NAME=PATH`` items → [(name, path)], every path (with ``{seed}`` replaced by each seed) checked
    by :func:`check_pool`, and every pool larger than ``holdout`` (the images held out to validate
    on: the rest is calibrated and trained on); an error names the item."""
    pools = []
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--synthetic: expected NAME=PATH (e.g. actmax=runs/df_actmax/pool_actmax_seed0.npz or "
                         f"generator=runs/data_free/generator.npz); got {item!r}")
        if name == "real":
            parser.error("--synthetic: the name 'real' is kept for the training images; choose another")
        if name in {n for n, _ in pools}:
            parser.error(f"--synthetic: the name {name!r} is given twice; give each pool its own name")
        for seed in seeds:
            file = with_seed(path, seed)
            if not file.is_file():
                for_seed = f" (seed {seed})" if "{seed}" in path else ""
                parser.error(f"--synthetic {name}={file}{for_seed}: no such file")
            try:
                n = check_pool(file, name)
            except ValueError as e:
                parser.error(str(e))
            if n is not None and n <= holdout:
                parser.error(f"--synthetic {name}={file}: the pool holds {n:,} images, and --holdout {holdout:,} "
                             "of them are held out to validate on; a smaller --holdout leaves some to train on")
        pools.append((name, path))
    return pools


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="runs/teacher_student/teacher_seed{seed}.npz",
                   help="the full-precision teacher; {seed} becomes each seed (default "
                        "runs/teacher_student/teacher_seed{seed}.npz)")
    p.add_argument("--student", default="runs/teacher_student/student_seed{seed}.npz",
                   help="the full-precision student; {seed} becomes each seed (default "
                        "runs/teacher_student/student_seed{seed}.npz)")
    p.add_argument("--models", default="teacher,student", help="which models to quantize (default teacher,student)")
    p.add_argument("--synthetic", action="append", metavar="NAME=PATH",
                   help="a pool of synthetic images (.npz, key 'images') or a generator.npz; {seed} in PATH "
                        "becomes each seed; repeat for several")
    p.add_argument("--no-real", dest="real", action="store_false",
                   help="no real-data rows: never read a training image")
    p.add_argument("--bits", default="8,6,4", help="bit widths b of wbab (default 8,6,4)")
    p.add_argument("--T", type=float, default=3.0, help="temperature of the logit term (default 3)")
    p.add_argument("--qat-images", type=int, default=20000, help="images of each QAT pass (default 20,000)")
    p.add_argument("--holdout", type=int, default=4000,
                   help="images of each source held out to validate the QAT on, never trained on (default 4,000)")
    p.add_argument("--checks", type=int, default=4,
                   help="held-out validations per QAT pass, after each equal part of it (default 4)")
    p.add_argument("--calibration-batches", type=int, default=10,
                   help="PTQ: the batches the activation ranges are calibrated on (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of calibration and QAT (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="the QAT learning rate is lr/10")
    p.add_argument("--seed", type=int, default=0, help="the seed of a one-seed run (default 0)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2 (overrides --seed)")
    p.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP + "; with --no-real the two t10k test files are enough")
    add_out_option(p, "runs/quantface", "results.json and quantface.png")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1,000 test images, bits 8 and 4; it sets --qat-images 256, "
                        "--calibration-batches 2, --holdout 32 and --checks 2, whatever was given")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    ok = partial(check, p)
    ok(check_int, args.seed, "--seed", "the seed", low=0)
    args.seeds = [args.seed] if args.seeds is None else parse_int_list(p, args.seeds, "--seeds", low=0,
                                                                              what="seeds")
    args.models = parse_name_list(p, args.models, "--models", sorted(MODELS), what="model")
    for name in args.models:
        hint = HANDS_ON_HINT if getattr(args, name) == p.get_default(name) else ""
        if hint and len(args.seeds) > 1:
            seeds = ",".join(map(str, args.seeds))
            hint = hint.replace("mnist_teacher_student.py", f"mnist_teacher_student.py --seeds {seeds}")
        for seed in args.seeds:
            check_checkpoint(p, str(with_seed(getattr(args, name), seed)), f"--{name}", MODELS[name],
                             must_exist=True, hint=hint)
    ok(check_int, args.qat_images, "--qat-images", "the number of QAT images", low=1)
    ok(check_int, args.holdout, "--holdout", "the number of held-out images", low=1)
    ok(check_int, args.checks, "--checks", "the number of validations per QAT pass", low=1)
    if args.quick:  # before the pools are checked against --holdout
        args.qat_images, args.calibration_batches, args.holdout, args.checks = 256, 2, 32, 2
    if args.checks > args.qat_images:
        p.error(f"--checks {args.checks}: at most one validation per QAT image (--qat-images {args.qat_images})")
    if args.real and args.holdout >= 60_000:
        p.error(f"--holdout {args.holdout:,}: the real rows hold it out of the 60,000 training images; "
                "expected fewer")
    args.synthetic = parse_synthetic(p, args.synthetic, args.seeds, args.holdout)
    if not args.real and not args.synthetic:
        p.error("--no-real without --synthetic: there is no data to quantize with")
    try:
        args.bits = sorted({int(b) for b in args.bits.split(",")}, reverse=True)
    except ValueError:
        p.error(f"--bits: expected comma-separated integers such as 8,6,4; got {args.bits!r}")
    for b in args.bits:
        try:
            quant.check_bits(b, "--bits")
        except ValueError as e:
            p.error(str(e))
    ok(check_temperature, args.T, "--T")
    ok(check_number, args.lr, "--lr", "the learning rate", low=0, low_open=True)
    ok(check_int, args.calibration_batches, "--calibration-batches", "the number of calibration batches", low=1)
    ok(check_int, args.batch_size, "--batch-size", "the batch size", low=1)
    if args.real:
        check_data_dir(p, args.data_dir)
    elif args.data_dir is not None and missing_files(args.data_dir, FILES["test"]):
        p.error(f"--data-dir {args.data_dir}: with --no-real the folder must hold the test files "
                f"{', '.join(FILES['test'])}; it lacks {', '.join(missing_files(args.data_dir, FILES['test']))}")
    elif args.data_dir is None:
        try:
            find_data_dir(None, FILES["test"])
        except FileNotFoundError:
            p.error(f"with --no-real only the test files {', '.join(FILES['test'])} are needed, and no folder "
                    "holds them: point --data-dir or MINIKD_DATA at one")
    check_out(p, args)
    if args.quick:
        args.bits = [b for b in args.bits if b in (8, 4)] or args.bits[:1]
    return args


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    x_test, y_test, x_train = load_test(args)
    rows, runs = [], []
    for seed in args.seeds:
        seed_start = time.perf_counter()
        rows += run(args, seed, x_test, y_test, x_train)
        runs.append({"seed": seed, "wall_seconds": time.perf_counter() - seed_start})
        if len(args.seeds) > 1:
            print(f"seed {seed}: {format_seconds(runs[-1]['wall_seconds'])}")
    summary = summarise(rows)
    print_table(summary, len(args.seeds))
    plot(summary, out / "quantface.png", QUICK_TEST if args.quick else 10_000, len(args.seeds))
    settings = run_settings(args)
    settings["synthetic"] = [[n, str(p)] for n, p in args.synthetic]
    report = {"settings": settings, "platform": run_platform(args), "rows": rows, "summary": summary, "runs": runs,
              "wall_seconds": time.perf_counter() - start}
    write_json(report, out / "results.json")
    print(f"\nwrote {out / 'results.json'} and {out / 'quantface.png'} ({format_seconds(report['wall_seconds'])})")
    return report


if __name__ == "__main__":
    run_cli(main)
