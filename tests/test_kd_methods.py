"""The lecture's distillation family beyond logit and feature KD (issue 13): relation-based KD,
online (DML) and self-distillation, AdaDistill's margin softmax and distilled centres, QUD.

Each loss: gradient-checked in float64 on hypothesis-drawn shapes, and compared with a direct
NumPy computation written from the paper's formula (not from the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import kd, nn
from tests.util import np_ce, np_kl, np_softmax


def np_normalize(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def np_smooth_l1(d, beta=1.0):
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def np_distances(f):
    return np.sqrt(((f[:, None, :] - f[None, :, :]) ** 2).sum(axis=2))


embeddings = st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16))

# --------------------------------------------------------------------------- smooth L1 and normalize


@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 5)), beta=st.sampled_from([0.5, 1.0, 2.0]),
       seed=st.integers(0, 2**16))
def test_smooth_l1_matches_its_formula_and_gradchecks(shape, beta, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.uniform(-3, 3, shape), rng.uniform(-3, 3, shape)
    assert F.smooth_l1_loss(mk.tensor(x), mk.tensor(t), beta=beta).item() == pytest.approx(
        np_smooth_l1(x - t, beta).mean(), rel=1e-12)
    away = np.where(np.abs(np.abs(x - t) - beta) < 1e-3, x + 0.01, x)   # not on the kink at |d| = β
    assert mk.gradcheck(lambda a, b: F.smooth_l1_loss(a, b, reduction="sum", beta=beta),
                        mk.tensor(away, requires_grad=True), mk.tensor(t, requires_grad=True))


def test_normalize_gives_unit_rows_and_keeps_zero_rows_zero():
    x = mk.tensor(np.array([[3.0, 4.0], [0.0, 0.0]]), requires_grad=True)
    y = F.normalize(x)
    np.testing.assert_allclose(y.numpy(), [[0.6, 0.8], [0.0, 0.0]])
    y.sum().backward()
    assert np.isfinite(x.grad).all()
    assert mk.gradcheck(F.normalize, mk.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True))


# --------------------------------------------------------------------------- relation-based KD (Park et al. 2019)


@given(embeddings)
def test_rkd_distance_is_the_lectures_sum_over_ordered_pairs(case):
    n, d_s, d_t, seed = case
    rng = np.random.default_rng(seed)
    f_s, f_t = rng.standard_normal((n, d_s)), rng.standard_normal((n, d_t))
    off = ~np.eye(n, dtype=bool)
    want = ((np_distances(f_s) - np_distances(f_t))[off] ** 2).sum()
    assert kd.rkd_distance_loss(f_s, f_t).item() == pytest.approx(want, rel=1e-9)
    ds, dt = np_distances(f_s)[off], np_distances(f_t)[off]
    paper = np_smooth_l1(ds / ds.mean() - dt / dt.mean()).mean()
    assert kd.rkd_distance_loss(f_s, f_t, normalize=True, huber=True).item() == pytest.approx(paper, rel=1e-9)
    for kw in ({}, {"normalize": True, "huber": True}):
        assert mk.gradcheck(lambda a, kw=kw: kd.rkd_distance_loss(a, f_t, **kw), mk.tensor(f_s, requires_grad=True))


def test_rkd_distance_worked_example_and_scale_invariance():
    f_t = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])       # distances 5, 4, 3
    assert kd.rkd_distance_loss(f_t, f_t).item() == pytest.approx(0.0, abs=1e-6)
    assert kd.rkd_distance_loss(2 * f_t, f_t).item() == pytest.approx(2 * (25 + 16 + 9), rel=1e-6)
    assert kd.rkd_distance_loss(2 * f_t, f_t, normalize=True).item() == pytest.approx(0.0, abs=1e-6)


@given(embeddings)
def test_rkd_angle_matches_the_papers_triplet_cosines(case):
    n, d_s, d_t, seed = case
    rng = np.random.default_rng(seed)
    f_s, f_t = rng.standard_normal((n, d_s)), rng.standard_normal((n, d_t))

    def cosines(f):   # e[j, i] = (f_i − f_j)/‖·‖; cos[j, i, k] = ⟨e[j, i], e[j, k]⟩ (0 for a repeated sample)
        diff = f[None, :, :] - f[:, None, :]
        e = diff / np.maximum(np.linalg.norm(diff, axis=2, keepdims=True), 1e-12)
        return np.einsum("jid,jkd->jik", e, e)

    want = np_smooth_l1(cosines(f_s) - cosines(f_t)).mean()
    assert kd.rkd_angle_loss(f_s, f_t).item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert mk.gradcheck(lambda a: kd.rkd_angle_loss(a, f_t), mk.tensor(f_s, requires_grad=True))


def test_rkd_combination_uses_the_published_weights():
    rng = np.random.default_rng(1)
    f_s, f_t = rng.standard_normal((4, 3)), rng.standard_normal((4, 5))
    want = 25 * kd.rkd_distance_loss(f_s, f_t, True, True).item() + 50 * kd.rkd_angle_loss(f_s, f_t).item()
    assert kd.rkd_loss(f_s, f_t).item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: kd.rkd_distance_loss(np.ones((4, 2)), np.ones((3, 2))), r"rkd_distance_loss: .* same N samples"),
    (lambda: kd.rkd_angle_loss(np.ones((1, 2)), np.ones((1, 2))), r"rkd_angle_loss: .* at least 2 samples"),
    (lambda: kd.rkd_distance_loss(np.ones(4), np.ones(4)), r"rkd_distance_loss: embeddings must be 2-D"),
])
def test_rkd_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- online and self-distillation


@given(k=st.integers(2, 4), n=st.integers(1, 4), c=st.integers(2, 5), T=st.sampled_from([1.0, 3.0]),
       seed=st.integers(0, 2**16))
def test_dml_each_peer_gets_ce_plus_mean_kl_to_the_others(k, n, c, T, seed):
    rng = np.random.default_rng(seed)
    zs, y = [rng.standard_normal((n, c)) for _ in range(k)], rng.integers(0, c, n)
    losses = kd.dml_losses(zs, y, T=T)
    for i in range(k):
        want = np_ce(zs[i], y) + T * T * np.mean([np_kl(np_softmax(zs[j], T), np_softmax(zs[i], T))
                                                  for j in range(k) if j != i])
        assert losses[i].item() == pytest.approx(want, rel=1e-9)

        def peer_loss(a, i=i):   # the other peers are constants in peer i's loss
            peers = [mk.tensor(z) for z in zs]
            peers[i] = a
            return kd.dml_losses(peers, y, T=T)[i]

        assert mk.gradcheck(peer_loss, mk.tensor(zs[i], requires_grad=True))


def test_dml_peer_losses_do_not_reach_the_other_peers():
    a, b = mk.randn(3, 4, requires_grad=True), mk.randn(3, 4, requires_grad=True)
    kd.dml_losses([a, b], [0, 1, 2])[0].backward()
    assert a.grad is not None and b.grad is None


@given(k=st.integers(2, 4), n=st.integers(1, 4), c=st.integers(2, 5), lam=st.sampled_from([0.0, 0.3, 1.0]),
       seed=st.integers(0, 2**16))
def test_self_distillation_matches_be_your_own_teacher(k, n, c, lam, seed):
    rng = np.random.default_rng(seed)
    zs, y, T = [rng.standard_normal((n, c)) for _ in range(k)], rng.integers(0, c, n), 3.0
    want = np_ce(zs[-1], y) + sum((1 - lam) * np_ce(z, y) + lam * T * T * np_kl(np_softmax(zs[-1], T),
                                                                                 np_softmax(z, T)) for z in zs[:-1])
    assert kd.self_distillation_loss(zs, y, T=T, lam=lam).item() == pytest.approx(want, rel=1e-9)
    shallow = [mk.tensor(z, requires_grad=True) for z in zs[:-1]]
    assert mk.gradcheck(lambda *a: kd.self_distillation_loss(list(a) + [mk.tensor(zs[-1])], y, T=T, lam=lam),
                        *shallow)


def test_self_distillation_feature_hint():
    rng = np.random.default_rng(0)
    zs, y = [rng.standard_normal((2, 3)) for _ in range(2)], [0, 1]
    feats = [rng.standard_normal((2, 4)) for _ in range(2)]
    without = kd.self_distillation_loss(zs, y).item()
    with_hint = kd.self_distillation_loss(zs, y, features=feats, hint=0.5).item()
    assert with_hint == pytest.approx(without + 0.5 * ((feats[0] - feats[1]) ** 2).mean(), rel=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: kd.dml_losses([mk.randn(2, 3)], [0, 1]), r"dml_losses: online distillation needs at least two peers"),
    (lambda: kd.dml_losses([mk.randn(2, 3), mk.randn(2, 4)], [0, 1]), r"dml_losses: .* same shape"),
    (lambda: kd.self_distillation_loss([mk.randn(2, 3)], [0, 1]), r"self_distillation_loss: needs at least two"),
    (lambda: kd.self_distillation_loss([mk.randn(2, 3)] * 2, [0, 1], lam=2), r"self_distillation_loss: .*\[0, 1\]"),
])
def test_scheme_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


LABEL_LOSSES = {   # every loss with a label term: (name, a call with labels y for logits of 2 samples, 3 classes)
    "kd_loss": lambda y: kd.kd_loss(mk.randn(2, 3), mk.randn(2, 3), y),
    "feature_kd_loss": lambda y: kd.feature_kd_loss(mk.randn(2, 3), mk.randn(2, 4), mk.randn(2, 4), y,
                                                    adapter=lambda f: f),
    "dml_losses": lambda y: kd.dml_losses([mk.randn(2, 3), mk.randn(2, 3)], y),
    "self_distillation_loss": lambda y: kd.self_distillation_loss([mk.randn(2, 3), mk.randn(2, 3)], y),
}


@pytest.mark.parametrize("op", LABEL_LOSSES)
@pytest.mark.parametrize("y, reason", [(np.array([0, 1, 2]), r"labels must have shape \(N,\) = \(2,\)"),
                                       (np.array([0, 3]), r"label 3 is out of range \[0, C\) for C = 3"),
                                       (np.array([-1, 0]), r"label -1 is out of range")])
def test_labels_that_do_not_fit_the_logits_are_refused_in_the_name_of_the_loss_called(op, y, reason):
    """The error names the function the user called, then cross_entropy's reason."""
    with pytest.raises(ValueError, match=rf"^{op}: cross_entropy: .*{reason}"):
        LABEL_LOSSES[op](y)
    LABEL_LOSSES[op](np.array([0, 2]))      # labels that fit: no error


@pytest.mark.parametrize("op", LABEL_LOSSES)
def test_labels_that_are_not_integers_are_a_type_error_in_the_name_of_the_loss_called(op):
    with pytest.raises(TypeError, match=rf"^{op}: cross_entropy: "):
        LABEL_LOSSES[op](np.array(["a", "b"]))


# --------------------------------------------------------------------------- AdaDistill (Boutros et al. 2024)


@given(n=st.integers(1, 4), c=st.integers(2, 5), d=st.integers(2, 4), m1=st.sampled_from([0.0, 0.3, 0.5]),
       m2=st.sampled_from([0.0, 0.35]), seed=st.integers(0, 2**16))
def test_margin_logits_are_arcface_and_cosface(n, c, d, m1, m2, seed):
    rng = np.random.default_rng(seed)
    f, W, y, s = rng.standard_normal((n, d)), rng.standard_normal((c, d)), rng.integers(0, c, n), 16.0
    cos = np_normalize(f) @ np_normalize(W).T
    want = s * cos
    theta = np.arccos(np.clip(cos[np.arange(n), y], -1, 1))
    want[np.arange(n), y] = s * (np.cos(theta + m1) - m2)
    np.testing.assert_allclose(kd.margin_logits(f, W, y, s, m1, m2).numpy(), want, rtol=1e-9, atol=1e-9)
    assert mk.gradcheck(lambda a, b: kd.margin_logits(a, b, y, s, m1, m2), mk.tensor(f, requires_grad=True),
                        mk.tensor(W, requires_grad=True))


def test_margin_zero_is_the_plain_cosine_softmax_and_the_margin_makes_the_target_harder():
    f, W, y = np.array([[1.0, 0.0]]), np.array([[1.0, 0.2], [0.0, 1.0]]), np.array([0])
    plain = kd.margin_logits(f, W, y, s=10.0).numpy()
    arc = kd.margin_logits(f, W, y, s=10.0, m1=0.5).numpy()
    np.testing.assert_allclose(plain[0], 10 * np_normalize(W)[:, 0])
    assert arc[0, 0] < plain[0, 0] and arc[0, 1] == plain[0, 1]


@given(n=st.integers(1, 5), d=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_adadistill_alpha_and_hard_mining_alpha(n, d, seed):
    rng = np.random.default_rng(seed)
    f_s, f_t, w_y = (rng.standard_normal((n, d)) for _ in range(3))
    cos_st = (np_normalize(f_s) * np_normalize(f_t)).sum(axis=1)
    cos_wt = (np_normalize(w_y) * np_normalize(f_t)).sum(axis=1)
    np.testing.assert_allclose(kd.adadistill_alpha(f_s, f_t).numpy(), np.clip(cos_st, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(kd.adadistill_alpha(f_s, f_t, w_y).numpy(), np.clip(cos_st * cos_wt, 0, 1),
                               rtol=1e-12, atol=1e-15)


def test_distill_centres_mixes_each_class_centre_with_the_teachers_embedding_in_batch_order():
    W = nn.Parameter(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    y, f_t, alpha = np.array([0, 2, 0]), np.array([[0.0, 2.0], [4.0, 0.0], [2.0, 2.0]]), np.array([0.5, 0.25, 0.5])
    version = W._version
    kd.distill_centres(W, y, f_t, alpha)
    w0 = 0.5 * (0.5 * np.array([1.0, 0.0]) + 0.5 * f_t[0]) + 0.5 * f_t[2]     # class 0 updated twice, in order
    np.testing.assert_allclose(W.numpy(), [w0, [0.0, 1.0], 0.25 * np.array([1.0, 1.0]) + 0.75 * f_t[1]])
    assert W._version == version + 1


def test_margin_softmax_with_distilled_centres_trains():
    """The AdaDistill step end to end: margin logits on centres that are distilled each step."""
    mk.manual_seed(0)
    rng = np.random.default_rng(0)
    f_t = np_normalize(rng.standard_normal((3, 4)))[np.array([0, 1, 2, 0, 1, 2])]    # teacher: 3 clean classes
    y = np.array([0, 1, 2, 0, 1, 2])
    student = nn.Linear(5, 4)
    student.weight.data = student.weight.data.astype(np.float64)
    student.bias.data = student.bias.data.astype(np.float64)
    W = nn.Parameter(rng.standard_normal((3, 4)))
    x = rng.standard_normal((6, 5))
    opt = mk.optim.SGD(list(student.parameters()), lr=0.5)
    losses = []
    for _ in range(30):
        f_s = student(mk.tensor(x))
        kd.distill_centres(W, y, f_t, kd.adadistill_alpha(f_s, f_t, W.numpy()[y]))
        loss = F.cross_entropy(kd.margin_logits(f_s, W, y, s=8.0, m1=0.3), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("call, message", [
    (lambda: kd.margin_logits(np.ones((2, 3)), np.ones((4, 3)), [0, 1], m1=math.pi), r"margin_logits: m1 .* \[0, "),
    (lambda: kd.margin_logits(np.ones((2, 3)), np.ones((4, 3)), [0, 1], s=0), r"margin_logits: s must be > 0"),
    (lambda: kd.margin_logits(np.ones((2, 3)), np.ones((4, 2)), [0, 1]), r"margin_logits: .* same d"),
    (lambda: kd.adadistill_alpha(np.ones((2, 3)), np.ones((2, 4))), r"adadistill_alpha: .* \(N, d\)"),
    (lambda: kd.distill_centres(nn.Parameter(np.eye(3)), [0, 1], np.ones((2, 3)), [0.5, np.nan]),
     r"distill_centres: alpha must be in \[0, 1\] .* got alpha\[1\] = nan \(1 of 2 not in \[0, 1\]\)"),
    (lambda: kd.distill_centres(nn.Parameter(np.eye(3)), [0, 1], np.ones((2, 3)), [1.5, -1.0]),
     r"distill_centres: .* got alpha\[0\] = 1.5 \(2 of 2 not in \[0, 1\]\)"),
])
def test_adadistill_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_distill_centres_refuses_centres_that_are_not_a_tensor():
    """The centres change in place: a bare array (a copy, say W.numpy()) would leave the head's
    weight unchanged, so it is a TypeError naming the function, not an AttributeError."""
    with pytest.raises(TypeError, match=r"distill_centres: W must be the margin head's weight.*got ndarray"):
        kd.distill_centres(np.eye(3), [0, 1], np.ones((2, 3)), [0.5, 0.5])


# --------------------------------------------------------------------------- QUD (Kolf et al. 2024)


@given(n=st.integers(1, 5), q=st.integers(1, 8), d=st.integers(2, 4), tau=st.sampled_from([0.05, 0.1, 0.4]),
       seed=st.integers(0, 2**16))
def test_qud_is_infonce_against_the_queue(n, q, d, tau, seed):
    rng = np.random.default_rng(seed)
    f_s, f_t, queue = rng.standard_normal((n, d)), rng.standard_normal((n, d)), rng.standard_normal((q, d))
    f, pos, neg = np_normalize(f_s), np_normalize(f_t), np_normalize(queue)
    a = (f * pos).sum(axis=1) / tau
    b = f @ neg.T / tau
    m = np.maximum(a, b.max(axis=1))
    want = np.mean(-(a - m) + np.log(np.exp(a - m) + np.exp(b - m[:, None]).sum(axis=1)))
    assert kd.qud_loss(f_s, f_t, queue, tau).item() == pytest.approx(want, rel=1e-9)
    assert mk.gradcheck(lambda x: kd.qud_loss(x, f_t, queue, tau), mk.tensor(f_s, requires_grad=True))


def test_qud_uses_no_labels_and_prefers_the_teachers_own_embedding():
    f_t = np.eye(3)
    assert kd.qud_loss(f_t, f_t, np.eye(3)[[1, 2]], 0.1).item() < kd.qud_loss(f_t[[1, 2, 0]], f_t, np.eye(3)[[1, 2]],
                                                                               0.1).item()


def test_embedding_queue_is_first_in_first_out():
    q = kd.EmbeddingQueue(4, 2)
    assert len(q) == 0 and q.embeddings.shape == (0, 2)
    q.push(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    q.push(mk.tensor(np.array([[4.0, 4.0], [5.0, 5.0]])))
    np.testing.assert_array_equal(q.embeddings[:, 0], [2, 3, 4, 5])
    q.push(np.arange(12.0).reshape(6, 2))   # larger than the queue: its newest rows
    np.testing.assert_array_equal(q.embeddings[:, 0], [4, 6, 8, 10])


@pytest.mark.parametrize("call, message", [
    (lambda: kd.qud_loss(np.ones((2, 3)), np.ones((2, 3)), np.ones((4, 3)), tau=0), r"qud_loss: the temperature"),
    (lambda: kd.qud_loss(np.ones((2, 3)), np.ones((2, 3)), np.ones((0, 3))), r"qud_loss: the queue .* n ≥ 1"),
    (lambda: kd.qud_loss(np.ones((2, 3)), np.ones((2, 4)), np.ones((4, 4))), r"qud_loss: .* adapter"),
    (lambda: kd.EmbeddingQueue(0, 3), r"EmbeddingQueue: size must be positive"),
    (lambda: kd.EmbeddingQueue(4, 3).push(np.ones((2, 2))), r"EmbeddingQueue.push: expected embeddings \(N, 3\)"),
])
def test_qud_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- found by a sceptical trial, fixed by kind


def test_rkd_distances_of_close_points_are_right_in_float32():
    """‖a‖² + ‖b‖² − 2⟨a, b⟩ cancels in float32: two points 0.004 apart, norms near 40, came out
    1e-6 apart, and the pair's gradient pointed the wrong way. From the differences: right."""
    f = (np.random.default_rng(1).normal(size=(4, 16)) * 10).astype(np.float32)
    f[1] = f[0] + np.float32(1e-3)
    want = np_distances(f.astype(np.float64))
    got = kd.relation.pairwise_distances(mk.tensor(f)).numpy()
    np.testing.assert_allclose(got[0, 1], want[0, 1], rtol=1e-3)
    f_t = np.random.default_rng(2).normal(size=(4, 8))
    grads = {}
    for dtype in (np.float32, np.float64):
        s = mk.tensor(f.astype(dtype), requires_grad=True)
        kd.rkd_distance_loss(s, f_t.astype(dtype), normalize=True, huber=True).backward()
        grads[dtype] = s.grad
    np.testing.assert_allclose(grads[np.float32][:2], grads[np.float64][:2], rtol=1e-2, atol=1e-6)


def test_coincident_points_give_a_zero_vector_and_no_gradient_not_one_over_eps():
    """Where the angle is undefined (two coincident student points, a zero embedding) the unit
    vector is 0 and so is its gradient: x/eps's gradient, 1e12, would throw the weights out."""
    s = mk.tensor(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, -1.0]]), requires_grad=True)
    f_t = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    kd.rkd_angle_loss(s, f_t).backward()
    assert np.abs(s.grad).max() < 10
    zero = mk.tensor(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]), requires_grad=True)
    y = F.normalize(zero)
    np.testing.assert_array_equal(y.numpy(), [[0, 0, 0], [1 / 3, 2 / 3, 2 / 3]])
    (y * mk.tensor(np.ones((2, 3)))).sum().backward()
    np.testing.assert_array_equal(zero.grad[0], 0.0)
    for loss in (lambda e: kd.qud_loss(e, np.ones((2, 3)), np.eye(3), 0.1),
                 lambda e: F.cross_entropy(kd.margin_logits(e, np.eye(3), [0, 1], s=64.0, m1=0.5), [0, 1])):
        e = mk.tensor(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]]), requires_grad=True)
        loss(e).backward()
        assert np.isfinite(e.grad).all() and np.abs(e.grad).max() < 100


def test_normalize_outside_the_eps_ball_is_bit_for_bit_x_over_its_norm():
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    want = x / np.sqrt(np.maximum((x * x).sum(axis=1, keepdims=True), np.float32(1e-24)))
    np.testing.assert_array_equal(F.normalize(mk.tensor(x)).numpy(), want)


def test_float16_embeddings_give_finite_losses_and_gradients():
    """float16's smallest normal is 6.1e-05: the floors 1e-12 and 1e-24 under the square roots
    rounded to 0 there (√0: NaN in every angle, every gradient); the Numba kernels, which
    compile no float16, raised from deep inside Numba."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)).astype(np.float16), rng.normal(size=(4, 5)).astype(np.float16)
    np.testing.assert_array_equal(F.normalize(mk.tensor(np.zeros((1, 3), np.float16))).numpy(), 0)
    for loss in (lambda s: kd.rkd_angle_loss(s, b), lambda s: kd.rkd_distance_loss(s, b),
                 lambda s: kd.rkd_loss(s, b), lambda s: kd.qud_loss(s, a[::-1].copy(), a, tau=0.5),
                 lambda s: F.cross_entropy(kd.margin_logits(s, a, [0, 1, 2, 3], s=8.0, m1=0.5), [0, 1, 2, 3])):
        s = mk.tensor(a, requires_grad=True)
        value = loss(s)
        value.backward()
        assert value.dtype == np.float16 and np.isfinite(value.item())
        assert s.grad.dtype == np.float16 and np.isfinite(s.grad).all()


TEACHER_CASTS = {   # every loss with a teacher's side: a float32 student, a float64 teacher (array) → float32
    "kd_loss": lambda s, t: kd.kd_loss(s, t, [0, 1, 2]),
    "soft_loss": lambda s, t: kd.soft_loss(s, t),
    "feature_loss": lambda s, t: kd.feature_loss(s, t),
    "rkd_distance_loss": lambda s, t: kd.rkd_distance_loss(s, t),
    "rkd_angle_loss": lambda s, t: kd.rkd_angle_loss(s, t),
    "rkd_loss": lambda s, t: kd.rkd_loss(s, t),
    "qud_loss": lambda s, t: kd.qud_loss(s, t, t[::-1].copy(), 0.5),
    "dml_losses": lambda s, t: kd.dml_losses([s, mk.tensor(t)], [0, 1, 2])[0],
    "quantface_loss": lambda s, t: __import__("minikd.quant", fromlist=["x"]).quantface_loss(s, s, t, t),
}


@pytest.mark.parametrize("op", TEACHER_CASTS)
def test_a_float64_teacher_leaves_a_float32_students_loss_and_gradient_float32(op):
    rng = np.random.default_rng(0)
    s = mk.tensor(rng.normal(size=(3, 4)).astype(np.float32), requires_grad=True)
    loss = TEACHER_CASTS[op](s, rng.normal(size=(3, 4)))
    loss.backward()
    assert loss.dtype == np.float32 and s.grad.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda: kd.rkd_distance_loss(np.arange(6).reshape(3, 2), np.ones((3, 2))), r"rkd_distance_loss: f_s must hold"),
    (lambda: kd.rkd_angle_loss(np.ones((3, 2)), np.arange(6).reshape(3, 2)), r"rkd_angle_loss: f_t must hold"),
    (lambda: kd.rkd_loss(np.arange(6).reshape(3, 2), np.ones((3, 2))), r"rkd_distance_loss: f_s must hold"),
    (lambda: kd.qud_loss(np.arange(6).reshape(3, 2), np.ones((3, 2)), np.ones((2, 2))), r"qud_loss: f_s must hold"),
    (lambda: kd.margin_logits(np.arange(6).reshape(3, 2), np.ones((2, 2)), [0, 1, 0]), r"margin_logits: f must hold"),
    (lambda: kd.adadistill_alpha(np.arange(6).reshape(3, 2), np.ones((3, 2))), r"adadistill_alpha: f_s must hold"),
    (lambda: F.normalize(mk.tensor(np.arange(3))), r"normalize: x must hold"),
    (lambda: kd.feature_kd_loss(np.zeros((2, 3)), np.zeros((2, 4)), np.ones((2, 4)), [0, 1], None,
                                return_parts="no"), r"feature_kd_loss: return_parts"),
    (lambda: kd.self_distillation_loss([np.ones((2, 3), np.float32), np.ones((2, 3))], [0, 1]),
     r"self_distillation_loss: every exit's logits must have one dtype"),
])
def test_wrong_types_are_a_type_error_in_the_name_of_the_function_called(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: kd.distill_centres(mk.tensor(np.zeros(4)), [0], np.zeros((1, 4)), [0.5]),
     r"distill_centres: W must be the centres \(C, d\).*got shape \(4,\)"),
    (lambda: kd.margin_logits(np.ones((1, 2), np.float32), np.ones((2, 2), np.float32), [0], s=1e39),
     r"margin_logits: s = 1e\+39 does not fit the embeddings' float32"),
    (lambda: kd.qud_loss(np.ones((1, 2), np.float32), np.ones((1, 2)), np.ones((1, 2)), tau=1e-40),
     r"qud_loss: τ = 1e-40 is too small for the embeddings' float32"),
    (lambda: kd.self_distillation_loss([np.ones((3, 4))] * 2, [0, 1, 2], features=[np.ones((2, 5))] * 2, hint=1.0),
     r"self_distillation_loss: features must be one per exit .* N = 3"),
    (lambda: kd.self_distillation_loss([np.ones((3, 4))] * 2, [0, 1, 2], hint=1.0),
     r"self_distillation_loss: the hint term \(hint=1.0\) needs the exits' features"),
    (lambda: kd.dml_losses([np.ones((0, 3)), np.ones((0, 3))], np.zeros(0, dtype=int)), r"^dml_losses: "),
])
def test_bad_arguments_found_by_the_trial_are_value_errors_that_name_the_function(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_self_distillation_takes_features_as_arrays_or_lists():
    zs, feats = [np.ones((2, 3)), np.zeros((2, 3))], [[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 6.0]]]
    got = kd.self_distillation_loss(zs, [0, 1], features=feats, hint=1.0).item()
    assert got == pytest.approx(kd.self_distillation_loss(zs, [0, 1]).item() + 4 / 4, rel=1e-12)


def test_the_queues_embeddings_are_a_copy_that_a_later_push_leaves_alone():
    q = kd.EmbeddingQueue(3, 1)
    q.push(np.array([[1.0], [2.0]]))
    held = q.embeddings
    q.push(np.array([[3.0], [4.0]]))
    np.testing.assert_array_equal(held.ravel(), [1.0, 2.0])
    np.testing.assert_array_equal(q.embeddings.ravel(), [2.0, 3.0, 4.0])
