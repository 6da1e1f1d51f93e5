"""Relation-based knowledge distillation (RKD): Park, Kim, Lu, Cho, "Relational Knowledge
Distillation", CVPR 2019.

Logit and feature KD make each of the student's outputs copy the teacher's. RKD copies the
*structure* instead: how the N embeddings of a batch lie relative to each other. With the
teacher's embeddings F_T = {f_T^1, …, f_T^N} and the student's F_S = {f_S^1, …, f_S^N}
(widths may differ: only distances and angles are compared, so no adapter is needed):

**Distance** (the lecture's slide)::

    D^{ij} = ‖f^i − f^j‖₂                              (for the teacher and for the student)
    L_RKD-Dist = Σ_{i≠j} (D_S^{ij} − D_T^{ij})²          (over all ordered pairs of the batch)

The paper divides each side's distances by their mean over the pairs (μ_S, μ_T, so the two
embedding spaces may have different scales) and compares them with the smooth-L1 (Huber)
loss, averaged over the pairs: ``normalize=True, huber=True``. (The authors' code averages
over all N² entries of the distance matrix, its zero diagonal included: (N − 1)/N of this.)

**Angle** (the paper; weight 50 beside 25 for distance)::

    e^{ij} = (f^i − f^j) / ‖f^i − f^j‖₂                  (unit vector from j to i)
    cos ∠(i, j, k) = ⟨e^{ij}, e^{kj}⟩                    (the angle at j of the triangle i, j, k)
    L_RKD-Angle = mean over all (i, j, k) of smooth-L1(cos_S ∠(i, j, k), cos_T ∠(i, j, k))

Both are written with minikd's differentiable ops, so their gradients come from autograd
(and are gradient-checked in the tests). The teacher's embeddings are constants.
"""

from __future__ import annotations

from .. import functional as F
from ..checks import check_bool, check_floating, check_number
from ..ops.loss import smooth_l1_loss
from .logits import as_tensor, constant

EPS = 1e-12  # squared distances below EPS count as EPS (F.sqrt_floor): √0 has an infinite gradient


def _check_embeddings(f_s, f_t, op):
    if f_s.ndim != 2 or f_t.ndim != 2:
        raise ValueError(f"{op}: embeddings must be 2-D (N, d); got student {tuple(f_s.shape)} and teacher "
                         f"{tuple(f_t.shape)}")
    if f_s.shape[0] != f_t.shape[0]:
        raise ValueError(f"{op}: the student and teacher embeddings must hold the same N samples; got "
                         f"N = {f_s.shape[0]} and {f_t.shape[0]}")
    if f_s.shape[0] < 2:
        raise ValueError(f"{op}: relations need at least 2 samples in the batch; got N = {f_s.shape[0]}")
    check_floating(op, f_s=f_s, f_t=f_t)


def differences(f):
    """f^i − f^j for every pair, as an (N, N, d) tensor [j, i]: the vector from f^j to f^i."""
    return f.reshape(1, f.shape[0], -1) - f.reshape(f.shape[0], 1, -1)


def pairwise_distances(f):
    """D (N, N) with D^{ij} = ‖f^i − f^j‖₂, from the differences themselves; squared distances are
    clipped at EPS before the square root (the diagonal, coincident points), so the gradient stays
    finite, and is 0 there.

    (Not from ‖f^i‖² + ‖f^j‖² − 2⟨f^i, f^j⟩, one matrix product and N² instead of N²·d values: in
    float32 that subtraction cancels. Two points 0.004 apart with norms near 40 came out 1e-6 or
    0.02 apart, and their gradient pointed the wrong way.)"""
    d = differences(f)
    return F.clipped_sqrt((d * d).sum(axis=2), EPS)


def off_diagonal_pairs(n, xp):
    """(rows, cols): the N(N − 1) pairs i ≠ j in row-major order, as index arrays on the device.

    The pair k is i = ⌊k / (N − 1)⌋ and the (k mod (N − 1))-th column that is not i. (Not a
    boolean mask ``~eye(N)``: selecting through a mask makes a GPU wait, since the number of
    selected elements is data; here it is known, N(N − 1).)"""
    k = xp.arange(n * (n - 1))
    rows, cols = k // (n - 1), k % (n - 1)
    return rows, cols + (cols >= rows)


def rkd_distance_loss(f_s, f_t, normalize=False, huber=False):
    """L_RKD-Dist between student embeddings ``f_s`` (N, d_S) and teacher embeddings ``f_t`` (N, d_T).

    Default (the lecture): Σ_{i≠j} (D_S^{ij} − D_T^{ij})² over all N(N − 1) ordered pairs.
    ``normalize=True``: each side's distances divided by their mean over the pairs (the paper).
    ``huber=True``: the mean smooth-L1 over the pairs instead of the sum of squares (the paper).
    Returns a scalar Tensor. Raises ValueError for non-2-D embeddings, different N, or N < 2.
    Source: the lecture's L_RKD-Dist; the paper's form: Park, Kim, Lu, Cho, CVPR 2019 (the distance-wise loss).

    >>> import minikd as mk
    >>> f_t = mk.tensor([[0.0, 0.0], [3.0, 4.0]])          # D_T = 5
    >>> rkd_distance_loss(mk.tensor([[0.0], [2.0]]), f_t).item()   # D_S = 2: 2 pairs · (2 − 5)²
    18.0
    """
    normalize = check_bool(normalize, "rkd_distance_loss", "normalize")
    huber = check_bool(huber, "rkd_distance_loss", "huber")
    f_s = as_tensor(f_s)
    f_t = constant(f_t, like=f_s)
    _check_embeddings(f_s, f_t, "rkd_distance_loss")
    pairs = off_diagonal_pairs(f_s.shape[0], f_s.xp)
    d_s, d_t = pairwise_distances(f_s)[pairs], pairwise_distances(f_t)[pairs]   # (N(N − 1),) each
    if normalize:
        d_s, d_t = d_s / d_s.mean(), d_t / d_t.mean()
    if huber:
        return smooth_l1_loss(d_s, d_t)
    diff = d_s - d_t
    return (diff * diff).sum()


def angle_cosines(f):
    """cos ∠(i, j, k) = ⟨e^{ij}, e^{kj}⟩ for every triplet, as an (N, N, N) tensor [j, i, k]:
    e^{ij} the unit vector from f^j to f^i: a zero vector, with no gradient, where f^i = f^j (i = j, or
    two coincident points: the angle is undefined there), so those cosines are 0."""
    e = F.normalize(differences(f), axis=2)   # e[j, i] = e^{ij}; a zero vector (and no gradient) where i = j
    return e @ e.transpose(0, 2, 1)


def rkd_angle_loss(f_s, f_t):
    """L_RKD-Angle: the mean smooth-L1 between the student's and the teacher's cosines of the
    angles of all N³ triplets (those with a repeated sample are 0 on both sides). (N, d_S) and
    (N, d_T); a scalar Tensor. With N = 2 every triangle has a repeated corner, so the loss is 0
    (a batch's last two samples teach no angle; not an error, so a short last batch trains on).
    Raises ValueError like :func:`rkd_distance_loss`. Memory grows as
    N³·d. Source: Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019 (the angle-wise loss)."""
    f_s = as_tensor(f_s)
    f_t = constant(f_t, like=f_s)
    _check_embeddings(f_s, f_t, "rkd_angle_loss")
    return smooth_l1_loss(angle_cosines(f_s), angle_cosines(f_t))


def rkd_loss(f_s, f_t, w_dist=25.0, w_angle=50.0):
    """The paper's combination: w_dist · L_Dist (normalized, Huber) + w_angle · L_Angle, with its
    published weights 25 and 50 (Park, Kim, Lu, Cho, CVPR 2019).

    ``f_s`` (N, d_S), ``f_t`` (N, d_T); a scalar Tensor. Raises ValueError for embeddings that
    are not 2-D, of different N, or N < 2 (named by :func:`rkd_distance_loss`), and for a weight
    below 0 (TypeError for one that is not a number)."""
    w_dist = check_number(w_dist, "rkd_loss", "w_dist", low=0)
    w_angle = check_number(w_angle, "rkd_loss", "w_angle", low=0)
    return (rkd_distance_loss(f_s, f_t, normalize=True, huber=True) * w_dist
            + rkd_angle_loss(f_s, f_t) * w_angle)


__all__ = ["angle_cosines", "differences", "off_diagonal_pairs", "pairwise_distances", "rkd_angle_loss",
           "rkd_distance_loss", "rkd_loss"]
