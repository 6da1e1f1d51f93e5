"""Scenario 1 of the lecture's data-free exercise: train the conditional generator G(z, y) on MNIST.

    python examples/train_conditional_generator.py --teacher runs/data_free/teacher_slide.npz
    python examples/train_conditional_generator.py --quick      # a small real subset, a few steps: a smoke run

The exercise *gives* scenario 1 a conditional generator — input a random vector z ∈ R¹⁰⁰ and a
class label y ∈ 0..9, output a 1×28×28 image following MNIST. minikd has none to give, so this
script makes one, as its owner would have (it is the only step of scenario 1 that reads the
training images; the distillation that follows, ``examples/data_free_kd.py --scenario
generator``, sees only G's images).

**The model: a conditional GAN** (Mirza & Osindero 2014) with DCGAN's layers (Radford et al.
2016), the label entering both networks through an ``nn.Embedding``:

    G (minikd.models.ConditionalGenerator): [z, emb₅₀(y)] → fc → 128×7×7 → BN → ReLU
        → ConvTranspose 128→64 (14×14) → BN → ReLU → ConvTranspose 64→1 (28×28) → tanh
    D (Discriminator below): [x, emb₇₈₄(y) as a 28×28 map] → conv 2→64 k4 s2 → LeakyReLU 0.2
        → conv 64→128 k4 s2 → BN → LeakyReLU 0.2 → fc 6272→1 (a logit: "real, and of class y")

trained with the non-saturating loss (Goodfellow et al. 2014), s(u) = log(1 + eᵘ) the softplus:

    L_D = s(−D(x, y)) + s(D(G(z, y′), y′))          L_G = s(−D(G(z, y′), y′))

Adam (lr 2e-4, β₁ = 0.5, DCGAN's), batch 64, y′ drawn uniformly. Why a GAN and not a
conditional VAE: the student is distilled on G's samples only, so they must look like digits
*and* vary like digits; a CVAE's samples are averages (blurry strokes, little variety in style),
a GAN's are sharp. The price is stability — held here by DCGAN's recipe (BatchNorm, LeakyReLU in
D, β₁ = 0.5) and the label in both networks.

**How G is judged: by the teacher.** ``--teacher PATH`` (a checkpoint of
``data_free_kd.py --train-teacher``): on 1,000 samples per class, the class consistency (the
teacher's accuracy against the conditioning labels) and the teacher's mean confidence (its mean
max-probability, and its mean probability of the conditioning class).

Outputs in ``--out`` (default ``runs/data_free``): ``generator.npz`` (G's weights, and its
architecture and settings under ``meta.*``), ``generator_grid.png`` (10 × 10: one row per
class) and ``generator.json`` (settings, losses per epoch, the teacher's measures, wall time).
Every option is checked before any work (one error line, exit status 2). ``--quick``: 1,000
training images, one epoch, a fast smoke run whose G draws noise, not digits.

**Measured** (seed 0, this 2-core CPU shared with other jobs, one thread each for Numba and
BLAS): 4 epochs in 15.7 min (2.7-5.3 min per epoch, depending on the other jobs); D's accuracy
fell from 92 % to 80 % over the epochs, no collapse. The slide's teacher (99.07 %) on 10,000
samples: class consistency 96.75 %, mean confidence 98.4 % (mean probability of the
conditioning class 96.2 %). The grid shows sharp, varied digits of every class.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import (
    DATA_DIR_HELP,
    add_out_option,
    check,
    check_data_dir,
    check_out,
    format_seconds,
    load_mnist_data,
    mark_smoke_run,
    quick_defaults,
    read_checkpoint,
    run_cli,
    save_checkpoint,
    save_figure,
    seeded_stream_kept,
    stop_if_diverged,
    write_json,
)
from tqdm import tqdm

import minikd as mk
from minikd import functional as F
from minikd import kd, nn, optim
from minikd.checks import check_int
from minikd.data import normalize
from minikd.models import ConditionalGenerator, LeNet5, LeNet5BN, TeacherModel, TeacherModelBN, pad_to_32

Z_DIM, NUM_CLASSES = 100, 10
TEACHERS = {"slide": TeacherModel, "bn": TeacherModelBN, "lenet5": LeNet5, "lenet5bn": LeNet5BN}  # meta.arch
READS_32 = ("lenet5", "lenet5bn")       # LeNet-5, with BatchNorm or without, reads MNIST padded to 32×32
MAKE_TEACHER = f"make one with python examples/data_free_kd.py --train-teacher {'|'.join(TEACHERS)}"
QUICK_TRAIN = 1000
MEASURE_PER_CLASS = 1000


# --------------------------------------------------------------------------- checkpoints that know their model

def load_generator(path):
    """``(G, meta)``: the conditional generator a :func:`save_checkpoint` file of this script holds, in eval
    mode. Its meta (``z_dim``, ``num_classes``) is first compared with the shapes of the stored weights, so a
    damaged or absurd meta (z_dim 1e11) is a ValueError naming both before a model of that size is built (and
    fails for want of memory). ValueError too when the file holds something else."""
    weights, meta = read_checkpoint(path)
    if meta.get("arch") != "ConditionalGenerator":
        raise ValueError(f"its meta.arch is {meta.get('arch')!r}, not 'ConditionalGenerator'")
    embed, fc = weights.get("embed.weight"), weights.get("fc.weight")
    if embed is None or fc is None or embed.ndim != 2 or fc.ndim != 2:
        raise ValueError("its weights lack a ConditionalGenerator's embed.weight and fc.weight (2-D arrays)")
    stored = {"z_dim": (fc.shape[1] - embed.shape[1], Z_DIM), "num_classes": (embed.shape[0], NUM_CLASSES)}
    for key, (size, default) in stored.items():
        value = meta.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != size or size < 1:
            raise ValueError(f"its meta.{key} is {value!r}, but its weights are a generator's with {key} {size} "
                             f"(fc.weight {fc.shape}, embed.weight {embed.shape}): a damaged checkpoint")
    G = ConditionalGenerator(int(stored["z_dim"][0]), int(stored["num_classes"][0]))
    G.load_state_dict(weights)
    G.eval()
    return G, meta


def load_teacher(path):
    """``(teacher, arch, meta)``: the frozen teacher (eval mode, no gradient for its weights) ``path`` holds."""
    weights, meta = read_checkpoint(path)
    arch = meta.get("arch")
    if arch is None:        # a plain state dict (mnist_teacher_student.py's teacher): the architecture its keys fit
        fits = [name for name, cls in TEACHERS.items() if _loads(cls, weights)]
        if len(fits) != 1:
            raise ValueError(f"not a teacher checkpoint: its weights fit none of the teachers {', '.join(TEACHERS)} "
                             f"({MAKE_TEACHER})")
        arch = meta["arch"] = fits[0]
    if arch not in TEACHERS:
        raise ValueError(f"not a teacher checkpoint: it holds a {arch} (expected one of {', '.join(TEACHERS)}; "
                         f"{MAKE_TEACHER})")
    teacher = TEACHERS[arch]()
    teacher.load_state_dict(weights)
    kd.freeze_teacher(teacher)    # eval mode; gradients flow through it to the images, never into it
    return teacher, arch, meta


def _loads(cls, weights) -> bool:
    """True when ``weights`` load into a fresh ``cls`` (the same names and shapes)."""
    try:
        with seeded_stream_kept():          # building a model to try must not shift the seeded stream
            cls().load_state_dict(weights)
        return True
    except (ValueError, KeyError, TypeError):
        return False


def teacher_input(arch: str):
    """The transform from 28×28 MNIST-space images to the teacher's input: the ``READS_32`` teachers read 32×32."""
    return pad_to_32 if arch in READS_32 else (lambda x: x)


# --------------------------------------------------------------------------- the discriminator and the losses

class Discriminator(nn.Module):
    """D(x, y): a logit for "x is a real image of class y". DCGAN's discriminator for 28×28, with
    the label as a second input channel (a learned 28×28 map per class)."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.embed = nn.Embedding(num_classes, 28 * 28)
        self.conv1 = nn.Conv2d(2, 64, 4, stride=2, padding=1)      # 28 → 14
        self.conv2 = nn.Conv2d(64, 128, 4, stride=2, padding=1)    # 14 → 7
        self.bn2 = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x, y):
        label_map = self.embed(y).reshape(x.shape[0], 1, 28, 28)
        h = F.leaky_relu(self.conv1(mk.concatenate([x, label_map], axis=1)), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        return self.fc(h.reshape(x.shape[0], -1)).reshape(x.shape[0])


def softplus(u):
    """log(1 + eᵘ), computed as max(u, 0) + log(1 + e^−|u|): no overflow for large |u|."""
    return F.relu(u) + (1.0 + (-u.abs()).exp()).log()


def sample(G, n: int, rng, labels=None, z_std: float = 1.0):
    """``(z, y)`` for ``n`` images: z ~ N(0, z_std²·I) in R¹⁰⁰ (G is trained with z_std = 1), y uniform
    over the classes (or ``labels``)."""
    z = mk.tensor((z_std * rng.standard_normal((n, G.z_dim))).astype(np.float32))
    y = labels if labels is not None else rng.integers(0, G.num_classes, size=n)
    return z, mk.tensor(np.asarray(y, dtype=np.int64))


def train_generator(x_train, y_train, epochs: int, seed: int, batch_size: int = 64, lr: float = 2e-4,
                    progress: bool = True):
    """The conditional GAN's training: per minibatch of real (x, y) one step of D on L_D, then one of
    G on L_G. Returns ``(G, history)``; G in eval mode (its BatchNorm on its running statistics)."""
    mk.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = ConditionalGenerator(Z_DIM, NUM_CLASSES), Discriminator(NUM_CLASSES)
    opt_G = optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        batches = range(0, len(order) - batch_size + 1, batch_size)   # whole batches: BatchNorm needs > 1
        sums, start = np.zeros(3), time.perf_counter()
        bar = tqdm(batches, desc=f"cGAN epoch {epoch}/{epochs}", leave=False, disable=not progress)
        for k, i in enumerate(bar, 1):
            idx = order[i:i + batch_size]
            x_real, y_real = mk.tensor(x_train[idx]), mk.tensor(y_train[idx])
            z, y_fake = sample(G, len(idx), rng)
            x_fake = G(z, y_fake)
            # D: real images of their class → high, G's images of the class asked for → low
            d_real, d_fake = D(x_real, y_real), D(x_fake.detach(), y_fake)
            loss_D = softplus(-d_real).mean() + softplus(d_fake).mean()
            opt_D.zero_grad()
            loss_D.backward()
            opt_D.step()
            # G, non-saturating: make D call its images real (D's parameters get gradients too, cleared next step)
            loss_G = softplus(-D(x_fake, y_fake)).mean()
            opt_G.zero_grad()
            loss_G.backward()
            opt_G.step()
            d_acc = float((d_real.numpy() > 0).mean() + (d_fake.numpy() < 0).mean()) / 2
            sums += (loss_D.item(), loss_G.item(), d_acc)
            bar.set_postfix(L_D=f"{sums[0] / k:.3f}", L_G=f"{sums[1] / k:.3f}", D_acc=f"{sums[2] / k:.2f}",
                            refresh=False)
        n = len(batches)
        for value, what, opt in ((sums[0] / n, "D's loss", opt_D), (sums[1] / n, "G's loss", opt_G)):
            stop_if_diverged(value, f"cGAN epoch {epoch}/{epochs}", opt.lr, what)
        row = {"epoch": epoch, "loss_D": sums[0] / len(batches), "loss_G": sums[1] / len(batches),
               "D_accuracy": sums[2] / len(batches), "seconds": time.perf_counter() - start}
        tqdm.write(f"cGAN epoch {epoch}/{epochs}: L_D {row['loss_D']:.3f}, L_G {row['loss_G']:.3f}, "
                   f"D's accuracy {100 * row['D_accuracy']:.1f} %, {format_seconds(row['seconds'])}")
        history.append(row)
    G.eval()
    return G, history


# --------------------------------------------------------------------------- measuring G by the teacher, drawing it

def measure_generator(G, teacher, arch: str, seed: int = 0, per_class: int = MEASURE_PER_CLASS,
                      z_std: float = 1.0) -> dict:
    """The teacher's verdict on ``per_class`` samples of every class, z ~ N(0, z_std²·I): class consistency
    (its accuracy against the conditioning labels), its mean max-probability, its mean probability of the
    conditioning class."""
    rng = np.random.default_rng((seed, 1))
    prep = teacher_input(arch)
    labels = np.repeat(np.arange(G.num_classes), per_class)
    hits, confidence, p_label = 0, 0.0, 0.0
    with mk.no_grad():
        for i in range(0, len(labels), 500):
            z, y = sample(G, len(labels[i:i + 500]), rng, labels[i:i + 500], z_std=z_std)
            p = F.softmax(teacher(prep(G(z, y)))).numpy()
            yy = y.numpy()
            hits += int((p.argmax(1) == yy).sum())
            confidence += float(p.max(1).sum())
            p_label += float(p[np.arange(len(yy)), yy].sum())
    n = len(labels)
    return {"class_consistency": hits / n, "mean_confidence": confidence / n,
            "mean_p_conditioning_class": p_label / n, "samples": n}


def draw_grid(images, path, title: str, row_labels=None) -> None:
    """A grid of images (N, 1, 28|32, 28|32), in the teacher's normalised space, 10 per row; an image
    that is all NaN leaves its place blank."""
    import matplotlib.pyplot as plt

    from minikd.data import MEAN, STD

    images = np.asarray(images)[:, 0] * STD + MEAN            # back to pixels in [0, 1]
    rows = -(-len(images) // 10)
    fig, axes = plt.subplots(rows, 10, figsize=(10 * 0.8, rows * 0.8 + 0.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if k < len(images) and not np.isnan(images[k]).all():   # an all-NaN image: an empty place, left blank
            ax.imshow(np.clip(images[k], 0, 1), cmap="gray", vmin=0, vmax=1)
        if k % 10 == 0 and row_labels is not None:
            ax.set_ylabel(str(row_labels[k // 10]), rotation=0, labelpad=10, va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def generator_grid(G, path, seed: int, title: str, z_std: float = 1.0) -> None:
    """10 × 10 samples of G, z ~ N(0, z_std²·I): row c holds ten images of class c."""
    z, y = sample(G, 100, np.random.default_rng((seed, 2)), np.repeat(np.arange(10), 10), z_std=z_std)
    with mk.no_grad():
        draw_grid(G(z, y).numpy(), path, title, row_labels=list(range(10)))


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=None, help="a teacher checkpoint (data_free_kd.py --train-teacher) to "
                                                   "measure G by: class consistency and mean confidence")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs over the 60,000 training images (default 4; --quick: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    add_out_option(p, "runs/data_free", "generator.npz, generator.json and the grid")
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_TRAIN} training images, one epoch")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    ok = partial(check, p)    # every check before any work: one line, exit status 2
    quick_defaults(args, epochs=(4, 1))
    ok(check_int, args.epochs, "--epochs", "the number of epochs", low=1)
    ok(check_int, args.seed, "--seed", "the seed", low=0)
    if args.teacher is not None:
        check_teacher(p, args.teacher)
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    return args


def check_teacher(parser, path, option: str = "--teacher") -> str:
    """A teacher checkpoint option: the file exists and rebuilds a teacher; returns its architecture."""
    path = Path(path)
    if not path.is_file():
        parser.error(f"{option} {path}: " + ("is a folder, not a checkpoint file" if path.is_dir() else "no such file"))
    try:
        with seeded_stream_kept():          # building the model must not shift the seeded stream
            return load_teacher(path)[1]
    except (OSError, ValueError, KeyError, TypeError) as e:
        parser.error(f"{option} {path}: " + " ".join(str(e).split()))


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"conditional GAN on MNIST: {args.epochs} epoch(s), batch 64, Adam lr 2e-4 β₁ 0.5, seed {args.seed}"
          + (" (quick: a subset)" if args.quick else ""))
    wall = time.perf_counter()
    x_train, y_train, _, _ = load_mnist_data(args.data_dir)
    if args.quick:
        i = np.random.default_rng(args.seed).choice(len(x_train), QUICK_TRAIN, replace=False)
        x_train, y_train = x_train[i], y_train[i]
    G, history = train_generator(normalize(x_train), y_train, args.epochs, args.seed, progress=args.progress)
    seconds = time.perf_counter() - wall
    settings = {"z_dim": Z_DIM, "num_classes": NUM_CLASSES, "epochs": args.epochs, "seed": args.seed,
                "batch_size": 64, "lr": 2e-4, "beta1": 0.5, "quick": args.quick, "training_images": len(x_train)}
    save_checkpoint(G, out / "generator.npz", arch="ConditionalGenerator", **settings)

    measures = None
    if args.teacher is not None:
        teacher, arch, _ = load_teacher(args.teacher)
        measures = measure_generator(G, teacher, arch, args.seed)
        print(f"teacher ({arch}) on {measures['samples']:,} samples of G: class consistency "
              f"{100 * measures['class_consistency']:.2f} %, mean confidence {100 * measures['mean_confidence']:.2f} %")
    note = " — SMOKE RUN (--quick)" if args.quick else ""
    title = f"G(z, y) after {args.epochs} epoch(s){note}: row c is class c"
    if measures:
        title += f"\nteacher's class consistency {100 * measures['class_consistency']:.1f} %"
    generator_grid(G, out / "generator_grid.png", args.seed, title)
    if args.quick:
        print(f"SMOKE RUN (--quick: {QUICK_TRAIN:,} training images, {args.epochs} epoch(s)): G draws noise, not "
              "digits, and its measures only show that the code runs")
    wall = time.perf_counter() - wall
    report = {"smoke_run": args.quick, "settings": settings, "teacher": args.teacher, "measures": measures,
              "history": history, "train_seconds": seconds, "wall_seconds": wall}
    write_json(report, out / "generator.json")
    print(f"wall time {format_seconds(wall)}; wrote {out / 'generator.npz'}, generator.json and generator_grid.png")
    return report


if __name__ == "__main__":
    run_cli(main)
