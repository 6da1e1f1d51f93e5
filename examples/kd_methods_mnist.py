"""Every distillation method of the lecture, side by side on MNIST.

    python examples/kd_methods_mnist.py                   # every method, seeds 0, 1, 2: ≈ 40 min on 2 cores
    python examples/kd_methods_mnist.py --qud-ablation    # ... and QUD's τ / queue-size ablation (first seed)
    python examples/kd_methods_mnist.py --quick           # a small real subset, one epoch: a smoke run
    python examples/kd_methods_mnist.py --chart-from a/results.json b/results.json --out c
                                                          # no training: the table, the targets and the
                                                          # chart of several runs' rows, their seeds pooled

The hands-on's footing for all: the slide's TeacherModel (421,642 parameters) trained once per
seed and frozen, the hands-on's StudentModel (105,866), Adam at lr 1e-3, batch 64, the same
number of epochs for every student (``--epochs``, the hands-on's 5, at a constant learning
rate), every student starting from the same initial weights (BAN's later generations excepted)
and seeing the same batches in the same order. The teacher, pre-trained as a teacher is, gets
three times that budget with the learning rate decayed along a half cosine
(``--teacher-epochs 15``, ``--teacher-schedule``): 99.36 % on seed 3, where 5 epochs at a
constant rate (the students' budget) gave a teacher no better than its student (98.94 against
98.90 %, seeds 0–2: docs/kd_methods.md). T = 3, λ = 0.5 wherever a method distils logits
(``--T``, ``--lam``). The methods (``--methods`` picks some):

=============  ==============================================================================
student        the student alone: L = CE(y, p_s)
kd             logit KD (Hinton 2015): L = (1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s)
fkd            feature KD: L = λ·‖F_T − g(F_S)‖² + (1 − λ)·CE, g a linear adapter 64 → 128
rkd            RKD + KD (Park 2019): L_KD + 25·L_RKD-Dist + 50·L_RKD-Angle on the penultimate
               embeddings (the paper's normalised Huber distance loss and its weights)
dml            deep mutual learning (Zhang 2018): two students from scratch, no teacher;
               L_k = CE(y, p_k) + KL(p_other ‖ p_k), each peer's gradient its own loss's
byot           "Be Your Own Teacher" (Zhang 2019): exits after the student's two conv blocks
               (pool/flatten → Linear to 10) learn from the labels and the deepest exit
ban            born-again networks (Furlanello 2018): gen 1 = the student alone, gen k + 1 the
               same network distilled (kd_loss) from gen k; gens 1, 2, 3. Each later generation
               starts from its own random weights, as a network trained again from scratch does
               (``--ban-init new``); ``--ban-init same``: from gen 1's initial weights
ta             multi-step KD with a teacher assistant (Mirzadeh 2020): teacher → the hands-on
               student distilled from it (the assistant) → a small student (conv 8/16, fc 32:
               26,698 parameters); beside the small student alone and distilled from the teacher
               directly. The assistant teaches, so it is trained as a teacher is: the teacher's
               budget (--teacher-epochs, --teacher-schedule) of logit KD (``--assistant trained``,
               the default); ``--assistant kd``: the kd run's student (the students' 5 epochs)
pocketnet      multi-step KD as PocketNet (Boutros 2022): in its epoch e of E the student distils
               from the teacher's checkpoint saved at the end of the teacher's epoch ⌈e·T_e/E⌉
               (T_e = 15 teacher epochs, so checkpoints 3, 6, 9, 12, 15)
adadistill     AdaDistill (Boutros 2024): e = g(F_S) (128-d), an ArcFace head (m1 = 0.5, s = 16)
               whose class centres are not learned but distilled from the teacher's embeddings
               each step, w_y ← α′·w_y + (1 − α′)·f_t with α′ = ⌊cos(e, f_t)·cos(w_y, f_t)⌉₀¹;
               L = (1 − λ_a)·L_ArcFace + λ_a·‖f_t − e‖² (the MSE feature term, λ_a = ``--ada-lam``,
               0.1: at the hands-on's 0.5 the MSE pulls e onto the teacher's weaker embedding).
               ``--ada-teacher arcface``: f_t from a teacher trained as the paper's face teachers
               are, the slide's network with an ArcFace head (its embedding g(F_T), 128-d).
               ``--ada-teacher ce-centred``: f_t − μ, the CE teacher's features minus their mean
               over the training images (a signed embedding, as a face model's; no labels needed).
               ``--ada-teacher ce-arcface``: the CE teacher fine-tuned with an ArcFace head for
               ``--ada-teacher-epochs`` (3) epochs, a margin-trained teacher at a fifth of the cost
arcface        the same network and head, the centres learned by the gradient, no KD at all
adadistill_nomse  (only when named) AdaDistill with the paper's loss alone, L = L_ArcFace on the
               distilled centres, without the MSE term
qud            QUD (Kolf 2024), no labels: InfoNCE between e = g(F_S) and the teacher's embedding
               of the same image against a FIFO queue of n = 1024 teacher embeddings, τ = 2 (the
               ablation's best on MNIST; the paper's 0.1, its best on faces, gives 91.7 % here)
=============  ==============================================================================

Every run is measured twice on the test set: its accuracy, and the 1:1 verification of its
embedding (:mod:`minikd.verification`: 6,000 fixed test pairs, "same digit?", 10-fold accuracy
and TAR at FAR 1e-2, 1e-3). The embedding is the student's 64-d penultimate feature vector,
except where a method trains an adapted 128-d one (fkd, adadistill, arcface, qud): there it is
e = g(F_S) (the 64-d one is kept in results.json too). AdaDistill and ArcFace classify by the
nearest class centre (logits s·cos θ_j, no margin); QUD, which never sees a label, through the
teacher's own last layer, reading e's direction as that of the teacher's embedding minus its
mean (:class:`TeacherHead`).

A frozen teacher gives the same outputs for an image in every epoch (eval mode, no dropout, no
batch norm), so each teacher's logits and features on the training set are computed once and
looked up by image (:class:`common.IndexedLoader`) rather than recomputed on every batch of
every run. Training times are the training loops alone; the lookups' one-off cost is listed.

Outputs in ``--out`` (default ``runs/kd_methods``): ``results.json`` (every run and seed, mean ±
std, the targets of the issue and whether each was reached), ``kd_methods.png`` (accuracy and
verification with error bars), ``adadistill_alpha.png`` (α′ over the training iterations, as
the slide) and, with ``--qud-ablation``, ``qud_ablation.png``. Every option is checked before
any work: a bad one is a one-line error, exit status 2. ``--quick``: 2,000 training and 1,000
test images, one seed, one epoch for every network unless ``--epochs`` / ``--teacher-epochs``
say otherwise — it shows the code runs; its numbers mean nothing.
``--device cuda`` trains and evaluates every network on a GPU: the data and the frozen teachers'
precomputed outputs stay on the host, and each minibatch (with its rows of those outputs) is
uploaded once; AdaDistill's centre update is a loop over the batch's samples, slow on a GPU.
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from common import (
    DATA_DIR_HELP,
    DEVICE_HELP,
    IndexedLoader,
    add_out_option,
    check,
    check_data_dir,
    check_out,
    device_option,
    evaluate,
    fit,
    format_seconds,
    given_options,
    load_mnist_data,
    mark_smoke_run,
    model_device,
    parse_int_list,
    quick_defaults,
    read_json,
    refuse_unused,
    run_cli,
    run_platform,
    run_settings,
    sample_std,
    save_figure,
    write_json,
)
from common import ce_step as _ce_step
from tqdm import tqdm

import minikd as mk
from minikd import functional as F
from minikd import kd, nn, optim
from minikd.checks import check_int, check_number, check_temperature, is_int
from minikd.data import normalize
from minikd.models import _MNISTCNN, StudentModel, TeacherModel
from minikd.verification import (
    compute_embeddings,
    cosine_scores,
    evaluate_embeddings,
    make_pairs,
    verification_accuracy,
)

METHODS = ("student", "kd", "fkd", "rkd", "dml", "byot", "ban", "ta", "pocketnet", "adadistill", "arcface", "qud")
EXTRA_METHODS = ("adadistill_nomse",)   # only when named in --methods: AdaDistill with the paper's loss alone
RKD_WEIGHTS = (25.0, 50.0)          # w_dist, w_angle: the RKD paper's
ARC_S, ARC_M = 16.0, 0.5            # ArcFace scale (for 10 classes, not faces' 64) and angular margin m1
QUD_TAU, QUD_QUEUE = 2.0, 1024      # τ: the ablation's best on MNIST (the paper's 0.1: faces); n: the paper's
# (τ, n): the slide's temperatures, two beyond them, then the queue sizes at the default τ
ABLATION = [(0.05, 1024), (0.1, 1024), (0.2, 1024), (0.4, 1024), (1.0, 1024), (2.0, 1024), (2.0, 256), (2.0, 4096)]
TEACHER_EPOCHS = 15                 # the teacher's budget: three times the students'
SCHEDULES = ("constant", "cosine")
ADA_LAM = 0.1                       # AdaDistill: weight of its MSE feature term
ADA_TEACHER_EPOCHS = 3              # --ada-teacher ce-arcface: epochs of the CE teacher's ArcFace fine-tuning
QUICK_TRAIN, QUICK_TEST = 2000, 1000
SMALL = (8, 16, 32)                 # the TA chain's small student: _MNISTCNN(8, 16, 32)
EMBED_DIM = 128                     # the margin runs' embedding e = g(F_S): the width of the teacher's features

# row → (title, family); the family colours the chart
ROWS = {
    "teacher": ("teacher (CE)", "teacher"),
    "teacher_arcface": ("teacher (ArcFace head)", "teacher"),
    "teacher_ce_arcface": ("teacher (CE, then ArcFace head)", "teacher"),
    "student": ("student alone (CE)", "baseline"),
    "kd": ("logit KD", "offline"),
    "fkd": ("feature KD (MSE)", "offline"),
    "rkd": ("RKD + logit KD", "offline"),
    "dml_peer1": ("DML, peer 1", "online"),
    "dml_peer2": ("DML, peer 2", "online"),
    "byot": ("BYOT, deepest exit", "self"),
    "ban_gen1": ("BAN gen 1 (= student alone)", "baseline"),
    "ban_gen2": ("BAN gen 2 (taught by gen 1)", "self"),
    "ban_gen3": ("BAN gen 3 (taught by gen 2)", "self"),
    "ta_assistant": ("assistant ← teacher (teacher's budget)", "multi-step"),
    "ta_small_alone": ("small student alone", "baseline"),
    "ta_small_kd": ("small ← teacher (KD)", "multi-step"),
    "ta_small_ta": ("small ← assistant ← teacher", "multi-step"),
    "pocketnet": ("PocketNet (teacher checkpoints)", "multi-step"),
    "arcface": ("ArcFace head, no KD", "baseline"),
    "adadistill": ("AdaDistill (α′) + MSE", "margin"),
    "adadistill_nomse": ("AdaDistill (α′), no MSE", "margin"),
    "qud": ("QUD (no labels)", "unsupervised"),
}
FAMILY_COLOURS = {"teacher": "0.35", "baseline": "0.65", "offline": "tab:blue", "online": "tab:orange",
                  "self": "tab:green", "multi-step": "tab:purple", "margin": "tab:red", "unsupervised": "tab:brown"}


# --------------------------------------------------------------------------- the networks beyond the hands-on

def blocks(net, x):
    """``_MNISTCNN.forward`` keeping what each block gives: h1 (N, c1, 14, 14) after conv1 + pool,
    h2 (N, c2, 7, 7) after conv2 + pool, and the penultimate features F (N, hidden)."""
    h1 = F.relu(F.max_pool2d(net.conv1(x), 2))
    h2 = F.relu(F.max_pool2d(net.conv2(h1), 2))
    return h1, h2, F.relu(net.fc1(h2.reshape(h2.shape[0], -1)))


class SelfDistilledStudent(nn.Module):
    """BYOT: a student with two auxiliary exits on its shallower blocks, used only in training.
    Exit 1: h1 (16×14×14) → 2×2 average pool → flatten → Linear(784, 10); exit 2: h2 (32×7×7) →
    flatten → Linear(1568, 10); exit 3 is the student's own fc2. Its forward is the student's."""

    def __init__(self, student):
        super().__init__()
        self.student = student
        c1, c2 = student.conv1.weight.shape[0], student.conv2.weight.shape[0]
        self.exit1 = nn.Linear(c1 * 7 * 7, 10)
        self.exit2 = nn.Linear(c2 * 7 * 7, 10)

    def exits(self, x):
        """The logits of the three exits, shallowest first."""
        h1, h2, features = blocks(self.student, x)
        n = x.shape[0]
        return [self.exit1(F.avg_pool2d(h1, 2).reshape(n, -1)), self.exit2(h2.reshape(n, -1)),
                self.student.fc2(features)]

    def forward(self, x, return_features=False):
        return self.student(x, return_features=return_features)


class Peers(nn.Module):
    """Deep mutual learning's two peers as one Module, so that :func:`common.fit` trains both."""

    def __init__(self, peer1, peer2):
        super().__init__()
        self.peer1, self.peer2 = peer1, peer2


class CosineHead(nn.Module):
    """Class centres W (C, d) of a margin-penalty softmax. In training the logits are
    :func:`minikd.kd.margin_logits` (ArcFace: the target's angle + m1); at test time s·cos θ_j,
    so the nearest centre wins. ``learned=False`` (AdaDistill): W gets no gradient, only the
    distillation update."""

    def __init__(self, d, classes=10, s=ARC_S, m1=ARC_M, learned=True):
        super().__init__()
        self.W = nn.Parameter(np.zeros((classes, d), dtype=np.float32), requires_grad=learned)
        nn.init.normal_(self.W, std=0.01)  # as ArcFace's and AdaDistill's code
        self.s, self.m1 = s, m1

    def forward(self, e):
        return (F.normalize(e) @ F.normalize(self.W).T) * self.s

    def margin(self, e, y):
        return kd.margin_logits(e, self.W, y, s=self.s, m1=self.m1)


class TeacherHead(nn.Module):
    """QUD's classifier, without labels: the teacher's own last layer, applied to where the
    student's embedding points, read as the teacher's embedding *relative to its mean*:
    logits = fc(μ + r·e/‖e‖), μ the teacher's mean embedding over the training images and r the
    mean length of f_t − μ (neither needs a label).

    Why relative to μ: with every embedding L2-normalised, the InfoNCE loss is
    L = −f·f⁺/τ + log Σ_j exp(f·g_j/τ) over the n + 1 candidates g_j (the positive and the
    queue). At a high τ every f·g_j/τ is small (|f·g_j| ≤ 1: at most 0.5 at τ = 2), and to
    first order the log-sum-exp is log(n + 1) + f·ḡ/τ, ḡ the candidates' mean, so
    L ≈ const − f·(f⁺ − ḡ)/τ: smallest when the student's f points along f⁺ − ḡ, the
    teacher's embedding minus the queue's average. This
    teacher's post-ReLU embeddings (no negative entry) share a large common part: the mean of
    the unit embeddings has length 0.60, and the raw mean μ points the same way (cosine 0.999;
    seed 0, a teacher trained for 5 epochs).
    So QUD's students point at f_t − μ (mean cosine 0.95) far more than at f_t (0.75). Read
    as f_t, the same student classified 98.37 % instead of 98.63 % (seed 0, τ = 0.4, a teacher
    trained for 5 epochs). At a low τ the log-sum-exp is ruled by the hardest negatives
    instead, and this reading does not hold (τ = 0.1, the same teacher: 91.7 % read this way,
    94.7 % read as f_t)."""

    def __init__(self, fc, mu, r):
        super().__init__()
        self.fc, self.r = fc, float(r)
        self.register_buffer("mu", np.asarray(mu, dtype=np.float32))    # moves with the module, not learned

    def forward(self, e):
        return self.fc(F.normalize(e) * self.r + self.mu)


class Embeddings(NamedTuple):
    """A frozen teacher's embeddings, computed once: ``train`` on the training images (the f_t a
    student distils, looked up by image index), ``test`` on the test images, ``mean`` over the
    training images (μ); ``row`` names the teacher's row in the table."""
    row: str
    train: np.ndarray
    test: np.ndarray
    mean: np.ndarray


class EmbeddingStudent(nn.Module):
    """The student's body (conv1, conv2, fc1 of a StudentModel: the 64-d features F_S), an adapter
    g(·) to the teacher's 128 dimensions, e = g(F_S), and a classifier ``head`` on e. The student's
    own fc2 is not used. ``forward(x, return_features=True)`` → (logits, e). The same wrapper around
    the slide's TeacherModel (128-d features, a 128 → 128 adapter) is ``--ada-teacher arcface``'s
    teacher (:meth:`Seed.margin_teacher`)."""

    def __init__(self, student, dim, head):
        super().__init__()
        self.conv1, self.conv2, self.fc1 = student.conv1, student.conv2, student.fc1
        self.adapter = kd.LinearAdapter(student.feature_dim, dim)
        self.head = head

    def features(self, x):
        """F_S, the 64-d penultimate features before the adapter."""
        return blocks(self, x)[2]

    def forward(self, x, return_features=False):
        e = self.adapter(self.features(x))
        logits = self.head(e)
        return (logits, e) if return_features else logits


def pocketnet_stages(E: int, T_e: int) -> list[int]:
    """PocketNet's schedule: the teacher epoch whose checkpoint the student distils from in each of
    its ``E`` epochs, ⌈e·T_e/E⌉ for e = 1 … E, spread evenly over the teacher's ``T_e`` epochs and
    ending at the teacher itself.

    >>> pocketnet_stages(5, 15), pocketnet_stages(5, 5), pocketnet_stages(5, 3)
    ([3, 6, 9, 12, 15], [1, 2, 3, 4, 5], [1, 2, 2, 3, 3])
    """
    E, T_e = check_int(E, "pocketnet_stages", "E", low=1), check_int(T_e, "pocketnet_stages", "T_e", low=1)
    return [(e * T_e + E - 1) // E for e in range(1, E + 1)]


def count_parameters(model) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def frozen_outputs(model, x, batch_size=1000):
    """A frozen network's logits and penultimate features on all of ``x``, as NumPy arrays (on the host)."""
    model.eval()
    logits, features = [], []
    device = model_device(model)
    with mk.no_grad():
        for a in range(0, len(x), batch_size):
            z, f = model(mk.tensor(x[a:a + batch_size], device=device), return_features=True)
            logits.append(z.numpy())
            features.append(f.numpy())
    return np.concatenate(logits), np.concatenate(features)


# --------------------------------------------------------------------------- the losses
# Each is loss_fn(model, x, y, i) → (loss, logits) for common.fit; i: the batch's indices into the
# training set, to look up a frozen teacher's outputs (t_logits[i], t_feats[i]) computed once.

def ce_step(model, x, y, i):
    """CE(y, p): the student (and the teacher) alone."""
    return _ce_step(model, x, y)


def make_kd_step(t_logits, T, lam):
    """(1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s), p_t from the frozen teacher's logits. ``t_logits``:
    an array, or a function returning the array of the current stage (PocketNet)."""
    def step(student, x, y, i):
        logits = student(x)
        z_t = t_logits() if callable(t_logits) else t_logits
        return kd.kd_loss(logits, z_t[i], y, T=T, lam=lam), logits
    return step


def make_fkd_step(t_feats, adapter, lam):
    """λ·‖F_T − g(F_S)‖² + (1 − λ)·CE(y, p_s)."""
    def step(student, x, y, i):
        logits, features = student(x, return_features=True)
        return kd.feature_kd_loss(logits, features, t_feats[i], y, adapter, lam=lam), logits
    return step


def make_rkd_step(t_logits, t_feats, T, lam, w_dist, w_angle):
    """L_KD + w_dist·L_RKD-Dist + w_angle·L_RKD-Angle on the penultimate embeddings (64-d vs 128-d:
    only distances and angles are compared, no adapter)."""
    def step(student, x, y, i):
        logits, features = student(x, return_features=True)
        loss = kd.kd_loss(logits, t_logits[i], y, T=T, lam=lam)
        if len(i) > 1:                  # relations need two samples: a last batch of one has none
            loss = loss + kd.rkd_loss(features, t_feats[i], w_dist, w_angle)
        return loss, logits
    return step


def dml_step(peers, x, y, i):
    """L_1 + L_2 of deep mutual learning: each L_k holds the other peer's prediction as a constant,
    so the sum's gradient is, for each peer, its own loss's gradient."""
    z1, z2 = peers.peer1(x), peers.peer2(x)
    l1, l2 = kd.dml_losses([z1, z2], y)
    return l1 + l2, z1


def make_byot_step(T, lam):
    def step(model, x, y, i):
        exits = model.exits(x)
        return kd.self_distillation_loss(exits, y, T=T, lam=lam), exits[-1]
    return step


def make_adadistill_step(t_feats, lam, alphas):
    """AdaDistill: first the class centres of the batch's labels move towards the teacher's
    (L2-normalised) embeddings with the hard-mining α′, then the ArcFace loss on the updated
    centres, plus λ·MSE between e and the teacher's embedding. ``alphas`` collects the mean α′
    and the mean plain α = ⌊cos(e, f_t)⌉₀¹ of every step (for the plot)."""
    t_unit = t_feats / np.linalg.norm(t_feats, axis=1, keepdims=True).clip(1e-12, None)

    def step(model, x, y, i):
        _, e = model(x, return_features=True)
        W, labels = model.head.W, y.numpy()
        t = mk.tensor(t_unit[i], device=x.device)                   # the batch's rows, uploaded once
        alpha = kd.adadistill_alpha(e, t, W.data[labels])           # α′ (a constant)
        kd.distill_centres(W, labels, t, alpha)
        alphas.append((float(alpha.numpy().mean()), float(kd.adadistill_alpha(e, t).numpy().mean())))
        target = mk.tensor(t_feats[i], device=x.device)
        loss = F.cross_entropy(model.head.margin(e, y), y) * (1 - lam) + F.mse_loss(e, target) * lam
        with mk.no_grad():
            logits = model.head(e)      # no margin: what the test uses, for the progress bar
        return loss, logits
    return step


def arcface_step(model, x, y, i):
    _, e = model(x, return_features=True)
    with mk.no_grad():
        logits = model.head(e)
    return F.cross_entropy(model.head.margin(e, y), y), logits


def make_qud_step(t_feats, queue, tau):
    """QUD: InfoNCE of e against the teacher's embedding of the same image (positive) and the
    queue's (negatives); then this batch's teacher embeddings enter the queue. The labels y
    are not used by the loss (only by the progress bar's accuracy)."""
    def step(model, x, y, i):
        _, e = model(x, return_features=True)
        f_t = mk.tensor(t_feats[i], device=x.device)                # uploaded once: the positives, then the queue
        loss = kd.qud_loss(e, f_t, queue.embeddings, tau=tau)
        queue.push(f_t)
        with mk.no_grad():
            logits = model.head(e)
        return loss, logits
    return step


def ban_init_seed(seed, gen):
    """The seed of BAN generation ``gen``'s initial weights under ``--ban-init new``: its own for
    each generation and seed; for the seeds below 1000 never one another run of the table starts
    from (gen 1, the student alone, starts from ``seed``)."""
    return 1000 * gen + seed


# what the margin runs' title adds, by --ada-teacher: whose embedding the centres were distilled from
ADA_TEACHER_SUFFIX = {"ce": "", "ce-centred": " ← CE − μ", "arcface": " ← ArcFace", "ce-arcface": " ← CE + ArcFace"}


# --------------------------------------------------------------------------- one seed: every method

class Seed:
    """The runs of one seed. ``run(method)`` trains what a method needs (the teacher, the runs it
    builds on) once, measures it, and adds its rows to ``rows``."""

    def __init__(self, seed, data, args):
        self.seed, self.args, self.device = seed, args, args.device
        self.x_train, self.y_train, self.x_test, self.y_test = data
        self.pairs = make_pairs(self.y_test, n_pairs=6000, seed=0)
        self.steps_per_epoch = len(self.loader())   # every run of the seed sees these same batches
        self.rows, self.models, self.done = {}, {}, set()
        self.cache_seconds = {}          # one-off cost of the frozen teachers' outputs
        self.method_seconds = {}         # wall time of each method: training, lookups, evaluation
        self.alphas = []                 # AdaDistill: (mean α′, mean α) per step
        self.ablation = {}
        self._teacher = None
        self._margin_teacher = None

    # ------------------------------------------------------------------ helpers
    def loader(self):
        """The same batches, in the same order, for every run of this seed."""
        return IndexedLoader(self.x_train, self.y_train, self.args.batch_size, seed=self.seed, device=self.device)

    def train(self, name, model, step, params=None, loader=None, on_epoch_end=None, epochs=None, schedule=None):
        """Adam at ``--lr`` for ``epochs`` (default ``--epochs``); ``schedule`` "cosine": the learning
        rate decayed along a half cosine to 0 over the run, stepped every minibatch (default ``--schedule``)."""
        epochs, schedule = epochs or self.args.epochs, schedule or self.args.schedule
        opt = optim.Adam(list(params) if params is not None else model.parameters(), lr=self.args.lr)
        decay = optim.CosineAnnealingLR(opt, T_max=epochs * self.steps_per_epoch) if schedule == "cosine" else None
        _, seconds = fit(model, opt, step, loader or self.loader(), epochs, name=f"seed {self.seed} {name}",
                         schedule=decay, progress=self.args.progress, on_epoch_end=on_epoch_end)
        return seconds

    def new(self, cls=StudentModel, *sizes, init_seed=None):
        """A fresh network of ``cls``; every student of a kind starts from the same weights (those
        of the seed) unless ``init_seed`` gives it others."""
        mk.manual_seed(self.seed if init_seed is None else init_seed)
        return cls(*sizes).to(self.device)     # on the device before any optimizer is built

    def on_device(self, embed):
        """An embedding function for :mod:`minikd.verification`, which hands it host tensors."""
        return lambda x: embed(x.to(self.device))

    def outputs(self, key, model):
        """A frozen model's (logits, features) on the training set, computed once and timed."""
        start = time.perf_counter()
        out = frozen_outputs(model, self.x_train)
        self.cache_seconds[key] = time.perf_counter() - start
        return out

    def measure(self, row, model, seconds, labels=True, embed=None, **extra):
        """Test accuracy, verification of the embedding (``embed``: a function, else the model's
        penultimate features), parameters; prints one line."""
        verification = evaluate_embeddings(embed or model, self.x_test, self.y_test, self.pairs)
        result = {"test_acc": evaluate(model, self.x_test, self.y_test), "verification": verification,
                  "params": count_parameters(model), "train_seconds": seconds, "labels": labels, **extra}
        self.rows[row] = result
        self.models[row] = model
        tqdm.write(f"seed {self.seed} {ROWS[row][0]:<34} test acc {100 * result['test_acc']:6.2f} %, verification "
                   f"{100 * verification['accuracy']:6.2f} %, trained in {format_seconds(seconds)}")
        return result

    def teacher(self):
        """The slide's teacher, trained once per seed, its state kept at the end of every epoch
        (PocketNet), then frozen; its training-set outputs computed once."""
        if self._teacher is None:
            teacher = self.new(TeacherModel)
            self.checkpoints = []
            seconds = self.train("teacher", teacher, ce_step, epochs=self.args.teacher_epochs,
                                 schedule=self.args.teacher_schedule,
                                 on_epoch_end=lambda epoch, m: self.checkpoints.append(m.state_dict()))
            self.measure("teacher", teacher, seconds)
            self.t_logits, self.t_feats = self.outputs("teacher", teacher)
            self.t_mean = self.t_feats.mean(axis=0)      # μ, the teacher's mean embedding (no labels needed)
            # the geometry of the teacher's embedding (post-ReLU: no negative entry, so no negative cosine)
            self.t_test_feats = frozen_outputs(teacher, self.x_test)[1]
            cos, same = cosine_scores(self.t_test_feats, self.pairs), self.pairs[2]
            self.rows["teacher"]["embedding"] = {"cos_same_pairs": float(cos[same].mean()),
                                                 "cos_different_pairs": float(cos[~same].mean()),
                                                 "zero_fraction": float((self.t_test_feats == 0).mean())}
            self.t_embeddings = Embeddings("teacher", self.t_feats, self.t_test_feats, self.t_mean)
            self._teacher = teacher
        return self._teacher

    def run(self, method):
        if method not in self.done:
            start = time.perf_counter()
            getattr(self, "run_" + method)()
            self.method_seconds[method] = time.perf_counter() - start
            self.done.add(method)

    # ------------------------------------------------------------------ the methods
    def run_student(self):
        student = self.new()
        self.measure("student", student, self.train("student", student, ce_step))

    def run_kd(self):
        self.teacher()
        student = self.new()
        seconds = self.train("kd", student, make_kd_step(self.t_logits, self.args.T, self.args.lam))
        self.measure("kd", student, seconds)

    def run_fkd(self):
        teacher = self.teacher()
        student = self.new()
        adapter = kd.LinearAdapter(student.feature_dim, teacher.feature_dim).to(self.device)   # g(·): 64 → 128
        seconds = self.train("fkd", student, make_fkd_step(self.t_feats, adapter, self.args.lam),
                             params=[*student.parameters(), *adapter.parameters()])

        @self.on_device
        def adapted(x):                 # e = g(F_S): the embedding feature KD trains
            return adapter(student(x, return_features=True)[1])
        self.measure("fkd", student, seconds, embed=adapted, teacher_alignment=self.alignment(adapted),
                     verification_64d=evaluate_embeddings(student, self.x_test, self.y_test, self.pairs))

    def run_rkd(self):
        self.teacher()
        student = self.new()
        step = make_rkd_step(self.t_logits, self.t_feats, self.args.T, self.args.lam, *RKD_WEIGHTS)
        self.measure("rkd", student, self.train("rkd", student, step))

    def run_dml(self):
        mk.manual_seed(self.seed)
        # peer 1 starts as the student alone does; peer 2 elsewhere
        peers = Peers(StudentModel(), StudentModel()).to(self.device)
        seconds = self.train("dml", peers, dml_step)
        self.measure("dml_peer1", peers.peer1, seconds, trained_with="dml_peer2")
        self.measure("dml_peer2", peers.peer2, seconds, trained_with="dml_peer1")

    def run_byot(self):
        model = SelfDistilledStudent(self.new()).to(self.device)
        seconds = self.train("byot", model, make_byot_step(self.args.T, self.args.lam))
        exits = [evaluate(_Exit(model, k), self.x_test, self.y_test) for k in range(3)]
        self.measure("byot", model.student, seconds, exit_test_acc=exits,
                     training_params=count_parameters(model))

    def run_ban(self):
        self.run("student")
        self.rows["ban_gen1"] = dict(self.rows["student"], same_as="student")
        teacher = self.models["ban_gen1"] = self.models["student"]
        for gen in (2, 3):
            t_logits, _ = self.outputs(f"ban_gen{gen - 1}", teacher)
            # --ban-init new: each generation from its own random weights, as a network trained
            # again from scratch is; same: from gen 1's initial weights (the other students')
            init_seed = ban_init_seed(self.seed, gen) if self.args.ban_init == "new" else self.seed
            student = self.new(init_seed=init_seed)
            seconds = self.train(f"ban gen {gen}", student, make_kd_step(t_logits, self.args.T, self.args.lam))
            self.measure(f"ban_gen{gen}", student, seconds, init_seed=init_seed)
            teacher = student

    def run_ta(self):
        self.teacher()
        if self.args.assistant == "kd":          # the kd run's student: the students' budget
            self.run("kd")
            assistant, name = self.models["kd"], "kd"
        else:                                    # a teacher's budget: it teaches the small student
            assistant, name = self.new(), "ta_assistant"
            seconds = self.train("assistant", assistant, make_kd_step(self.t_logits, self.args.T, self.args.lam),
                                 epochs=self.args.teacher_epochs, schedule=self.args.teacher_schedule)
            self.measure(name, assistant, seconds)
        a_logits, _ = self.outputs("assistant", assistant)
        small = self.new(_MNISTCNN, *SMALL)
        self.measure("ta_small_alone", small, self.train("small alone", small, ce_step))
        for row, t_logits in (("ta_small_kd", self.t_logits), ("ta_small_ta", a_logits)):
            small = self.new(_MNISTCNN, *SMALL)
            seconds = self.train(row, small, make_kd_step(t_logits, self.args.T, self.args.lam))
            self.measure(row, small, seconds, **({"assistant": name} if row == "ta_small_ta" else {}))

    def run_pocketnet(self):
        self.teacher()
        stages = pocketnet_stages(self.args.epochs, len(self.checkpoints))
        logits = {len(self.checkpoints): self.t_logits}  # the last checkpoint is the teacher itself
        for t in stages:
            if t not in logits:                          # each checkpoint's outputs computed once
                checkpoint = TeacherModel().to(self.device)
                checkpoint.load_state_dict(self.checkpoints[t - 1])
                logits[t] = self.outputs(f"teacher_epoch{t}", checkpoint)[0]
        stage_logits = [logits[t] for t in stages]
        stage = {"epoch": 1}
        loader = self.loader()

        def batches(epoch):             # fit asks for each epoch's batches: the student's epoch e
            stage["epoch"] = epoch       # distils from the teacher's checkpoint of stage e
            return loader                # one loader: the same batch order as every other run
        step = make_kd_step(lambda: stage_logits[stage["epoch"] - 1], self.args.T, self.args.lam)
        student = self.new()
        self.measure("pocketnet", student, self.train("pocketnet", student, step, loader=batches),
                     teacher_stages=stages)

    def margin_teacher(self):
        """The :class:`Embeddings` of the margin runs' teacher (AdaDistill distils its ``train``).
        ``--ada-teacher ce``: the slide's teacher (:meth:`teacher`), its 128-d post-ReLU features.
        ``--ada-teacher ce-centred``: the same features minus their mean μ over the training images
        (no labels needed), f_t − μ.
        ``--ada-teacher arcface``: the slide's network trained as AdaDistill's face teachers are, with
        an ArcFace head (the same budget as the CE teacher), its embedding e_t = g(F_T) (128-d, not
        post-ReLU); trained once per seed and measured as the row ``teacher_arcface``.
        ``--ada-teacher ce-arcface``: the slide's CE teacher, a copy of it fine-tuned with a new
        128 → 128 adapter and ArcFace head for ``--ada-teacher-epochs`` (cosine to 0), its embedding
        g(F_T); measured as the row ``teacher_ce_arcface``."""
        if self._margin_teacher is None:
            if self.args.ada_teacher == "ce":
                self.teacher()
                self._margin_teacher = self.t_embeddings
            elif self.args.ada_teacher == "ce-centred":
                self.teacher()
                t = self.t_embeddings       # f_t − μ: signed, spread around the sphere as a face embedding is
                centred = Embeddings("teacher − μ", t.train - t.mean, t.test - t.mean, np.zeros_like(t.mean))
                # how the centred embedding verifies, beside the teacher row's own (as it is)
                self.rows["teacher"]["embedding"]["verification_centred"] = verification_accuracy(
                    cosine_scores(centred.test, self.pairs), self.pairs[2])[0]
                self._margin_teacher = centred
            elif self.args.ada_teacher == "arcface":
                self._margin_teacher = self.train_margin_teacher("teacher_arcface", self.new(TeacherModel),
                                                                 self.args.teacher_epochs, self.args.teacher_schedule)
            else:                           # ce-arcface
                body = self.new(TeacherModel)   # seeded draws (then overwritten), so the head's draws are the seed's
                body.load_state_dict(self.teacher().state_dict())
                self._margin_teacher = self.train_margin_teacher("teacher_ce_arcface", body,
                                                                 self.args.ada_teacher_epochs, "cosine")
        return self._margin_teacher

    def train_margin_teacher(self, row, body, epochs, schedule):
        """The slide's network ``body`` with a 128 → 128 adapter and a learned ArcFace head, trained
        for ``epochs`` and measured as ``row``; its :class:`Embeddings` (e_t = g(F_T))."""
        teacher = EmbeddingStudent(body, body.feature_dim, CosineHead(body.feature_dim)).to(self.device)
        self.measure(row, teacher, self.train(row, teacher, arcface_step, epochs=epochs, schedule=schedule))
        feats = self.outputs(row, teacher)[1]
        assert feats.shape[1] == EMBED_DIM, feats.shape     # the students' embeddings are this wide
        return Embeddings(row, feats, frozen_outputs(teacher, self.x_test)[1], feats.mean(axis=0))

    def margin_student(self, learned):
        student = self.new()            # drawn first, then the head: the order of the seeded draws
        head = CosineHead(EMBED_DIM, learned=learned)
        return EmbeddingStudent(student, EMBED_DIM, head).to(self.device)

    def run_adadistill(self, mse=True):
        """AdaDistill with the MSE feature term (weight λ), or (``mse=False``) with the paper's loss alone."""
        margin = self.margin_teacher()
        model = self.margin_student(learned=False)
        body = [p for name, p in model.named_parameters() if not name.startswith("head.")]
        row = "adadistill" if mse else "adadistill_nomse"
        step = make_adadistill_step(margin.train, self.args.ada_lam if mse else 0.0, self.alphas if mse else [])
        seconds = self.train(row, model, step, params=body)
        self.measure(row, model, seconds, **self.embedding_extras(model, teacher=margin))

    def run_adadistill_nomse(self):
        self.run_adadistill(mse=False)

    def run_arcface(self):
        margin = self.margin_teacher()      # only to measure how closely e points where the teacher's embedding does
        model = self.margin_student(learned=True)
        self.measure("arcface", model, self.train("arcface", model, arcface_step),
                     **self.embedding_extras(model, teacher=margin))

    def qud_student(self):
        teacher = self.teacher()
        r = np.linalg.norm(self.t_feats - self.t_mean, axis=1).mean()      # no labels needed for it
        return EmbeddingStudent(self.new(), teacher.feature_dim,
                                TeacherHead(teacher.fc2, self.t_mean, r)).to(self.device)

    def train_qud(self, name, tau, n):
        model = self.qud_student()
        queue = kd.EmbeddingQueue(n, self.t_feats.shape[1])
        # the queue starts full: teacher embeddings of n random training images (no labels)
        rng = np.random.default_rng(self.seed)
        start = self.t_feats[rng.choice(len(self.t_feats), n, replace=n > len(self.t_feats))]
        queue.push(mk.tensor(start, device=self.device))     # the queue lives where the embeddings are
        body = [p for pname, p in model.named_parameters() if not pname.startswith("head.")]
        seconds = self.train(name, model, make_qud_step(self.t_feats, queue, tau), params=body)
        return model, seconds

    def run_qud(self):
        tau = self.args.qud_tau
        model, seconds = self.train_qud("qud", tau, QUD_QUEUE)
        self.measure("qud", model, seconds, labels=False, tau=tau, queue=QUD_QUEUE, **self.embedding_extras(model))

    def run_qud_ablation(self):
        for tau, n in ABLATION:
            if (tau, n) == (self.args.qud_tau, QUD_QUEUE) and "qud" in self.rows:
                self.ablation[f"tau={tau:g},n={n}"] = self.rows["qud"]
                continue
            model, seconds = self.train_qud(f"qud τ={tau:g} n={n}", tau, n)
            self.ablation[f"tau={tau:g},n={n}"] = {
                "tau": tau, "queue": n, "test_acc": evaluate(model, self.x_test, self.y_test),
                "verification": evaluate_embeddings(model, self.x_test, self.y_test, self.pairs),
                "teacher_alignment": self.alignment(model),
                "teacher_alignment_centred": self.alignment(model, centred=True), "train_seconds": seconds}
            a = self.ablation[f"tau={tau:g},n={n}"]
            tqdm.write(f"seed {self.seed} QUD τ = {tau:g}, n = {n}: test acc {100 * a['test_acc']:.2f} %, "
                       f"verification {100 * a['verification']['accuracy']:.2f} %")

    def alignment(self, embed, centred=False, teacher=None):
        """Mean cos(e, f_t) over the test images: how closely the student's 128-d embedding points
        where the teacher's does (1: the same direction for every image). ``centred``: against
        f_t − μ instead, μ the teacher's mean embedding on the training images (see :class:`TeacherHead`).
        ``teacher``: the :class:`Embeddings` to compare with (default: the slide's teacher's)."""
        teacher = self.t_embeddings if teacher is None else teacher
        e, f = compute_embeddings(embed, self.x_test), teacher.test
        if centred:
            f = f - teacher.mean
        return float(np.mean((e * f).sum(axis=1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(f, axis=1)).clip(1e-12)))

    def embedding_extras(self, model, teacher=None):
        """For an :class:`EmbeddingStudent`: the verification of its 64-d F_S too, and its alignment
        with a teacher's :class:`Embeddings` (default: the slide's teacher's), as it is and centred."""
        teacher = self.t_embeddings if teacher is None else teacher
        features = self.on_device(model.features)
        return {"verification_64d": evaluate_embeddings(features, self.x_test, self.y_test, self.pairs),
                "teacher_alignment": self.alignment(model, teacher=teacher),
                "teacher_alignment_centred": self.alignment(model, centred=True, teacher=teacher),
                "aligned_with": teacher.row}


class _Exit(nn.Module):
    """One exit of a :class:`SelfDistilledStudent` as a classifier (to measure it)."""

    def __init__(self, model, k):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model.exits(x)[self.k]


# --------------------------------------------------------------------------- summary, targets, table

def aggregate(per_seed, ada_teacher="ce"):
    """Mean ± sample std over seeds of each row's test accuracy and verification (in %).
    ``per_seed``: objects with ``seed`` and ``rows`` ({row: measured run}), a :class:`Seed` or a
    :class:`SeedRows` from results files; ``ada_teacher``: whose centres the AdaDistill rows learned."""
    def stats(values):
        v = np.asarray(values) * 100
        return float(v.mean()), sample_std(v)

    table = {}
    for row in ROWS:
        seeds = [s.seed for s in per_seed if row in s.rows]
        runs = [s.rows[row] for s in per_seed if row in s.rows]
        if not runs:
            continue
        acc, acc_std = stats([r["test_acc"] for r in runs])
        ver, ver_std = stats([r["verification"]["accuracy"] for r in runs])
        title = ROWS[row][0]
        if row.startswith("adadistill"):
            # from another teacher's embedding: the table and the chart say whose centres it learned
            title += ADA_TEACHER_SUFFIX[ada_teacher]
        table[row] = {"title": title, "family": ROWS[row][1], "labels": runs[0]["labels"], "seeds": seeds,
                      "params": runs[0]["params"], "test_acc_mean": acc, "test_acc_std": acc_std,
                      "test_acc_runs": [100 * r["test_acc"] for r in runs],
                      "verification_mean": ver, "verification_std": ver_std,
                      "verification_runs": [100 * r["verification"]["accuracy"] for r in runs],
                      "tar_far_1e-2_mean": stats([r["verification"]["tar@far=1e-2"] for r in runs])[0],
                      "tar_far_1e-3_mean": stats([r["verification"]["tar@far=1e-3"] for r in runs])[0],
                      "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs]))}
        if all("verification_64d" in r for r in runs):
            table[row]["verification_64d_mean"] = stats([r["verification_64d"]["accuracy"] for r in runs])[0]
        for key in ("teacher_alignment", "teacher_alignment_centred"):
            if all(key in r for r in runs):
                table[row][key + "_mean"] = float(np.mean([r[key] for r in runs]))
        # the teacher, --ada-teacher ce-centred
        if all("verification_centred" in r.get("embedding", {}) for r in runs):
            table[row]["verification_centred_mean"] = stats([r["embedding"]["verification_centred"] for r in runs])[0]
        if "aligned_with" in runs[0]:      # the teacher row whose embedding the alignment is measured against
            table[row]["aligned_with"] = runs[0]["aligned_with"]
        if all("exit_test_acc" in r for r in runs):
            table[row]["exit_test_acc_mean"] = [float(v) for v in np.mean([r["exit_test_acc"] for r in runs], 0) * 100]
    return table


TIE = 1e-9      # a difference equal to a target's slack is reached, whatever the float rounding


def targets(table):
    """The issue's targets, each compared on the means over seeds (``reached``), and seed by seed on
    the seeds both rows have: on how many of them the first row reaches the second (``seeds_reached``
    of ``seeds``), and the mean and standard error of the per-seed difference (``difference``,
    ``difference_se``, None for one seed): [{target, reached, values, metric, ...}]."""
    out = []

    def ge(claim, a, b, key="test_acc_mean", slack=0.0):
        if a in table and b in table:
            x, y = table[a][key], table[b][key]
            runs = key.replace("_mean", "_runs")
            per_a = dict(zip(table[a]["seeds"], table[a][runs]))
            per_b = dict(zip(table[b]["seeds"], table[b][runs]))
            both = [seed for seed in per_a if seed in per_b]
            d = np.array([per_a[seed] - per_b[seed] for seed in both])
            out.append({"target": claim, "reached": bool(x >= y - slack - TIE), "values": [x, y], "metric": key,
                        "same_seeds": sorted(per_a) == sorted(per_b),
                        "seeds": both, "seeds_reached": int((d >= -slack - TIE).sum()),
                        "difference": float(d.mean()) if len(d) else None,
                        "difference_se": sample_std(d) / np.sqrt(len(d)) if len(d) > 1 else None})

    ge("RKD + KD ≥ KD alone (test accuracy)", "rkd", "kd")
    ge("DML peer 1 ≥ the student alone (test accuracy)", "dml_peer1", "student")
    ge("DML peer 2 ≥ the student alone (test accuracy)", "dml_peer2", "student")
    ge("BAN gen 2 ≥ gen 1 (test accuracy)", "ban_gen2", "ban_gen1")
    ge("TA chain ≥ direct KD, small student (test accuracy)", "ta_small_ta", "ta_small_kd")
    ge("AdaDistill ≥ ArcFace head alone (verification)", "adadistill", "arcface", "verification_mean")
    ge("AdaDistill ≥ feature KD (verification)", "adadistill", "fkd", "verification_mean")
    ge("AdaDistill without MSE ≥ ArcFace head alone (verification)", "adadistill_nomse", "arcface", "verification_mean")
    ge("QUD at most 0.3 points below feature KD (test accuracy)", "qud", "fkd", slack=0.3)
    ge("QUD at most 0.3 points below feature KD (verification)", "qud", "fkd", "verification_mean", slack=0.3)
    return out


def print_table(table, n_seeds, quick, epochs, teacher_epochs, times=True):
    """The table as the docs show it; ``times`` False: without the training times (rows pooled from
    results files of different days, whose times do not compare)."""
    if quick:
        print(f"\nSMOKE RUN (--quick: {QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, {epochs} epoch(s)) "
              "— these numbers only show the code runs")
    w = max(34, *(len(t["title"]) + 1 for t in table.values()))     # the run column fits every title
    head = (f"{'run':<{w}}{'labels':>7}{'params':>10}{'test acc':>18}{'verification':>18}{'TAR@1e-2':>10}"
            f"{'TAR@1e-3':>10}" + (f"{'train time':>12}" if times else ""))
    print("\n" + head + "\n" + "-" * len(head))
    pm = (lambda m, s: f"{m:.2f} ± {s:.2f} %") if n_seeds > 1 else (lambda m, s: f"{m:.2f} %")
    for t in table.values():
        print(f"{t['title']:<{w}}{'yes' if t['labels'] else 'no':>7}{t['params']:>10,}"
              f"{pm(t['test_acc_mean'], t['test_acc_std']):>18}{pm(t['verification_mean'], t['verification_std']):>18}"
              f"{t['tar_far_1e-2_mean']:>8.2f} %{t['tar_far_1e-3_mean']:>8.2f} %"
              + (f"{t['train_seconds_mean']:>10.1f} s" if times else ""))
    seeds = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    print(f"({epochs} epoch(s) for every student, {teacher_epochs} for the teacher; {seeds}; verification: "
          "6,000 test pairs, 10 folds)")


# --------------------------------------------------------------------------- pictures

def plot_methods(table, path, title_note=""):
    """Horizontal bars, mean ± std over seeds: test accuracy (left) and verification accuracy (right).
    The axes zoom on the runs within ``window`` points of the best (widened to hold at least three
    runs in four, and any run within a quarter of the drawn range below the lowest drawn); a run
    further down is marked at the left edge with its value
    ("◂ 94.39") instead of squeezing every other bar. An axis spans at least half a point, so a
    single run (``--methods student``) is not drawn on a scale of thousandths."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = list(table.values())
    y = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.36 * len(rows) + 2.2), sharey=True)
    for ax, key, label, window in ((axes[0], "test_acc", "test accuracy (%)", 1.5),
                                   (axes[1], "verification", "verification accuracy (%), 6,000 pairs", 8.0)):
        means = np.array([r[f"{key}_mean"] for r in rows])
        stds = np.array([r[f"{key}_std"] for r in rows])
        window = max(window, means.max() - np.percentile(means, 25))   # at least three rows in four shown
        shown = means >= means.max() - window
        while not shown.all():      # no cut between near-equal bars: a run close below the lowest drawn is drawn
            below = means[~shown].max()
            if below < means[shown].min() - 0.25 * (means.max() - means[shown].min()):
                break
            shown |= means >= below
        low, high = float((means - stds)[shown].min()), float((means + stds).max())
        low = min(low, high - 0.5)      # at least half a point: one run, or runs within a hair, on a readable scale
        span = high - low
        left, right = low - 0.06 * span, high + 0.16 * span      # room on the right for the values
        colours = [FAMILY_COLOURS[r["family"]] for r in rows]
        ax.barh(y[shown], means[shown] - left, left=left, xerr=stds[shown], color=np.array(colours)[shown],
                capsize=3, height=0.7, error_kw={"elinewidth": 1})
        for yk, m, sd, inside, colour in zip(y, means, stds, shown, colours):
            if inside:
                ax.text(m + sd + 0.01 * span, yk, f"{m:.2f}", va="center", ha="left", fontsize=8)
            else:
                value = f"{m:.2f}" + (f" ± {sd:.2f}" if sd else "")
                ax.text(left + 0.01 * span, yk, f"◂ {value} (off the axis)", va="center", ha="left", fontsize=8,
                        color=colour, fontweight="bold")
        ax.set_xlim(left, right)
        ax.set(xlabel=label + " — axis not from 0")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [r["title"] + ("" if r["labels"] else " *") for r in rows])
    families = [f for f in FAMILY_COLOURS if any(r["family"] == f for r in rows)]
    fig.legend(handles=[Patch(color=FAMILY_COLOURS[f], label=f) for f in families], loc="lower center",
               ncol=len(families), frameon=False)
    sizes = [f"{name} {table[row]['params']:,}" for name, row in (("student", "student"), ("small", "ta_small_alone"))
             if "params" in table.get(row, {})]      # the networks' sizes, where the chart has their baseline rows
    fig.suptitle("Distillation methods on MNIST" + (f", {' / '.join(sizes)} parameters" if sizes else "")
                 + title_note + "\n(* trained without labels; error bars: std over seeds)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, path)


class SeedRows(NamedTuple):
    """One seed's measured rows, read back from results files (what :func:`aggregate` needs of a :class:`Seed`)."""
    seed: int
    rows: dict


def row_sources(reports):
    """Which report each (seed, row) comes from: the last of ``reports`` whose runs have that row for that seed."""
    return {(run["seed"], row): k for k, report in enumerate(reports) for run in report["runs"] for row in run["rows"]}


def merge_runs(reports):
    """One seed's rows per seed, from the ``runs`` of several runs' results.json: each row of each seed
    from the last report that has it (as :func:`row_sources` says), sorted by seed. So the table can pool
    rows measured by separate commands (``--methods ta``, ``--methods ban``) and on other seeds
    (``--seeds 3,4``) with the full run's."""
    per_seed = {}
    for report in reports:
        for run in report["runs"]:
            per_seed.setdefault(run["seed"], {}).update(run["rows"])     # a later report's row replaces
    return [SeedRows(seed, per_seed[seed]) for seed in sorted(per_seed)]


def print_targets(reached):
    """The targets as :func:`targets` gives them, one line each: means, then seed by seed."""
    for t in reached:
        n = len(t["seeds"])
        paired = "" if n < 2 else (f"; reached on {t['seeds_reached']} of {n} seeds, the difference "
                                   f"{t['difference']:+.2f} ± {t['difference_se']:.2f} (mean ± standard error)")
        other = "" if t["same_seeds"] else " (the two means are over different seeds)"
        print(f"{'reached    ' if t['reached'] else 'NOT reached'}  {t['target']}: "
              f"{t['values'][0]:.2f} vs {t['values'][1]:.2f} %{other}{paired}")


# What a results.json's settings mean when it predates an option: the behaviour before the option existed.
OLD_DEFAULTS = {"schedule": "constant", "teacher_schedule": "constant", "assistant": "kd", "ban_init": "same",
                "ada_teacher": "ce"}
SHARED_SETTINGS = ("schedule", "teacher_schedule", "lr", "batch_size", "T", "lam", "ada_lam", "qud_tau")
ROW_SETTINGS = {"ta_assistant": "assistant", "ta_small_ta": "assistant", "ban_gen2": "ban_init",
                "ban_gen3": "ban_init", "adadistill": "ada_teacher", "adadistill_nomse": "ada_teacher"}


def setting(report, key):
    """``report``'s setting ``key``; for a file older than the option, what its run did
    (:data:`OLD_DEFAULTS`; the teacher's epochs were the students')."""
    settings = report["settings"]
    if key in settings:
        return settings[key]
    return settings.get("epochs") if key == "teacher_epochs" else OLD_DEFAULTS.get(key)


def row_problem(row) -> str:
    """What makes a results row unusable for the table ("" if nothing): it must hold the measured
    numbers the table reads (test accuracy; verification accuracy and TAR@FAR; parameters; time)."""
    if not isinstance(row, dict):
        return f"expected a row of measurements, got {type(row).__name__}"
    numbers = {"test_acc": row.get("test_acc"), "params": row.get("params"), "train_seconds": row.get("train_seconds")}
    verification = row.get("verification")
    if not isinstance(verification, dict):
        return "has no verification measurements"
    numbers.update({f"verification.{k}": verification.get(k) for k in ("accuracy", "tar@far=1e-2", "tar@far=1e-3")})
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{key} is {value!r}; expected a finite number"
    return ""


def load_reports(p, paths):
    """The results.json files of ``--chart-from``, checked: JSON objects with a summary, of runs with
    the same budget (epochs, the teacher's epochs). A bad one is a parser error."""
    reports = []
    for path in paths:
        report = read_json(p, path, "--chart-from", "results.json")
        if not isinstance(report, dict) or not isinstance(report.get("runs"), list) \
                or not isinstance(report.get("settings"), dict):
            p.error(f"--chart-from {path}: has no runs and settings; expected the results.json of a run")
        reports.append(report)
        runs = report["runs"]
        if not runs or not all(isinstance(r, dict) and is_int(r.get("seed")) and r["seed"] >= 0
                               and isinstance(r.get("rows"), dict) for r in runs):
            p.error(f"--chart-from {path}: its runs are not a list of {{seed, rows}}; "
                    "expected the results.json of a run")
        for key, value in report["settings"].items():
            if key in SHARED_SETTINGS + ("epochs", "teacher_epochs") + tuple(ROW_SETTINGS.values()) \
                    and not (value is None or isinstance(value, (str, int, float))):
                p.error(f"--chart-from {path}: its setting {key} is {value!r}; expected a number or a name")
        for run in runs:
            for name, row in run["rows"].items():
                problem = row_problem(row)
                if problem:
                    p.error(f"--chart-from {path}: seed {run['seed']}, row {name!r}: {problem}")
    budgets = {(setting(r, "epochs"), setting(r, "teacher_epochs")) for r in reports}
    if len(budgets) > 1:
        p.error(f"--chart-from: the runs have different budgets (epochs, the teacher's epochs): {sorted(budgets)}; "
                "one chart compares runs of one budget")
    for key in SHARED_SETTINGS:
        values = {setting(r, key) for r in reports} - {None}      # None: a file that does not say
        if len(values) > 1:
            p.error(f"--chart-from: the runs differ in {key}: {sorted(map(str, values))}; one table has one footing")
    sources = row_sources(reports)
    for row, key in ROW_SETTINGS.items():      # a row's seeds must come from runs of one setting
        values = {setting(reports[k], key) for (seed, r), k in sources.items() if r == row}
        if len(values) > 1:
            option = "--" + key.replace("_", "-")
            p.error(f"--chart-from: the seeds of the row {row!r} come from runs of different {option}: "
                    f"{sorted(map(str, values))}; one row pools runs of one setting")
    return reports


def alpha_levels(alphas, steps_per_epoch):
    """AdaDistill's α′ and α in a few numbers: their means over the steps after the first 300
    (the levels they settle at; None for a shorter run) and over the first epoch (rise included)."""
    a = np.asarray(alphas, dtype=float).reshape(-1, 2)       # per step: (mean α′, mean α) over the batch
    after = a[300:] if len(a) > 300 else None
    return {"alpha_prime_after_300": None if after is None else float(after[:, 0].mean()),
            "alpha_after_300": None if after is None else float(after[:, 1].mean()),
            "alpha_prime_first_epoch": float(a[:steps_per_epoch, 0].mean()),
            "alpha_first_epoch": float(a[:steps_per_epoch, 1].mean())}


def plot_alpha(per_seed_alphas, steps_per_epoch, path, teacher=""):
    """The slide's "alpha values over training iterations": mean α′ per step (and plain α).
    ``teacher``: what the title adds about whose embedding the centres were distilled from."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for k, (seed, alphas) in enumerate(per_seed_alphas):
        a = np.array(alphas)
        steps = np.arange(1, len(a) + 1)
        ax.plot(steps, a[:, 0], lw=0.6, color=f"C{k}", label=f"α′ (hard mining, used), seed {seed}")
        ax.plot(steps, a[:, 1], lw=0.6, ls=":", color=f"C{k}", label=f"α = ⌊cos(e, f_t)⌉, seed {seed}")
    total = max(len(a) for _, a in per_seed_alphas)
    epoch_ends = range(steps_per_epoch, total, steps_per_epoch)
    for e in epoch_ends:
        ax.axvline(e, color="0.8", lw=0.8, zorder=0)
    ax.set(xlabel="training iteration" + (" (grey lines: epochs)" if len(epoch_ends) else ""),
           ylabel="mean over the batch",
           title="AdaDistill: alpha values over training iterations" + teacher, ylim=(0, 1), xlim=(0, total))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)   # off the curves
    fig.tight_layout()
    save_figure(fig, path)


def plot_ablation(ablation, fkd, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, vary, fixed, label in ((axes[0], "tau", ("queue", QUD_QUEUE), f"temperature τ (n = {QUD_QUEUE})"),
                                   (axes[1], "queue", ("tau", QUD_TAU), f"queue size n (τ = {QUD_TAU:g})")):
        pts = sorted((r[vary], r) for r in ablation.values() if r[fixed[0]] == fixed[1])
        xs = [p[0] for p in pts]
        ax.plot(xs, [100 * r["test_acc"] for _, r in pts], "o-", label="QUD, test accuracy")
        ax.plot(xs, [100 * r["verification"]["accuracy"] for _, r in pts], "s--", label="QUD, verification")
        if fkd is not None:
            ax.axhline(fkd[0], color="tab:blue", lw=0.8, ls=":", label="feature KD, test accuracy")
            ax.axhline(fkd[1], color="tab:orange", lw=0.8, ls=":", label="feature KD, verification")
        ax.set(xscale="log", xlabel=label, ylabel="%")
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=8)
    fig.suptitle("QUD ablation (one seed)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, path)


# --------------------------------------------------------------------------- main

def load_data(raw, quick, seed):
    x_train, y_train, x_test, y_test = raw
    if quick:
        rng = np.random.default_rng(seed)
        i, j = rng.choice(len(x_train), QUICK_TRAIN, replace=False), rng.choice(len(x_test), QUICK_TEST, replace=False)
        x_train, y_train, x_test, y_test = x_train[i], y_train[i], x_test[j], y_test[j]
    return normalize(x_train), y_train, normalize(x_test), y_test


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all of them); also "
                        f"{','.join(EXTRA_METHODS)}, AdaDistill without the MSE term (the paper's loss)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every student (the hands-on's 5; --quick: 1)")
    p.add_argument("--schedule", choices=SCHEDULES, default="constant",
                   help="the students' learning rate: constant (the hands-on's) or a half cosine to 0")
    p.add_argument("--teacher-epochs", type=int, default=None,
                   help=f"epochs of the teacher, trained once per seed (default {TEACHER_EPOCHS}; --quick: 1)")
    p.add_argument("--teacher-schedule", choices=SCHEDULES, default="cosine",
                   help="the teacher's learning rate (default: a half cosine to 0)")
    p.add_argument("--assistant", choices=("trained", "kd"), default="trained",
                   help="the TA chain's assistant: the hands-on student distilled from the teacher with the "
                        "teacher's budget (default), or the kd run's student (the students' epochs)")
    p.add_argument("--ban-init", choices=("new", "same"), default="new",
                   help="BAN: generations 2 and 3 each start from their own random weights (default, as a network "
                        "trained again from scratch), or from gen 1's, the weights every other student starts from")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--T", type=float, default=3.0, help="distillation temperature of the logit losses")
    p.add_argument("--lam", type=float, default=0.5, help="weight λ of the distillation term")
    p.add_argument("--ada-lam", type=float, default=ADA_LAM,
                   help=f"AdaDistill: weight λ of its MSE feature term (default {ADA_LAM:g})")
    p.add_argument("--ada-teacher", choices=tuple(ADA_TEACHER_SUFFIX), default="ce",
                   help="AdaDistill's teacher: the slide's CE teacher (default); its features minus their mean "
                        "(ce-centred); the slide's network trained with an ArcFace head, as the paper's face "
                        "teachers are (arcface, trained once per seed); or the CE teacher fine-tuned with an "
                        "ArcFace head (ce-arcface, --ada-teacher-epochs)")
    p.add_argument("--ada-teacher-epochs", type=int, default=None,
                   help=f"--ada-teacher ce-arcface: epochs of the ArcFace fine-tuning (default {ADA_TEACHER_EPOCHS}; "
                        "--quick: 1)")
    p.add_argument("--qud-tau", type=float, default=QUD_TAU,
                   help=f"QUD's temperature τ (default {QUD_TAU:g}; the paper's is 0.1)")
    p.add_argument("--qud-ablation", action="store_true",
                   help="also QUD with τ ∈ {0.05, 0.1, 0.2, 0.4, 1, 2} (n = 1024) and n ∈ {256, 1024, 4096} "
                        f"(τ = {QUD_TAU:g}), on the first seed")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    add_out_option(p, "runs/kd_methods", "results.json and the PNGs")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_TRAIN} training and {QUICK_TEST} test images, one seed, one epoch "
                        "(unless --epochs, --teacher-epochs, --ada-teacher-epochs say otherwise)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--chart-from", nargs="+", metavar="RESULTS_JSON", default=None,
                   help="train nothing: print the table and the targets and draw kd_methods.png in --out from "
                        "these runs' results.json, pooling the seeds of all files, each row of each seed from the "
                        "last file that has it (runs of one budget and footing; each row's seeds of one "
                        "--assistant, --ban-init, --ada-teacher)")
    args = p.parse_args(argv)
    ok = partial(check, p)          # every check before any work: one line, exit status 2
    if args.chart_from:     # trains nothing: an option of training would be silently ignored
        refuse_unused(p, given_options(p, argv, args), {
            name: f"--{name.replace('_', '-')} has no effect with --chart-from, which trains nothing (it takes only "
                  "--out and --no-progress)"
            for name in vars(args) if name not in ("chart_from", "out", "progress")})
        args.reports = load_reports(p, args.chart_from)
        check_out(p, args)
        return args
    quick_defaults(args, epochs=(5, 1), teacher_epochs=(TEACHER_EPOCHS, 1))
    ok(check_int, args.epochs, "--epochs", "the number of epochs", low=1)
    ok(check_int, args.teacher_epochs, "--teacher-epochs", "the number of the teacher's epochs", low=1)
    if args.ada_teacher_epochs is not None and args.ada_teacher != "ce-arcface":
        p.error("--ada-teacher-epochs: only --ada-teacher ce-arcface fine-tunes "
                f"(got --ada-teacher {args.ada_teacher}" + (", the default)" if args.ada_teacher == "ce" else ")"))
    quick_defaults(args, ada_teacher_epochs=(ADA_TEACHER_EPOCHS, 1))
    ok(check_int, args.ada_teacher_epochs, "--ada-teacher-epochs", "the number of fine-tuning epochs", low=1)
    ok(check_int, args.batch_size, "--batch-size", "the batch size", low=2)   # RKD needs pairs in a batch
    ok(check_number, args.lr, "--lr", "the learning rate", low=0, low_open=True)
    ok(check_temperature, args.T, "--T")
    ok(check_number, args.qud_tau, "--qud-tau", "QUD's temperature τ", low=0, low_open=True)
    ok(check_number, args.lam, "--lam", "λ, the weight of the distillation term,", low=0, high=1)
    ok(check_number, args.ada_lam, "--ada-lam", "λ, the weight of AdaDistill's MSE term,", low=0, high=1)
    args.device = ok(device_option, args.device)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS + EXTRA_METHODS]
    if unknown:
        p.error(f"--methods: unknown method {unknown[0]!r}; choose from {','.join(METHODS + EXTRA_METHODS)}")
    if not methods and not args.qud_ablation:
        p.error(f"--methods: no method given; choose from {','.join(METHODS)}")
    args.methods = [m for m in METHODS + EXTRA_METHODS if m in methods]        # the table's order
    margin = [m for m in args.methods if m in ("adadistill", "adadistill_nomse", "arcface")]
    if args.ada_teacher != "ce" and not margin:
        p.error(f"--ada-teacher {args.ada_teacher}: only the margin runs use it; add adadistill, adadistill_nomse "
                f"or arcface to --methods (got {','.join(args.methods) or 'none'})")
    default = "0" if args.quick else "0,1,2"
    args.seeds = parse_int_list(p, default if args.seeds is None else args.seeds, "--seeds", low=0, what="seeds")
    check_data_dir(p, args.data_dir)
    check_out(p, args)
    return args


def chart_from(args):
    """``--chart-from``: the table, the targets and the chart of rows pooled from several runs'
    results.json (:func:`merge_runs`), with nothing trained."""
    quick = any(r.get("smoke_run") for r in args.reports)
    mark_smoke_run(quick)
    per_seed = merge_runs(args.reports)
    ada = [setting(args.reports[k], "ada_teacher") for (seed, row), k in row_sources(args.reports).items()
           if row.startswith("adadistill")]      # one teacher (parse_args checked)
    table = aggregate(per_seed, ada[0] if ada else "ce")
    seeds = [s.seed for s in per_seed]
    print(f"{len(table)} rows of seeds {seeds} from {len(args.reports)} results file(s), "
          "each row of each seed from the last file that has it"
          + ("; no training times: the files' runs were timed apart" if len(args.reports) > 1 else ""))
    epochs, teacher_epochs = setting(args.reports[0], "epochs"), setting(args.reports[0], "teacher_epochs")
    print_table(table, len(seeds), quick, epochs, teacher_epochs, times=len(args.reports) == 1)
    fewer = [f"{t['title']} ({', '.join(map(str, t['seeds']))})" for t in table.values() if t["seeds"] != seeds]
    if fewer:      # the footer's seed count is not theirs
        print("rows with fewer seeds (theirs): " + "; ".join(fewer))
    reached = targets(table)
    print()
    print_targets(reached)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_methods(table, out / "kd_methods.png", f", {epochs} epochs (the teacher "
                 f"{teacher_epochs}), seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    print(f"\nwrote {out / 'kd_methods.png'}")
    return {"summary": table, "targets": reached}


def main(argv=None):
    args = parse_args(argv)
    mark_smoke_run(args.quick)  # a --quick run's pictures say so
    if args.chart_from:
        return chart_from(args)  # (marked as a smoke run there if any of its runs was one)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"MNIST, {args.epochs} epoch(s) for every student ({args.schedule} learning rate), the teacher "
          f"{args.teacher_epochs} ({args.teacher_schedule}), batch {args.batch_size}, Adam lr {args.lr}, "
          f"T = {args.T}, λ = {args.lam} (AdaDistill's MSE {args.ada_lam:g}, its teacher {args.ada_teacher}"
          + (f", fine-tuned {args.ada_teacher_epochs} epoch(s)" if args.ada_teacher == "ce-arcface" else "") + "), "
          f"QUD τ = {args.qud_tau:g}, BAN's generations from {args.ban_init} weights, "
          f"seeds {args.seeds}, methods {','.join(args.methods)}"
          + (", QUD ablation" if args.qud_ablation else "") + (" (quick: a subset)" if args.quick else "")
          + (f", on {args.device}" if args.device != "cpu" else ""))

    wall = time.perf_counter()
    raw = load_mnist_data(args.data_dir)
    per_seed, seed_walls = [], []
    for k, seed in enumerate(args.seeds):
        start = time.perf_counter()
        runs = Seed(seed, load_data(raw, args.quick, seed), args)
        for method in args.methods:
            runs.run(method)
        if args.qud_ablation and k == 0:
            runs.run("qud_ablation")
        per_seed.append(runs)
        seed_walls.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall

    table = aggregate(per_seed, args.ada_teacher)
    print_table(table, len(args.seeds), args.quick, args.epochs, args.teacher_epochs)
    reached = targets(table)
    print()
    print_targets(reached)

    note = (" — SMOKE RUN (--quick)" if args.quick
            else f", {args.epochs} epochs (the teacher {args.teacher_epochs})")
    plots = []
    if table:
        plot_methods(table, out / "kd_methods.png", note)
        plots.append("kd_methods.png")
    if per_seed[0].alphas:
        plot_alpha([(s.seed, s.alphas) for s in per_seed if s.alphas], per_seed[0].steps_per_epoch,
                   out / "adadistill_alpha.png", ADA_TEACHER_SUFFIX[args.ada_teacher])
        plots.append("adadistill_alpha.png")
    ablation = per_seed[0].ablation
    if ablation:
        fkd = per_seed[0].rows.get("fkd")
        plot_ablation(ablation, None if fkd is None else (100 * fkd["test_acc"], 100 * fkd["verification"]["accuracy"]),
                      out / "qud_ablation.png")
        plots.append("qud_ablation.png")

    settings = run_settings(args)
    settings.update(rkd_weights=RKD_WEIGHTS, arcface_s=ARC_S, arcface_m1=ARC_M, qud_queue=QUD_QUEUE,
                    small_student=SMALL)
    report = {"smoke_run": args.quick, "settings": settings, "platform": run_platform(args), "wall_seconds": wall,
              "wall_seconds_per_seed": seed_walls, "summary": table, "targets": reached,
              "runs": [{"seed": s.seed, "rows": s.rows, "method_seconds": s.method_seconds,
                        "cache_seconds": s.cache_seconds} for s in per_seed],
              "adadistill_alpha": {str(s.seed): s.alphas for s in per_seed if s.alphas},
              "adadistill_alpha_levels": {str(s.seed): alpha_levels(s.alphas, s.steps_per_epoch)
                                          for s in per_seed if s.alphas},
              "qud_ablation": ablation}
    write_json(report, out / "results.json")
    print(f"\nwall time {format_seconds(wall)} (per seed: {', '.join(format_seconds(w) for w in seed_walls)}); "
          f"wrote {out / 'results.json'}" + (f", {', '.join(plots)}" if plots else ""))
    return report


if __name__ == "__main__":
    run_cli(main)
