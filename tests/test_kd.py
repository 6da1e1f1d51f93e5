"""Knowledge distillation: minikd.kd (logit KD with T², feature KD with adapters).

The lecture's recap exercises are worked out BY HAND below (``math.exp`` / ``math.log`` on
the numbers of the slides), independent of the code under test; the properties (T² keeps
the soft gradients' size, the teacher gets no gradient, stability at ±1000) are measured.
This is the one place the recap exercises are tested: through ``minikd.kd`` and through the
ops it wraps (``softmax``, ``kl_divergence``, ``cross_entropy`` of ``minikd.ops.loss``).
"""

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import kd, nn
from minikd.models import StudentModel, TeacherModel
from minikd.ops.loss import cross_entropy, kl_divergence, softmax
from tests.util import check_grad, ref_kl, ref_log_softmax, ref_softmax

# --------------------------------------------------------------------------- plain-Python references


def ref_kd(zs, zt, labels, T, lam, t_squared=True):
    """(1 − λ)·CE(y, p_s) + λ·T²·KL(p_t ‖ p_s^T), batch means, in float64 loops (log space, so that
    logits of ±1000 work: KL = Σ p_t (log p_t − log p_s) over the terms with p_t ≠ 0)."""
    N = len(zs)
    hard = sum(-ref_log_softmax(list(zs[n]))[labels[n]] for n in range(N)) / N
    soft = 0.0
    for n in range(N):
        log_pt, log_ps = ref_log_softmax(list(zt[n]), T), ref_log_softmax(list(zs[n]), T)
        soft += sum(math.exp(a) * (a - b) for a, b in zip(log_pt, log_ps) if math.exp(a) != 0) / N
    return (1 - lam) * hard + lam * (T * T if t_squared else 1.0) * soft, hard, soft


# --------------------------------------------------------------------------- the lecture's recap exercises


def test_recap_softmax_with_temperature():
    """z = [2.0, 1.0, 0.1] at T = 1 and T = 2, written out term by term."""
    # T = 1: e^2, e^1, e^0.1
    e1 = [math.exp(2.0), math.exp(1.0), math.exp(0.1)]
    s1 = e1[0] + e1[1] + e1[2]                       # 7.389 + 2.718 + 1.105 = 11.212
    by_hand_T1 = [e1[0] / s1, e1[1] / s1, e1[2] / s1]
    # T = 2: e^1, e^0.5, e^0.05
    e2 = [math.exp(1.0), math.exp(0.5), math.exp(0.05)]
    s2 = e2[0] + e2[1] + e2[2]                       # 2.718 + 1.649 + 1.051 = 5.418
    by_hand_T2 = [e2[0] / s2, e2[1] / s2, e2[2] / s2]
    np.testing.assert_allclose(by_hand_T1, [0.659, 0.242, 0.099], atol=5e-4)   # the slide's numbers
    np.testing.assert_allclose(by_hand_T2, [0.502, 0.304, 0.194], atol=5e-4)
    for T, by_hand in ((1, by_hand_T1), (2, by_hand_T2)):
        p = kd.softmax_with_temperature([2.0, 1.0, 0.1], T=T)
        assert isinstance(p, mk.Tensor)
        np.testing.assert_allclose(p.numpy(), by_hand, rtol=1e-6)
        p64 = kd.softmax_with_temperature(np.array([2.0, 1.0, 0.1]), T=T)   # an array keeps float64
        assert p64.dtype == np.float64
        np.testing.assert_allclose(p64.numpy(), by_hand, rtol=1e-14)
    # higher T: softer (the largest probability drops, the smallest rises)
    assert by_hand_T2[0] < by_hand_T1[0] and by_hand_T2[2] > by_hand_T1[2]
    # to four digits, and through the op that kd wraps (F.softmax(z, T=T)), in float32
    for T, by_hand, slide in [(1.0, by_hand_T1, [0.6590, 0.2424, 0.0986]), (2.0, by_hand_T2, [0.5017, 0.3043, 0.1940])]:
        np.testing.assert_allclose(by_hand, slide, atol=1e-4)  # the slide's numbers are the formula's
        p = softmax(mk.tensor([2.0, 1.0, 0.1]), T=T)
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.numpy(), by_hand, atol=1e-4)
        np.testing.assert_allclose(p.numpy(), slide, atol=1e-4)


def test_recap_kl_divergence():
    """D_KL(P_t ‖ P_s) for P_t = [0.7, 0.2, 0.1], P_s = [0.6, 0.3, 0.1]."""
    by_hand = 0.7 * math.log(0.7 / 0.6) + 0.2 * math.log(0.2 / 0.3) + 0.1 * math.log(0.1 / 0.1)
    assert by_hand == pytest.approx(0.02681, abs=1e-5)   # 0.10791 − 0.08109 + 0
    d = kd.kl_divergence([0.7, 0.2, 0.1], [0.6, 0.3, 0.1])
    assert isinstance(d, mk.Tensor) and d.shape == ()
    assert d.item() == pytest.approx(by_hand, rel=1e-5)     # float32 (lists become float32 tensors)
    assert kd.kl_divergence(np.array([0.7, 0.2, 0.1]), np.array([0.6, 0.3, 0.1])).item() == pytest.approx(
        by_hand, rel=1e-14)
    # asymmetric
    reverse = 0.6 * math.log(0.6 / 0.7) + 0.3 * math.log(0.3 / 0.2) + 0.1 * math.log(0.1 / 0.1)
    assert kd.kl_divergence([0.6, 0.3, 0.1], [0.7, 0.2, 0.1]).item() == pytest.approx(reverse, rel=1e-5)
    assert reverse != pytest.approx(by_hand, rel=1e-2)
    # through the op that kd wraps, in float32 and in float64
    P, Q = [0.7, 0.2, 0.1], [0.6, 0.3, 0.1]
    assert kl_divergence(mk.tensor(P), mk.tensor(Q)).item() == pytest.approx(by_hand, rel=1e-5)
    assert kl_divergence(np.array(P), np.array(Q)).item() == pytest.approx(by_hand, rel=1e-12)  # float64 stays


def _recap_by_hand(T):
    """The distillation-loss exercise: student [1.5, 2.5, 0.3], teacher [1.0, 3.0, 0.5], label 1."""
    et = [math.exp(1.0 / T), math.exp(3.0 / T), math.exp(0.5 / T)]
    es = [math.exp(1.5 / T), math.exp(2.5 / T), math.exp(0.3 / T)]
    p_t = [v / (et[0] + et[1] + et[2]) for v in et]
    p_s_T = [v / (es[0] + es[1] + es[2]) for v in es]
    soft = (p_t[0] * math.log(p_t[0] / p_s_T[0]) + p_t[1] * math.log(p_t[1] / p_s_T[1])
            + p_t[2] * math.log(p_t[2] / p_s_T[2]))
    e = [math.exp(1.5), math.exp(2.5), math.exp(0.3)]
    hard = -math.log(e[1] / (e[0] + e[1] + e[2]))    # −log p_s(1) at T = 1
    return soft, hard


@pytest.mark.parametrize("T, soft_expected, recap_total, lecture_total", [
    (2.0, 0.02179, 0.13260, 0.17836),   # the exercise's T = 2
    (8.0, 0.0014065, 0.11833, 0.18036),  # the recap code calls it with T = 8.0
])
def test_recap_distillation_loss(T, soft_expected, recap_total, lecture_total):
    alpha = 0.7
    soft, hard = _recap_by_hand(T)
    assert hard == pytest.approx(0.39115, abs=1e-5)
    assert soft == pytest.approx(soft_expected, rel=1e-3)
    recap = alpha * soft + (1 - alpha) * hard                 # the recap code: no T²
    lecture = (1 - alpha) * hard + alpha * T * T * soft       # the lecture's L_KD, α as λ
    assert recap == pytest.approx(recap_total, abs=1e-5)
    assert lecture == pytest.approx(lecture_total, abs=1e-5)

    zs, zt = [1.5, 2.5, 0.3], [1.0, 3.0, 0.5]       # lists: float32 tensors, as in training
    total, parts = kd.kd_loss(zs, zt, 1, T=T, lam=alpha, t_squared=False, return_parts=True)
    assert set(parts) == {"hard", "soft", "total"} and parts["total"] is total
    assert total.dtype == np.float32
    assert parts["soft"].item() == pytest.approx(soft, rel=1e-4)
    assert parts["hard"].item() == pytest.approx(hard, rel=1e-6)
    assert total.item() == pytest.approx(recap, rel=1e-5)
    assert kd.kd_loss(zs, zt, 1, T=T, lam=alpha).item() == pytest.approx(lecture, rel=1e-5)
    # in float64, as a batch of one (N, C) with labels (N,): the hand computation to the last digits
    total, parts = kd.kd_loss(np.array([zs]), np.array([zt]), np.array([1]), T=T, lam=alpha, return_parts=True)
    assert total.dtype == np.float64
    assert parts["soft"].item() == pytest.approx(soft, rel=1e-12)
    assert total.item() == pytest.approx(lecture, rel=1e-12)
    assert kd.kd_loss(np.array(zs), np.array(zt), 1, T=T, lam=alpha, t_squared=False).item() == pytest.approx(
        recap, rel=1e-12)


def test_recap_distillation_loss_parts_through_the_ops():
    """The exercise's soft loss (KL of the probabilities softened at T = 2) and hard loss (−log p of
    the true class), through the ops kd wraps: softmax, kl_divergence, cross_entropy."""
    student, teacher, T = [1.5, 2.5, 0.3], [1.0, 3.0, 0.5], 2.0
    soft, hard = _recap_by_hand(T)
    p_t = softmax(mk.tensor(teacher), T=T)
    p_s = softmax(mk.tensor(student), T=T)
    assert kl_divergence(p_t, p_s).item() == pytest.approx(soft, rel=1e-5)
    assert cross_entropy(mk.tensor([student]), np.array([1])).item() == pytest.approx(hard, rel=1e-6)
    assert cross_entropy(mk.tensor(student), 1).item() == pytest.approx(hard, rel=1e-6)  # one sample (C,)


def test_slide_cat_lion_horse():
    """The slide's softened teacher (0.64, 0.27, 0.09) and student (0.57, 0.30, 0.13).

    The slides do not state T, and no T gives those numbers from the logits [10, 2, −1]: at any
    temperature log(p_cat/p_lion) / log(p_lion/p_horse) = (10 − 2) / (2 − (−1)) = 8/3, while the
    slide's numbers give ≈ 0.79. So only the KL example is checked against them.
    """
    slide_ratio = math.log(0.64 / 0.27) / math.log(0.27 / 0.09)
    for T in (1.0, 2.0, 5.0, 10.0):
        p = kd.softmax_with_temperature([10.0, 2.0, -1.0], T=T).numpy().astype(np.float64)
        assert math.log(p[0] / p[1]) / math.log(p[1] / p[2]) == pytest.approx(8 / 3, rel=1e-4)
    assert slide_ratio == pytest.approx(0.786, abs=1e-3)
    by_hand = 0.64 * math.log(0.64 / 0.57) + 0.27 * math.log(0.27 / 0.30) + 0.09 * math.log(0.09 / 0.13)
    assert by_hand == pytest.approx(0.01259, abs=1e-5)   # 0.07413 − 0.02845 − 0.03309
    assert kd.kl_divergence([0.64, 0.27, 0.09], [0.57, 0.30, 0.13]).item() == pytest.approx(by_hand, rel=1e-5)
    # through the op that kd wraps; identical distributions: 0;  asymmetric: D(P‖Q) ≠ D(Q‖P)
    P, Q = [0.64, 0.27, 0.09], [0.57, 0.30, 0.13]
    assert kl_divergence(mk.tensor(P), mk.tensor(Q)).item() == pytest.approx(ref_kl(P, Q), rel=1e-5)
    assert kl_divergence(mk.tensor(P), mk.tensor(P)).item() == pytest.approx(0.0, abs=1e-7)
    assert kl_divergence(mk.tensor(Q), mk.tensor(P)).item() == pytest.approx(ref_kl(Q, P), rel=1e-5)
    assert ref_kl(Q, P) != pytest.approx(ref_kl(P, Q), rel=1e-3)


# --------------------------------------------------------------------------- softmax_with_temperature, kl_divergence


def test_kl_divergence_batch_mean_and_zeros():
    P = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    Q = np.array([[0.25, 0.25, 0.5], [0.1, 0.6, 0.3]])
    d = kd.kl_divergence(P, Q)
    assert d.shape == () and d.item() == pytest.approx((ref_kl(P[0], Q[0]) + ref_kl(P[1], Q[1])) / 2, rel=1e-12)
    with pytest.raises(ValueError, match=r"kl_divergence: expected distributions of shape \(C,\) or \(N, C\)"):
        kd.kl_divergence(np.ones((2, 2, 2)) / 2, np.ones((2, 2, 2)) / 2)
    with pytest.raises(ValueError, match=r"P and Q must have the same shape"):
        kd.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])


def test_softmax_with_temperature_batch_is_per_row():
    z = np.random.default_rng(0).normal(size=(3, 4)) * 3
    p = kd.softmax_with_temperature(mk.tensor(z), T=2.5).numpy()
    for n in range(3):
        np.testing.assert_allclose(p[n], ref_softmax(list(z[n]), 2.5), rtol=1e-12)
    with pytest.raises(ValueError, match=r"softmax_with_temperature: the temperature T .* got T=0"):
        kd.softmax_with_temperature(z, T=0)


# --------------------------------------------------------------------------- kd_loss


def test_kd_loss_matches_loops_and_probability_space_kl():
    rng = np.random.default_rng(1)
    zs, zt = rng.normal(size=(2, 6, 5)) * 2
    y = rng.integers(0, 5, size=6)
    for T, lam, t_squared in [(1.0, 0.5, True), (3.0, 0.5, True), (4.0, 0.9, False), (0.5, 0.2, True)]:
        total, parts = kd.kd_loss(mk.tensor(zs), mk.tensor(zt), y, T=T, lam=lam, t_squared=t_squared,
                                  return_parts=True)
        expected, hard, soft = ref_kd(zs, zt, y, T, lam, t_squared)
        assert total.item() == pytest.approx(expected, rel=1e-10)
        assert parts["hard"].item() == pytest.approx(hard, rel=1e-10)
        assert parts["soft"].item() == pytest.approx(soft, rel=1e-10)
        # the log-space soft loss is the probability-space D_KL(p_t ‖ p_s) of the lecture
        prob_space = kd.kl_divergence(kd.softmax_with_temperature(zt, T), kd.softmax_with_temperature(zs, T))
        assert parts["soft"].item() == pytest.approx(prob_space.item(), rel=1e-10)
        assert kd.soft_loss(zs, zt, T).item() == pytest.approx(soft, rel=1e-10)


def test_lambda_endpoints():
    rng = np.random.default_rng(2)
    zs, zt = rng.normal(size=(2, 4, 3))
    y = np.array([0, 1, 2, 1])
    assert kd.kd_loss(zs, zt, y, T=3.0, lam=0.0).item() == pytest.approx(cross_entropy(zs, y).item(), rel=1e-12)
    soft = kd.soft_loss(zs, zt, T=3.0).item()
    assert kd.kd_loss(zs, zt, y, T=3.0, lam=1.0).item() == pytest.approx(9.0 * soft, rel=1e-12)
    assert kd.kd_loss(zs, zt, y, T=3.0, lam=1.0, t_squared=False).item() == pytest.approx(soft, rel=1e-12)


def test_gradient_is_the_closed_form():
    """dL_KD/dz_s = [(1 − λ)(p_s − onehot(y)) + λ·T²·(p_s^T − p_t)/T] / N."""
    rng = np.random.default_rng(3)
    zs, zt = rng.normal(size=(2, 3, 4)) * 2
    y = np.array([3, 0, 1])
    T, lam = 2.5, 0.6
    s = mk.tensor(zs, requires_grad=True)
    kd.kd_loss(s, zt, y, T=T, lam=lam).backward()
    expected = np.array([[(1 - lam) * (ref_softmax(list(zs[n]))[k] - (k == y[n]))
                          + lam * T * (ref_softmax(list(zs[n]), T)[k] - ref_softmax(list(zt[n]), T)[k])
                          for k in range(4)] for n in range(3)]) / 3
    np.testing.assert_allclose(s.grad, expected, rtol=1e-10, atol=1e-14)


def test_student_equal_to_teacher_has_no_soft_loss():
    z = np.random.default_rng(4).normal(size=(5, 7))
    s = mk.tensor(z, requires_grad=True)
    total = kd.kd_loss(s, z, np.zeros(5, dtype=np.int64), T=4.0, lam=1.0)
    assert total.item() == pytest.approx(0.0, abs=1e-12)
    total.backward()
    np.testing.assert_allclose(s.grad, 0.0, atol=1e-14)


def test_huge_logits_and_zero_teacher_probabilities_stay_finite():
    """Teacher logits of ±1000 make p_t exactly 0 in places; the student's too: no inf, no NaN."""
    zt = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0]], dtype=np.float32)
    zs = np.array([[-1000.0, 1000.0, 0.5], [1000.0, -1000.0, 999.0]], dtype=np.float32)
    y = np.array([0, 2])
    for T in (1.0, 3.0):
        p_t = kd.softmax_with_temperature(zt, T).numpy()
        assert (p_t == 0).any()                        # there are exact zeros in p_t
        s = mk.tensor(zs, requires_grad=True)
        total, parts = kd.kd_loss(s, zt, y, T=T, lam=0.5, return_parts=True)
        assert total.dtype == np.float32 and np.isfinite(total.item())
        expected, hard, soft = ref_kd(zs.astype(np.float64), zt.astype(np.float64), y, T, 0.5)
        assert parts["soft"].item() == pytest.approx(soft, rel=1e-4)
        assert total.item() == pytest.approx(expected, rel=1e-4)
        total.backward()
        assert np.all(np.isfinite(s.grad))
        assert np.abs(s.grad).max() <= 1.0 + 0.5 * T   # |p − q| ≤ 1 in each term


@given(st.integers(1, 4), st.integers(2, 6), st.floats(0.5, 8.0), st.floats(0.0, 1.0), st.booleans(),
       st.integers(0, 2**16))
def test_gradcheck_kd_loss(n, c, T, lam, t_squared, seed):
    rng = np.random.default_rng(seed)
    zs, zt = rng.normal(size=(2, n, c)) * 2
    y = rng.integers(0, c, size=n)
    check_grad(lambda s, t, labels: kd.kd_loss(s, t, labels, T=T, lam=lam, t_squared=t_squared), zs, zt, y,
               wrt=[0])


@pytest.mark.parametrize("T, lam, t_squared", [(1.0, 0.5, True), (2.0, 0.7, False), (2.0, 0.7, True),
                                                (8.0, 0.3, True), (20.0, 1.0, False)])
def test_gradcheck_kd_loss_single_sample_and_soft_targets(T, lam, t_squared):
    rng = np.random.default_rng(5)
    zs, zt = rng.normal(size=(2, 5)) * 3
    check_grad(lambda s: kd.kd_loss(s, zt, 2, T=T, lam=lam, t_squared=t_squared), zs)
    targets = rng.dirichlet(np.ones(5), size=3)          # soft labels (N, C) for the hard term
    zs3, zt3 = rng.normal(size=(2, 3, 5))
    check_grad(lambda s: kd.kd_loss(s, zt3, targets, T=T, lam=lam, t_squared=t_squared), zs3)


@given(st.integers(1, 4), st.integers(2, 6), st.booleans(), st.floats(0.5, 10.0), st.integers(0, 2**16))
def test_gradcheck_soft_loss(n, c, batched, T, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) if batched else (c,)
    zs, zt = rng.normal(size=shape) * 3, rng.normal(size=shape) * 3
    check_grad(lambda s: kd.soft_loss(s, zt, T=T), zs)


def test_soft_loss_is_accurate_in_float32():
    """Σ p_t (log p_t − log p_s) term by term: a small D_KL at high T keeps its digits in float32."""
    rng = np.random.default_rng(13)
    zs, zt = rng.normal(size=(2, 32, 10))
    for T in (1.0, 4.0, 16.0):
        exact = ref_kd(zs, zt, np.zeros(32, dtype=np.int64), T, 1.0, False)[2]
        single = kd.soft_loss(zs.astype(np.float32), zt.astype(np.float32), T)
        assert single.dtype == np.float32
        assert single.item() == pytest.approx(exact, rel=2e-5)


# --------------------------------------------------------------------------- why T²


def _soft_gradient_norm(zs, zt, T, t_squared):
    """‖∂(λ·[T²]·L_KL)/∂z_s‖ with λ = 1: only the soft term."""
    s = mk.tensor(zs, requires_grad=True)
    kd.kd_loss(s, zt, np.zeros(len(zs), dtype=np.int64), T=T, lam=1.0, t_squared=t_squared).backward()
    return float(np.linalg.norm(s.grad))


def test_t_squared_compensates_the_shrinking_soft_gradients():
    """∂L_KL/∂z_s = (p_s − p_t)/T and p_s − p_t = O(1/T), so the gradient shrinks like 1/T²;
    multiplied by T² it stays of the same order whatever T (the lecture's reason for T²)."""
    rng = np.random.default_rng(6)
    zs, zt = rng.normal(size=(2, 16, 10))
    plain = {T: _soft_gradient_norm(zs, zt, T, False) for T in (1.0, 2.0, 4.0, 8.0, 16.0)}
    scaled = {T: _soft_gradient_norm(zs, zt, T, True) for T in plain}
    # without T²: doubling T divides the gradient by ≈ 4 (closer to 4 as T grows)
    assert 3.5 <= plain[4.0] / plain[8.0] <= 4.5
    assert 3.8 <= plain[8.0] / plain[16.0] <= 4.2
    assert plain[1.0] / plain[16.0] > 50          # two orders of magnitude lost between T = 1 and 16
    # with T²: the same order at every temperature
    for T in scaled:
        assert 0.5 <= scaled[T] / scaled[1.0] <= 2.0, (T, scaled)
    # the bound above is not vacuous: the unscaled gradients violate it
    assert not all(0.5 <= plain[T] / plain[1.0] <= 2.0 for T in plain)
    # and the scaled norm is exactly T² times the unscaled one
    for T in plain:
        assert scaled[T] == pytest.approx(T * T * plain[T], rel=1e-12)


# --------------------------------------------------------------------------- the teacher is a constant


def test_teacher_logits_get_no_gradient():
    rng = np.random.default_rng(7)
    s = mk.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    t = mk.tensor(rng.normal(size=(4, 3)), requires_grad=True)   # even if they require one
    total = kd.kd_loss(s, t, np.array([0, 1, 2, 0]), T=3.0, lam=0.5)
    assert total.requires_grad
    total.backward()
    assert t.grad is None                       # detached: backward never reaches it
    assert s.grad is not None and np.abs(s.grad).sum() > 0
    assert t.requires_grad                      # the caller's tensor is left as it was


def test_teacher_model_parameters_get_no_gradient():
    mk.manual_seed(0)
    teacher, student = TeacherModel(), StudentModel()
    x = mk.randn(2, 1, 28, 28)
    y = np.array([3, 7])
    loss = kd.kd_loss(student(x), teacher(x), y, T=3.0, lam=0.5)   # teacher's graph recorded, then cut
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf"), "3", None, True])
def test_bad_temperature(T):
    with pytest.raises(ValueError, match=r"kd_loss: the temperature T must be a positive finite number; got T="):
        kd.kd_loss([1.0, 2.0], [2.0, 1.0], 0, T=T)


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match=r"kd_loss: the weight λ \(lam\) .* must be a number in \[0, 1\]; got lam="):
        kd.kd_loss([1.0, 2.0], [2.0, 1.0], 0, lam=lam)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"kd_loss: student logits z_s and teacher logits z_t must have the same "
                                         r"shape; got z_s \(4, 10\) and z_t \(4, 5\)"):
        kd.kd_loss(np.zeros((4, 10)), np.zeros((4, 5)), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"kd_loss: expected logits of shape \(N, C\) or \(C,\); got student logits "
                                         r"z_s of shape \(2, 3, 4\)"):
        kd.kd_loss(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"label 5 is out of range"):
        kd.kd_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 5]))


# --------------------------------------------------------------------------- adapters


def test_make_adapter_picks_the_transformation():
    a = kd.make_adapter((32,), (128,))           # vectors → vectors: a linear adapter
    assert isinstance(a, kd.LinearAdapter) and (a.in_features, a.out_features) == (32, 128)
    assert a.num_parameters() == (32 + 1) * 128
    assert isinstance(kd.make_adapter((16,), (16,)), nn.Identity)
    assert isinstance(kd.make_adapter((8, 7, 7), (8, 7, 7)), nn.Identity)
    c = kd.make_adapter((8, 7, 7), (32, 7, 7))
    assert isinstance(c, kd.ConvAdapter) and c.size is None and c.num_parameters() == (8 + 1) * 32
    c = kd.make_adapter((8, 14, 14), (32, 28, 28))
    assert isinstance(c, kd.ConvAdapter) and c.size == (28, 28)
    i = kd.make_adapter((8, 14, 14), (8, 28, 20))
    assert isinstance(i, kd.InterpolateAdapter) and i.size == (28, 20) and i.num_parameters() == 0
    with pytest.raises(ValueError, match=r"both must be vectors \(C,\) or both maps \(C, H, W\)"):
        kd.make_adapter((32,), (8, 7, 7))
    with pytest.raises(ValueError, match=r"without the batch axis .* got \(64, 32\)"):
        kd.make_adapter((64, 32), (64, 128))


def test_adapters_map_onto_the_teacher_shape():
    x = mk.randn(2, 8, 14, 14)
    assert kd.ConvAdapter(8, 32, size=(28, 28))(x).shape == (2, 32, 28, 28)
    assert kd.ConvAdapter(8, 32)(x).shape == (2, 32, 14, 14)
    assert kd.ConvAdapter(8, 32, size=14)(x).shape == (2, 32, 14, 14)
    assert kd.InterpolateAdapter((7, 9))(x).shape == (2, 8, 7, 9)
    assert kd.LinearAdapter(32, 128)(mk.randn(5, 32)).shape == (5, 128)
    with pytest.raises(ValueError, match=r"InterpolateAdapter\(size=\(7, 9\)\) expects feature maps"):
        kd.InterpolateAdapter((7, 9))(mk.randn(2, 8))


def test_conv_adapter_is_conv_then_resize_by_hand():
    """g(F_S)[n, o] = resize(Σ_c W[o, c] F_S[n, c] + b[o]); resize of a 1×1 map is a constant map."""
    rng = np.random.default_rng(8)
    a = kd.ConvAdapter(3, 2, size=(4, 5))
    fs = rng.normal(size=(2, 3, 1, 1)).astype(np.float32)
    W, b = a.conv.weight.numpy()[:, :, 0, 0], a.conv.bias.numpy()
    out = a(mk.tensor(fs)).numpy()
    for n in range(2):
        for o in range(2):
            value = sum(float(W[o, c]) * float(fs[n, c, 0, 0]) for c in range(3)) + float(b[o])
            np.testing.assert_allclose(out[n, o], np.full((4, 5), value), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- feature_loss


def test_feature_loss_values():
    rng = np.random.default_rng(9)
    fs, ft = rng.normal(size=(2, 4, 6))
    sq = [(float(a) - float(b)) ** 2 for a, b in zip(fs.ravel(), ft.ravel())]
    ab = [abs(float(a) - float(b)) for a, b in zip(fs.ravel(), ft.ravel())]
    assert kd.feature_loss(fs, ft).item() == pytest.approx(sum(sq) / len(sq), rel=1e-12)
    assert kd.feature_loss(fs, ft, kind="l1").item() == pytest.approx(sum(ab) / len(ab), rel=1e-12)
    # with a linear adapter: ‖F_T − (F_S Wᵀ + b)‖² by hand
    a = kd.LinearAdapter(3, 5)
    fs, ft = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    W, b = a.weight.numpy().astype(np.float64), a.bias.numpy().astype(np.float64)
    g = [[sum(W[o, i] * float(fs[n, i]) for i in range(3)) + b[o] for o in range(5)] for n in range(4)]
    expected = sum((float(ft[n, o]) - g[n][o]) ** 2 for n in range(4) for o in range(5)) / 20
    assert kd.feature_loss(mk.tensor(fs), mk.tensor(ft), a).item() == pytest.approx(expected, rel=1e-5)


def test_feature_loss_teacher_features_get_no_gradient():
    a = kd.LinearAdapter(3, 5)
    fs = mk.randn(4, 3, requires_grad=True)
    ft = mk.randn(4, 5, requires_grad=True)
    kd.feature_loss(fs, ft, a).backward()
    assert ft.grad is None
    assert fs.grad is not None and a.weight.grad is not None and a.bias.grad is not None


def test_feature_loss_errors():
    with pytest.raises(ValueError, match=r"student features F_S \(4, 32\) and teacher features F_T \(4, 128\) "
                                         r"differ in shape; pass an adapter g\(·\), e\.g\. "
                                         r"kd\.make_adapter\(\(32,\), \(128,\)\)"):
        kd.feature_loss(np.zeros((4, 32)), np.zeros((4, 128)))
    with pytest.raises(ValueError, match=r"the adapted student features g\(F_S\) have shape \(4, 64\) but the "
                                         r"teacher features F_T have shape \(4, 128\)"):
        kd.feature_loss(mk.zeros(4, 32), mk.zeros(4, 128), kd.LinearAdapter(32, 64))
    with pytest.raises(ValueError, match=r"unknown kind 'l2'; expected one of \('mse', 'l1'\)"):
        kd.feature_loss(np.zeros(3), np.zeros(3), kind="l2")
    with pytest.raises(ValueError, match=r"feature_kd_loss: the weight λ"):
        kd.feature_kd_loss(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4)), np.array([0, 1]), None, lam=2)


@contextlib.contextmanager
def parameters_replaced(module, tensors):
    """Let ``module`` compute with ``tensors`` ({dotted name: Tensor}) in place of its Parameters,
    so gradcheck can differentiate with respect to them (like torch.func.functional_call)."""
    saved = []
    for name, t in tensors.items():
        *path, leaf = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        saved.append((owner, leaf, owner._parameters[leaf]))
        owner._parameters[leaf] = t
    try:
        yield module
    finally:
        for owner, leaf, p in saved:
            owner._parameters[leaf] = p


def gradcheck_feature_loss(adapter, fs, ft, kind):
    """gradcheck of feature_loss with respect to F_S and every parameter of the adapter, in float64."""
    names = [n for n, _ in adapter.named_parameters()]
    params = [p.numpy().astype(np.float64) for _, p in adapter.named_parameters()]

    def fn(f, *ps):
        with parameters_replaced(adapter, dict(zip(names, ps))):
            return kd.feature_loss(f, ft, adapter, kind=kind)

    assert check_grad(fn, fs, *params)
    return names


kinds = st.sampled_from(["mse", "l1"])


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), kinds, st.integers(0, 2**16))
def test_gradcheck_feature_loss_linear_adapter(n, c_s, c_t, kind, seed):
    rng = np.random.default_rng(seed)
    fs, ft = rng.normal(size=(n, c_s)), rng.normal(size=(n, c_t)) * 3   # far apart: |·| away from its kink
    names = gradcheck_feature_loss(kd.LinearAdapter(c_s, c_t), fs, ft, kind)
    assert names == ["weight", "bias"]


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.tuples(st.integers(1, 5), st.integers(1, 5)), kinds, st.integers(0, 2**16))
def test_gradcheck_feature_loss_conv_adapter(n, c_s, c_t, hw_s, hw_t, kind, seed):
    rng = np.random.default_rng(seed)
    fs, ft = rng.normal(size=(n, c_s) + hw_s), rng.normal(size=(n, c_t) + hw_t) * 3 + 5
    names = gradcheck_feature_loss(kd.ConvAdapter(c_s, c_t, size=hw_t), fs, ft, kind)
    assert names == ["conv.weight", "conv.bias"]


@given(st.integers(1, 2), st.integers(1, 3), st.tuples(st.integers(1, 4), st.integers(1, 4)),
       st.tuples(st.integers(1, 5), st.integers(1, 5)), st.booleans(), kinds, st.integers(0, 2**16))
def test_gradcheck_feature_loss_interpolate_adapter(n, c, hw_s, hw_t, align_corners, kind, seed):
    rng = np.random.default_rng(seed)
    fs, ft = rng.normal(size=(n, c) + hw_s), rng.normal(size=(n, c) + hw_t) * 3 + 5
    adapter = kd.InterpolateAdapter(hw_t, align_corners=align_corners)
    assert gradcheck_feature_loss(adapter, fs, ft, kind) == []


def test_gradcheck_feature_loss_without_adapter():
    rng = np.random.default_rng(10)
    fs, ft = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)) + 5
    for kind in ("mse", "l1"):
        check_grad(lambda f, kind=kind: kd.feature_loss(f, ft, kind=kind), fs)


# --------------------------------------------------------------------------- feature_kd_loss


def test_feature_kd_loss_combines_the_two_losses():
    rng = np.random.default_rng(11)
    logits, fs, ft = rng.normal(size=(4, 10)), rng.normal(size=(4, 32)), rng.normal(size=(4, 128))
    y = rng.integers(0, 10, size=4)
    a = kd.make_adapter((32,), (128,))
    for p in a.parameters():
        p.data = p.data.astype(np.float64)
    total, parts = kd.feature_kd_loss(logits, fs, ft, y, a, lam=0.3, return_parts=True)
    assert set(parts) == {"hard", "feature", "total"} and parts["total"] is total
    hard = sum(-math.log(ref_softmax(list(logits[n]))[y[n]]) for n in range(4)) / 4
    feat = kd.feature_loss(fs, ft, a).item()
    assert parts["hard"].item() == pytest.approx(hard, rel=1e-12)
    assert parts["feature"].item() == pytest.approx(feat, rel=1e-12)
    assert total.item() == pytest.approx(0.3 * feat + 0.7 * hard, rel=1e-12)
    assert kd.feature_kd_loss(logits, fs, ft, y, a, lam=0.3, kind="l1").item() == pytest.approx(
        0.3 * kd.feature_loss(fs, ft, a, kind="l1").item() + 0.7 * hard, rel=1e-12)


@given(st.integers(1, 3), st.floats(0.0, 1.0), kinds, st.integers(0, 2**16))
def test_gradcheck_feature_kd_loss(n, lam, kind, seed):
    rng = np.random.default_rng(seed)
    logits, fs, ft = rng.normal(size=(n, 4)), rng.normal(size=(n, 3)), rng.normal(size=(n, 5)) * 3 + 5
    y = rng.integers(0, 4, size=n)
    adapter = kd.LinearAdapter(3, 5)
    params = [p.numpy().astype(np.float64) for p in adapter.parameters()]

    def fn(z, f, w, b):
        with parameters_replaced(adapter, {"weight": w, "bias": b}):
            return kd.feature_kd_loss(z, f, ft, y, adapter, lam=lam, kind=kind)

    check_grad(fn, logits, fs, *params)


def test_feature_kd_with_the_lecture_models():
    """The hands-on: penultimate features of StudentModel (64) and TeacherModel (128), a linear g."""
    mk.manual_seed(1)
    teacher, student = TeacherModel(), StudentModel()
    adapter = kd.make_adapter((student.feature_dim,), (teacher.feature_dim,))
    x, y = mk.randn(2, 1, 28, 28), np.array([1, 4])
    with mk.no_grad():
        _, f_t = teacher(x, return_features=True)
    logits, f_s = student(x, return_features=True)
    total, parts = kd.feature_kd_loss(logits, f_s, f_t, y, adapter, lam=0.5, return_parts=True)
    total.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is not None for p in adapter.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert np.isfinite(parts["feature"].item()) and np.isfinite(parts["hard"].item())


# --------------------------------------------------------------------------- package


def test_public_api():
    assert set(kd.__all__) == {"ConvAdapter", "InterpolateAdapter", "LinearAdapter", "feature_kd_loss",
                               "feature_loss", "kd_loss", "kl_divergence", "make_adapter", "soft_loss",
                               "softmax_with_temperature",
                               # issue 13: relation, online/self, AdaDistill, QUD
                               "rkd_distance_loss", "rkd_angle_loss", "rkd_loss", "dml_losses",
                               "self_distillation_loss", "margin_logits", "adadistill_alpha", "distill_centres",
                               "qud_loss", "EmbeddingQueue",
                               # issue 14: data-free distillation
                               "BNStatistics", "activation_maximisation_loss", "check_class_labels",
                               "check_generator_output", "dafl_generator_loss", "dafl_losses", "dfkd_loss",
                               "diversity_loss", "freeze_teacher", "l2_prior", "random_affine", "random_shift", "roll",
                               "total_variation", "js_divergence", "competition_loss"}
    for name in kd.__all__:
        assert getattr(kd, name).__doc__


@pytest.mark.gpu
def test_kd_losses_on_gpu_match_cpu():
    rng = np.random.default_rng(12)
    zs, zt = rng.normal(size=(2, 4, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    sc, sg = mk.tensor(zs, requires_grad=True), mk.tensor(zs, device="cuda", requires_grad=True)
    lc = kd.kd_loss(sc, mk.tensor(zt), y, T=3.0)
    lg = kd.kd_loss(sg, mk.tensor(zt, device="cuda"), mk.tensor(y, device="cuda"), T=3.0)
    assert lg.item() == pytest.approx(lc.item(), rel=1e-5)
    lc.backward()
    lg.backward()
    np.testing.assert_allclose(mk.tensor(sg.grad).numpy(), sc.grad, rtol=1e-4, atol=1e-6)
    a = kd.ConvAdapter(2, 3, size=(4, 4))
    fs = rng.normal(size=(2, 2, 3, 3)).astype(np.float32)
    ft = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    cpu = kd.feature_loss(mk.tensor(fs), mk.tensor(ft), a).item()
    a.to("cuda")
    gpu = kd.feature_loss(mk.tensor(fs, device="cuda"), mk.tensor(ft, device="cuda"), a).item()
    assert gpu == pytest.approx(cpu, rel=1e-5)
