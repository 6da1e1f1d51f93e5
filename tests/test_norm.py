"""Batch normalisation and dropout: gradients, forward values, running statistics, modes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from tests.util import check_grad

# --------------------------------------------------------------------------- batch norm


def direct_batch_norm(x, gamma, beta, eps=1e-5):
    """An independent float64 computation: statistics per channel over every axis but 1."""
    x = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes).reshape(shape)
    var = ((x - mean) ** 2).mean(axis=axes).reshape(shape)
    return (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


shapes_2d = st.tuples(st.integers(2, 5), st.integers(1, 3))
shapes_4d = st.tuples(st.integers(2, 5), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@given(shape=st.one_of(shapes_2d, shapes_4d), seed=st.integers(0, 2**16))
def test_batch_norm_train_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape)
    gamma = rng.uniform(0.5, 1.5, C)
    beta = rng.standard_normal(C)
    # running statistics made inside: on the device the check runs on (the default device there)
    check_grad(lambda x, g, b: F.batch_norm(x, mk.zeros(C, dtype=x.dtype), mk.ones(C, dtype=x.dtype), g, b,
                                            training=True), x, gamma, beta)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3)])
def test_batch_norm_gradcheck_without_affine_and_in_eval(shape):
    rng = np.random.default_rng(1)
    C = shape[1]
    x = rng.standard_normal(shape)
    check_grad(lambda x: F.batch_norm(x, None, None, training=True), x)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    check_grad(lambda x, g, b: F.batch_norm(x, mk.tensor(rm), mk.tensor(rv), g, b, training=False),
               x, rng.uniform(0.5, 1.5, C), rng.standard_normal(C))


@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 6, 7)])
def test_batch_norm_forward_matches_direct_computation(shape):
    rng = np.random.default_rng(0)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    y = F.batch_norm(mk.tensor(x), np.zeros(C, np.float32), np.ones(C, np.float32),
                     mk.tensor(gamma), mk.tensor(beta), training=True)
    assert y.dtype == np.float32 and y.shape == shape
    np.testing.assert_allclose(y.numpy(), direct_batch_norm(x, gamma, beta), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(10, 4), (6, 4, 3, 5)])
def test_running_statistics_follow_the_momentum_formula(shape):
    rng = np.random.default_rng(2)
    C, momentum = shape[1], 0.3
    rm = rng.standard_normal(C).astype(np.float32)
    rv = rng.uniform(0.5, 2, C).astype(np.float32)
    rm0, rv0 = rm.copy(), rv.copy()
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
    F.batch_norm(mk.tensor(x), rm, rv, training=True, momentum=momentum)

    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // C
    batch_mean = x.astype(np.float64).mean(axis=axes)
    unbiased_var = x.astype(np.float64).var(axis=axes) * m / (m - 1)
    np.testing.assert_allclose(rm, (1 - momentum) * rm0 + momentum * batch_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, (1 - momentum) * rv0 + momentum * unbiased_var, rtol=1e-5, atol=1e-6)


def test_running_statistics_held_in_tensors_are_updated_in_place():
    rm, rv = mk.zeros(3), mk.ones(3)
    arrays = rm.data, rv.data
    x = mk.randn(8, 3) * 4 + 5
    F.batch_norm(x, rm, rv, training=True)
    assert rm.data is arrays[0] and rv.data is arrays[1]
    assert np.all(rm.numpy() > 0.1)


def test_eval_mode_uses_running_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(3)
    rm = np.array([1.0, -2.0], np.float32)
    rv = np.array([4.0, 0.25], np.float32)
    x = rng.standard_normal((5, 2)).astype(np.float32)
    y = F.batch_norm(mk.tensor(x), rm, rv, mk.tensor(np.array([2.0, 1.0], np.float32)),
                     mk.tensor(np.array([0.5, 0.0], np.float32)), training=False)
    expected = (x - rm) / np.sqrt(rv + 1e-5) * np.array([2.0, 1.0]) + np.array([0.5, 0.0])
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rm, [1.0, -2.0])
    np.testing.assert_array_equal(rv, [4.0, 0.25])


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"running_mean has shape \(4,\).*must be \(3,\)"):
        F.batch_norm(mk.randn(5, 3), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(mk.randn(1, 3), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ValueError, match="channel axis"):
        F.batch_norm(mk.randn(5), np.zeros(5), np.ones(5))
    with pytest.raises(ValueError, match="needs running_mean"):
        F.batch_norm(mk.randn(5, 3), None, None, training=False)


# --------------------------------------------------------------------------- dropout


def test_dropout_gradcheck_with_a_fixed_mask():
    x = np.random.default_rng(0).standard_normal((4, 6))

    def fn(t):
        mk.manual_seed(0)  # the same mask on every call
        return F.dropout(t, p=0.4, training=True)

    check_grad(fn, x)


def test_dropout_zeroes_and_rescales():
    mk.manual_seed(1)
    x = mk.ones(200, 50)
    y = F.dropout(x, p=0.25).numpy()
    assert y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02  # 10,000 draws: within ~4.6 standard deviations
    assert abs(y.mean() - 1.0) < 0.03           # inverted dropout keeps the expectation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_kernel_and_reference_give_the_same_bits(dtype):
    """Dropout's forward and backward with the Numba kernel and with the NumPy reference, from
    one seed: equal bit for bit, a dropped inf included (0, not NaN)."""
    import minikd.kernels as K

    x = np.random.default_rng(2).standard_normal((64, 30)).astype(dtype)
    x[0] = np.inf   # 30 values: some dropped, some kept
    g = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    results = []
    for backend in ("numba", "numpy"):
        with K.use_backend(backend):
            mk.manual_seed(7)
            t = mk.tensor(x, requires_grad=True)
            y = F.dropout(t, p=0.3)
            y.backward(mk.tensor(g))
            results.append((y.numpy(), np.asarray(t.grad)))
    (y1, g1), (y2, g2) = results
    assert y1.dtype == dtype and g1.dtype == dtype
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, g2)
    assert not np.isnan(y1).any() and set(np.unique(y1[0])) == {0.0, np.inf}   # a dropped inf gives 0
    np.testing.assert_array_equal(g1[0] == 0, y1[0] == 0)                      # and no gradient


def test_dropout_is_repeatable_with_a_seed():
    x = mk.randn(10, 10)
    mk.manual_seed(5)
    a = F.dropout(x, 0.5).numpy()
    mk.manual_seed(5)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_identity_in_eval_and_for_p_zero():
    x = mk.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(mk.randn(2, 2), p)


@pytest.mark.gpu
def test_batch_norm_and_dropout_on_gpu_match_cpu():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 4, 4)).astype(np.float32)
    rm_cpu, rv_cpu = mk.zeros(3), mk.ones(3)
    rm_gpu, rv_gpu = mk.zeros(3, device="cuda"), mk.ones(3, device="cuda")
    y_cpu = F.batch_norm(mk.tensor(x), rm_cpu, rv_cpu)
    y_gpu = F.batch_norm(mk.tensor(x, device="cuda"), rm_gpu, rv_gpu)
    np.testing.assert_allclose(y_gpu.numpy(), y_cpu.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rv_gpu.numpy(), rv_cpu.numpy(), rtol=1e-5)
    mk.manual_seed(3)
    d_cpu = F.dropout(mk.tensor(x), 0.5).numpy()
    mk.manual_seed(3)
    d_gpu = F.dropout(mk.tensor(x, device="cuda"), 0.5).numpy()
    np.testing.assert_array_equal(d_cpu, d_gpu)
