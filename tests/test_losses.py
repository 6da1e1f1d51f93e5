"""Softmax with temperature, cross-entropy, KL divergence, MSE and L1 (minikd/ops/loss.py).

Expected values come from the lecture's formulas written out with ``math.exp`` / ``math.log``
in plain loops, independent of the code under test. The lecture's recap exercises (softmax at
T = 1 and 2, the KL divergence 0.02681, the distillation loss at T = 2, α = 0.7) are tested in
one place, ``tests/test_kd.py``, through ``minikd.kd`` and through these ops.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd.ops.loss import cross_entropy, kl_divergence, l1_loss, log_softmax, mse_loss, softmax
from tests.util import check_grad, ref_kl, ref_log_softmax, ref_softmax

# --------------------------------------------------------------------------- helpers (references: tests/util.py)


def rows(a, axis):
    """The 1-D slices of ``a`` along ``axis``, with where they sit, for the loops below."""
    moved = np.moveaxis(a, axis, -1)
    for index in np.ndindex(moved.shape[:-1]):
        yield index, moved[index]


def rel_close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)


def random_distribution(rng, shape):
    """Strictly positive rows that sum to 1: the softmax of random logits."""
    z = rng.normal(size=shape)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- temperature, and 0 · log 0 = 0


def test_high_temperature_approaches_uniform():
    z = [2.0, 1.0, 0.1]
    gaps = []
    for T in (1.0, 10.0, 100.0, 1e4):
        p = softmax(mk.tensor(z), T=T).numpy()
        gaps.append(float(np.abs(p - 1 / 3).max()))
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-4
    # low T sharpens towards the arg-max, and nothing overflows at T = 0.01
    p = softmax(mk.tensor(z), T=0.01).numpy()
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0], atol=1e-6)


def test_zero_log_zero_is_zero():
    P = np.array([0.5, 0.5, 0.0])
    Q = np.array([0.25, 0.25, 0.5])
    exact = 0.5 * math.log(0.5 / 0.25) * 2  # the P = 0 term is dropped
    p, q = mk.tensor(P, requires_grad=True), mk.tensor(Q, requires_grad=True)
    d = kl_divergence(p, q)
    assert d.item() == pytest.approx(exact, rel=1e-12)
    assert d.item() == pytest.approx(ref_kl(P, Q), rel=1e-12)
    d.backward()
    assert np.all(np.isfinite(p.grad)) and np.all(np.isfinite(q.grad))
    # ∂D/∂Q = −P/Q (0 where P = 0);  ∂D/∂P = log(P/Q) + 1 where P > 0, 0 where the term is dropped
    np.testing.assert_allclose(q.grad, [-2.0, -2.0, 0.0])
    np.testing.assert_allclose(p.grad, [math.log(2) + 1, math.log(2) + 1, 0.0])
    # also when Q is 0 where P is 0 (0 · log(0/0) = 0), in float32 and in a batch
    P2 = mk.tensor([[1.0, 0.0], [0.5, 0.5]], requires_grad=True)
    Q2 = mk.tensor([[1.0, 0.0], [0.5, 0.5]], requires_grad=True)
    d2 = kl_divergence(P2, Q2)
    assert d2.item() == 0.0
    d2.backward()
    assert np.all(np.isfinite(P2.grad)) and np.all(np.isfinite(Q2.grad))
    assert Q2.grad[0, 1] == 0.0 and P2.grad[0, 1] == 0.0  # the dropped term contributes nothing


def test_kl_is_infinite_where_q_is_zero_and_p_is_not():
    with np.errstate(divide="ignore"):
        d = kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert d.item() == math.inf


# --------------------------------------------------------------------------- forward values against loops


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("T", [0.5, 1.0, 3.0])
def test_softmax_and_log_softmax_match_loops(scale, axis, T):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4, 5)) * scale).astype(np.float32)
    if scale > 1:
        x[0, :2] = [1000.0, -1000.0]
    p = softmax(mk.tensor(x), T=T, axis=axis).numpy()
    lp = log_softmax(mk.tensor(x), T=T, axis=axis).numpy()
    assert p.dtype == lp.dtype == np.float32
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(lp))
    for (_, row), (_, prow), (_, lrow) in zip(rows(x.astype(np.float64), axis), rows(p, axis), rows(lp, axis)):
        rel_close(prow, ref_softmax(list(row), T))
        rel_close(lrow, ref_log_softmax(list(row), T))
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-6)


def test_softmax_of_3d_input_along_middle_axis():
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    p = softmax(mk.tensor(x), T=2.0, axis=1).numpy()
    for (i, k), prow in rows(p, 1):
        rel_close(prow, ref_softmax(list(x[i, :, k].astype(np.float64)), 2.0))


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_labels_matches_loop(scale, reduction):
    rng = np.random.default_rng(2)
    z = (rng.normal(size=(6, 4)) * scale).astype(np.float32)
    z[0] = [1000.0, -1000.0, 0.0, 999.0]
    y = rng.integers(0, 4, size=6)
    per = [-ref_log_softmax(list(z[n].astype(np.float64)))[y[n]] for n in range(6)]
    expected = {"mean": sum(per) / 6, "sum": sum(per), "none": per}[reduction]
    out = cross_entropy(mk.tensor(z), y, reduction=reduction)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out.numpy()))
    rel_close(out.numpy(), expected)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_soft_targets_matches_loop(reduction):
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(5, 3)) * 3).astype(np.float32)
    z[1] = [-1000.0, 1000.0, 0.0]
    t = random_distribution(rng, (5, 3)).astype(np.float32)
    per = [-sum(ti * li for ti, li in zip(t[n].astype(np.float64), ref_log_softmax(list(z[n].astype(np.float64)))))
           for n in range(5)]
    expected = {"mean": sum(per) / 5, "sum": sum(per), "none": per}[reduction]
    out = cross_entropy(mk.tensor(z), mk.tensor(t), reduction=reduction)
    assert out.dtype == np.float32 and np.all(np.isfinite(out.numpy()))
    rel_close(out.numpy(), expected)
    # one-hot soft targets are the same as hard labels
    y = z.argmin(axis=1)
    onehot = np.eye(3, dtype=np.float32)[y]
    rel_close(cross_entropy(mk.tensor(z), onehot, reduction=reduction).numpy(),
              cross_entropy(mk.tensor(z), y, reduction=reduction).numpy())


def test_cross_entropy_spatial_logits():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2, 3, 4)).astype(np.float32)  # (N, C, d1)
    y = rng.integers(0, 3, size=(2, 4))
    out = cross_entropy(mk.tensor(z), y, reduction="none").numpy()
    assert out.shape == (2, 4)
    for n in range(2):
        for k in range(4):
            assert out[n, k] == pytest.approx(-ref_log_softmax(list(z[n, :, k].astype(np.float64)))[y[n, k]],
                                              rel=1e-5)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_kl_divergence_matches_loop(reduction):
    rng = np.random.default_rng(5)
    zp, zq = rng.normal(size=(2, 4, 6))
    P = np.array([ref_softmax(list(r)) for r in zp])
    Q = np.array([ref_softmax(list(r)) for r in zq])
    P[0, 0], P[0, 1:] = 1.0, 0.0  # an exact one-hot row: its zero terms are dropped
    per = [ref_kl(P[n], Q[n]) for n in range(4)]
    expected = {"batchmean": sum(per) / 4, "sum": sum(per), "none": per}[reduction]
    out = kl_divergence(mk.tensor(P.astype(np.float32)), mk.tensor(Q.astype(np.float32)), reduction=reduction)
    assert out.dtype == np.float32
    rel_close(out.numpy(), expected)


def test_kl_of_softmax_of_huge_logits_is_finite():
    """Teacher logits of ±1000 give exact zeros in P: those terms drop out, nothing is NaN."""
    zt = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 999.0, 1000.0]], dtype=np.float32)
    zs = np.array([[3.0, -2.0, 0.5], [1000.0, 998.0, 999.0]], dtype=np.float32)
    for T in (1.0, 4.0):
        t = mk.tensor(zs, requires_grad=True)
        P, Q = softmax(mk.tensor(zt), T=T), softmax(t, T=T)
        d = kl_divergence(P, Q, reduction="none")
        P64, Q64 = P.numpy().astype(np.float64), Q.numpy().astype(np.float64)
        expected = [ref_kl(P64[n], Q64[n]) for n in range(2)]
        assert np.all(np.isfinite(d.numpy()))
        rel_close(d.numpy(), expected, rtol=1e-5)
        # and against the loop on the logits themselves (shifted softmax in float64)
        direct = [ref_kl(ref_softmax(list(zt[n].astype(np.float64)), T),
                         ref_softmax(list(zs[n].astype(np.float64)), T)) for n in range(2)]
        rel_close(d.numpy(), direct, rtol=1e-4, atol=1e-5)
        d.sum().backward()
        assert np.all(np.isfinite(t.grad))


def test_kl_divergence_single_distribution_batchmean_is_sum():
    P, Q = [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]
    a = kl_divergence(mk.tensor(P), mk.tensor(Q)).item()
    assert a == pytest.approx(kl_divergence(mk.tensor(P), mk.tensor(Q), reduction="sum").item())
    assert a == pytest.approx(ref_kl(P, Q), rel=1e-5)
    assert kl_divergence(mk.tensor(P), mk.tensor(Q), reduction="none").shape == ()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1_match_loops(reduction):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(2, 3, 4)).astype(np.float32)
    sq = [(float(a) - float(b)) ** 2 for a, b in zip(x.ravel(), y.ravel())]
    ab = [abs(float(a) - float(b)) for a, b in zip(x.ravel(), y.ravel())]
    for fn, per in ((mse_loss, sq), (l1_loss, ab)):
        expected = {"mean": sum(per) / len(per), "sum": sum(per), "none": np.reshape(per, (3, 4))}[reduction]
        out = fn(mk.tensor(x), mk.tensor(y), reduction=reduction)
        assert out.dtype == np.float32
        rel_close(out.numpy(), expected)


# --------------------------------------------------------------------------- analytic gradients


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    z = np.array([[1.5, 2.5, 0.3], [1.0, 3.0, 0.5]], dtype=np.float32)
    y = np.array([1, 0])
    t = mk.tensor(z, requires_grad=True)
    cross_entropy(t, y).backward()
    expected = (np.array([ref_softmax(list(r)) for r in z.astype(np.float64)]) - np.eye(3)[y]) / 2
    assert t.grad.dtype == np.float32
    np.testing.assert_allclose(t.grad, expected, rtol=1e-5, atol=1e-7)


def test_softmax_gradient_carries_one_over_T():
    z = np.array([2.0, 1.0, 0.1])
    for T in (1.0, 4.0):
        t = mk.tensor(z, requires_grad=True)
        softmax(t, T=T)[0].backward()
        p = ref_softmax(list(z), T)
        expected = [p[0] * ((k == 0) - p[k]) / T for k in range(3)]
        np.testing.assert_allclose(t.grad, expected, rtol=1e-12)


def test_soft_target_gradient_is_minus_log_softmax():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(3, 4))
    tt = mk.tensor(random_distribution(rng, (3, 4)), requires_grad=True)
    cross_entropy(mk.tensor(z), tt, reduction="sum").backward()
    np.testing.assert_allclose(tt.grad, [[-v for v in ref_log_softmax(list(r))] for r in z], rtol=1e-12)


def test_no_graph_under_no_grad():
    z = mk.tensor(np.ones((2, 3)), requires_grad=True)
    with mk.no_grad():
        assert not cross_entropy(z, np.array([0, 1])).requires_grad


# --------------------------------------------------------------------------- gradcheck (float64, hypothesis)

reductions = st.sampled_from(["mean", "sum", "none"])
temperatures = st.floats(0.5, 5.0)
seeds = st.integers(0, 2**16)


@st.composite
def shape_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@given(shape_and_axis(), temperatures, seeds)
def test_gradcheck_softmax(sa, T, seed):
    shape, axis = sa
    x = np.random.default_rng(seed).normal(size=shape) * 2
    check_grad(lambda t: softmax(t, T=T, axis=axis), x)


@given(shape_and_axis(), temperatures, seeds)
def test_gradcheck_log_softmax(sa, T, seed):
    shape, axis = sa
    x = np.random.default_rng(seed).normal(size=shape) * 2
    check_grad(lambda t: log_softmax(t, T=T, axis=axis), x)


@given(st.integers(1, 4), st.integers(2, 5), st.sampled_from([(), (3,)]), reductions, seeds)
def test_gradcheck_cross_entropy_labels(n, c, extra, reduction, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c) + extra) * 2
    y = rng.integers(0, c, size=(n,) + extra)
    check_grad(lambda t, labels: cross_entropy(t, labels, reduction=reduction), z, y)


@given(st.integers(1, 4), st.integers(2, 5), reductions, seeds)
def test_gradcheck_cross_entropy_soft_targets(n, c, reduction, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 2
    t = random_distribution(rng, (n, c))
    check_grad(lambda a, b: cross_entropy(a, b, reduction=reduction), z, t)  # both: logits and targets


@given(st.integers(1, 4), st.integers(2, 5), st.sampled_from(["batchmean", "sum", "none"]),
       st.booleans(), seeds)
def test_gradcheck_kl_divergence(n, c, reduction, batched, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) if batched else (c,)
    P, Q = random_distribution(rng, shape), random_distribution(rng, shape)
    check_grad(lambda p, q: kl_divergence(p, q, reduction=reduction), P, Q)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), reductions, seeds)
def test_gradcheck_mse_and_l1(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    y = x + rng.uniform(0.1, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)  # away from |·|'s kink
    check_grad(lambda a, b: mse_loss(a, b, reduction=reduction), x, y)
    check_grad(lambda a, b: l1_loss(a, b, reduction=reduction), x, y)


def test_distillation_composition_gradcheck():
    """The lecture's soft loss as users will write it: T² · D_KL(softmax(z_t/T) ‖ softmax(z_s/T))."""
    rng = np.random.default_rng(8)
    zt, zs = rng.normal(size=(2, 3, 4))
    T = 3.0
    check_grad(lambda s, t: kl_divergence(softmax(t, T=T), softmax(s, T=T)) * (T * T), zs, zt)


# --------------------------------------------------------------------------- errors name what is wrong


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(T):
    x = mk.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"temperature T .* got T="):
        softmax(x, T=T)
    with pytest.raises(ValueError, match=r"log_softmax: the temperature T"):
        log_softmax(x, T=T)


def test_bad_axis():
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range .* 2 dimensions"):
        softmax(mk.tensor(np.zeros((2, 3))), axis=2)


def test_label_out_of_range_names_label_and_C():
    z = mk.tensor(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"label 4 is out of range \[0, C\) for C = 4 classes \(at index 1\)"):
        cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"label -1 is out of range \[0, C\) for C = 4"):
        cross_entropy(z, mk.tensor(np.array([-1, 0, 1])))


def test_label_shape_mismatch():
    z = mk.tensor(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(3,\) .* \(3, 4\); got .* \(2,\)"):
        cross_entropy(z, np.array([0, 1]))


def test_float_target_with_wrong_shape():
    z = mk.tensor(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"soft targets .* logits' shape \(3, 4\); got \(3,\)"):
        cross_entropy(z, np.array([0.0, 1.0, 2.0]))


def test_regression_shape_mismatch_names_both_shapes():
    a, b = mk.tensor(np.zeros((2, 3))), mk.tensor(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mse_loss: .* input \(2, 3\) and target \(3, 2\)"):
        mse_loss(a, b)
    with pytest.raises(ValueError, match=r"l1_loss: .* input \(2, 3\) and target \(3, 2\)"):
        l1_loss(a, b)
    with pytest.raises(ValueError, match=r"kl_divergence: .* P \(2, 3\) and Q \(3, 2\)"):
        kl_divergence(a, b)


def test_unknown_reduction():
    z = mk.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy: unknown reduction 'avg'"):
        cross_entropy(z, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"mse_loss: unknown reduction 'batchmean'"):
        mse_loss(z, z, reduction="batchmean")
    with pytest.raises(ValueError, match=r"l1_loss: unknown reduction"):
        l1_loss(z, z, reduction=None)
    with pytest.raises(ValueError, match=r"kl_divergence: unknown reduction 'mean'.*batchmean"):
        kl_divergence(z, z, reduction="mean")


def test_target_of_other_dtype_and_scalar_inputs():
    z = mk.tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"integer class labels or float probabilities; got dtype bool"):
        cross_entropy(z, np.array([True, False]))
    with pytest.raises(ValueError, match=r"cross_entropy expects logits of shape \(N, C\); got a scalar"):
        cross_entropy(mk.tensor(1.0), 0)
    with pytest.raises(ValueError, match=r"kl_divergence expects .*got a scalar"):
        kl_divergence(mk.tensor(0.5), mk.tensor(0.5))


def test_nan_in_p_is_not_silently_dropped():
    with np.errstate(invalid="ignore"):
        d = kl_divergence(np.array([np.nan, 1.0]), np.array([0.5, 0.5]))
    assert math.isnan(d.item())
