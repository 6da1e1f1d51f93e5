"""Data-free knowledge distillation: distil a student when the training data is gone.

The lecture's last exercise: a pretrained teacher T, no training image. Synthetic inputs x̃
take the data's place, and the student S learns the teacher's soft labels on them::

    L_DFKD = D_KL(T(x̃) ‖ S(x̃))            (both softened at temperature T, times T²)

The methods differ only in how x̃ is made — each is a loss on the *teacher's* response to x̃,
minimised over a generator's weights or over the pixels of x̃ themselves:

- **a generator trained against the teacher** — DAFL (Chen et al., "Data-Free Learning of
  Student Networks", ICCV 2019): :func:`dafl_losses`, :func:`dafl_generator_loss`;
- **DeepInversion** (Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via
  DeepInversion", CVPR 2020): match the batch statistics at every BatchNorm layer of the
  teacher to its running ones (:class:`BNStatistics`), with the image priors
  :func:`total_variation` and :func:`l2_prior` and a class term;
- **random noise + activation maximisation** (for a teacher without BatchNorm):
  :func:`activation_maximisation_loss` with :func:`diversity_loss`, the jitter
  :func:`random_shift` and total variation;
- **Adaptive DeepInversion** (same paper): either of the two above plus :func:`competition_loss`,
  which draws x̃ to where the student does not yet agree with the teacher (the student in the loop).

:func:`random_affine` (small rotations and rescalings) augments scenario 1's generated images.

Every loss is written with minikd's differentiable ops (autograd gives the gradients, and the
tests gradient-check them). The teacher's outputs carry the gradient back to x̃ (and to the
generator); only in :func:`dfkd_loss` is the teacher a constant target. Keep the teacher
frozen and in evaluation mode (:func:`freeze_teacher`).

:func:`check_generator_output` and :func:`check_class_labels` are the input checks the
data-free examples share.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..checks import check_choice, check_int, check_module, check_number, is_int
from ..ops.loss import cross_entropy
from ..ops.shape import concatenate
from ..random import get_rng
from ..tensor import raw
from .logits import as_tensor, constant, soft_loss
from .relation import off_diagonal_pairs

EPS = 1e-12  # squared norms below EPS count as EPS: √0 has an infinite gradient


def _flat_batch(x, op, name):
    """(N, ...) → (N, d): one row per sample."""
    if x.ndim < 2:
        raise ValueError(f"{op}: {name} must be a batch (N, d) or (N, C, H, W); got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


def _check_logits_2d(z, op, name="teacher_logits"):
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"{op}: {name} must be (N, C) with N ≥ 1; got shape {tuple(z.shape)}")


# --------------------------------------------------------------------------- input checks shared by the examples


def check_generator_output(x, n=None, size=28):
    """Check that a generator's output is a batch of MNIST-sized grey images, N×1×28×28.

    ``x``: a Tensor or an array; ``n``: the batch size it must have (None: any N ≥ 1);
    ``size``: H = W of the images (28 for MNIST; e.g. 32 for LeNet-5's input). Returns ``x``.
    Raises ValueError naming what was expected and what was got.

    >>> check_generator_output(np.zeros((2, 3, 28, 28)))
    Traceback (most recent call last):
    ...
    ValueError: check_generator_output: a generator's output must be N×1×28×28; got shape (2, 3, 28, 28)
    """
    size = check_int(size, "check_generator_output", "size", low=1)
    shape = tuple(raw(x).shape) if hasattr(raw(x), "shape") else tuple(np.shape(x))
    batch = "N" if n is None else str(check_int(n, "check_generator_output", "n", low=1))
    ok = len(shape) == 4 and shape[1:] == (1, size, size) and shape[0] >= 1 and (n is None or shape[0] == n)
    if not ok:
        raise ValueError(f"check_generator_output: a generator's output must be {batch}×1×{size}×{size}; "
                         f"got shape {shape}")
    return x


def check_class_labels(y, num_classes=10):
    """Check class labels y (N,): integers in 0..num_classes−1. Returns them as an int64 array.

    Raises ValueError for a float or bool dtype (1.0 is not taken for 1), a shape other than
    (N,), or a label outside 0..num_classes−1 (naming the first one and its index).

    >>> check_class_labels([3, 10])
    Traceback (most recent call last):
    ...
    ValueError: check_class_labels: class labels must lie in 0..9 (num_classes = 10); got label 10 at index 1
    """
    num_classes = check_int(num_classes, "check_class_labels", "num_classes", low=1)
    labels = raw(y)
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"check_class_labels: class labels must be integers in 0..{num_classes - 1}; got dtype "
                         f"{labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"check_class_labels: class labels must have shape (N,); got {tuple(labels.shape)}")
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        i = int(bad.argmax())
        raise ValueError(f"check_class_labels: class labels must lie in 0..{num_classes - 1} (num_classes = "
                         f"{num_classes}); got label {int(labels[i])} at index {i}")
    return labels.astype("int64", copy=False)


# --------------------------------------------------------------------------- the distillation loss on x̃


def dfkd_loss(student_logits, teacher_logits, T=1.0):
    """L_DFKD = T² · D_KL(p_t ‖ p_s), p_t = softmax(T(x̃)/T), p_s = softmax(S(x̃)/T), batch mean.

    The lecture's data-free distillation loss on synthetic inputs x̃: ``student_logits`` S(x̃)
    and ``teacher_logits`` T(x̃), both (N, C) (or one sample (C,)). The teacher's side is a
    constant (detached); the gradient reaches only the student. T² keeps the gradient's size
    independent of the temperature (Hinton et al., 2015; see ``kd.soft_loss``). At T = 1 it is
    the plain D_KL. Raises ValueError for T ≤ 0 or logits of different shapes.

    >>> round(dfkd_loss([1.5, 2.5, 0.3], [1.0, 3.0, 0.5], T=2).item(), 3)    # T² · 0.0218
    0.087
    """
    try:
        loss = soft_loss(student_logits, teacher_logits, T=T)      # checks T and the shapes
    except (TypeError, ValueError) as e:                            # the same error, named after this loss
        raise type(e)(str(e).replace("soft_loss:", "dfkd_loss:", 1)) from None
    return loss * (float(T) * float(T))


def js_divergence(logits_a, logits_b):
    """The Jensen–Shannon divergence between two softmax outputs, in nats, batch mean::

        p = softmax(z_a),  q = softmax(z_b),  m = (p + q) / 2
        JS(p, q) = ½·D_KL(p ‖ m) + ½·D_KL(q ‖ m)          ∈ [0, ln 2]

    ``logits_a``, ``logits_b``: (N, C) (or one sample (C,)), the same shape. Symmetric, 0 when
    the two networks agree and ln 2 when they put their mass on different classes. Unlike
    :func:`dfkd_loss`, neither side is a constant: the gradient reaches both logits (and through
    them the input x̃, which is what :func:`competition_loss` needs). log m is computed as a
    log-sum-exp of the two log-softmaxes, so it stays finite where a probability underflows.
    Raises ValueError for logits of other shapes, or with no sample or no class.

    >>> round(js_divergence([[9.0, 0.0]], [[0.0, 9.0]]).item(), 4)     # ≈ ln 2 = 0.6931: they disagree
    0.6919
    """
    z_a = as_tensor(logits_a)
    z_b = as_tensor(logits_b, like=z_a)
    if z_a.ndim not in (1, 2) or tuple(z_a.shape) != tuple(z_b.shape):
        raise ValueError(f"js_divergence: expected two logits of the same shape (N, C) or (C,); got "
                         f"{tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if z_a.ndim == 1:
        z_a, z_b = z_a.reshape(1, -1), z_b.reshape(1, -1)
    if 0 in z_a.shape:
        raise ValueError(f"js_divergence: needs at least one sample and one class; got logits of shape "
                         f"{tuple(z_a.shape)}")
    log_p, log_q = F.log_softmax(z_a), F.log_softmax(z_b)
    c = constant(z_a.xp.maximum(raw(log_p), raw(log_q)), like=z_a)      # a constant shift: exact
    log_m = c + (((log_p - c).exp() + (log_q - c).exp()) * 0.5).log()
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(axis=1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(axis=1)
    return ((kl_pm + kl_qm) * 0.5).mean()


def competition_loss(teacher_logits, student_logits):
    """Adaptive DeepInversion's competition term: L_compete = 1 − JS(p_t(x̃), p_s(x̃)).

    Yin et al., "Dreaming to Distill", CVPR 2020, §3.3. Added to the loss that makes the synthetic
    images x̃, it draws them to where the student S does **not** yet agree with the teacher T
    (the JS divergence, :func:`js_divergence`, large): the images it has already learned teach it
    nothing new. The images are optimised, not the networks: keep both frozen while x̃ is made,
    and use it with the class term that keeps x̃ something the teacher recognises.

    ``teacher_logits``, ``student_logits``: (N, C) or (C,), the same shape; the gradient reaches
    both (and through them x̃). Returns a scalar in [1 − ln 2, 1]. Raises ValueError as
    :func:`js_divergence`.
    """
    try:
        return 1.0 - js_divergence(teacher_logits, student_logits)
    except ValueError as e:
        raise ValueError(str(e).replace("js_divergence:", "competition_loss:", 1)) from None


# --------------------------------------------------------------------------- DAFL (Chen et al., ICCV 2019)


def dafl_losses(teacher_logits, teacher_features, convention="code"):
    """DAFL's three losses on the teacher's response to a generator's images x̃ = G(z).

    ``teacher_logits`` y_T (N, C) and ``teacher_features`` f_T (N, d) (or (N, C, H, W),
    flattened per sample) of the teacher on x̃, not detached: the gradient flows through the
    teacher to x̃ and on to G. Returns the scalars (L_oh, L_a, L_ie). The paper's equations::

        L_oh = (1/n) Σ_i H_cross(y_T^i, t^i),   t^i = argmax_j y_T^i(j)       (one-hot: look like a class)
        L_a  = −(1/n) Σ_i ‖f_T^i‖₁                                            (activation: fire the features)
        L_ie = −H_info((1/n) Σ_i softmax(y_T^i)) = Σ_j p̄_j log p̄_j            (information entropy:
                                                                               balanced classes)

    L_ie is smallest, −log C, when the batch's mean prediction p̄ is uniform. The pseudo-label
    t^i is a constant (the arg-max has no gradient).

    ``convention``: the two published versions differ by constant factors, and the paper's
    MNIST weights (α = 0.1, β = 5) were tuned with the authors' released code:

    - ``"code"`` (default, the authors' code): L_a averages |f| over the features too,
      −(1/(n·d)) Σ_i ‖f_T^i‖₁, and L_ie uses log₁₀ (= the paper's L_ie / ln 10);
    - ``"paper"``: the equations above, sum over the d features and the natural log.

    Raises ValueError for logits not (N, C), features whose N differs, or another convention.
    """
    convention = check_choice(convention, ("code", "paper"), "dafl_losses", "convention")
    z = as_tensor(teacher_logits)
    _check_logits_2d(z, "dafl_losses")
    f = _flat_batch(as_tensor(teacher_features), "dafl_losses", "teacher_features")
    if f.shape[0] != z.shape[0]:
        raise ValueError(f"dafl_losses: teacher_logits and teacher_features must hold the same N samples; "
                         f"got N = {z.shape[0]} and {f.shape[0]}")
    pseudo_labels = z.data.argmax(axis=1)                    # t^i: a constant
    l_oh = cross_entropy(z, pseudo_labels)
    l1 = f.abs().sum(axis=1)                                 # ‖f_T^i‖₁ per sample
    l_a = -l1.mean() if convention == "paper" else -l1.mean() / f.shape[1]
    p_bar = F.softmax(z, axis=1).mean(axis=0)                # (C,)
    # p̄ · log p̄ with p̄ clipped inside the log only: 0 · log 0 = 0, and the gradient stays finite
    l_ie = (p_bar * p_bar.clip(1e-30, None).log()).sum()
    if convention == "code":
        l_ie = l_ie / float(np.log(10.0))
    return l_oh, l_a, l_ie


def dafl_generator_loss(teacher_logits, teacher_features, alpha=0.1, beta=5.0, convention="code"):
    """The generator's loss in DAFL: L_Total = L_oh + α · L_a + β · L_ie (see :func:`dafl_losses`).

    Defaults: the paper's MNIST weights α = 0.1 and β = 5 (Chen et al., ICCV 2019, Sec. 4.1),
    with the authors' code's normalisation (``convention="code"``), for which they were tuned.
    Raises ValueError for a negative or non-finite α or β, and as :func:`dafl_losses`.
    """
    alpha = check_number(alpha, "dafl_generator_loss", "alpha (the weight α of L_a)", low=0)
    beta = check_number(beta, "dafl_generator_loss", "beta (the weight β of L_ie)", low=0)
    l_oh, l_a, l_ie = dafl_losses(teacher_logits, teacher_features, convention=convention)
    return l_oh + l_a * alpha + l_ie * beta


# --------------------------------------------------------------------------- image priors (DeepInversion, CVPR 2020)


def _check_images(x, op):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected images x of shape (N, C, H, W); got shape {tuple(x.shape)}")


def total_variation(x, p=2):
    """R_TV(x): how much neighbouring pixels differ — small for smooth, natural-looking images.

    ``x`` (N, C, H, W)::

        R_TV = mean_{n,c,i,j} |x[i+1, j] − x[i, j]|^p + mean_{n,c,i,j} |x[i, j+1] − x[i, j]|^p

    the mean over the vertical neighbour pairs plus the mean over the horizontal ones; ``p`` = 2
    (squared differences, smooth) or 1 (absolute differences, keeps edges sharp). A scalar
    Tensor, differentiable in x (for p = 1 the gradient of |0| is taken as 0).
    DeepInversion's code uses ‖·‖₂ of the differences in four directions (the two diagonals
    too); means make the weight independent of the image size. An image of H = 1 or W = 1 has
    no pair in that direction (that term is 0). Raises ValueError for x not 4-D or p ∉ {1, 2}.
    """
    p = check_choice(p, (1, 2), "total_variation", "p")
    x = as_tensor(x)
    _check_images(x, "total_variation")
    total = None
    for d in (x[:, :, 1:, :] - x[:, :, :-1, :], x[:, :, :, 1:] - x[:, :, :, :-1]):   # vertical, horizontal
        if d.size == 0:
            continue
        term = (d * d).mean() if p == 2 else d.abs().mean()
        total = term if total is None else total + term
    return total if total is not None else (x * 0.0).sum()


def l2_prior(x):
    """R_l2(x) = mean of x²: keeps the synthetic pixels from growing without bound.

    ``x``: any shape (e.g. (N, C, H, W)); a scalar Tensor. The paper writes the norm ‖x̃‖₂
    (its code: each image's norm, averaged over the batch); the mean of the squares is used here so that the
    weight does not depend on the batch or image size, and its gradient 2x/size is smooth at 0.
    """
    x = as_tensor(x)
    if x.size == 0:
        raise ValueError("l2_prior: expected a non-empty x; got shape " + str(tuple(x.shape)))
    return (x * x).mean()


def roll(x, shift, axis):
    """``x`` rolled by ``shift`` positions along ``axis`` (wrapping round), as ``np.roll``.

    Built from two slices and a concatenate, so the gradient rolls back the other way.
    """
    x = as_tensor(x)
    if not is_int(shift):
        raise ValueError(f"roll: shift must be an int; got {shift!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"roll: axis {axis} is out of range for x of shape {tuple(x.shape)}")
    n = x.shape[axis]
    shift = int(shift) % n if n else 0
    if shift == 0:
        return x
    head = [slice(None)] * x.ndim
    tail = [slice(None)] * x.ndim
    head[axis], tail[axis] = slice(n - shift, None), slice(0, n - shift)
    return concatenate([x[tuple(head)], x[tuple(tail)]], axis=axis)


def random_shift(x, max_shift, rng=None):
    """Jitter: roll the images ``x`` (N, C, H, W) by a random (Δi, Δj), each uniform in
    [−max_shift, max_shift], the same shift for the whole batch (DeepInversion's ``torch.roll``).

    An image prior: the optimised x̃ must keep the teacher's response under small shifts, so it
    cannot rely on single-pixel patterns. Differentiable (see :func:`roll`): apply it to x̃ before
    the teacher's forward and backpropagate through it. ``rng``: a ``numpy.random.Generator``
    (None: minikd's seeded one, ``minikd.random.get_rng()``). ``max_shift`` = 0 returns x.
    Raises ValueError for x not 4-D or a negative ``max_shift``.
    """
    max_shift = check_int(max_shift, "random_shift", "max_shift", low=0)
    x = as_tensor(x)
    _check_images(x, "random_shift")
    if max_shift == 0:
        return x
    rng = _generator(rng, "random_shift", "integers")
    di, dj = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    return roll(roll(x, di, axis=2), dj, axis=3)


def random_affine(x, degrees, scale=0.0, fill=0.0, rng=None):
    """Each image of ``x`` (N, C, H, W) rotated by its own angle θ, uniform in ±``degrees``
    (degrees), and scaled by its own factor s, uniform in [1 − ``scale``, 1 + ``scale``], about
    the image centre (c_i, c_j) = ((H − 1)/2, (W − 1)/2); bilinear sampling, ``fill`` where the
    source lies outside the image (for normalised MNIST, black is −0.1307/0.3081).

    Output pixel (i, j) (row, column) reads the input at the inverse map

        q_i = c_i + (cos θ·(i − c_i) − sin θ·(j − c_j)) / s
        q_j = c_j + (sin θ·(i − c_i) + cos θ·(j − c_j)) / s

    the four neighbours of q weighted by their bilinear weights. A positive θ turns the image
    clockwise as displayed (rows down); torchvision's ``RandomAffine(degrees, scale=...)`` turns
    anticlockwise, which makes no difference to a draw symmetric about 0. s > 1 enlarges.
    An augmentation: scenario 1 can give G's samples the small slants and sizes of real
    handwriting before the teacher labels them (the teacher answers for whatever it is shown).

    Differentiable in x (a gather and a weighted sum, whose gradient scatters back), on
    any array backend. ``rng``: a ``numpy.random.Generator`` (None: minikd's seeded one); θ is
    drawn first, then s. ``degrees`` = ``scale`` = 0 returns x. Raises ValueError for x not 4-D,
    ``degrees`` outside [0, 180], ``scale`` outside [0, 1) or a non-finite ``fill``, and
    TypeError for an argument that is not a number.
    """
    degrees = check_number(degrees, "random_affine", "degrees", low=0, high=180)
    scale = check_number(scale, "random_affine", "scale", low=0, high=1, high_open=True)
    fill = check_number(fill, "random_affine", "fill")
    x = as_tensor(x)
    _check_images(x, "random_affine")
    if degrees == 0 and scale == 0:
        return x
    rng = _generator(rng, "random_affine", "uniform")
    n, c, h, w = x.shape
    theta = np.deg2rad(rng.uniform(-degrees, degrees, size=n))
    s = rng.uniform(1 - scale, 1 + scale, size=n)
    cos, sin = (np.cos(theta) / s)[:, None, None], (np.sin(theta) / s)[:, None, None]
    di, dj = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    qi = cos * di - sin * dj + (h - 1) / 2                  # (N, H, W): where each output pixel reads
    qj = sin * di + cos * dj + (w - 1) / 2
    i0, j0 = np.floor(qi).astype(np.int64), np.floor(qj).astype(np.int64)
    fi, fj = qi - i0, qj - j0
    # the four neighbours of q, stacked on axis 1: their rows, columns and bilinear weights (N, 4, H, W)
    i = np.stack([i0, i0 + 1, i0, i0 + 1], axis=1)
    j = np.stack([j0, j0, j0 + 1, j0 + 1], axis=1)
    weight = np.stack([(1 - fi) * (1 - fj), fi * (1 - fj), (1 - fi) * fj, fi * fj], axis=1)
    weight *= (i >= 0) & (i < h) & (j >= 0) & (j < w)      # a neighbour outside the image contributes fill
    index = (np.clip(i, 0, h - 1) * w + np.clip(j, 0, w - 1)).reshape(n, 1, 4, h * w)
    weight = weight.reshape(n, 1, 4, h * w)
    xp = x.xp
    rows, channels = xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None]
    neighbours = x.reshape(n, c, h * w)[rows, channels, xp.asarray(index)]      # (N, C, 4, H·W), one gather
    out = (neighbours * xp.asarray(weight.astype(x.dtype))).sum(axis=2)
    if fill:            # the four weights sum to 1: what the neighbours outside did not give is fill's
        out = out + xp.asarray((fill * (1 - weight.sum(axis=2))).astype(x.dtype))
    return out.reshape(n, c, h, w)


# --------------------------------------------------------------------------- BatchNorm statistics (DeepInversion)


def _generator(rng, op, draws: str):
    """``rng`` when it can draw (a ``numpy.random.Generator``, or anything with its ``draws``
    method), minikd's seeded one for None; TypeError else (a seed given where a generator goes:
    ``np.random.default_rng(seed)`` makes one)."""
    if rng is None:
        return get_rng()
    if not hasattr(rng, draws):
        raise TypeError(f"{op}: rng must be a numpy.random.Generator or None; got {rng!r} (for a seed, pass "
                        "np.random.default_rng(seed))")
    return rng


def freeze_teacher(teacher):
    """Put ``teacher`` in evaluation mode (BatchNorm uses its running statistics, dropout is off)
    and stop its weights from requiring a gradient: the gradient then reaches x̃ (or the
    generator) only. Returns the teacher."""
    check_module(teacher, "freeze_teacher", "teacher")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


class BNStatistics:
    """DeepInversion's feature-distribution regulariser: the batch statistics of the input of
    every BatchNorm layer l of the teacher, matched to the layer's running statistics::

        μ_l(x̃) = mean of the layer's input per channel (over N, H, W)
        σ²_l(x̃) = biased variance per channel (÷ m, as BatchNorm normalises)
        R_feature = Σ_l ( ‖μ_l(x̃) − μ_l^running‖₂ + ‖σ²_l(x̃) − σ²_l^running‖₂ )

    (Yin et al., "Dreaming to Distill", CVPR 2020, Eq. 4.) The running statistics are what the
    teacher saw on its training data, so R_feature → 0 pulls x̃ towards that data's statistics.
    The lecture's slide writes the squared distance of the means only, ‖μ_BN^real − μ_BN^synth‖²
    (+ total variation); the paper's form, used here, also matches the variances and takes the
    norms unsquared.

    Usage — the teacher frozen and in evaluation mode, x̃ a leaf that requires a gradient::

        with kd.BNStatistics(teacher) as bn:
            logits = teacher(x)              # the hooks record μ_l(x̃), σ²_l(x̃) (differentiable)
            loss = bn.loss() + ...           # a scalar Tensor; backward reaches x̃
        # leaving the block removes the hooks (or call bn.remove())

    Forward hooks (``Module.register_forward_hook``) on every ``nn.BatchNorm1d``/``BatchNorm2d``
    see the layer's input; each forward replaces the previous record. ``loss(first_weight=1.0)``:
    the weight of the first BN layer's term (the authors' code uses 10 for ImageNet).
    Norms are √max(‖·‖², 1e-12), so the gradient stays finite at a perfect match.

    Raises ValueError if the model has no BatchNorm layer (DeepInversion needs a teacher with
    BatchNorm after its convolutions), if it is in training mode (its forward would use and
    update the batch statistics instead of the running ones), or if ``loss()`` is called before
    a forward pass.
    """

    def __init__(self, model):
        check_module(model, "BNStatistics", "model")
        self.layers = [m for _, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        if not self.layers:
            raise ValueError(f"BNStatistics: DeepInversion needs a teacher with BatchNorm after its convolutions "
                             f"(their running statistics are what x̃ is matched to); the model "
                             f"{type(model).__name__} has no BatchNorm1d/BatchNorm2d layer. Use activation "
                             "maximisation (kd.activation_maximisation_loss) or train the teacher with BatchNorm.")
        if model.training:
            raise ValueError(f"BNStatistics: the teacher {type(model).__name__} is in training mode; call "
                             "teacher.eval() (or kd.freeze_teacher(teacher)) first, so its BatchNorm layers use "
                             "(and keep) their running statistics")
        self.model_name = type(model).__name__
        self.batch_stats = {}      # layer index → (μ_l, σ²_l), Tensors (C,)
        self.handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]

    def _hook(self, i):
        def record(layer, inputs, output):
            if layer.training:
                raise ValueError(f"BNStatistics: BatchNorm layer {i} of {self.model_name} ran in training mode; "
                                 "call teacher.eval() before the forward pass")
            x = as_tensor(inputs[0])
            axes = (0,) + tuple(range(2, x.ndim))                 # every axis but the channel axis
            mu = x.mean(axis=axes, keepdims=True)
            d = x - mu
            var = (d * d).mean(axis=axes)                          # biased, as BatchNorm normalises
            self.batch_stats[i] = (mu.reshape(-1), var)
        return record

    def loss(self, first_weight=1.0):
        """R_feature = Σ_l w_l (‖μ_l − μ_l^running‖₂ + ‖σ²_l − σ²_l^running‖₂), w_0 = ``first_weight``,
        the other w_l = 1; a scalar Tensor from the last forward pass."""
        first_weight = check_number(first_weight, "BNStatistics.loss", "first_weight", low=0)
        if len(self.batch_stats) != len(self.layers):
            raise ValueError(f"BNStatistics.loss: run the teacher's forward pass on the batch first; "
                             f"{len(self.batch_stats)} of its {len(self.layers)} BatchNorm layers have "
                             "recorded statistics")
        total = None
        for i, layer in enumerate(self.layers):
            mu, var = self.batch_stats[i]
            term = None
            for batch, running in ((mu, layer.running_mean), (var, layer.running_var)):
                d = batch - constant(raw(running).astype(batch.dtype, copy=False), like=batch)
                norm = F.clipped_sqrt((d * d).sum(), EPS)
                term = norm if term is None else term + norm
            term = term * first_weight if i == 0 and first_weight != 1.0 else term
            total = term if total is None else total + term
        return total

    def remove(self):
        """Unregister the hooks; the model runs as before."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


# --------------------------------------------------------------------------- activation maximisation with priors


def activation_maximisation_loss(teacher_logits, y):
    """L_class = (1/N) Σ_n −log softmax(z_n)[y_n]: the cross-entropy of the teacher's logits z
    (N, C) on x̃ with the target classes y (N,) — minimising it makes x̃ look like class y_n.

    Cross-entropy rather than the negative target logit −z_{y}: −z_y + log Σ_j exp z_j also
    pushes the other classes down and is bounded below (by 0), so the optimisation stops once
    the teacher is confident; −z_y alone grows without bound by scaling the image up, which
    gives saturated, adversarial-looking x̃. DeepInversion's class term is this cross-entropy
    (Yin et al., CVPR 2020); activation maximisation goes back to Erhan et al. (2009).
    The gradient flows through the logits to x̃. Raises ValueError for logits not (N, C) and
    for labels as :func:`check_class_labels` (with num_classes = C) or of another N.
    """
    z = as_tensor(teacher_logits)
    _check_logits_2d(z, "activation_maximisation_loss")
    labels = check_class_labels(y, num_classes=z.shape[1])
    if labels.shape[0] != z.shape[0]:
        raise ValueError(f"activation_maximisation_loss: {labels.shape[0]} labels for {z.shape[0]} logits rows")
    return cross_entropy(z, labels)


def diversity_loss(features):
    """The mean cosine similarity of the batch's embeddings over all pairs i ≠ j::

        f̂^i = f^i / ‖f^i‖₂,    L_div = (1/(N(N − 1))) Σ_{i≠j} ⟨f̂^i, f̂^j⟩

    ``features`` (N, d) (or (N, C, H, W), flattened per sample), N ≥ 2: e.g. the teacher's
    penultimate features on x̃. It is 1 when every sample's embedding points the same way
    (the batch has collapsed to one image) and falls to −1/(N − 1) when they spread out, so
    adding it to the loss keeps the synthetic images of a class from all being the same.
    Raises ValueError for N < 2.
    """
    f = _flat_batch(as_tensor(features), "diversity_loss", "features")
    n = f.shape[0]
    if n < 2:
        raise ValueError(f"diversity_loss: needs at least 2 samples to compare; got N = {n}")
    f_hat = F.normalize(f, axis=1)
    cos = f_hat @ f_hat.T                                     # (N, N), 1 on the diagonal
    return cos[off_diagonal_pairs(n, f.xp)].mean()


__all__ = [
    "BNStatistics", "activation_maximisation_loss", "check_class_labels", "check_generator_output",
    "competition_loss", "dafl_generator_loss", "dafl_losses", "dfkd_loss", "diversity_loss", "freeze_teacher",
    "js_divergence", "l2_prior", "random_affine", "random_shift", "roll", "total_variation",
]
