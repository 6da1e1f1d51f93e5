"""Embedding verification as the lecture's face-recognition tables do it (AdaDistill, QUD):
fixed pairs in LFW's 10-fold layout, cosine scores, the held-out accuracy and TAR at a FAR.
Exact values on hand-made cases, the fast threshold searches against brute-force NumPy, and a
random-weight student on real MNIST."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import nn
from minikd.checks import ArgumentTypeError
from minikd.models import StudentModel
from minikd.verification import (
    best_threshold,
    compute_embeddings,
    cosine_scores,
    evaluate_embeddings,
    make_pairs,
    tar_at_far,
    verification_accuracy,
)
from tests.util import needs_mnist

DIGITS = np.random.default_rng(7).integers(0, 10, size=2000)


# --------------------------------------------------------------------------- brute-force references


def brute_best_threshold(s, y):
    """Every candidate (−inf, each midpoint of neighbouring distinct scores, +inf) tried at once."""
    u = np.unique(s)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    accuracy = ((s[None, :] >= candidates[:, None]) == y[None, :]).mean(axis=1)
    k = np.flatnonzero(accuracy == accuracy.max())[0]  # the smallest of the best
    return candidates[k], accuracy[k]


def brute_tar_at_far(s, y, far):
    """max TAR(t) over every threshold t (each distinct score, and +inf) with FAR(t) ≤ far."""
    best = 0.0
    for t in [*np.unique(s), np.inf]:
        if np.mean(s[~y] >= t) <= far:
            best = max(best, np.mean(s[y] >= t))
    return best


def scores_and_same(n_positive, n_negative):
    """Hypothesis: small integer-valued scores (many ties) with at least one of each kind."""
    return st.tuples(st.lists(st.integers(0, 6), min_size=n_positive, max_size=3 * n_positive),
                     st.lists(st.integers(0, 6), min_size=n_negative, max_size=3 * n_negative))


def joined(positive, negative):
    s = np.array(positive + negative, dtype=float) / 6
    return s, np.array([True] * len(positive) + [False] * len(negative))


# --------------------------------------------------------------------------- make_pairs


def test_lfw_layout_ten_folds_of_300_positive_then_300_negative():
    i, j, same = make_pairs(DIGITS)
    assert i.shape == j.shape == same.shape == (6000,) and same.dtype == bool
    blocks = same.reshape(10, 600)
    assert (blocks[:, :300]).all() and not blocks[:, 300:].any()
    np.testing.assert_array_equal(same, DIGITS[i] == DIGITS[j])


def test_no_self_pairs_and_no_pair_twice():
    i, j, _ = make_pairs(DIGITS)
    assert (i < j).all()
    assert len(set(zip(i.tolist(), j.tolist()))) == 6000


def test_same_seed_same_pairs_other_seed_other_pairs():
    a, b, c = make_pairs(DIGITS, seed=3), make_pairs(DIGITS, seed=3), make_pairs(DIGITS, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_pairs_use_their_own_generator_neither_numpy_nor_minikd_global():
    saved_numpy, saved_minikd = np.random.get_state(), mk.random.get_rng().bit_generator.state  # noqa: NPY002
    try:
        np.random.seed(1)  # noqa: NPY002  (the legacy global generator, on purpose)
        mk.manual_seed(1)
        numpy_state, minikd_state = np.random.get_state()[1].copy(), mk.random.get_rng().bit_generator.state  # noqa: NPY002
        first = make_pairs(DIGITS, n_pairs=200)
        assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
        assert mk.random.get_rng().bit_generator.state == minikd_state
        np.random.seed(2)  # noqa: NPY002
        mk.manual_seed(2)
        np.testing.assert_array_equal(make_pairs(DIGITS, n_pairs=200)[0], first[0])
    finally:
        np.random.set_state(saved_numpy)  # noqa: NPY002
        mk.manual_seed(0)
        mk.random.get_rng().bit_generator.state = saved_minikd


def test_every_possible_positive_pair_when_all_are_needed():
    # class 0 has five images: C(5, 2) = 10 positive pairs, all of them needed for 20 pairs
    labels = np.array([0, 1, 0, 2, 0, 3, 0, 4, 0, 5])
    i, j, same = make_pairs(labels, n_pairs=20, folds=2)
    zeros = np.flatnonzero(labels == 0)
    assert set(zip(i[same].tolist(), j[same].tolist())) == {(a, b) for a in zeros for b in zeros if a < b}
    assert (labels[i[~same]] != labels[j[~same]]).all()


def test_tensor_labels_give_the_same_pairs():
    for x, y in zip(make_pairs(mk.tensor(DIGITS), n_pairs=200), make_pairs(DIGITS, n_pairs=200)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_pairs=6001), "make_pairs: n_pairs must be even"),
    (dict(n_pairs=18), "make_pairs: n_pairs must be ≥ 20; got 18"),
    (dict(n_pairs=6010), "make_pairs: n_pairs must be a multiple of 2·folds = 20"),
    (dict(n_pairs=60, folds=4), "make_pairs: n_pairs must be a multiple of 2·folds = 8"),
    (dict(folds=1), "make_pairs: folds must be ≥ 2; got 1"),
    (dict(seed=-1), "make_pairs: seed must be ≥ 0"),
])
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_pairs(DIGITS, **kwargs)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match=r"make_pairs: labels must hold at least 2 classes.*got 1 \(\[3\]\)"):
        make_pairs([3] * 100)
    with pytest.raises(ValueError, match=r"make_pairs: labels must be 1-D \(N,\); got shape \(10, 2\)"):
        make_pairs(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="make_pairs: 3000 distinct positive pairs needed but these 50 labels allow "
                                         "only 100"):
        make_pairs(np.arange(50) % 10)
    with pytest.raises(ArgumentTypeError, match="make_pairs: n_pairs must be an int; got 6000.0"):
        make_pairs(DIGITS, n_pairs=6000.0)


# --------------------------------------------------------------------------- cosine_scores


def test_cosine_scores_by_hand():
    e = np.array([[3.0, 4.0], [6.0, 8.0], [-3.0, -4.0], [4.0, -3.0], [1.0, 1.0]])
    s = cosine_scores(e, ([0, 0, 0, 0], [1, 2, 3, 4]))
    np.testing.assert_allclose(s, [1.0, -1.0, 0.0, 7 / 5 / np.sqrt(2)], rtol=1e-12)
    assert s.dtype == np.float64


def test_a_zero_embedding_scores_zero_not_nan():
    e = np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    s = cosine_scores(e, ([0, 0, 1], [1, 2, 1]))
    assert s[0] == s[1] == 0.0 and s[2] == pytest.approx(1.0) and not np.isnan(s).any()


def test_scores_ignore_the_scale_even_at_the_ends_of_float64():
    e = np.array([[1.0, 2.0], [2.0, 1.0]])
    expected = cosine_scores(e, ([0], [1]))
    for scale in (1e200, 1e-200):
        np.testing.assert_allclose(cosine_scores(e * scale, ([0], [1])), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [0.8])


def test_scores_take_tensors_and_make_pairs_output():
    e = mk.tensor(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(cosine_scores(e, (np.array([0, 1]), np.array([2, 2]), np.array([True, True]))),
                               [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)


@pytest.mark.parametrize("embeddings, pairs, message", [
    (np.ones(4), ([0], [1]), r"cosine_scores: embeddings must be \(N, D\); got shape \(4,\)"),
    (np.ones((4, 2)), ([0, 1], [1]), r"i and j must be 1-D of one length; got shapes \(2,\) and \(1,\)"),
    (np.ones((4, 2)), ([0], [4]), "pair indices must lie in 0..3 for 4 embeddings; got 0..4"),
    (np.ones((4, 2)), ([0.0], [1.0]), "pair indices must be integers; got dtypes float64"),
    (np.ones((4, 2)), np.zeros((2, 5), dtype=int), r"pairs must be \(i, j\) or \(i, j, same\)"),
    (np.array([[1.0, 0.0], [np.nan, 1.0]]), ([0], [1]), "embeddings hold NaN or ±inf \\(first in row 1\\)"),
])
def test_cosine_scores_bad_input(embeddings, pairs, message):
    with pytest.raises(ValueError, match=message):
        cosine_scores(embeddings, pairs)


# --------------------------------------------------------------------------- the threshold and the 10 folds


def test_best_threshold_separated_reversed_and_tied():
    assert best_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == (0.5, 1.0)
    # reversed: accepting all and rejecting all tie at 1/2; the smallest threshold wins
    assert best_threshold([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == (-np.inf, 0.5)
    # one score for all: only "all" or "none" are possible; 3 of 4 are different pairs
    assert best_threshold([0.3, 0.3, 0.3, 0.3], [1, 0, 0, 0]) == (np.inf, 0.75)


def test_best_threshold_between_neighbouring_floats():
    a = 0.5
    b = np.nextafter(a, 1.0)  # no float between them: the midpoint must not fall onto a
    t, accuracy = best_threshold([a, b], [False, True])
    assert accuracy == 1.0 and a < t <= b


@given(scores_and_same(1, 1))
def test_best_threshold_matches_brute_force(lists):
    s, y = joined(*lists)
    t, accuracy = best_threshold(s, y)
    t_ref, accuracy_ref = brute_best_threshold(s, y)
    assert accuracy == pytest.approx(accuracy_ref) and t == pytest.approx(t_ref)
    assert np.mean((s >= t) == y) == pytest.approx(accuracy)


def test_perfectly_separated_scores_give_accuracy_one_and_tar_one():
    i, j, same = make_pairs(DIGITS)
    s = np.where(same, 0.9, 0.1) + np.random.default_rng(0).uniform(-0.05, 0.05, 6000)
    assert verification_accuracy(s, same) == (1.0, 0.0)
    assert tar_at_far(s, same, 1e-2) == tar_at_far(s, same, 1e-3) == 1.0


def test_reversed_scores_give_chance_and_no_true_accepts():
    _, _, same = make_pairs(DIGITS)
    s = np.where(same, 0.1, 0.9) + np.random.default_rng(0).uniform(-0.05, 0.05, 6000)
    assert verification_accuracy(s, same) == (0.5, 0.0)  # the 9 folds choose "accept all": half right
    assert tar_at_far(s, same, 1e-2) == 0.0


def test_tied_scores_give_chance():
    _, _, same = make_pairs(DIGITS, n_pairs=200)
    assert verification_accuracy(np.full(200, 0.3), same) == (0.5, 0.0)


def test_two_folds_by_hand_the_threshold_comes_from_the_other_fold():
    # fold 0 separates (0.1 diff, 0.9 same), fold 1 is reversed (0.2 same, 0.8 diff).
    # Fold 0 tested: fold 1 prefers t = −inf (accept all, 1/2 right) → fold 0: 1/2.
    # Fold 1 tested: fold 0 gives t = 0.5 → fold 1: both wrong, 0. Mean 1/4, std 1/4.
    s, same = [0.1, 0.9, 0.2, 0.8], [False, True, True, False]
    assert verification_accuracy(s, same, folds=2) == (0.25, 0.25)


def test_a_held_out_score_on_the_threshold_is_accepted():
    # fold 0 (0.0 diff, 1.0 same) gives t = 0.5; fold 1's same pair scores exactly 0.5: s ≥ t accepts it
    assert verification_accuracy([0.0, 1.0, 0.5, 0.0], [False, True, True, False], folds=2) == (1.0, 0.0)


def test_ten_folds_match_brute_force_thresholds_from_the_other_nine():
    rng = np.random.default_rng(5)
    for _ in range(5):
        y = np.tile(np.repeat([True, False], 30), 10)
        s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
        fold = np.arange(600) // 60
        expected = []
        for k in range(10):
            t, _ = brute_best_threshold(s[fold != k], y[fold != k])
            expected.append(np.mean((s[fold == k] >= t) == y[fold == k]))
        mean, std = verification_accuracy(s, y)
        assert mean == pytest.approx(np.mean(expected), abs=1e-12) and std == pytest.approx(np.std(expected))
        assert 0.5 < mean < 0.9


@pytest.mark.parametrize("args, kwargs, message", [
    (([0.1, 0.2], [True]), {}, r"scores and same must be non-empty 1-D arrays of one length; got shapes \(2,\) and "
                               r"\(1,\)"),
    (([], []), {}, "non-empty"),
    (([0.1, 0.2], [0, 2]), {"folds": 2}, r"same must be bool \(or 0/1\)"),
    (([0.1, np.nan], [0, 1]), {"folds": 2}, r"scores hold NaN or ±inf \(first at 1\)"),
    (([0.1, 0.2, 0.3], [0, 1, 1]), {"folds": 2}, "the 3 pairs cannot be cut into 2 equal folds"),
    (([0.1, 0.2], [0, 1]), {"folds": 1}, "verification_accuracy: folds must be ≥ 2; got 1"),
])
def test_verification_accuracy_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        verification_accuracy(*args, **kwargs)


# --------------------------------------------------------------------------- TAR at FAR


def test_tar_at_far_by_hand():
    negative = [0.1, 0.2, 0.3, 0.4]
    positive = [0.25, 0.3, 0.35, 0.9]
    s, same = np.array(negative + positive), np.array([False] * 4 + [True] * 4)
    assert tar_at_far(s, same, 0.25) == 0.5   # one false accept allowed (0.4): accept s > 0.3
    assert tar_at_far(s, same, 0.5) == 1.0    # two (0.4, 0.3): accept s > 0.2
    assert tar_at_far(s, same, 0.49) == 0.5   # ⌊0.49·4⌋ = 1 false accept, not 2
    # the positive tied with the second negative (0.3) is not accepted at FAR 1/4: that would
    # accept that negative too, a FAR of 2/4
    assert tar_at_far(s, same, 0.25) < np.mean(np.array(positive) >= 0.3)


def test_tar_at_far_counts_false_accepts_exactly():
    # 0.29 × 100 is 28.999999999999996 in floats: still 29 false accepts allowed
    negative = np.arange(100) / 100
    positive = negative[70:72] - 0.001    # 0.699 and 0.709: just below the 30th and 29th highest negatives
    s, same = np.concatenate([negative, positive]), np.r_[np.zeros(100, bool), np.ones(2, bool)]
    assert tar_at_far(s, same, 0.29) == 0.5  # accepted: s > 0.70 (the 30th highest negative)


@given(scores_and_same(1, 4), st.sampled_from([0.25, 0.3, 0.5, 0.75, 0.9]))
def test_tar_at_far_matches_brute_force(lists, far):
    s, y = joined(*lists)
    assert tar_at_far(s, y, far) == pytest.approx(brute_tar_at_far(s, y, far))


def test_too_few_negatives_for_the_far_is_a_clear_error():
    _, _, same = make_pairs(DIGITS, n_pairs=600)  # 300 negative pairs
    s = np.linspace(0, 1, 600)
    assert 0 <= tar_at_far(s, same, 1 / 300) <= 1
    with pytest.raises(ValueError, match="tar_at_far: FAR ≤ 0.001 cannot be measured on 300 negative pairs: .* "
                                         "it needs at least 1000 negative pairs"):
        tar_at_far(s, same, 1e-3)


@pytest.mark.parametrize("far, error, message", [
    (0.0, ValueError, r"tar_at_far: far must be in \(0, 1\); got 0.0"),
    (1.0, ValueError, r"far must be in \(0, 1\)"),
    (-0.1, ValueError, r"far must be in \(0, 1\)"),
    (float("nan"), ValueError, "far must be a finite number"),
    ("1e-2", ArgumentTypeError, "tar_at_far: far must be a number; got '1e-2'"),
])
def test_tar_at_far_bad_far(far, error, message):
    with pytest.raises(error, match=message):
        tar_at_far([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], far)


def test_tar_at_far_needs_positives_and_matching_shapes():
    with pytest.raises(ValueError, match="no positive pair"):
        tar_at_far([0.1, 0.2, 0.3], [0, 0, 0], 0.5)
    with pytest.raises(ValueError, match=r"tar_at_far: scores and same .* got shapes \(3,\) and \(2,\)"):
        tar_at_far([0.1, 0.2, 0.3], [0, 1], 0.5)


# --------------------------------------------------------------------------- a model end to end


def test_embeddings_that_are_the_labels_verify_perfectly():
    x = np.eye(10, dtype=np.float32)[DIGITS]
    report = evaluate_embeddings(lambda t: t * 2.0, x, DIGITS, batch_size=300)
    assert report == {"accuracy": 1.0, "std": 0.0, "tar@far=1e-2": 1.0, "tar@far=1e-3": 1.0, "pairs": 6000}


def test_embeddings_come_in_batches_in_order_and_without_a_graph():
    x = np.random.default_rng(0).normal(size=(25, 3)).astype(np.float32)
    seen = []

    def fn(t):
        seen.append((t.shape[0], mk.is_grad_enabled()))
        return t
    np.testing.assert_array_equal(compute_embeddings(fn, mk.tensor(x), batch_size=10), x)
    assert seen == [(10, False), (10, False), (5, False)]


def test_a_model_is_run_for_its_features_in_eval_mode_and_its_mode_restored():
    mk.manual_seed(0)
    model = StudentModel()
    model.train()
    x = np.random.default_rng(0).normal(size=(7, 1, 28, 28)).astype(np.float32)
    e = compute_embeddings(model, x, batch_size=3)
    with mk.no_grad():
        _, features = model.eval()(mk.tensor(x), return_features=True)
    np.testing.assert_allclose(e, features.numpy(), rtol=1e-5, atol=1e-6)
    assert e.shape == (7, 64)
    model.train()
    compute_embeddings(model, x)
    assert model.training


def test_evaluate_embeddings_bad_input():
    x = np.eye(10, dtype=np.float32)[DIGITS]
    with pytest.raises(TypeError, match="compute_embeddings: Sequential.forward has no return_features argument"):
        evaluate_embeddings(nn.Sequential(nn.Linear(10, 4)), x, DIGITS)
    with pytest.raises(ValueError, match=r"evaluate_embeddings: labels must be \(N,\) for the 2000 inputs"):
        evaluate_embeddings(lambda t: t, x, DIGITS[:10])
    i, j, same = make_pairs(DIGITS, n_pairs=200)
    with pytest.raises(ValueError, match="pairs' same disagrees with labels"):
        evaluate_embeddings(lambda t: t, x, DIGITS, pairs=(i, j, ~same))
    with pytest.raises(ValueError, match="compute_embeddings: 2000 inputs gave 2 embeddings"):
        evaluate_embeddings(lambda t: t[:1], x, DIGITS, pairs=(i, j, same))


@needs_mnist
def test_a_random_student_on_mnist_verifies_above_chance():
    images, labels = mk.data.load_mnist("test", download=False)
    x, y = mk.data.normalize(images[:500]), labels[:500]
    mk.manual_seed(0)
    report = evaluate_embeddings(StudentModel(), x, y, batch_size=250)
    assert 0.4 < report["accuracy"] <= 1.0 and 0.0 <= report["std"] < 0.1
    assert 0.0 <= report["tar@far=1e-3"] <= report["tar@far=1e-2"] <= 1.0 and report["pairs"] == 6000
