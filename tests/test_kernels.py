"""The Numba kernels compute the same numbers as their plain-NumPy references."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minikd import kernels as K
from minikd.kernels import jit

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def build(request, monkeypatch):
    """Every test here runs twice: with the serial and with the parallel build of each kernel."""
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 2**62)
    return request.param


@st.composite
def windows(draw, pool=False):
    """(x shape, kernel, stride, padding) where the window fits the padded input."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if pool:  # pooling: p ≤ ⌊k/2⌋
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    else:
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W), (kh, kw), (sh, sw), (ph, pw)


def _x(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_numba_is_the_default_backend():
    assert K.get_backend() == "numba"


def test_set_and_use_backend():
    with K.use_backend("numpy"):
        assert K.get_backend() == "numpy"
        with K.use_backend("numba"):
            assert K.get_backend() == "numba"
        assert K.get_backend() == "numpy"
    assert K.get_backend() == "numba"
    with pytest.raises(ValueError, match="unknown kernel backend 'torch'"):
        K.set_backend("torch")
    assert K.get_backend() == "numba"


def test_dispatch_follows_the_backend(monkeypatch):
    calls = []
    monkeypatch.setattr(K, "im2col_numba", lambda *a: calls.append("numba"))
    monkeypatch.setattr(K, "im2col_numpy", lambda *a: calls.append("numpy"))
    x = np.zeros((1, 1, 3, 3), np.float32)
    K.im2col(x, (2, 2), (1, 1), (0, 0))
    with K.use_backend("numpy"):
        K.im2col(x, (2, 2), (1, 1), (0, 0))
    assert calls == ["numba", "numpy"]


@pytest.mark.parametrize("d_prev, k, p, s, expected", [(28, 3, 1, 1, 28), (28, 2, 0, 2, 14), (5, 3, 0, 1, 3),
                                                        (14, 3, 1, 1, 14), (7, 3, 0, 2, 3), (8, 3, 0, 2, 3)])
def test_output_size_is_the_lecture_formula(d_prev, k, p, s, expected):
    # h_i = ⌊(h_{i−1} − k + 2p) / s⌋ + 1
    assert K.conv_output_size(d_prev, k, p, s, floor=True) == expected


@pytest.mark.parametrize("backend", K.BACKENDS)
def test_im2col_columns_are_the_windows(backend):
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float32).reshape(2, 2, 4, 4)
    with K.use_backend(backend):
        cols = K.im2col(x, (2, 2), (2, 2), (0, 0))
    assert cols.shape == (2 * 2 * 2, 2 * 2 * 2)  # (C·k_h·k_w, N·h_i·w_i)
    # image 1, output (1, 0) is column (n·h_i + i)·w_i + j = 6: rows 2-3, columns 0-1,
    # channel 0 then channel 1
    np.testing.assert_array_equal(cols[:, 6], np.concatenate([x[1, 0, 2:4, 0:2].ravel(), x[1, 1, 2:4, 0:2].ravel()]))


@pytest.mark.parametrize("backend", K.BACKENDS)
def test_im2col_rows_are_shifted_planes_with_zero_padding(backend):
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    with K.use_backend(backend):
        cols = K.im2col(x, (3, 3), (1, 1), (1, 1))
    # offset (k_i, k_j) = (0, 0) is the top-left neighbour of every pixel: zero outside the image
    np.testing.assert_array_equal(cols[0].reshape(3, 3), [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    np.testing.assert_array_equal(cols[4].reshape(3, 3), x[0, 0])  # the centre: the image itself


def test_col2im_is_the_adjoint_of_im2col():
    # ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every x and c
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 5))
    args = (3, 2), (2, 1), (1, 1)
    cols = K.im2col(x, *args)
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose((cols * c).sum(), (x * K.col2im(c, x.shape, *args)).sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=windows())
def test_im2col_numba_equals_numpy(case, dtype):
    shape, kernel, stride, padding = case
    x = _x(shape, dtype)
    a, b = K.im2col_numba(x, kernel, stride, padding), K.im2col_numpy(x, kernel, stride, padding)
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_equal(a, b)  # pure copies: exactly equal


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=windows())
def test_col2im_numba_equals_numpy(case, dtype):
    shape, kernel, stride, padding = case
    n_windows = shape[0] * K.conv_output_size(shape[2], kernel[0], padding[0], stride[0], floor=True) \
        * K.conv_output_size(shape[3], kernel[1], padding[1], stride[1], floor=True)
    cols = _x((shape[1] * kernel[0] * kernel[1], n_windows), dtype, seed=2)
    a, b = K.col2im_numba(cols, shape, kernel, stride, padding), K.col2im_numpy(cols, shape, kernel, stride, padding)
    assert a.shape == b.shape == shape and a.dtype == b.dtype == dtype
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # sums in another order


@pytest.mark.parametrize("dtype", DTYPES)
@given(N=st.integers(1, 3), C=st.integers(1, 3), H=st.integers(2, 9), W=st.integers(2, 9),
       ties=st.booleans(), channel_major=st.booleans())
def test_max_pool_2x2_fast_path_equals_numpy(N, C, H, W, ties, channel_major, dtype):
    # the unrolled 2×2 / stride 2 kernels: odd sizes leave a row or column in no window,
    # integer-valued inputs make ties, and a channel-major view is what a conv returns
    x = np.floor(_x((N, C, H, W), dtype) * 2) if ties else _x((N, C, H, W), dtype)
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    args = (2, 2), (2, 2), (0, 0)
    (y1, a1), (y2, a2) = K.max_pool_forward_numba(x, *args), K.max_pool_forward_numpy(x, *args)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)
    gy = _x(y1.shape, dtype, seed=3)
    g1 = K.max_pool_backward_numba(gy, a1, x.shape, *args, like=x)
    np.testing.assert_array_equal(g1, K.max_pool_backward_numpy(gy, a2, x.shape, *args))
    assert g1.strides == np.empty_like(x).strides  # dL/dx has the input's memory layout


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=windows(pool=True))
def test_max_pool_numba_equals_numpy(case, dtype):
    shape, kernel, stride, padding = case
    x = _x(shape, dtype)
    y1, a1 = K.max_pool_forward_numba(x, kernel, stride, padding)
    y2, a2 = K.max_pool_forward_numpy(x, kernel, stride, padding)
    assert y1.dtype == y2.dtype == dtype
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)
    gy = _x(y1.shape, dtype, seed=3)
    g1 = K.max_pool_backward_numba(gy, a1, shape, kernel, stride, padding)
    g2 = K.max_pool_backward_numpy(gy, a2, shape, kernel, stride, padding)
    assert g1.dtype == g2.dtype == dtype
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=windows(pool=True))
def test_avg_pool_numba_equals_numpy(case, dtype):
    shape, kernel, stride, padding = case
    x = _x(shape, dtype)
    y1, y2 = K.avg_pool_forward_numba(x, kernel, stride, padding), K.avg_pool_forward_numpy(x, kernel, stride, padding)
    assert y1.dtype == y2.dtype == dtype
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    gy = _x(y1.shape, dtype, seed=3)
    g1 = K.avg_pool_backward_numba(gy, shape, kernel, stride, padding)
    g2 = K.avg_pool_backward_numpy(gy, shape, kernel, stride, padding)
    assert g1.dtype == g2.dtype == dtype
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-6)


def test_kernels_accept_non_contiguous_input():
    x = _x((3, 2, 6, 6), np.float32).transpose(1, 0, 2, 3)  # a view with odd strides
    args = (3, 3), (1, 1), (1, 1)
    np.testing.assert_array_equal(K.im2col_numba(x, *args), K.im2col_numpy(x, *args))
    np.testing.assert_array_equal(K.max_pool_forward_numba(x, *args)[0], K.max_pool_forward_numpy(x, *args)[0])


def test_max_pool_ties_take_the_first_position():
    x = np.ones((1, 1, 2, 2), np.float32)
    for fn in (K.max_pool_forward_numba, K.max_pool_forward_numpy):
        y, argmax = fn(x, (2, 2), (2, 2), (0, 0))
        assert y[0, 0, 0, 0] == 1 and argmax[0, 0, 0, 0] == 0


def test_both_builds_are_compiled_and_cached_apart():
    from minikd.kernels.conv import _im2col_kernel as kernel
    assert kernel.parallel.py_func.__qualname__ != kernel.serial.py_func.__qualname__
    x = _x((2, 3, 5, 5), np.float32)
    cols_p, cols_s = np.empty((27, 50), np.float32), np.empty((27, 50), np.float32)
    kernel.parallel(x, 3, 3, 1, 1, 1, 1, cols_p)
    kernel.serial(x, 3, 3, 1, 1, 1, 1, cols_s)
    np.testing.assert_array_equal(cols_p, cols_s)
    assert kernel.parallel.targetoptions.get("parallel") and not kernel.serial.targetoptions.get("parallel")


def test_work_picks_the_build(monkeypatch):
    from minikd.kernels.conv import _im2col_kernel as kernel
    calls = []
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 100)
    kernel(99)
    kernel(100)
    assert calls == ["serial", "parallel"]


def _adam_run(p0, grads, weight_decay, backend):
    """Adam.step on one parameter through the given kernel backend: "numba" takes the fused
    branch, "numpy" the plain xp maths written in the step."""
    from minikd import nn, optim

    p = nn.Parameter(p0.copy())
    opt = optim.Adam([p], lr=1e-2, weight_decay=weight_decay)
    with K.use_backend(backend):
        for g in grads:
            p.grad = g
            opt.step()
    return [p.data, opt.state[0]["m"], opt.state[0]["v"]]


@pytest.mark.parametrize("dtype", DTYPES)
@given(n=st.integers(1, 3000), weight_decay=st.sampled_from([0.0, 0.01]), steps=st.integers(1, 4))
def test_adam_numba_equals_numpy(n, weight_decay, steps, dtype):
    # the one-pass kernel against the plain update of Adam.step, over a few steps (bias corrections change)
    rng = np.random.default_rng(n)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(steps)]
    states = [_adam_run(p0, grads, weight_decay, backend) for backend in ("numba", "numpy")]
    for a, b in zip(*states):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=2e-6 if dtype == np.float32 else 1e-12, atol=1e-7)
    assert not np.array_equal(states[0][0], p0)  # the parameter did move


def test_adam_dispatch_falls_back_for_non_contiguous_gradients(monkeypatch):
    from minikd import nn, optim

    calls = []
    monkeypatch.setattr(K, "adam_update_numba", lambda *a: calls.append("numba"))

    def step(grad):
        p = nn.Parameter(np.zeros((4, 4), np.float32))
        p.grad = grad
        optim.Adam([p], lr=1e-3).step()
        if not p.data.any():
            return
        calls.append("numpy")  # the plain branch moved the parameter

    step(np.ones((4, 4), np.float32))
    step(np.asfortranarray(np.ones((4, 4), np.float32)))  # not C-contiguous: the plain maths handles it
    with K.use_backend("numpy"):
        step(np.ones((4, 4), np.float32))
    assert calls == ["numba", "numpy", "numpy"]


# --------------------------------------------------------------------------- relu and select (minikd/kernels/select.py)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (64, 32, 14, 14), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_select_kernels_equal_their_references_with_nan_and_inf(shape, dtype):
    from minikd.kernels.select import (
        leaky_numba,
        leaky_numpy,
        relu_forward_numba,
        relu_forward_numpy,
        select_numba,
        select_numpy,
    )

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=min(3, flat.size), replace=False)] = [np.nan, np.inf, -np.inf][:min(3, flat.size)]
    g = rng.standard_normal(shape).astype(dtype)
    g.reshape(-1)[: min(4, g.size)] = np.inf
    y_ref, m_ref = relu_forward_numpy(x)
    y, m = relu_forward_numba(x)
    np.testing.assert_array_equal(y, y_ref)          # NaN where NaN, −inf → 0
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(select_numba(m, g), select_numpy(m_ref, g))
    assert not np.isnan(select_numba(m, g)).any()    # inf where dropped gives 0, not NaN
    a = dtype(0.2)
    np.testing.assert_array_equal(leaky_numba(m, x, a), leaky_numpy(m_ref, x, a))   # LeakyReLU's forward
    np.testing.assert_array_equal(leaky_numba(m, g, a), np.where(m_ref, g, a * g))  # and backward


@pytest.mark.parametrize("shape", [(7,), (100, 1200), (64, 32, 14, 14)])   # the last: the parallel build
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaled_select_kernel_equals_the_reference_and_dropouts_old_formula(shape, dtype):
    """Dropout's kernel, s·g where kept, else 0: equal to the reference ``where`` and, bit for bit,
    to the formula dropout used before it (x · mask, mask = keep · 1/(1 − p) in x's dtype); a
    dropped inf or NaN gives 0, a kept one stays inf or NaN."""
    from minikd.kernels.select import scaled_select_numba, scaled_select_numpy

    rng = np.random.default_rng(3)
    g = rng.standard_normal(shape).astype(dtype)
    flat = g.reshape(-1)
    flat[:4] = [np.inf, np.nan, -np.inf, np.nan]
    keep = rng.random(shape) >= 0.3
    keep.reshape(-1)[:4] = [False, False, True, True]   # inf and NaN dropped, then kept
    s = dtype(1.0 / (1.0 - 0.3))
    out = scaled_select_numba(keep, g, s)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, scaled_select_numpy(keep, g, s))
    mask = keep.astype(dtype)
    mask *= 1.0 / (1.0 - 0.3)
    np.testing.assert_array_equal(out, np.where(keep, g * mask, dtype(0)))
    assert out.reshape(-1)[:3].tolist() == [0, 0, -np.inf] and np.isnan(out.reshape(-1)[3])


def test_scaled_select_takes_the_kernel_in_the_masks_layout(monkeypatch):
    """The kernel for a dense mask, ``g`` copied into its layout; the reference for a mask with no
    dense order (reversed)."""
    import minikd.kernels as K

    calls = []
    for name in ("scaled_select_numba", "scaled_select_numpy"):
        f = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, f=f, name=name: calls.append(name) or f(*a))
    rng = np.random.default_rng(4)
    keep = rng.random((4, 3, 5)) >= 0.5
    g = rng.standard_normal((3, 4, 5)).astype(np.float32).transpose(1, 0, 2)   # another layout than the mask's
    s = np.float32(2.0)
    for mask in (keep, keep[:, :, ::-1]):                                       # dense; reversed: the reference
        np.testing.assert_array_equal(K.scaled_select(mask, g, s), np.where(mask, g * s, np.float32(0)))
    assert calls == ["scaled_select_numba", "scaled_select_numpy"]


def test_relu_and_select_dispatch_falls_back_for_strided_arrays():
    import minikd.kernels as K

    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)[:, ::2]   # not contiguous
    y, m = K.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(K.select(m, x), np.where(x > 0, x, 0))


def test_relu_and_select_take_the_kernel_for_a_convs_transposed_output(monkeypatch):
    """A conv's output is (N, d, h, w) over (d, N, h, w) memory: dense, not C-contiguous. LeNet-5's
    ReLU sees exactly that; it used to fall back to NumPy's branching ``where`` (17× slower)."""
    import minikd.kernels as K

    calls = []

    def counted(name):
        f = getattr(K, name)
        return lambda *a: calls.append(name) or f(*a)

    for name in ("relu_forward_numba", "select_numba", "relu_forward_numpy", "select_numpy", "leaky_numba",
                 "leaky_numpy"):
        monkeypatch.setattr(K, name, counted(name))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5, 5)).astype(np.float32)
    x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    x = x.transpose(1, 0, 2, 3)                     # (4, 3, 5, 5), memory (3, 4, 5, 5)
    g = rng.standard_normal(x.shape).astype(np.float32)
    g.reshape(-1)[:2] = np.inf
    y, m = K.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(m, x > 0)
    assert y.strides == x.strides and m.shape == x.shape      # the outputs keep x's layout
    for grad in (g, np.ascontiguousarray(g.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)):   # either layout
        out = K.select(m, grad)
        np.testing.assert_array_equal(out, np.where(x > 0, grad, 0))
        assert not np.isnan(out).any()
    assert calls == ["relu_forward_numba", "select_numba", "select_numba"]
    np.testing.assert_array_equal(K.select(m, g[:, :, ::-1]), np.where(x > 0, g[:, :, ::-1], 0))
    assert calls[-1] == "select_numba"             # any g is copied into the mask's layout
    np.testing.assert_array_equal(K.select(m[:, :, ::-1], g), np.where(x[:, :, ::-1] > 0, g, 0))
    assert calls[-1] == "select_numpy"             # a reversed mask has no dense order: the reference
    a = np.float32(0.2)
    np.testing.assert_array_equal(K.leaky(m, x, a), np.where(x > 0, x, a * x))
    np.testing.assert_array_equal(K.leaky(m, g[:, :, ::-1], a), np.where(x > 0, g[:, :, ::-1], a * g[:, :, ::-1]))
    np.testing.assert_array_equal(K.leaky(m[:, :, ::-1], g, a), np.where(x[:, :, ::-1] > 0, g, a * g))
    assert calls[-3:] == ["leaky_numba", "leaky_numba", "leaky_numpy"]


def test_numba_cuda_gets_numpys_removed_row_stack_back(monkeypatch):
    """numba-cuda names numpy.row_stack, which NumPy 2.5 removed: on a GPU machine with NumPy 2.5.2
    every kernel failed to compile until minikd put the name back (as numpy.vstack, which it was)."""
    import minikd.kernels as K

    monkeypatch.delattr(np, "row_stack", raising=False)
    K._numpy_names_for_numba_cuda()
    assert getattr(np, "row_stack") is np.vstack  # noqa: B009 - the name NumPy removed, on purpose
    monkeypatch.setattr(np, "row_stack", len, raising=False)
    K._numpy_names_for_numba_cuda()  # where NumPy has the name, it is left alone
    assert getattr(np, "row_stack") is len  # noqa: B009


FLOAT16_OPS = {   # every op whose CPU path is a Numba kernel: forward and backward on float16 input
    "relu": lambda F, x: F.relu(x),
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.1),
    "clip": lambda F, x: x.clip(-0.5, 0.5),
    "dropout": lambda F, x: F.dropout(x, p=0.5, training=True),
    "conv2d": lambda F, x: F.conv2d(x, x[:3, :2], padding=1),
    "max_pool2d": lambda F, x: F.max_pool2d(x, 2),
    "avg_pool2d": lambda F, x: F.avg_pool2d(x, 2),
}


@pytest.mark.parametrize("op", FLOAT16_OPS)
def test_float16_takes_the_reference_path_numba_compiles_no_float16(op):
    """Numba compiles no float16 arithmetic for the CPU: it raised "NotImplementedError: float16"
    from deep inside a kernel. Such arrays now take the NumPy reference, under either backend."""
    import minikd as mk
    from minikd import functional as F

    results = {}
    for backend in ("numba", "numpy"):
        with K.use_backend(backend):
            mk.manual_seed(0)
            x = mk.tensor(_x((4, 2, 6, 6), np.float16), requires_grad=True)
            y = FLOAT16_OPS[op](F, x)
            (y * y).sum().backward()
            results[backend] = (y.numpy(), x.grad)
    for a, b in zip(results["numba"], results["numpy"], strict=True):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_adam_steps_a_float16_parameter_with_its_plain_maths():
    from minikd import nn, optim

    p = nn.Parameter(np.ones(3, np.float16))
    assert not K.adam_update_applies(p.data, p.data, p.data, p.data)
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.dtype == np.float16 and np.allclose(p.numpy(), 0.9, atol=1e-3)
