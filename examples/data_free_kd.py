"""Data-free knowledge distillation: the lecture's last hands-on, both scenarios.

    python examples/data_free_kd.py --train-teacher slide --out runs/data_free      # the teachers' owner: reads
    python examples/data_free_kd.py --train-teacher bn --out runs/data_free         #   the training set
    python examples/data_free_kd.py --train-teacher lenet5 --out runs/data_free
    python examples/data_free_kd.py --train-teacher lenet5bn --out runs/data_free
    python examples/data_free_kd.py --scenario generator --teacher runs/data_free/teacher_slide.npz \\
        --generator runs/data_free/generator.npz --out runs/df_generator
    python examples/data_free_kd.py --scenario none --method dafl|deepinversion|actmax \\
        --teacher runs/data_free/teacher_bn.npz --data-dir DIR_WITH_ONLY_T10K_FILES --out runs/df_none
    ... --quick                              # tiny sizes, a few steps: a smoke run (tested in CI)

The exercise (lecture, "Data-free Knowledge distillation"): given a pretrained teacher, distil a
student **without the training data**, on synthetic images x̃ only, with

    L_DFKD = T² · D_KL(p_t(x̃) ‖ p_s(x̃)),   p = softmax(z / T)              (kd.dfkd_loss)

**Teachers** (``--train-teacher``, the only step here that reads training images — the
exercise's teacher was trained by someone who had the data): ``slide`` (the slide's
TeacherModel), ``bn`` (the same with BatchNorm after each conv, TeacherModelBN: DeepInversion
needs BatchNorm statistics), ``lenet5`` (LeNet-5 on MNIST padded to 32×32, the data-free
papers' teacher) and ``lenet5bn`` (LeNet-5 with BatchNorm after each conv, LeNet5BN). The checkpoint
records its architecture (``meta.arch``); the student is the hands-on's StudentModel for
``slide``/``bn`` and LeNet5Half for ``lenet5``/``lenet5bn``. ``--epochs`` and
``--schedule cosine`` train a teacher longer, its learning rate decayed to 0: the slide's teacher
reaches 99.40 % in 15 epochs (99.07 % in the default 5), and scenario 1's student follows it.
``--noise σ`` trains it on images with fresh Gaussian noise (:func:`noisy_ce_step`): an owner's
choice that costs the teacher little accuracy, and makes the images inverted from it (``actmax``)
look like digits and teach far more (docs/data_free.md, "A teacher trained on noisy images").

**Scenario 1** (``--scenario generator``): a conditional generator G(z ∈ R¹⁰⁰, y) → 1×28×28 is
given (``--generator PATH``, from ``train_conditional_generator.py``; without it G is trained
here first, which reads the training set — G's owner had the data). The student learns the
teacher's soft labels on G's fresh samples, y uniform over the classes, z ~ N(0, z_std²·I) with
``--z-std 2`` (wider than G's training: more varied digits) and each batch shifted by up to
``--jitter`` pixels. ``--scenario real`` runs the same loop on real training images instead of
G's: not data-free, the reference that bounds scenario 1 (what a perfect G would teach). Tried
there, no gain (docs/data_free.md): ``--mixup``, ``--feature-weight`` (feature KD too),
``--rotate``/``--rescale`` (random rotations and rescalings, ``kd.random_affine``).

**Scenario 2** (``--scenario none``): no data, no generator. ``--method``:

- ``dafl`` — DAFL (Chen et al., ICCV 2019): a generator (models.Generator) trained against the
  frozen teacher, L_G = L_oh + α·L_a + β·L_ie (kd.dafl_generator_loss: look like one class,
  fire the features, use all classes evenly), alternating step by step with the student's
  L_DFKD on the same fresh images;
- ``deepinversion`` — DeepInversion (Yin et al., CVPR 2020): the pixels of a batch are the
  parameters (Adam); L = CE(T(jitter(x̃)), y) + r_bn·Σ_l(‖μ_l − μ_l^run‖ + ‖σ²_l − σ²_l^run‖)
  + r_tv·TV(x̃) + r_l2·‖x̃‖² — the teacher's BatchNorm statistics (kd.BNStatistics) are the
  trace of the data it keeps; it needs a teacher with BatchNorm, ``bn`` or ``lenet5bn``;
- ``actmax`` — random noise + activation maximisation: the same optimisation without the
  BatchNorm term, for the BatchNorm-free teachers (slide, lenet5), with a diversity term
  (kd.diversity_loss on the teacher's features) against a batch collapsing to one image.

The two inversion methods fill a pool of ``--pool`` images (labels balanced), then distil the
student over the pool for ``--epochs`` epochs, each batch randomly shifted (kd.random_shift).
``--rounds R`` makes the pool in R rounds instead, the student trained after each on the pool so
far; ``--compete w`` then adds Adaptive DeepInversion's competition term (Yin et al., CVPR 2020)
from the second round on, w·(1 − JS(p_t(x̃), p_s(x̃))) (kd.competition_loss): the new images are
drawn to where the student does not yet answer like the teacher.
The student always learns with Adam (``--lr``), its learning rate decayed along a half cosine to
0 over the run. Every run reports how many synthetic images the student saw, and how many
distinct ones.

**No peeking.** The data-free runs read only the test files (``read_mnist_split("test", ...)``), to
measure the student; a ``--data-dir`` holding only ``t10k-*`` files works. ``--scenario
generator`` without ``--generator`` also reads the training files, to train G.

Outputs in ``--out``: ``teacher_<arch>.npz`` (``--train-teacher``); for a distillation
``results.json`` (per method and seed: student and teacher test accuracy, synthetic images seen
and distinct, synthesis / distillation / wall times, per-epoch history; mean ± std over
``--seeds``), ``student_<method>_seed<s>.npz``, ``synthetic_<method>.png`` (a 10 × 10 grid of the
synthetic images) and, for the inversion methods, ``pool_<method>_seed<s>.npz`` (the images and
their labels, for later use: quantization with synthetic data). Every option is checked before
any work: a bad one stops the program with one error line (after the usage) and exit status 2, and so
does an option the chosen mode would not read (``--lr`` with ``--train-teacher``, ``--r-bn`` with
``--method actmax``, ``--pool`` with ``--scenario generator``, ...), rather than being ignored.

**Measured** (one seed, 0; this 2-core CPU shared with other jobs, ``NUMBA_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1``; teachers: slide 99.07 %, bn 99.08 %, lenet5 98.95 %; the last three
rows: lenet5 99.14 % and lenet5bn 99.22 %, both 20 epochs ``--schedule cosine``):

==========================  ======================================  =========  ===========  ========
run                         settings                                student    images seen  wall
==========================  ======================================  =========  ===========  ========
scenario 1, slide teacher   G: cGAN 4 epochs (15.7 min, class       98.12 %    512,000      4.6 min
                            consistency 96.75 %); 20 × 200 × 128,
                            --z-std 1 --jitter 0
scenario 1, the defaults    the same G, z_std 2, jitter 2           98.54 %    512,000      4.8 min
scenario 1, the slide       the same, the teacher trained 15        98.89 %    512,000      4.4 min
teacher at 99.40 %          epochs --schedule cosine; --epochs 60:  99.12 %    1,536,000    13.5 min
--scenario real (not        scenario 1's loop on the real           99.02 %    512,000      2.7 min
data-free: the reference)   training images, --jitter 0
actmax, slide teacher       pool 30,720, 50 iters, 30 epochs        98.24 %    921,600      13.0 min
actmax, slide teacher       pool 12,288, 50 iters, 40 epochs        97.08 %    491,520      6.3 min
actmax, one-hot targets     pool 4,096, 40 epochs, --mix 0          82.86 %    163,840      3.8 min
deepinversion, bn teacher   pool 30,720, 30 iters, lr 0.2, 30 ep.   97.59 %    921,600      12.0 min
deepinversion, bn teacher   pool 12,288, 30 iters, lr 0.2, 40 ep.   96.82 %    491,520      6.1 min
deepinversion, --mix 0      the same                                96.35 %    491,520      6.6 min
dafl, slide teacher         5 × 200 × 128, width 32                 90.64 %    128,000      4.5 min
actmax, lenet5 → half       pool 30,720, 50 iters, 30 epochs        93.08 %    921,600      4.3 min
actmax, lenet5 → half       pool 122,880, 50 iters, 20 epochs       97.33 %    2,457,600    15.8 min
dafl, lenet5 → half         10 × 200 × 128, width 32                73.60 %    256,000      7.5 min
actmax, lenet5 → half       pool 12,288, 50 iters, 20 epochs        78.52 %    245,760      1.6 min
actmax, lenet5bn → half     the same, the teacher with BatchNorm    42.32 %    245,760      1.9 min
deepinversion, lenet5bn     the same                                40.09 %    245,760      2.1 min
==========================  ======================================  =========  ===========  ========

The LeNet pair's best: Adaptive DeepInversion (``--pool 61440 --epochs 30 --rounds 4 --compete 1
--iters 30 --lr-images 0.15``) from a LeNet-5 trained with ``--noise 1`` (99.28 %): 98.20, 98.36,
98.47 % on seeds 0, 1, 2, about 16 min a run on a day this CPU ran at 0.43 of its usual speed.
With 50 steps per image and 40 epochs: 98.23, 98.46, 98.24 %; from the 99.14 % teacher trained
without noise, 98.05, 97.95, 97.82 %.

The synthetic images are not digits (see the grids): the inversions are stroke textures, DAFL's
generator draws saturated blobs. They carry the teacher's decision boundaries all the same; the
pool's size matters most (actmax: 82.9 → 89.4 % from one-hot to mixed targets at 4,096 images,
97.1 % at 12,288, 98.2 % at 30,720).
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
from common import (
    DATA_DIR_HELP,
    add_out_option,
    ce_step,
    check,
    check_data_dir,
    check_out,
    evaluate,
    fit,
    format_seconds,
    given_options,
    load_mnist_data,
    mark_smoke_run,
    parse_int_list,
    read_checkpoint,  # noqa: F401 - the reader of this script's checkpoints, for its users and tests
    read_mnist_split,
    refuse_unused,
    run_cli,
    run_platform,
    run_settings,
    sample_std,
    seeded_stream_kept,
    stop_if_diverged,
    write_json,
)
from tqdm import tqdm
from train_conditional_generator import (
    TEACHERS,
    check_teacher,
    draw_grid,
    generator_grid,
    load_generator,
    load_teacher,
    measure_generator,
    sample,
    save_checkpoint,
    teacher_input,
    train_generator,
)

import minikd as mk
from minikd import functional as F
from minikd import kd, optim
from minikd.checks import check_int, check_number, check_temperature
from minikd.data import MEAN, STD, DataLoader, normalize
from minikd.data.mnist import FILES, missing_files, mnist_dir
from minikd.models import Generator, LeNet5Half, StudentModel
from minikd.random import get_rng

METHODS = ("dafl", "deepinversion", "actmax")
STUDENTS = {"slide": StudentModel, "bn": StudentModel, "lenet5": LeNet5Half, "lenet5bn": LeNet5Half}
TEACHER_EPOCHS = {"slide": 5, "bn": 5, "lenet5": 10, "lenet5bn": 10}
TEACHER_LR, TEACHER_BATCH = 1e-3, 64      # a teacher's Adam lr and batch size (--lr, --batch-size: the student's)
# the options a teacher's training reads (besides --train-teacher, --seeds' first seed and --data-dir, --out,
# --quick, --no-progress): its results file records these, and no other
TEACHER_OPTIONS = ("epochs", "schedule", "noise")
# the options each distillation reads, besides those of all (--seeds, --epochs, --batch-size, --lr, --T and those the
# checks refuse where they have no effect by their own rules: --steps-per-epoch, --mixup, --feature-weight, --rotate,
# --rescale, --z-std, --rounds, --compete); "G": scenario generator's G trained here (without --generator)
USED_BY = {"pool": ("deepinversion", "actmax"), "iters": ("deepinversion", "actmax"),
           "lr_images": ("deepinversion", "actmax"), "r_tv": ("deepinversion", "actmax"),
           "r_l2": ("deepinversion", "actmax"), "mix": ("deepinversion", "actmax"), "r_bn": ("deepinversion",),
           "r_div": ("actmax",), "jitter": ("generator", "real", "deepinversion", "actmax"),
           "alpha": ("dafl",), "beta": ("dafl",), "lr_generator": ("dafl",), "generator_width": ("dafl",),
           "gan_epochs": ("G",)}
RUN_NAMES = {"generator": "--scenario generator", "real": "--scenario real", "dafl": "--method dafl",
             "deepinversion": "--method deepinversion", "actmax": "--method actmax",
             "G": "--scenario generator without --generator (G trained here)"}
STUDENT_EPOCHS = {"generator": 20, "real": 20, "dafl": 15, "deepinversion": 30, "actmax": 30}   # each run ≤ 20 min here
Z_STD = 2.0                               # scenario 1: z ~ N(0, Z_STD²·I), wider than G's training
BN_VARIANT = {"slide": "bn", "lenet5": "lenet5bn"}   # each BatchNorm-free teacher's variant with BatchNorm
WITH_BN = tuple(BN_VARIANT.values())      # the teachers DeepInversion can invert
LO, HI = (0.0 - MEAN) / STD, (1.0 - MEAN) / STD   # black and white, normalised: the range of every x̃
STEPS_PER_EPOCH = 200  # --steps-per-epoch's default: scenario 1's, the reference's and DAFL's epochs
QUICK = {"train": 2000, "test": 500, "pool": 64, "iters": 3, "epochs": 1, "steps": 3, "batch": 32, "gan_images": 1000}


# --------------------------------------------------------------------------- the teachers (they had the data)

def train_teacher(args) -> dict:
    """Train the ``args.train_teacher`` teacher with cross-entropy (Adam, lr 1e-3, batch 64: ``TEACHER_LR``,
    ``TEACHER_BATCH``) and save it;
    ``--schedule cosine``: the learning rate decayed along a half cosine to 0, stepped every minibatch."""
    arch, out = args.train_teacher, Path(args.out)
    x_train, y_train, x_test, y_test = load_mnist_data(args.data_dir)
    seed = args.seeds[0]
    if args.quick:
        i = np.random.default_rng(seed).choice(len(x_train), QUICK["train"], replace=False)
        j = quick_test_indices(len(x_test), seed)   # the test images the quick distillations use too
        x_train, y_train, x_test, y_test = x_train[i], y_train[i], x_test[j], y_test[j]
    prep = teacher_input(arch)
    x_train, x_test = prep(normalize(x_train)), prep(normalize(x_test))
    mk.manual_seed(seed)
    teacher = TEACHERS[arch]()
    opt = optim.Adam(teacher.parameters(), lr=TEACHER_LR)
    loader = DataLoader(x_train, y_train, TEACHER_BATCH, shuffle=True, seed=seed)
    schedule = optim.CosineAnnealingLR(opt, T_max=args.epochs * len(loader)) if args.schedule == "cosine" else None
    step = noisy_ce_step(args.noise) if args.noise else ce_step
    start = time.perf_counter()
    history, seconds = fit(teacher, opt, step, loader, args.epochs, f"teacher {arch}", test=(x_test, y_test),
                           schedule=schedule, progress=args.progress)
    acc = history[-1]["test_acc"]
    path = out / f"teacher_{arch}.npz"
    save_checkpoint(teacher, path, arch=arch, test_acc=acc, epochs=args.epochs, schedule=args.schedule, seed=seed,
                    noise=args.noise, quick=args.quick, params=teacher.num_parameters())
    wall = time.perf_counter() - start
    print(f"teacher {arch} ({teacher.num_parameters():,} parameters): test accuracy {100 * acc:.2f} % after "
          f"{args.epochs} epoch(s), {format_seconds(wall)}; wrote {path}")
    if args.quick:
        print(f"SMOKE RUN (--quick: {QUICK['train']:,} training and {QUICK['test']:,} test images): a teacher for "
              "smoke runs only, not for measurements")
    report = {"teacher": arch, "test_acc": acc, "history": history, "train_seconds": seconds, "wall_seconds": wall,
              "smoke_run": args.quick, "settings": teacher_settings(args), "platform": run_platform(args)}
    write_json(report, out / f"teacher_{arch}.json")
    return report


def teacher_settings(args) -> dict:
    """The settings a teacher's training used, for its results file: the options it reads, its one seed, and
    the learning rate and batch size it always trains with — not the distillation's options (--lr, --batch-size
    and the others are the student's, and refused with --train-teacher)."""
    keep = ("train_teacher", *TEACHER_OPTIONS, "data_dir", "out", "quick")
    settings = run_settings(args, drop=[k for k in vars(args) if k not in keep])
    return {**settings, "seed": args.seeds[0], "lr": TEACHER_LR, "batch_size": TEACHER_BATCH}


def noisy_ce_step(sigma: float):
    """Cross-entropy on x + ε, ε ~ N(0, σ²) drawn anew for every pixel of every batch (``--noise``,
    σ in normalised pixel units; MNIST's 0…1 range is 3.25 of them). A teacher trained so answers
    alike for images that differ by noise: its gradient with respect to the input is smoother,
    and images optimised against it (``actmax``) grow strokes instead of pixel noise — the effect
    Santurkar et al. (NeurIPS 2019, "Image Synthesis with a Single (Robust) Classifier") use."""
    def step(model, x, y):
        noise = get_rng().standard_normal(x.shape).astype(x.dtype) * sigma
        return ce_step(model, x + noise, y)
    return step


# --------------------------------------------------------------------------- the test set, and nothing else

def load_test_set(args, arch: str, seed: int):
    """The test images (normalised; padded to 32×32 for LeNet-5) and labels. Only the two ``t10k`` files
    are read: a data-free run never opens the training files."""
    x, y = read_mnist_split("test", args.data_dir)
    if args.quick:
        i = quick_test_indices(len(x), seed)
        x, y = x[i], y[i]
    x = normalize(x)
    return teacher_input(arch)(x), y


def quick_test_indices(n: int, seed: int) -> np.ndarray:
    """--quick's test subset of seed ``seed``: the same images for the teacher's training and every
    distillation, so a quick teacher's accuracy reads the same in both."""
    return np.random.default_rng((seed, 9)).choice(n, QUICK["test"], replace=False)


def balanced_labels(n: int, rng) -> np.ndarray:
    """``n`` class labels, each class as often as possible (n/10 each), in a random order."""
    return rng.permutation(np.arange(n) % 10).astype(np.int64)


def make_dfkd_step(teacher, prep, T: float, shift: int = 0, mixup: float = 0.0, adapter=None, beta: float = 0.0,
                   affine=None):
    """The student's loss on a batch of synthetic images x̃ (the batch's labels unused but for the
    accuracy fit prints): L_DFKD = T²·KL(p_t ‖ p_s), the teacher frozen (no graph). ``affine`` =
    (degrees, scale): first each image randomly rotated and rescaled (:func:`kd.random_affine`).
    ``shift`` > 0: then the batch randomly rolled by up to that many pixels (augmentation of a fixed pool).
    ``mixup`` > 0: then each image blended with another of the batch, x̃ ← λ·x̃ + (1 − λ)·x̃_π,
    λ ~ Beta(mixup, mixup) per image (Zhang et al., mixup, ICLR 2018); the teacher labels the
    blend, so the student also learns the teacher between the images it was shown. ``beta`` > 0:
    plus β·‖F_T − g(F_S)‖² on the same images, the penultimate features through ``adapter`` g
    (section 4's feature KD; the teacher's features carry more of it per image than its logits)."""
    def step(student, x, y):
        if affine:      # (0, 0) returns x unchanged
            x = kd.random_affine(x, *affine, fill=-MEAN / STD)      # black outside: normalised 0
        if shift:
            x = kd.random_shift(x, shift)
        if mixup:
            rng = get_rng()
            lam = rng.beta(mixup, mixup, size=(x.shape[0], 1, 1, 1)).astype(np.float32)
            x = x * lam + x[rng.permutation(x.shape[0])] * (1 - lam)
        x = prep(x)

        def forward(net):       # (logits, features), the features only when the feature term needs them
            return net(x, return_features=True) if beta else (net(x), None)

        logits, features = forward(student)
        with mk.no_grad():
            teacher_logits, teacher_features = forward(teacher)
        loss = kd.dfkd_loss(logits, teacher_logits, T=T)
        if beta:
            loss = loss + kd.feature_loss(features, teacher_features, adapter) * beta
        return loss, logits
    return step


# --------------------------------------------------------------------------- scenario 1: G is given

class FreshBatches:
    """``steps`` minibatches ``(x, y)``, each drawn anew by ``draw(rng)`` from one generator seeded
    with ``seed``: scenario 1's loaders (fresh images every batch, no pool)."""

    def __init__(self, steps: int, seed):
        self.steps, self.seed = steps, seed

    def __len__(self):
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        for _ in range(self.steps):
            yield self.draw(rng)


class GeneratorBatches(FreshBatches):
    """Minibatches ``(x̃, y)`` from the conditional generator: y uniform over the classes,
    z ~ N(0, z_std²·I), x̃ = G(z, y) without a graph (G is fixed).

    ``z_std`` > 1 samples z wider than G was trained on: the opposite of BigGAN's truncation trick
    (Brock et al., ICLR 2019), which narrows z to trade variety for fidelity. A student needs the
    variety (the teacher labels whatever G draws)."""

    def __init__(self, G, steps: int, batch_size: int, seed, z_std: float = 1.0):
        super().__init__(steps, seed)
        self.G, self.batch_size, self.z_std = G, batch_size, z_std

    def draw(self, rng):
        y = rng.integers(0, self.G.num_classes, size=self.batch_size)
        z, y = sample(self.G, self.batch_size, rng, labels=y, z_std=self.z_std)
        with mk.no_grad():
            x = kd.check_generator_output(self.G(z, y), n=self.batch_size)
        return mk.Tensor(x.data), y


class PoolBatches(FreshBatches):
    """Minibatches drawn at random (with replacement) from fixed images ``x``, ``y``: real training
    images for ``--scenario real``, as a perfect G would draw them (the reference that bounds
    scenario 1 from above), or scenario 2's synthetic pool as far as ``--rounds`` have made it."""

    def __init__(self, x, y, steps: int, batch_size: int, seed):
        super().__init__(steps, seed)
        self.x, self.y, self.batch_size = x, y, batch_size

    def draw(self, rng):
        i = rng.integers(0, len(self.x), size=self.batch_size)
        return mk.tensor(self.x[i]), mk.tensor(self.y[i])


def per_epoch(batches, seed):
    """The loader ``epoch → batches(seed=(seed, epoch))``: fresh images every epoch, drawn from (seed, epoch)."""
    return lambda epoch: batches((seed, epoch))


def run_generator(batches, teacher, arch, student, test, args, source: str = "G", distinct=None) -> dict:
    """Scenario 1: the student distilled for ``--epochs`` epochs on ``batches(epoch)`` — G's fresh
    samples (:class:`GeneratorBatches`), or real training images for ``--scenario real``
    (:class:`PoolBatches`, at most ``distinct`` different ones) — each batch randomly shifted by up
    to ``--jitter`` pixels."""
    prep = teacher_input(arch)
    adapter = kd.LinearAdapter(student.feature_dim, teacher.feature_dim) if args.feature_weight else None
    opt = optim.Adam([*student.parameters(), *(adapter.parameters() if adapter else ())], lr=args.lr)
    schedule = optim.CosineAnnealingLR(opt, T_max=args.epochs * args.steps_per_epoch)
    step = make_dfkd_step(teacher, prep, args.T, shift=args.jitter, mixup=args.mixup, adapter=adapter,
                          beta=args.feature_weight, affine=(args.rotate, args.rescale))
    history, seconds = fit(student, opt, step, batches, args.epochs, f"student ← {source}", test=test,
                           schedule=schedule, progress=args.progress)
    seen = args.epochs * args.steps_per_epoch * args.batch_size
    return {"history": history, "distill_seconds": seconds, "synthesis_seconds": 0.0,
            "synthetic_images_seen": seen, "distinct_synthetic_images": min(seen, distinct or seen)}


# --------------------------------------------------------------------------- scenario 2a: DAFL

def run_dafl(teacher, arch, student, test, seed, args, grid_path=None) -> dict:
    """DAFL: per step, a fresh batch x̃ = G(z); G takes a step on L_oh + α·L_a + β·L_ie through the frozen
    teacher, then the student a step on L_DFKD against the teacher's logits on the same x̃."""
    prep = teacher_input(arch)
    rng = np.random.default_rng((seed, 3))
    G = Generator(z_dim=100, width=args.generator_width)
    opt_G = optim.Adam(G.parameters(), lr=args.lr_generator)
    opt_S = optim.Adam(student.parameters(), lr=args.lr)
    schedule = optim.CosineAnnealingLR(opt_S, T_max=args.epochs * args.steps_per_epoch)
    history, seconds = [], 0.0
    for epoch in range(1, args.epochs + 1):
        start, sums = time.perf_counter(), np.zeros(3)
        bar = tqdm(range(args.steps_per_epoch), desc=f"DAFL epoch {epoch}/{args.epochs}", leave=False,
                   disable=not args.progress)
        for k in bar:
            z = mk.tensor(rng.standard_normal((args.batch_size, 100)).astype(np.float32))
            x = kd.check_generator_output(G(z), n=args.batch_size)
            t_logits, t_features = teacher(prep(x), return_features=True)
            loss_G = kd.dafl_generator_loss(t_logits, t_features, alpha=args.alpha, beta=args.beta)
            opt_G.zero_grad()
            loss_G.backward()
            opt_G.step()
            s_logits = student(prep(x.detach()))
            loss_S = kd.dfkd_loss(s_logits, t_logits.detach(), T=args.T)
            opt_S.zero_grad()
            loss_S.backward()
            opt_S.step()
            schedule.step()
            agree = float((s_logits.numpy().argmax(1) == t_logits.numpy().argmax(1)).mean())
            sums += (loss_G.item(), loss_S.item(), agree)
            bar.set_postfix(L_G=f"{sums[0] / (k + 1):.3f}", L_S=f"{sums[1] / (k + 1):.4f}", refresh=False)
        seconds += time.perf_counter() - start
        n = args.steps_per_epoch
        for value, what, lr in ((sums[0] / n, "G's loss", args.lr_generator),
                                (sums[1] / n, "the student's loss", args.lr)):
            stop_if_diverged(value, f"DAFL epoch {epoch}/{args.epochs}", lr, what)
        row = {"epoch": epoch, "loss_G": sums[0] / n, "train_loss": sums[1] / n, "train_acc": sums[2] / n,
               "test_acc": evaluate(student, *test)}
        tqdm.write(f"DAFL epoch {epoch}/{args.epochs}: L_G {row['loss_G']:.3f}, L_DFKD {row['train_loss']:.4f}, "
                   f"student test acc {100 * row['test_acc']:.2f} %")
        history.append(row)
    if grid_path is not None:
        G.eval()
        with mk.no_grad():
            x = G(mk.tensor(rng.standard_normal((500, 100)).astype(np.float32))).numpy()
            classes = teacher(prep(mk.tensor(x))).numpy().argmax(1)
        grid_by_class(x, classes, grid_path, "DAFL: G's images, row c: those the teacher calls c")
    seen = args.epochs * args.steps_per_epoch * args.batch_size
    return {"history": history, "distill_seconds": seconds, "synthesis_seconds": 0.0,
            "synthetic_images_seen": seen, "distinct_synthetic_images": seen,
            "note": "generator and student trained together: synthesis time is inside distill_seconds"}


# --------------------------------------------------------------------------- scenario 2b, 2c: inversion of the teacher

def invert(teacher, arch, method, args, labels, rng, student=None):
    """Synthetic images x̃ for the target classes ``labels``, optimised batch by batch from noise.

    Per batch: x̃ ~ N(0, 1) in the normalised space, Adam on the pixels for ``--iters`` steps on
    −Σ_j q_j log p_t,j(jitter(x̃)) + r_tv·TV(x̃) + r_l2·mean((x̃ − black)²) + (deepinversion) r_bn·R_BN(x̃)
    + (actmax) r_div·L_div(f_T(x̃)); x̃ kept within [black, white] after every step. The target q is
    the one-hot y (``--mix 0``: the class term of both papers) or y mixed with another class
    (:func:`mixed_targets`). With a ``student``: plus ``--compete``·(1 − JS(p_t, p_s)) on the same
    jittered x̃, Adaptive DeepInversion's competition term (:func:`kd.competition_loss`), which draws
    x̃ to where the student does not yet answer like the teacher; the student is frozen meanwhile."""
    prep = teacher_input(arch)
    bn = kd.BNStatistics(teacher) if method == "deepinversion" else None
    images, bar = [], tqdm(total=len(labels), desc=f"{method} synthesis", leave=False, disable=not args.progress)
    try:
        with frozen(student):
            for i in range(0, len(labels), args.batch_size):
                y = labels[i:i + args.batch_size]
                x = mk.tensor(rng.standard_normal((len(y), 1, 28, 28)).astype(np.float32), requires_grad=True)
                q = mixed_targets(y, args.mix, rng) if args.mix > 0 else None
                opt = optim.Adam([x], lr=args.lr_images)
                for _ in range(args.iters):
                    x_in = prep(kd.random_shift(x, args.jitter, rng))
                    logits, features = teacher(x_in, return_features=True)
                    if q is None:
                        loss = kd.activation_maximisation_loss(logits, y)
                    else:               # −Σ_j q_j log p_t,j: the teacher's output pulled to the mixed target q
                        loss = -(q * F.log_softmax(logits)).sum(axis=1).mean()
                    # the L2 prior on the distance from black: MNIST's background, where a digit has no ink
                    loss = loss + args.r_tv * kd.total_variation(x) + args.r_l2 * kd.l2_prior(x - LO)
                    if bn is not None:
                        loss = loss + args.r_bn * bn.loss()
                    elif len(y) > 1:
                        loss = loss + args.r_div * kd.diversity_loss(features)
                    if student is not None:
                        loss = loss + args.compete * kd.competition_loss(logits, student(x_in))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    np.clip(x.data, LO, HI, out=x.data)      # stay a picture: between black and white
                images.append(x.numpy())
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update(len(y))
    finally:
        bar.close()
        if bn is not None:
            bn.remove()
    return np.concatenate(images), labels


@contextmanager
def frozen(net):
    """``net`` (if not None) frozen as a teacher is (:func:`kd.freeze_teacher`), then given back in its mode
    and with its weights' flags: the student while images are optimised against it (the gradient is for x̃ only)."""
    if net is None:
        yield
        return
    params, mode = list(net.parameters()), net.training
    flags = [q.requires_grad for q in params]
    kd.freeze_teacher(net)
    try:
        yield
    finally:
        for q, flag in zip(params, flags):
            q.requires_grad_(flag)
        net.train(mode)


def mixed_targets(y, mix: float, rng):
    """Soft targets q = (1 − m)·onehot(y) + m·onehot(y′), y′ another class drawn at random and
    m ~ U(0, mix) per image: images between two classes, where the teacher's soft labels say
    most (the idea of Zero-Shot KD, Nayak et al. 2019, which draws q from a Dirichlet)."""
    n = len(y)
    other = (y + rng.integers(1, 10, size=n)) % 10
    m = rng.uniform(0, mix, size=n).astype(np.float32)
    q = np.zeros((n, 10), np.float32)
    q[np.arange(n), y] = 1 - m
    q[np.arange(n), other] += m
    return mk.tensor(q)


def share(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` whole shares as equal as can be, the larger ones first."""
    return [total // parts + (r < total % parts) for r in range(parts)]


def run_inversion(method, teacher, arch, student, test, seed, args, out: Path, grid_path=None) -> dict:
    """DeepInversion or activation maximisation: synthesise the pool, then distil the student over it.

    With ``--rounds R`` > 1 the pool is made in R rounds of about P/R images, and after each round
    the student trains for its share of the ``--epochs`` on the pool made so far (an epoch: ⌈P/B⌉
    minibatches drawn at random from it). From the second round on, ``--compete`` > 0 puts the
    student in the synthesis (Adaptive DeepInversion, Yin et al. 2020). The student takes as many
    steps as with one round (``--epochs``·⌈P/B⌉ minibatches of B, so epochs·P images when B divides
    P); the learning rate follows one cosine over all of them."""
    prep = teacher_input(arch)
    rng = np.random.default_rng((seed, 4))
    steps = -(-args.pool // args.batch_size)
    opt = optim.Adam(student.parameters(), lr=args.lr)
    schedule = optim.CosineAnnealingLR(opt, T_max=args.epochs * steps)
    step = make_dfkd_step(teacher, prep, args.T, shift=args.jitter)
    xs, ys, history, rounds, synthesis, seconds = [], [], [], [], 0.0, 0.0
    for r, (n, epochs) in enumerate(zip(share(args.pool, args.rounds), share(args.epochs, args.rounds))):
        start = time.perf_counter()
        rival = student if r > 0 and args.compete > 0 else None
        x, y = invert(teacher, arch, method, args, balanced_labels(n, rng), rng, student=rival)
        synthesis += time.perf_counter() - start
        xs.append(x)
        ys.append(y)
        pool_x, pool_y = np.concatenate(xs), np.concatenate(ys)
        if args.rounds == 1:        # one pass over the whole pool per epoch, in a new order each time
            loader = DataLoader(pool_x, pool_y, args.batch_size, shuffle=True, seed=seed)
            name = f"student ← {method}"
        else:
            with mk.no_grad(), frozen(student):     # how much of the new images it already gets right
                t_class, s_class = (net(prep(mk.tensor(x))).numpy().argmax(1) for net in (teacher, student))
            rounds.append({"round": r + 1, "images": n, "epochs": epochs, "compete": rival is not None,
                           "student_agrees_with_teacher_before": float((t_class == s_class).mean())})
            tqdm.write(f"round {r + 1}/{args.rounds}: {n:,} new images ({len(pool_x):,} in the pool), the student "
                       f"answered {100 * rounds[-1]['student_agrees_with_teacher_before']:.1f} % of the new ones "
                       "as the teacher does")
            loader = per_epoch(partial(PoolBatches, pool_x, pool_y, steps, args.batch_size), (seed, 5, r))
            name = f"student ← {method}, round {r + 1}/{args.rounds}"
        h, sec = fit(student, opt, step, loader, epochs, name, test=test, schedule=schedule, progress=args.progress)
        history += [{**row, "epoch": len(history) + i + 1} for i, row in enumerate(h)]
        seconds += sec
    x, y = pool_x, pool_y
    with mk.no_grad():
        p = F.softmax(teacher(prep(mk.tensor(x)))).numpy()
    pool_quality = {"teacher_agrees_with_target": float((p.argmax(1) == y).mean()),
                    "teacher_mean_confidence": float(p.max(1).mean())}
    tqdm.write(f"{method}: {len(x):,} images in {format_seconds(synthesis)}; the teacher calls "
               f"{100 * pool_quality['teacher_agrees_with_target']:.1f} % of them their target class, mean confidence "
               f"{100 * pool_quality['teacher_mean_confidence']:.1f} %")
    mk.save({"images": x, "labels": y}, out / f"pool_{method}_seed{seed}.npz")
    if grid_path is not None:       # the last round's images: those made against the trained student
        last = f", round {args.rounds}" if args.rounds > 1 else ""
        grid_by_class(xs[-1], ys[-1], grid_path,
                      f"{method}, seed {seed}{last}: synthetic images per target class (row c: class c)")
    run = {"history": history, "distill_seconds": seconds, "synthesis_seconds": synthesis,
           "synthetic_images_seen": args.epochs * steps * args.batch_size if args.rounds > 1 else args.epochs * len(x),
           "distinct_synthetic_images": len(x), "pool": pool_quality}
    if rounds:
        run["rounds"] = rounds
    return run


def grid_by_class(x, classes, path, title):
    """Up to 10 images per class, row c holding those ``classes`` names c (a row left blank where fewer)."""
    rows = []
    for c in range(10):
        pick = x[classes == c][:10]
        pad = np.full((10 - len(pick), *x.shape[1:]), np.nan, dtype=x.dtype)   # blank places, not black images
        rows.append(np.concatenate([pick, pad]))
    draw_grid(np.concatenate(rows), path, title, row_labels=list(range(10)))


# --------------------------------------------------------------------------- one distillation, all seeds

def distil(args) -> dict:
    out = Path(args.out)
    teacher, arch, meta = load_teacher(args.teacher)
    G = real = None
    if args.scenario == "generator":
        G = obtain_generator(args, teacher, arch)
    elif args.scenario == "real":       # the reference: reads the training set, as no data-free run may
        real = load_training_set(args)
        print(f"reference, not data-free: the same loop on {len(real[0]):,} real training images")
    methods = [args.scenario] if args.scenario in ("generator", "real") else args.method
    results = {}
    common_args = args
    for method in methods:
        args = argparse.Namespace(**{**vars(common_args), "epochs": common_args.epochs or STUDENT_EPOCHS[method]})
        runs = []
        for k, seed in enumerate(args.seeds):
            start = time.perf_counter()
            test = load_test_set(args, arch, seed)
            teacher_acc = evaluate(teacher, *test)
            mk.manual_seed(seed)
            student = STUDENTS[arch]()
            grid = out / f"synthetic_{method}.png" if k == 0 else None
            print(f"\n{method}, seed {seed}: teacher {arch} ({100 * teacher_acc:.2f} % on {len(test[1]):,} test "
                  "images) → "
                  f"{type(student).__name__} ({student.num_parameters():,} parameters)")
            if method == "generator":
                if grid is not None:
                    generator_grid(G, grid, seed, f"scenario 1: G(z, y), z ~ N(0, {args.z_std:g}²·I), row c: class c",
                                   z_std=args.z_std)
                batches = partial(GeneratorBatches, G, args.steps_per_epoch, args.batch_size, z_std=args.z_std)
                run = run_generator(per_epoch(batches, seed), teacher, arch, student, test, args)
            elif method == "real":
                batches = partial(PoolBatches, *real, args.steps_per_epoch, args.batch_size)
                run = run_generator(per_epoch(batches, seed), teacher, arch, student, test, args,
                                    source="real images", distinct=len(real[0]))
            elif method == "dafl":
                run = run_dafl(teacher, arch, student, test, seed, args, grid)
            else:
                run = run_inversion(method, teacher, arch, student, test, seed, args, out, grid)
            run.update(seed=seed, teacher_test_acc=teacher_acc, student_test_acc=run["history"][-1]["test_acc"],
                       wall_seconds=time.perf_counter() - start)
            save_checkpoint(student, out / f"student_{method}_seed{seed}.npz", arch=type(student).__name__,
                            method=method, seed=seed, teacher=str(args.teacher), test_acc=run["student_test_acc"])
            print(f"{method}, seed {seed}: student {100 * run['student_test_acc']:.2f} % (teacher "
                  f"{100 * teacher_acc:.2f} %), {run['synthetic_images_seen']:,} "
                  f"{'real' if method == 'real' else 'synthetic'} images seen "
                  f"({run['distinct_synthetic_images']:,} distinct), {format_seconds(run['wall_seconds'])}")
            runs.append(run)
        accs = np.array([r["student_test_acc"] for r in runs])
        results[method] = {
            "student_test_acc_mean": float(accs.mean()),
            "student_test_acc_std": sample_std(accs),
            "teacher_test_acc": runs[0]["teacher_test_acc"],
            "synthetic_images_seen": runs[0]["synthetic_images_seen"],
            "distinct_synthetic_images": runs[0]["distinct_synthetic_images"],
            "wall_seconds_mean": float(np.mean([r["wall_seconds"] for r in runs])), "epochs": args.epochs,
            "runs": runs}
    return {"teacher": {"path": str(args.teacher), "arch": arch, **meta}, "methods": results}


def load_training_set(args):
    """The training images (normalised) and labels, a random 1,000 of them with ``--quick``: read only
    by the steps whose owner had the data (G's training) and by ``--scenario real``."""
    x_train, y_train = read_mnist_split("train", args.data_dir)
    if args.quick:
        i = np.random.default_rng(0).choice(len(x_train), QUICK["gan_images"], replace=False)
        x_train, y_train = x_train[i], y_train[i]
    return normalize(x_train), y_train


def obtain_generator(args, teacher, arch):
    """Scenario 1's G: loaded from ``--generator``, else trained here on the training set (its owner's step)."""
    if args.generator is not None:
        G, meta = load_generator(args.generator)
        print(f"G: {args.generator} ({meta.get('epochs')} epoch(s) of cGAN training)")
    else:
        x_train, y_train = load_training_set(args)
        print(f"G: trained here, {args.gan_epochs} epoch(s) on {len(x_train):,} training images of "
              f"{mnist_dir(args.data_dir)} (G's owner had the data; the distillation below sees only G's images)")
        G, _ = train_generator(x_train, y_train, args.gan_epochs, args.seeds[0], progress=args.progress)
        save_checkpoint(G, Path(args.out) / "generator.npz", arch="ConditionalGenerator", z_dim=100, num_classes=10,
                        epochs=args.gan_epochs, seed=args.seeds[0], quick=args.quick)
    per_class = 100 if args.quick else 1000
    measures = measure_generator(G, teacher, arch, per_class=per_class)
    if args.z_std != 1:         # the samples the student will see, z drawn wider than G's training
        measures["at_z_std"] = {"z_std": args.z_std, **measure_generator(G, teacher, arch, per_class=per_class,
                                                                         z_std=args.z_std)}
    args.generator_measures = measures
    for m, z_std in ((measures, 1.0), (measures.get("at_z_std"), args.z_std)):
        if m is not None:
            print(f"G judged by the teacher, z ~ N(0, {z_std:g}²·I): class consistency "
                  f"{100 * m['class_consistency']:.2f} %, mean confidence {100 * m['mean_confidence']:.2f} %")
    return G


# --------------------------------------------------------------------------- command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-teacher", choices=tuple(TEACHERS), default=None,
                   help="train and save this teacher (reads the training set), instead of distilling: slide (the "
                        "slide's teacher), bn (the same with BatchNorm), lenet5 (LeNet-5, 32×32), lenet5bn (LeNet-5 "
                        "with BatchNorm); bn and lenet5bn are for --method deepinversion")
    p.add_argument("--noise", type=float, default=0.0,
                   help="--train-teacher: Gaussian noise of this standard deviation (normalised pixel units) added "
                        "to every training input, drawn anew each batch (default 0: none). A teacher trained with "
                        "noise 1 gives actmax images that teach far more (docs/data_free.md)")
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="--train-teacher: the learning rate constant (default) or decayed along a half cosine to 0")
    p.add_argument("--scenario", choices=("generator", "none", "real"), default=None,
                   help="generator: a conditional G is given; none: no data and no generator; real: not data-free, "
                        "the reference: scenario 1's loop on real training images (a perfect G)")
    p.add_argument("--method", default=None,
                   help=f"scenario none: one or more (comma-separated) of {','.join(METHODS)}; deepinversion "
                        "needs a teacher with BatchNorm (--train-teacher bn or lenet5bn)")
    p.add_argument("--teacher", default=None, help="the teacher checkpoint (from --train-teacher)")
    p.add_argument("--generator", default=None,
                   help="scenario generator: G's checkpoint (train_conditional_generator.py); without it G is trained")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="the teacher's epochs (default slide 5, bn 5, lenet5 and lenet5bn 10), or the student's: "
                        "passes over the pool (default 30), or epochs of --steps-per-epoch fresh batches (generator "
                        "20, dafl 15)")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="scenario generator and real, and DAFL: batches per epoch (default 200)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="the student's batch size, and the synthesis's (default 128; a teacher trains with 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="the student's Adam learning rate (default 1e-3)")
    p.add_argument("--T", type=float, default=4.0, help="the distillation temperature (default 4)")
    p.add_argument("--pool", type=int, default=30720, help="deepinversion, actmax: synthetic images (default 30720)")
    p.add_argument("--iters", type=int, default=50,
                   help="deepinversion, actmax: Adam steps per batch of images (default 50)")
    p.add_argument("--lr-images", type=float, default=0.1,
                   help="deepinversion, actmax: Adam's lr on the pixels (default 0.1)")
    p.add_argument("--rounds", type=int, default=1,
                   help="deepinversion, actmax: make the pool in R rounds, the student trained after each on the "
                        "pool so far (its --epochs shared among the rounds; default 1)")
    p.add_argument("--compete", type=float, default=0.0,
                   help="deepinversion, actmax, with --rounds ≥ 2: weight of Adaptive DeepInversion's competition "
                        "term 1 − JS(p_t, p_s), the student in the synthesis from round 2 on (default 0: off)")
    p.add_argument("--r-bn", type=float, default=1.0,
                   help="deepinversion: weight of the BatchNorm statistics (default 1)")
    p.add_argument("--r-tv", type=float, default=0.5,
                   help="deepinversion, actmax: weight of total variation (default 0.5)")
    p.add_argument("--r-l2", type=float, default=1e-3,
                   help="deepinversion, actmax: weight of the L2 prior (default 1e-3)")
    p.add_argument("--r-div", type=float, default=1.0, help="actmax: weight of the diversity term (default 1)")
    p.add_argument("--mix", type=float, default=0.5,
                   help="deepinversion, actmax: targets mix the class with another at a weight m ~ U(0, mix), "
                        "mix in [0, 0.5] (default 0.5); 0: one-hot targets, as DeepInversion and activation "
                        "maximisation have them")
    p.add_argument("--jitter", type=int, default=2,
                   help="random shift in pixels (synthesis and distillation; scenario 1: of G's samples; default 2)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="scenario generator and real: blend each image with another of its batch, λ ~ Beta(a, a), "
                        "before the teacher labels it (mixup; default 0: off)")
    p.add_argument("--feature-weight", type=float, default=0.0,
                   help="scenario generator, real: add β·‖F_T − g(F_S)‖² (feature KD on the same images; 0: off)")
    p.add_argument("--rotate", type=float, default=0.0,
                   help="scenario generator, real: rotate each image by up to ± this many degrees (default 0: off)")
    p.add_argument("--rescale", type=float, default=0.0,
                   help="scenario generator, real: scale each image by a factor in 1 ± this (default 0: off)")
    p.add_argument("--z-std", type=float, default=None,
                   help="scenario generator: z ~ N(0, z_std²·I), wider than G's training (1) for more varied "
                        f"samples (default {Z_STD:g})")
    p.add_argument("--alpha", type=float, default=0.1, help="dafl: weight α of the activation loss")
    p.add_argument("--beta", type=float, default=5.0, help="dafl: weight β of the information-entropy loss")
    p.add_argument("--lr-generator", type=float, default=1e-3, help="dafl: the generator's Adam learning rate")
    p.add_argument("--generator-width", type=int, default=32,
                   help="dafl: the generator's channels (DAFL's 128 costs 16× more; default 32)")
    p.add_argument("--gan-epochs", type=int, default=4, help="scenario generator without --generator: cGAN epochs")
    p.add_argument("--data-dir", default=None, help="--train-teacher: " + DATA_DIR_HELP + ". Distilling: a folder "
                   "with the two t10k test files (the only ones read), except --scenario generator without "
                   "--generator, which trains G on the training files, and --scenario real, which distils on them")
    add_out_option(p, "runs/data_free", "the outputs")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, a few steps")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    check_options(p, args, given_options(p, argv, args))
    return args


def unread_options(args, runs: set[str], mode: str) -> dict:
    """For :func:`common.refuse_unused`: each option of :data:`USED_BY` that none of ``runs`` (the
    distillations of this command, :data:`RUN_NAMES`' keys) reads — with --train-teacher (``runs`` empty)
    also --batch-size, --lr and --T, the student's — and its error, naming where it applies.
    ``mode``: this command's mode, for the message."""
    names = tuple(USED_BY) if runs else ("batch_size", "lr", "T", *USED_BY)
    errors = {}
    for name in names:
        if not runs & set(USED_BY.get(name, ())):
            value = getattr(args, name)
            value = f"{value:g}" if isinstance(value, float) else value
            where = " or ".join(RUN_NAMES[r] for r in USED_BY[name]) if runs else "a distillation (--scenario)"
            errors[name] = f"--{name.replace('_', '-')} {value}: only for {where}, not with {mode}"
    return errors


def check_options(p, args, given: set[str] = frozenset()) -> None:
    """Every check before any work: a bad option is one line and exit status 2. ``given``: the options on the
    command line (:func:`given_options`), refused where they would have no effect."""
    ok = partial(check, p)
    explicit = {"epochs": args.epochs is not None, "steps_per_epoch": args.steps_per_epoch is not None}
    if (args.train_teacher is None) == (args.scenario is None):
        p.error(f"give either --train-teacher {'|'.join(TEACHERS)} or --scenario generator|none|real "
                "(one of the two)")
    args.seeds = parse_int_list(p, args.seeds, "--seeds", low=0, what="seeds")
    if args.epochs is not None:
        ok(check_int, args.epochs, "--epochs", "the number of epochs", low=1)
    if args.steps_per_epoch is not None:
        ok(check_int, args.steps_per_epoch, "--steps-per-epoch", "steps per epoch", low=1)
    for name, low in (("batch_size", 2), ("pool", 1), ("iters", 1), ("jitter", 0),
                      ("generator_width", 2), ("gan_epochs", 1)):
        ok(check_int, getattr(args, name), "--" + name.replace("_", "-"), name.replace("_", " "), low=low)
    for name in ("lr", "lr_images", "lr_generator"):
        ok(check_number, getattr(args, name), "--" + name.replace("_", "-"), "the learning rate", low=0, low_open=True)
    ok(check_number, args.mix, "--mix", "the largest mixing weight", low=0, high=0.5)
    ok(check_number, args.mixup, "--mixup", "mixup's Beta parameter (0: off)", low=0)
    if "mixup" in given and args.scenario not in ("generator", "real"):
        p.error("--mixup: only for --scenario generator or real (it blends the fresh batches of scenario 1's loop)")
    ok(check_number, args.feature_weight, "--feature-weight", "the feature term's weight β (0: off)", low=0)
    ok(check_number, args.rotate, "--rotate", "the largest rotation in degrees", low=0, high=180)
    ok(check_number, args.rescale, "--rescale", "the largest change of scale", low=0, high=1, high_open=True)
    for name in ("feature_weight", "rotate", "rescale"):
        if name in given and args.scenario not in ("generator", "real"):
            p.error(f"--{name.replace('_', '-')}: only for --scenario generator or real (scenario 1's loop)")
    if args.z_std is not None:
        if args.scenario != "generator":
            p.error("--z-std: only for --scenario generator (the spread of G's input z)")
        ok(check_number, args.z_std, "--z-std", "the standard deviation of z", low=0, low_open=True)
    elif args.scenario == "generator":
        args.z_std = Z_STD
    ok(check_int, args.rounds, "--rounds", "the number of synthesis rounds", low=1)
    ok(check_number, args.compete, "--compete", "the competition term's weight (0: off)", low=0)
    pool_options = given_pool_options(args, given)
    if pool_options and args.scenario != "none":
        p.error(f"{pool_options}: only for --scenario none with --method deepinversion or actmax")
    if args.compete and args.rounds < 2:
        p.error(f"--compete {args.compete:g}: needs --rounds 2 or more, got --rounds {args.rounds} (the student it "
                "competes with is trained between rounds; in the first it has learned nothing yet)")
    if args.rounds > args.pool:
        p.error(f"--rounds {args.rounds}: more rounds than images (--pool {args.pool}); each round makes at least one")
    for name in ("r_bn", "r_tv", "r_l2", "r_div", "alpha", "beta"):
        ok(check_number, getattr(args, name), "--" + name.replace("_", "-"), "a loss weight", low=0)
    ok(check_temperature, args.T, "--T")
    ok(check_number, args.noise, "--noise", "the noise's standard deviation (0: none)", low=0)
    if args.train_teacher is not None:
        for option in ("scenario", "method", "teacher", "generator", "steps_per_epoch"):
            if getattr(args, option) is not None:
                p.error(f"--{option.replace('_', '-')}: only for a distillation (--scenario), not with --train-teacher")
        if len(args.seeds) > 1:
            p.error(f"--seeds {','.join(map(str, args.seeds))}: --train-teacher trains one teacher, with one seed; "
                    f"expected one (e.g. --seeds {args.seeds[0]}), or a run per seed with its own --out")
        refuse_unused(p, given, unread_options(args, set(), f"--train-teacher (a teacher trains with Adam at lr "
                                                          f"{TEACHER_LR:g}, batch {TEACHER_BATCH})"))
        check_data_dir(p, args.data_dir)
        args.epochs = args.epochs or TEACHER_EPOCHS[args.train_teacher]
    else:
        if "schedule" in given:
            p.error("--schedule: only for --train-teacher (the student's learning rate always follows a cosine)")
        if "noise" in given:
            p.error("--noise: only for --train-teacher (it trains the teacher on noisy images)")
        check_distillation(p, args, given)
    check_out(p, args)
    if args.quick:
        args.pool, args.iters = min(args.pool, QUICK["pool"]), min(args.iters, QUICK["iters"])
        args.rounds = min(args.rounds, args.pool)
        if not explicit["epochs"]:          # an epoch a round, unless --epochs was given
            args.epochs = args.rounds
        if not explicit["steps_per_epoch"]:
            args.steps_per_epoch = QUICK["steps"]
        args.gan_epochs = 1
        args.batch_size = min(args.batch_size, QUICK["batch"])
    if args.steps_per_epoch is None:
        args.steps_per_epoch = STEPS_PER_EPOCH


def given_pool_options(args, given: set[str]) -> str:
    """``--rounds R, --compete w``: those of the two options that shape an inversion's pool which are on the
    command line (``given``, :func:`given_options`; at their defaults too, as every option a mode ignores),
    for the error that says where they apply; "" if neither is."""
    return ", ".join([f"--rounds {args.rounds}"] * ("rounds" in given) + [f"--compete {args.compete:g}"] * (
        "compete" in given))


def check_distillation(p, args, given: set[str] = frozenset()) -> None:
    if args.teacher is None:
        p.error(f"--teacher: --scenario {args.scenario} needs a teacher checkpoint (data_free_kd.py --train-teacher)")
    arch = check_teacher(p, args.teacher)
    if args.scenario == "none":
        if args.method is None:
            p.error(f"--method: --scenario none needs a method: one or more of {','.join(METHODS)}")
        methods = [m.strip() for m in args.method.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            p.error(f"--method: unknown method {unknown[0]!r}; choose from {','.join(METHODS)}" if unknown else
                    f"--method: no method given; choose from {','.join(METHODS)}")
        if "deepinversion" in methods and arch not in WITH_BN:
            p.error(f"--method deepinversion: needs a teacher with BatchNorm layers (their running statistics are "
                    f"what it matches): --teacher {args.teacher} is the {arch!r} teacher, which has none. Train one "
                    f"with --train-teacher {BN_VARIANT[arch]}, or use --method actmax or dafl "
                    "for this teacher")
        args.method = [m for m in METHODS if m in methods]
        inversions = [m for m in args.method if m != "dafl"]
        pool_options = given_pool_options(args, given)
        if pool_options and not inversions:
            p.error(f"{pool_options}: only for --method deepinversion or actmax (they make a pool of images)")
        if args.steps_per_epoch is not None and "dafl" not in args.method:
            p.error(f"--steps-per-epoch: not for --method {','.join(args.method)} (an inversion's epoch is a pass "
                    "over its pool: --pool); only for --scenario generator or real, or --method dafl")
        for m in inversions:
            epochs = args.epochs or STUDENT_EPOCHS[m]
            if args.rounds > epochs and not (args.quick and args.epochs is None):
                p.error(f"--rounds {args.rounds}: more rounds than the student's epochs ({epochs} for {m}); the "
                        "student trains at least one epoch after each round (raise --epochs)")
        if args.generator is not None:
            p.error("--generator: only for --scenario generator")
    else:
        if args.method is not None:
            p.error(f"--method: only for --scenario none (scenario {args.scenario} distils on "
                    + ("G's samples)" if args.scenario == "generator" else "real training images)"))
        if args.generator is not None and args.scenario == "real":
            p.error("--generator: only for --scenario generator (--scenario real uses the training images)")
        if args.generator is not None:
            path = Path(args.generator)
            if not path.is_file():
                p.error(f"--generator {path}: no such file")
            try:
                with seeded_stream_kept():      # building G to check it must not shift the seeded stream
                    load_generator(path)
            except (OSError, ValueError, KeyError, TypeError) as e:
                p.error(f"--generator {path}: not a train_conditional_generator.py checkpoint: "
                        + " ".join(str(e).split()))
    if args.scenario == "generator":
        runs, mode = {"generator"} | ({"G"} if args.generator is None else set()), "--scenario generator" + (
            " --generator (G is given, not trained)" if args.generator is not None else "")
    else:
        runs = {"real"} if args.scenario == "real" else set(args.method)
        mode = "--scenario real" if args.scenario == "real" else f"--method {','.join(args.method)}"
    refuse_unused(p, given, unread_options(args, runs, mode))
    if args.data_dir is not None:
        folder = Path(args.data_dir)
        if not folder.is_dir():
            p.error(f"--data-dir {folder}: no such folder")
        reads_train = args.scenario == "real" or (args.scenario == "generator" and args.generator is None)
        needed = FILES["test"] + (FILES["train"] if reads_train else ())
        missing = missing_files(folder, needed)
        if missing:
            p.error(f"--data-dir {folder}: the folder lacks {', '.join(missing)}"
                    + (" (to train G: or give --generator)" if set(missing) & set(FILES["train"])
                       and args.scenario == "generator" else ""))


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.train_teacher is not None:
        return train_teacher(args)
    wall = time.perf_counter()
    what = {"generator": "scenario 1 (a conditional generator)",
            "real": "the reference (real training images, not data-free)",
            "none": f"scenario 2 (no data), {', '.join(args.method or ())}"}[args.scenario]
    epochs = args.epochs or "the default number of"
    print(f"data-free distillation, {what}: T = {args.T:g}, batch {args.batch_size}, {epochs} epoch(s), "
          f"seeds {args.seeds}" + (" (quick: a smoke run)" if args.quick else ""))
    report = distil(args)
    wall = time.perf_counter() - wall
    if args.quick:
        print("\nSMOKE RUN (--quick: tiny sizes, a few steps): these accuracies only show the code runs")
    print(f"\n{'method':<16}{'student test acc':>20}{'teacher':>10}{'images seen':>14}{'distinct':>10}"
          f"{'time':>18}")
    for method, r in report["methods"].items():
        acc = f"{100 * r['student_test_acc_mean']:.2f}" + (f" ± {100 * r['student_test_acc_std']:.2f}"
                                                           if len(args.seeds) > 1 else "")
        print(f"{method:<16}{acc:>20}{100 * r['teacher_test_acc']:>10.2f}{r['synthetic_images_seen']:>14,}"
              f"{r['distinct_synthetic_images']:>10,}{format_seconds(r['wall_seconds_mean']):>18}")
    settings = run_settings(args, drop=("generator_measures",))
    report.update(smoke_run=args.quick, scenario=args.scenario, settings=settings, platform=run_platform(args),
                  wall_seconds=wall,
                  generator_measures=getattr(args, "generator_measures", None))
    write_json(report, out / "results.json")
    grids = "" if args.scenario == "real" else " and the grids"
    print(f"\nwall time {format_seconds(wall)}; wrote {out / 'results.json'}{grids}, checkpoints in {out}/")
    return report


if __name__ == "__main__":
    run_cli(main)
