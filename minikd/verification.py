"""Verification of embeddings: 1:1 "same or not?" on fixed pairs, as face recognition is evaluated.

The lecture's face-recognition distillation methods, AdaDistill (Boutros, Štruc, Damer, ECCV
2024) and QUD (Kolf, Damer, Boutros, BMVC 2024), judge a student by its *embedding*, not its
logits: two images are the same identity when their embeddings are close. Their tables report
the 10-fold verification accuracy on LFW-style pair lists (LFW, CFP-FP, AgeDB-30, …) and the
true-accept rate at a fixed false-accept rate on IJB-C (TAR at FAR = 1e-4, 1e-5). This module
does the same on any labelled data — on MNIST, "same digit or not?" — for the penultimate
feature vector of a model (``model(x, return_features=True)``, see :mod:`minikd.models`)::

    i, j, same = make_pairs(labels)                 # 6,000 pairs: 10 folds × (300 same + 300 different)
    s = cosine_scores(embeddings, (i, j))           # s = ⟨e_i, e_j⟩ / (‖e_i‖·‖e_j‖) ∈ [−1, 1]
    acc, std = verification_accuracy(s, same)       # LFW: threshold from 9 folds, tested on the 10th
    tar = tar_at_far(s, same, far=1e-3)             # IJB-C's operating point
    evaluate_embeddings(model, x, labels)           # all of it: {"accuracy", "std", "tar@far=1e-2", ...}

A pair is *accepted* (predicted "same") when its score reaches the threshold: **s ≥ t**.
Rates are fractions in [0, 1] (× 100 for the lecture's %).

Sources: G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, "Labeled Faces in the Wild: A
Database for Studying Face Recognition in Unconstrained Environments", UMass Amherst TR 07-49,
2007 (View 2: ten folds of 300 matched + 300 mismatched pairs, ten-fold cross-validation);
B. Maze et al., "IARPA Janus Benchmark – C: Face Dataset and Protocol", ICB 2018 (1:1
verification, TAR at a given FAR, as in the lecture's AdaDistill, QUD and QuantFace tables).

All of it is NumPy on host arrays: it measures, it is never differentiated. A minikd Tensor
(on either device) is accepted wherever an array is.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import nn
from .checks import check_int, check_number
from .tensor import no_grad, tensor

# --------------------------------------------------------------------------- the pairs


def make_pairs(labels, n_pairs: int = 6000, seed: int = 0, folds: int = 10):
    """Fixed verification pairs ``(i, j, same)``: three arrays of ``n_pairs`` (int64, int64, bool).

    **Layout, as LFW's View 2 (its ``pairs.txt``).** The list is ``folds`` consecutive blocks of
    ``n_pairs / folds`` pairs; block f holds ``m = n_pairs / (2·folds)`` positive pairs
    (``labels[i] == labels[j]``, ``same`` True) and then ``m`` negative pairs. With the defaults:
    10 folds of 300 positive + 300 negative pairs. :func:`verification_accuracy` cuts the list
    into the same blocks.

    **Drawing.** Positive pairs are drawn uniformly among all unordered pairs {i, j}, i ≠ j, that
    share a label; negative pairs uniformly among all that do not. No image is paired with
    itself, no pair appears twice, and ``i < j`` in every pair. A local
    ``np.random.default_rng(seed)`` draws them: the same labels and seed give the same pairs,
    whatever else used minikd's generator or NumPy's global one.

    Unlike LFW, the folds are not disjoint in classes (MNIST has only ten) nor in images: an
    image may appear in several folds. What the 10-fold protocol holds out is pairs.

    ValueError when ``n_pairs`` is odd, below 20 or not a multiple of 2·``folds``, when
    ``folds`` < 2, when ``labels`` is not 1-D or has fewer than two classes, or when the labels
    do not allow that many distinct positive (or negative) pairs.

    >>> i, j, same = make_pairs([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], n_pairs=20, folds=2)
    >>> same.reshape(2, 10).sum(axis=1)       # each fold: 5 positive, 5 negative
    array([5, 5])
    >>> bool((i < j).all())
    True
    """
    op = "make_pairs"
    folds = check_int(folds, op, "folds", low=2)
    n_pairs = check_int(n_pairs, op, "n_pairs", low=20)
    if n_pairs % 2:
        raise ValueError(f"{op}: n_pairs must be even (half positive, half negative pairs); got {n_pairs}")
    if n_pairs % (2 * folds):
        raise ValueError(f"{op}: n_pairs must be a multiple of 2·folds = {2 * folds} (each fold half positive, "
                         f"half negative); got {n_pairs}")
    seed = check_int(seed, op, "seed", low=0)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{op}: labels must be 1-D (N,); got shape {labels.shape}")
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"{op}: labels must hold at least 2 classes to make negative pairs; "
                         f"got {len(classes)} ({classes.tolist()})")
    n = len(labels)
    half = n_pairs // 2
    same_pairs = int((counts * (counts - 1) // 2).sum())
    for kind, available in (("positive", same_pairs), ("negative", n * (n - 1) // 2 - same_pairs)):
        if available < half:
            raise ValueError(f"{op}: {half} distinct {kind} pairs needed but these {n} labels allow only "
                             f"{available}; use fewer pairs or more images")

    rng = np.random.default_rng(seed)
    order = np.argsort(codes, kind="stable")              # the images of class c: order[start[c]:start[c] + counts[c]]
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    weight = counts * (counts - 1) / 2                    # unordered same-label pairs per class

    def draw_positive(k):
        c = rng.choice(len(counts), size=k, p=weight / weight.sum())  # a class, as often as it has pairs
        a = rng.integers(counts[c])
        b = rng.integers(counts[c] - 1)
        b = b + (b >= a)                                  # two different members of class c
        return order[start[c] + a], order[start[c] + b]

    p_different = 1.0 - float(((counts / n) ** 2).sum())  # chance that two images drawn at random differ

    def draw_negative(k):
        i, j = rng.integers(n, size=(2, int(np.ceil(k / p_different))))
        keep = codes[i] != codes[j]
        return i[keep], j[keep]

    positive = _distinct_pairs(draw_positive, half, n)
    negative = _distinct_pairs(draw_negative, half, n)
    m = half // folds
    keys = np.stack([positive.reshape(folds, m), negative.reshape(folds, m)], axis=1).ravel()
    same = np.tile(np.repeat([True, False], m), folds)
    return keys // n, keys % n, same


def _distinct_pairs(draw, count: int, n: int) -> np.ndarray:
    """``count`` distinct pairs from ``draw(k)``, as keys i·n + j with i < j, in the order first drawn."""
    keys = np.empty(0, dtype=np.int64)
    while keys.size < count:
        i, j = draw(2 * (count - keys.size) + 64)
        drawn = np.concatenate([keys, np.minimum(i, j).astype(np.int64) * n + np.maximum(i, j)])
        _, first = np.unique(drawn, return_index=True)   # repeats dropped, first-drawn order kept
        keys = drawn[np.sort(first)]
    return keys[:count]


# --------------------------------------------------------------------------- the scores


def cosine_scores(embeddings, pairs) -> np.ndarray:
    """Cosine similarity of each pair: s = ⟨e_i, e_j⟩ / (‖e_i‖·‖e_j‖), float64 (P,) in [−1, 1].

    ``embeddings``: (N, D), one row per image. ``pairs``: ``(i, j)`` or ``(i, j, same)`` as
    :func:`make_pairs` returns, with integer index arrays of length P. Each row is
    L2-normalised first; an all-zero embedding stays zero, so its scores are 0, not NaN.

    >>> cosine_scores([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]], ([0, 0, 0], [1, 2, 3]))
    array([1., 0., 0.])
    """
    op = "cosine_scores"
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"{op}: embeddings must be (N, D); got shape {e.shape}")
    bad = ~np.isfinite(e).all(axis=1)
    if bad.any():
        raise ValueError(f"{op}: embeddings hold NaN or ±inf (first in row {int(np.flatnonzero(bad)[0])}); "
                         "the model diverged or its input is broken")
    i, j = _indices(pairs, len(e), op)
    # Scaled by the largest |entry| first: the squares of 1e200 (or 1e-200) would overflow (underflow).
    peak = np.abs(e).max(axis=1, keepdims=True)
    e = e / np.where(peak > 0, peak, 1.0)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    u = e / np.where(norm > 0, norm, 1.0)
    return np.clip(np.einsum("pd,pd->p", u[i], u[j]), -1.0, 1.0)


def _indices(pairs, n: int, op: str):
    """The index arrays (i, j) of ``pairs``, checked: integers, one length, within 0..n−1."""
    if not isinstance(pairs, (tuple, list)) or len(pairs) not in (2, 3):
        raise ValueError(f"{op}: pairs must be (i, j) or (i, j, same) as make_pairs returns; got {type(pairs).__name__}"
                         + (f" of length {len(pairs)}" if isinstance(pairs, (tuple, list)) else ""))
    i, j = np.asarray(pairs[0]), np.asarray(pairs[1])
    if i.ndim != 1 or i.shape != j.shape:
        raise ValueError(f"{op}: pair indices i and j must be 1-D of one length; got shapes {i.shape} and {j.shape}")
    if len(pairs) == 3 and np.shape(pairs[2]) != i.shape:   # a `same` of another length was silently ignored
        raise ValueError(f"{op}: same must have one entry per pair, {i.shape[0]}; got shape {np.shape(pairs[2])}")
    if i.dtype.kind not in "iu" or j.dtype.kind not in "iu":
        raise ValueError(f"{op}: pair indices must be integers; got dtypes {i.dtype} and {j.dtype}")
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"{op}: pair indices must lie in 0..{n - 1} for {n} embeddings; "
                         f"got {min(i.min(), j.min())}..{max(i.max(), j.max())}")
    return i, j


def _scores_and_same(scores, same, op: str):
    """``scores`` as float64 (P,) and ``same`` as bool (P,), checked."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(same)
    if s.ndim != 1 or s.shape != y.shape or s.size == 0:
        raise ValueError(f"{op}: scores and same must be non-empty 1-D arrays of one length; "
                         f"got shapes {s.shape} and {y.shape}")
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{op}: same must be bool (or 0/1); got values {np.unique(y)[:5].tolist()}")
    if not np.isfinite(s).all():
        raise ValueError(f"{op}: scores hold NaN or ±inf (first at {int(np.flatnonzero(~np.isfinite(s))[0])})")
    return s, y.astype(bool)


# --------------------------------------------------------------------------- LFW: 10-fold accuracy


def best_threshold(scores, same) -> tuple[float, float]:
    """``(t, accuracy)``: the threshold that classifies ``scores`` best as same (s ≥ t) or not.

    accuracy(t) = (#{same: s ≥ t} + #{different: s < t}) / P. Only the order of the scores
    matters, so the candidates are: −inf (accept all), the midpoint between each two neighbouring
    distinct scores, +inf (reject all); every other t gives one of their accuracies. Among equally
    good candidates the smallest wins (``argmax``'s first). Exact: no grid of thresholds.

    >>> best_threshold([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    (0.5, 1.0)
    """
    s, y = _scores_and_same(scores, same, "best_threshold")
    u, where = np.unique(s, return_inverse=True)
    pos = np.bincount(where, weights=y, minlength=len(u))
    neg = np.bincount(where, minlength=len(u)) - pos
    # candidate k (k = 0..K) accepts the distinct scores u[k:]: the positives there are right,
    # and the negatives below, u[:k]
    correct = (pos.sum() - np.concatenate([[0], np.cumsum(pos)])) + np.concatenate([[0], np.cumsum(neg)])
    mid = u[:-1] / 2 + u[1:] / 2
    mid = np.where(mid > u[:-1], mid, u[1:])  # neighbours one float apart: the midpoint rounds onto u[k−1]
    thresholds = np.concatenate([[-np.inf], mid, [np.inf]])
    k = int(np.argmax(correct))
    return float(thresholds[k]), float(correct[k] / len(s))


def verification_accuracy(scores, same, folds: int = 10) -> tuple[float, float]:
    """``(mean, std)`` of the held-out accuracy over ``folds`` folds: LFW's View-2 protocol.

    The P pairs are cut into ``folds`` consecutive blocks of P / folds (the layout of
    :func:`make_pairs`). For each fold k: t_k = :func:`best_threshold` on the other folds'
    pairs; acc_k = the fraction of fold k's pairs that t_k classifies right (s ≥ t_k ⇔ same).
    Returned: mean = Σ acc_k / folds and std = √(Σ (acc_k − mean)² / folds), fractions.

    The std is over folds (NumPy's ``std``, ddof = 0), as InsightFace's verification code — on
    which AdaDistill's and QUD's evaluation is built — reports it. Huang et al. report the
    standard error of the mean instead: S_E = std·√(folds / (folds − 1)) / √folds.

    ValueError when ``folds`` < 2, when P is not a multiple of ``folds``, or on shapes that differ.

    >>> verification_accuracy([0.1, 0.9, 0.2, 0.8], [False, True, False, True], folds=2)
    (1.0, 0.0)
    """
    op = "verification_accuracy"
    folds = check_int(folds, op, "folds", low=2)
    s, y = _scores_and_same(scores, same, op)
    if len(s) % folds:
        raise ValueError(f"{op}: the {len(s)} pairs cannot be cut into {folds} equal folds; "
                         "use a number of pairs that is a multiple of folds")
    fold = np.arange(len(s)) // (len(s) // folds)
    accuracies = []
    for k in range(folds):
        test = fold == k
        t, _ = best_threshold(s[~test], y[~test])
        accuracies.append(np.mean((s[test] >= t) == y[test]))
    return float(np.mean(accuracies)), float(np.std(accuracies))


# --------------------------------------------------------------------------- IJB-C: TAR at FAR


def tar_at_far(scores, same, far: float) -> float:
    """True-accept rate at the threshold whose false-accept rate is at most ``far``.

    FAR(t) = #{different: s ≥ t} / N_neg and TAR(t) = #{same: s ≥ t} / N_pos. The threshold is
    the lowest t with FAR(t) ≤ far (so TAR is the highest such a threshold reaches): with
    k = ⌊far·N_neg⌋ false accepts allowed and b the (k+1)-th largest negative score, exactly the
    scores above b are accepted (t = the smallest score above b), and

        TAR@FAR = #{same: s > b} / N_pos.

    Negative scores tied with b are all rejected, so ties never push FAR above ``far``. This is
    the last point of the ROC curve with FPR ≤ far; IJB-C's tables read TAR there, at FAR 1e-4
    and 1e-5 over millions of negative pairs. On 3,000 negatives, FAR = 1e-3 rests on the three
    highest negative scores: a coarse, noisy number.

    No interpolation: when N_neg < 1/far not even one false accept is allowed, the asked FAR
    cannot be measured, and a ValueError says how many negative pairs it needs. Also ValueError
    when ``far`` is not in (0, 1), on shapes that differ, or with no positive pair.

    >>> tar_at_far([0.1, 0.2, 0.3, 0.4, 0.25, 0.9], [False, False, False, False, True, True], far=0.25)
    0.5
    """
    op = "tar_at_far"
    far = check_number(far, op, "far", low=0, high=1, low_open=True, high_open=True)
    s, y = _scores_and_same(scores, same, op)
    positive, negative = s[y], s[~y]
    if positive.size == 0:
        raise ValueError(f"{op}: no positive pair (same all False): TAR is undefined")
    # + 1e-9: far·N_neg is meant exactly (0.29 × 100 is 28.999999999999996 in floats, not 28)
    k = int(np.floor(far * negative.size + 1e-9))
    if k == 0:
        raise ValueError(f"{op}: FAR ≤ {far:g} cannot be measured on {negative.size} negative pairs: one false accept "
                         f"is already a FAR of {1 / max(negative.size, 1):.3g}; it needs at least "
                         f"{int(np.ceil(1 / far - 1e-9))} negative pairs")
    b = np.sort(negative)[::-1][k]
    return float(np.mean(positive > b))


# --------------------------------------------------------------------------- a model, end to end


def compute_embeddings(model_or_fn, x, batch_size: int = 1000) -> np.ndarray:
    """The embeddings of ``x`` as a NumPy array (N, D), computed under ``no_grad`` in batches.

    ``model_or_fn``: an :class:`~minikd.nn.Module` whose ``forward`` takes ``return_features``
    and returns ``(logits, features)`` (run in eval mode, its mode restored after, on its
    parameters' device), or any callable taking an (n, …) Tensor and returning embeddings.
    Feature maps (n, C, H, W) are flattened to (n, C·H·W).
    """
    op = "compute_embeddings"
    batch_size = check_int(batch_size, op, "batch_size", low=1)
    x = np.asarray(x)
    if x.ndim == 0 or x.dtype.kind not in "biuf":
        raise ValueError(f"{op}: x must be a batch of inputs (N, ...) of numbers; got {x.dtype} of shape {x.shape}")
    if isinstance(model_or_fn, nn.Module):
        model = model_or_fn
        if "return_features" not in inspect.signature(model.forward).parameters:
            raise TypeError(f"{op}: {type(model).__name__}.forward has no return_features argument; pass a "
                            "function returning embeddings instead, e.g. lambda x: body(x)")
        device = next((p.device for p in model.parameters()), "cpu")

        def embed(xb):
            return model(tensor(xb, device=device), return_features=True)[1]
    elif callable(model_or_fn):
        def embed(xb):
            return model_or_fn(tensor(xb))
    else:
        raise TypeError(f"{op}: model_or_fn must be a Module or a callable; got {type(model_or_fn).__name__}")

    was_training = getattr(model_or_fn, "training", None)
    if was_training is not None:
        model_or_fn.eval()
    try:
        with no_grad():
            out = [np.asarray(embed(x[a:a + batch_size])) for a in range(0, len(x), batch_size)]
    finally:
        if was_training is not None:
            model_or_fn.train(was_training)
    e = np.concatenate(out) if out else np.empty((0, 0))
    if len(e) != len(x):
        raise ValueError(f"{op}: {len(x)} inputs gave {len(e)} embeddings; one per input expected")
    return e.reshape(len(e), -1)


def evaluate_embeddings(model_or_fn, x, labels, pairs=None, batch_size: int = 1000) -> dict:
    """The verification report of a model's embeddings on ``x``: accuracy, std, TAR@FAR 1e-2 and 1e-3.

    ``pairs``: ``(i, j, same)`` (or ``(i, j)``) over the rows of ``x``; None makes the standard
    6,000 with :func:`make_pairs` (10 folds, seed 0). Scores are :func:`cosine_scores`; the
    accuracy and its std come from :func:`verification_accuracy` (10 folds), the rates from
    :func:`tar_at_far`. Returns ``{"accuracy", "std", "tar@far=1e-2", "tar@far=1e-3", "pairs"}``,
    all fractions except ``pairs``, their number.
    """
    op = "evaluate_embeddings"
    x, labels = np.asarray(x), np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(x):
        raise ValueError(f"{op}: labels must be (N,) for the {len(x)} inputs; got shape {labels.shape}")
    if pairs is None:
        pairs = make_pairs(labels)
    i, j = _indices(pairs, len(labels), op)
    same = labels[i] == labels[j]
    if len(pairs) == 3 and not np.array_equal(np.asarray(pairs[2], dtype=bool), same):
        raise ValueError(f"{op}: pairs' same disagrees with labels[i] == labels[j]; "
                         "were the pairs made for other labels?")
    s = cosine_scores(compute_embeddings(model_or_fn, x, batch_size), (i, j))
    accuracy, std = verification_accuracy(s, same)
    return {"accuracy": accuracy, "std": std, "tar@far=1e-2": tar_at_far(s, same, 1e-2),
            "tar@far=1e-3": tar_at_far(s, same, 1e-3), "pairs": len(s)}
