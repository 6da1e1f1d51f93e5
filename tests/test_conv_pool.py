"""conv2d, max_pool2d, avg_pool2d: the lecture's example, direct loops, gradients, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import kernels as K
from minikd.ops.conv import conv2d_reference
from tests.util import check_grad, distinct

# --------------------------------------------------------------------------- the lecture's slide

IMAGE = np.array([[1, 0, 1, 0, 1],
                  [0, 0, 1, 1, 0],
                  [1, 1, 1, 0, 0],
                  [1, 0, 0, 0, 0],
                  [1, 1, 1, 0, 0]], dtype=np.float32)
KERNEL = np.array([[1, 1, 1],
                   [0, 0, 0],
                   [1, 0, 1]], dtype=np.float32)


def _conv_slide(padding):
    y = F.conv2d(mk.tensor(IMAGE[None, None]), mk.tensor(KERNEL[None, None]), padding=padding)
    assert y.dtype == np.float32
    return y.numpy()[0, 0]


def test_lecture_slide_convolution():
    # cross-correlation: the kernel slides over the image without being flipped
    np.testing.assert_array_equal(_conv_slide(0), [[4, 2, 3], [2, 2, 2], [5, 3, 2]])


def test_lecture_slide_convolution_with_padding_1():
    # worked by hand: e.g. the corner (0, 0) sees the padded row −1 under the kernel's
    # first row (zeros), and image[1, −1..1] = (pad, 0, 0) under (1, 0, 1): 0
    expected = [[0, 1, 1, 1, 1],
                [2, 4, 2, 3, 1],
                [0, 2, 2, 2, 1],
                [3, 5, 3, 2, 0],
                [1, 1, 0, 0, 0]]
    direct = np.zeros((5, 5))
    padded = np.pad(IMAGE, 1)
    for i in range(5):
        for j in range(5):
            direct[i, j] = sum(KERNEL[a, b] * padded[i + a, j + b] for a in range(3) for b in range(3))
    np.testing.assert_array_equal(direct, expected)
    np.testing.assert_array_equal(_conv_slide(1), expected)
    # h_i = (5 − 3 + 2·1)/1 + 1 = 5: "same" padding keeps the size
    assert _conv_slide(1).shape == (5, 5)


def test_conv2d_reference_matches_the_slide():
    y = conv2d_reference(IMAGE[None, None], KERNEL[None, None])
    np.testing.assert_array_equal(y[0, 0], [[4, 2, 3], [2, 2, 2], [5, 3, 2]])


# --------------------------------------------------------------------------- direct loops, written here


def direct_conv2d(x, w, b, stride, padding, groups):
    """y[n, o, i, j] = b[o] + Σ_{c in o's group} Σ_{k_i, k_j} w[o, c, k_i, k_j] · x[n, c, i·s − p + k_i, j·s − p + k_j]
    (x outside the image counts as 0)."""
    N, C, H, W = x.shape
    D, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    Ho, Wo = (H - kh + 2 * ph) // sh + 1, (W - kw + 2 * pw) // sw + 1
    y = np.zeros((N, D, Ho, Wo))
    for n in range(N):
        for o in range(D):
            g = o // (D // groups)
            for i in range(Ho):
                for j in range(Wo):
                    total = float(b[o]) if b is not None else 0.0
                    for c in range(cg):
                        for ki in range(kh):
                            for kj in range(kw):
                                h, v = i * sh - ph + ki, j * sw - pw + kj
                                if 0 <= h < H and 0 <= v < W:  # outside: zero padding
                                    total += float(w[o, c, ki, kj]) * float(x[n, g * cg + c, h, v])
                    y[n, o, i, j] = total
    return y


def direct_pool(x, kernel, stride, padding, kind):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = (H - kh + 2 * ph) // sh + 1, (W - kw + 2 * pw) // sw + 1
    y = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    inside = [float(x[n, c, i * sh - ph + ki, j * sw - pw + kj])
                              for ki in range(kh) for kj in range(kw)
                              if 0 <= i * sh - ph + ki < H and 0 <= j * sw - pw + kj < W]
                    # max: padding is −∞, never chosen; avg: padding is 0 but counted
                    y[n, c, i, j] = max(inside) if kind == "max" else sum(inside) / (kh * kw)
    return y


def _int_or_pair(pair):
    return pair[0] if pair[0] == pair[1] else pair


@st.composite
def conv_cases(draw, max_n=3, max_c=4, max_hw=9):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, max(1, max_c // groups)))
    dg = draw(st.integers(1, max(1, 4 // groups)))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), max_hw))
    W = draw(st.integers(max(1, kw - 2 * pw), max_hw))
    N = draw(st.integers(1, max_n))
    bias = draw(st.booleans())
    return dict(x=(N, cg * groups, H, W), w=(dg * groups, cg, kh, kw), bias=bias,
                stride=(sh, sw), padding=(ph, pw), groups=groups)


@st.composite
def pool_cases(draw, max_n=3, max_c=3, max_hw=9):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H = draw(st.integers(max(1, kh - 2 * ph), max_hw))
    W = draw(st.integers(max(1, kw - 2 * pw), max_hw))
    return dict(x=(draw(st.integers(1, max_n)), draw(st.integers(1, max_c)), H, W),
                kernel=(kh, kw), stride=stride, padding=(ph, pw))


def _conv_arrays(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype) if case["bias"] else None
    return x, w, b


@given(case=conv_cases())
def test_conv2d_forward_equals_direct_loops(case):
    x, w, b = _conv_arrays(case, np.float32)
    y = F.conv2d(mk.tensor(x), mk.tensor(w), None if b is None else mk.tensor(b),
                 stride=_int_or_pair(case["stride"]), padding=_int_or_pair(case["padding"]), groups=case["groups"])
    assert y.dtype == np.float32
    expected = direct_conv2d(x, w, b, case["stride"], case["padding"], case["groups"])
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_cases())
def test_pool_forward_equals_direct_loops(case, kind):
    x = np.random.default_rng(0).standard_normal(case["x"]).astype(np.float32)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    stride = None if case["stride"] is None else _int_or_pair(case["stride"])
    y = pool(mk.tensor(x), _int_or_pair(case["kernel"]), stride=stride, padding=_int_or_pair(case["padding"]))
    assert y.dtype == np.float32
    expected = direct_pool(x, case["kernel"], case["stride"] or case["kernel"], case["padding"], kind)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_pool_stride_defaults_to_the_kernel():
    x = mk.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(F.max_pool2d(x, 2).numpy()[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2).numpy()[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_avg_pool_counts_the_padding():
    # count_include_pad=True: the corner window holds 1 pixel and 3 zeros of padding
    x = mk.tensor(np.ones((1, 1, 2, 2), np.float32))
    np.testing.assert_allclose(F.avg_pool2d(x, 2, stride=2, padding=1).numpy()[0, 0], [[0.25, 0.25], [0.25, 0.25]])


def test_conv2d_reference_equals_direct_loops():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    np.testing.assert_allclose(conv2d_reference(x, w, b, stride=(2, 1), padding=(1, 0)),
                               direct_conv2d(x, w, b, (2, 1), (1, 0), 1), rtol=1e-12)


# --------------------------------------------------------------------------- backends, dtypes, grads


def test_numba_and_numpy_backends_give_the_same_conv_and_pool():
    rng = np.random.default_rng(5)
    x0, w0, b0 = rng.standard_normal((4, 3, 9, 9)).astype(np.float32), \
        rng.standard_normal((5, 3, 3, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    results = []
    for name in K.BACKENDS:
        with K.use_backend(name):
            x, w, b = (mk.tensor(a, requires_grad=True) for a in (x0, w0, b0))
            y = F.max_pool2d(F.conv2d(x, w, b, stride=1, padding=1), 2) + F.avg_pool2d(x, 3, 2, 1).sum()
            y.sum().backward()
            results.append([y.numpy(), x.grad, w.grad, b.grad])
    for a, b in zip(*results):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_float32_gradients_stay_float32():
    rng = np.random.default_rng(6)
    x = mk.tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32), requires_grad=True)
    w = mk.tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True)
    b = mk.tensor(np.zeros(3, np.float32), requires_grad=True)
    F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, b, padding=1), 2), 2).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_conv2d_only_computes_the_gradients_asked_for():
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    x, w = mk.tensor(x0), mk.tensor(w0, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    x2, w2 = mk.tensor(x0, requires_grad=True), mk.tensor(w0, requires_grad=True)
    F.conv2d(x2, w2, padding=1).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad, w2.grad)
    # and the other way round: no weight gradient, the input gradient is unchanged
    x3, w3 = mk.tensor(x0, requires_grad=True), mk.tensor(w0)
    F.conv2d(x3, w3, padding=1).sum().backward()
    assert w3.grad is None
    np.testing.assert_allclose(x3.grad, x2.grad)


@given(case=conv_cases(max_n=2, max_c=3, max_hw=7))
def test_conv2d_gradcheck(case):
    x, w, b = _conv_arrays(case, np.float64, seed=1)
    params = dict(stride=case["stride"], padding=case["padding"], groups=case["groups"])
    if b is None:
        assert check_grad(lambda x, w: F.conv2d(x, w, **params), x, w)
    else:
        assert check_grad(lambda x, w, b: F.conv2d(x, w, b, **params), x, w, b)


@given(case=pool_cases(max_n=2, max_c=3, max_hw=7))
def test_max_pool_gradcheck(case):
    x = distinct(np.random.default_rng(2), case["x"])  # no ties: the max is differentiable
    assert check_grad(lambda x: F.max_pool2d(x, case["kernel"], case["stride"], case["padding"]), x)


@given(case=pool_cases(max_n=2, max_c=3, max_hw=7))
def test_avg_pool_gradcheck(case):
    x = np.random.default_rng(3).standard_normal(case["x"])
    assert check_grad(lambda x: F.avg_pool2d(x, case["kernel"], case["stride"], case["padding"]), x)


# --------------------------------------------------------------------------- clear errors


def _t(*shape, dtype=np.float32):
    return mk.tensor(np.zeros(shape, dtype))


def test_conv2d_rejects_input_that_is_not_4d():
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D input \(N, C, H, W\); got shape \(28, 28\)"):
        F.conv2d(_t(28, 28), _t(32, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D weight .* got shape \(32, 3, 3\)"):
        F.conv2d(_t(1, 1, 28, 28), _t(32, 3, 3))


def test_conv2d_channel_mismatch():
    msg = r"conv2d: weight \(32, 1, 3, 3\) expects input with 1 channels \(N, 1, H, W\); got \(8, 3, 28, 28\)"
    with pytest.raises(ValueError, match=msg):
        F.conv2d(_t(8, 3, 28, 28), _t(32, 1, 3, 3))
    msg = (r"conv2d: weight \(6, 2, 3, 3\) with groups=3 expects input with 6 channels \(N, 6, H, W\); "
           r"got \(1, 2, 8, 8\)")
    with pytest.raises(ValueError, match=msg):
        F.conv2d(_t(1, 2, 8, 8), _t(6, 2, 3, 3), groups=3)
    with pytest.raises(ValueError, match=r"weight \(4, 1, 3, 3\) has 4 filters, not divisible by groups=3"):
        F.conv2d(_t(1, 3, 8, 8), _t(4, 1, 3, 3), groups=3)
    with pytest.raises(ValueError, match="groups must be a positive int; got 0"):
        F.conv2d(_t(1, 3, 8, 8), _t(4, 3, 3, 3), groups=0)


def test_conv2d_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: kernel 5×5 does not fit the padded input 3×3 \(padding 0\)"):
        F.conv2d(_t(1, 1, 3, 3), _t(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"kernel 5×5 does not fit the padded input 5×3 \(padding \(1, 0\)\)"):
        F.conv2d(_t(1, 1, 3, 3), _t(1, 1, 5, 5), padding=(1, 0))
    F.conv2d(_t(1, 1, 3, 3), _t(1, 1, 5, 5), padding=1)  # 5×5 fits once padded


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_conv2d_and_pools_reject_non_positive_stride(stride):
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive; got \("):
        F.conv2d(_t(1, 1, 8, 8), _t(2, 1, 3, 3), stride=stride)
    for pool, name in ((F.max_pool2d, "max_pool2d"), (F.avg_pool2d, "avg_pool2d")):
        with pytest.raises(ValueError, match=rf"{name}: stride must be positive"):
            pool(_t(1, 1, 8, 8), 2, stride=stride)


def test_conv2d_bias_shape():
    with pytest.raises(ValueError, match=r"conv2d: bias of shape \(3,\) does not match weight \(32, 1, 3, 3\): "
                                         r"expected \(32,\)"):
        F.conv2d(_t(1, 1, 8, 8), _t(32, 1, 3, 3), _t(3))


def test_conv2d_bad_argument_types_and_dtypes():
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints \(h, w\); got 1.5"):
        F.conv2d(_t(1, 1, 8, 8), _t(2, 1, 3, 3), stride=1.5)
    with pytest.raises(TypeError, match="conv2d: input dtype float32 and weight dtype float64 differ"):
        F.conv2d(_t(1, 1, 8, 8), _t(2, 1, 3, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"padding must be ≥ 0; got \(-1, -1\)"):
        F.conv2d(_t(1, 1, 8, 8), _t(2, 1, 3, 3), padding=-1)


@pytest.mark.parametrize("pool, name", [(F.max_pool2d, "max_pool2d"), (F.avg_pool2d, "avg_pool2d")])
def test_pool_errors(pool, name):
    with pytest.raises(ValueError, match=rf"{name}: expected a 4-D input \(N, C, H, W\); got shape \(3, 8, 8\)"):
        pool(_t(3, 8, 8), 2)
    with pytest.raises(ValueError, match=rf"{name}: kernel 3×3 does not fit the padded input 2×2 \(padding 0\); "
                                         r"input shape \(1, 1, 2, 2\)"):
        pool(_t(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=rf"{name}: padding \(2, 2\) must be at most half the kernel 3×3"):
        pool(_t(1, 1, 8, 8), 3, padding=2)
    with pytest.raises(ValueError, match=rf"{name}: kernel size must be positive; got 0×0"):
        pool(_t(1, 1, 8, 8), 0)
    with pytest.raises(TypeError, match=rf"{name}: kernel_size must be an int or a pair"):
        pool(_t(1, 1, 8, 8), (2, 2, 2))


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 1), ((2, 3), (1, 2), (1, 0)), (3, 2, 1)])
def test_max_pool2d_reference_equals_the_op_with_nan_too(kernel, stride, padding):
    from minikd.ops.pool import max_pool2d_reference

    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    x[1, 2, 3, 3] = np.nan
    want = max_pool2d_reference(x, kernel, stride, padding)
    for backend in ("numba", "numpy"):
        with mk.kernels.use_backend(backend):
            got = F.max_pool2d(mk.tensor(x), kernel, stride=stride, padding=padding).numpy()
        np.testing.assert_array_equal(got, want)
