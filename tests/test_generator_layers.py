"""The layers a generator network needs (issue 14): conv_transpose2d / ConvTranspose2d,
embedding / Embedding, nearest interpolation / Upsample — references, gradients, errors, counts.

The references are loops written from each definition (independent of the matrix and col2im
formulation under test); PyTorch, when installed, is a second oracle and is skipped otherwise.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import kernels as K
from minikd import nn, profile
from minikd.ops.conv_transpose import conv_transpose2d, conv_transpose2d_reference
from minikd.ops.embedding import embedding
from minikd.ops.resize import interpolate, nearest_indices
from tests.util import check_grad

# --------------------------------------------------------------------------- conv_transpose2d: known values


def test_each_input_pixel_scatters_a_scaled_copy_of_the_kernel():
    """x = [[1, 2], [3, 4]] with a 2×2 kernel of ones, stride 1: four overlapping 2×2 blocks."""
    x = mk.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    w = mk.tensor(np.ones((1, 1, 2, 2)))
    y = conv_transpose2d(x, w).numpy()[0, 0]
    np.testing.assert_array_equal(y, [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


def test_stride_2_places_the_blocks_apart_and_padding_crops_the_border():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = conv_transpose2d(mk.tensor(x), mk.tensor(w), stride=2).numpy()[0, 0]
    assert y.shape == (5, 5)                       # (2 − 1)·2 + 3
    # 1·w at rows/columns 0–2, 2·w at rows 0–2, columns 2–4, 3·w and 4·w two rows lower
    np.testing.assert_array_equal(y, [[1, 2, 3 + 2, 4, 6],
                                      [4, 5, 6 + 8, 10, 12],
                                      [7 + 3, 8 + 6, 9 + 14 + 9 + 4, 16 + 8, 18 + 12],   # the four overlap at (2, 2)
                                      [12, 15, 18 + 16, 20, 24],
                                      [21, 24, 27 + 28, 32, 36]])
    cropped = conv_transpose2d(mk.tensor(x), mk.tensor(w), stride=2, padding=1).numpy()[0, 0]
    np.testing.assert_array_equal(cropped, y[1:4, 1:4])             # H_out = 5 − 2·1
    extra = conv_transpose2d(mk.tensor(x), mk.tensor(w), stride=2, padding=1, output_padding=1).numpy()[0, 0]
    assert extra.shape == (4, 4)
    np.testing.assert_array_equal(extra, y[1:5, 1:5])               # one more row and column at the end


def test_generator_sizes_7_to_14_to_28():
    x = mk.randn(2, 8, 7, 7)
    y = F.conv_transpose2d(x, mk.randn(8, 4, 4, 4), stride=2, padding=1)
    assert y.shape == (2, 4, 14, 14) and y.dtype == np.float32
    z = F.conv_transpose2d(y, mk.randn(4, 1, 3, 3), stride=2, padding=1, output_padding=1)
    assert z.shape == (2, 1, 28, 28)


# --------------------------------------------------------------------------- conv_transpose2d: random cases


@st.composite
def conv_transpose_case(draw):
    n, c, d = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oh, ow = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    # the largest padding that leaves H_out = (H − 1)·s − 2p + k + output_padding ≥ 1
    ph = draw(st.integers(0, min(2, ((h - 1) * sh + kh + oh - 1) // 2)))
    pw = draw(st.integers(0, min(2, ((w - 1) * sw + kw + ow - 1) // 2)))
    return dict(x_shape=(n, c, h, w), w_shape=(c, d, kh, kw), stride=(sh, sw), padding=(ph, pw),
                output_padding=(oh, ow), bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _arrays(case):
    rng = np.random.default_rng(case["seed"])
    x, w = rng.normal(size=case["x_shape"]), rng.normal(size=case["w_shape"])
    b = rng.normal(size=case["w_shape"][1]) if case["bias"] else None
    return x, w, b


def _params(case):
    return dict(stride=case["stride"], padding=case["padding"], output_padding=case["output_padding"])


@given(conv_transpose_case())
def test_conv_transpose2d_equals_the_reference_loop(case):
    x, w, b = _arrays(case)
    y = conv_transpose2d(mk.tensor(x), mk.tensor(w), None if b is None else mk.tensor(b), **_params(case))
    expected = conv_transpose2d_reference(x, w, b, **_params(case))
    (sh, sw), (ph, pw), (oh, ow) = case["stride"], case["padding"], case["output_padding"]
    H, W = case["x_shape"][2:]
    kh, kw = case["w_shape"][2:]
    assert y.shape == (x.shape[0], w.shape[1], (H - 1) * sh - 2 * ph + kh + oh, (W - 1) * sw - 2 * pw + kw + ow)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@given(conv_transpose_case())
def test_conv_transpose2d_gradcheck(case):
    x, w, b = _arrays(case)
    if b is None:
        check_grad(lambda t, u: conv_transpose2d(t, u, **_params(case)), x, w)
    else:
        check_grad(lambda t, u, v: conv_transpose2d(t, u, v, **_params(case)), x, w, b)


@given(conv_transpose_case())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case):
    """⟨conv2d(z, W), x⟩ = ⟨z, conv_transpose2d(x, W)⟩ for every z of the output's shape."""
    x, w, _ = _arrays(case)
    y = conv_transpose2d(mk.tensor(x), mk.tensor(w), **_params(case)).numpy()
    z = np.random.default_rng(case["seed"] + 1).normal(size=y.shape)
    cz = F.conv2d(mk.tensor(z), mk.tensor(w), stride=case["stride"], padding=case["padding"]).numpy()
    assert cz.shape == x.shape  # conv2d maps the output's size back to the input's
    assert float((cz * x).sum()) == pytest.approx(float((z * y).sum()), rel=1e-10, abs=1e-10)


@given(conv_transpose_case())
def test_conv_transpose2d_numba_and_numpy_kernels_agree(case):
    """The op runs on kernels.col2im (forward) and im2col (backward); both CPU paths give the same."""
    x, w, b = _arrays(case)
    results = {}
    for path in K.BACKENDS:
        with K.use_backend(path):
            tx, tw = mk.tensor(x, requires_grad=True), mk.tensor(w, requires_grad=True)
            tb = None if b is None else mk.tensor(b, requires_grad=True)
            y = conv_transpose2d(tx, tw, tb, **_params(case))
            y.backward(np.cos(np.arange(y.size)).reshape(y.shape))
            results[path] = [y.numpy(), tx.grad, tw.grad] + ([] if b is None else [tb.grad])
    for a, c in zip(results["numba"], results["numpy"]):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


@given(conv_transpose_case())
def test_conv_transpose2d_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b = _arrays(case)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **_params(case))
    g = np.sin(np.arange(ty.numel())).reshape(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    mx, mw = mk.tensor(x, requires_grad=True), mk.tensor(w, requires_grad=True)
    mb = None if b is None else mk.tensor(b, requires_grad=True)
    my = conv_transpose2d(mx, mw, mb, **_params(case))
    my.backward(g)
    np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mw.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(mb.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- nn.ConvTranspose2d


def test_conv_transpose_layer_shapes_parameters_and_repr():
    layer = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    assert layer.weight.shape == (8, 4, 4, 4) and layer.bias.shape == (4,)
    assert layer.num_parameters() == 4 * 4 * 8 * 4 + 4
    assert layer(mk.randn(3, 8, 7, 7)).shape == (3, 4, 14, 14)
    assert repr(layer) == "ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))"
    other = nn.ConvTranspose2d(2, 3, (3, 2), stride=2, output_padding=1, bias=False)
    assert repr(other) == "ConvTranspose2d(2, 3, kernel_size=(3, 2), stride=(2, 2), output_padding=(1, 1), bias=False)"
    assert other.bias is None and other(mk.randn(1, 2, 3, 3)).shape == (1, 3, 8, 7)


def test_conv_transpose_layer_init_is_pytorchs_fan_in_from_the_output_channels():
    """PyTorch reads fan_in from the weight's axis 1, which is d here: bound 1/√(d·k·k), not 1/√(d_prev·k·k)."""
    mk.manual_seed(0)
    layer = nn.ConvTranspose2d(1, 16, 3)
    bound = 1 / math.sqrt(16 * 3 * 3)
    w, b = np.abs(layer.weight.numpy()), np.abs(layer.bias.numpy())
    assert w.max() <= bound and w.max() > 0.8 * bound   # 144 draws: all below 0.8·bound has probability 0.8^144
    assert b.max() <= bound


def test_conv_transpose_layer_forward_is_the_function():
    layer = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    x = mk.randn(2, 3, 4, 5)
    expected = conv_transpose2d_reference(x.numpy(), layer.weight.numpy(), layer.bias.numpy(), 2, 1, 1)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- conv_transpose2d: errors


def test_conv_transpose2d_errors_name_what_is_wrong():
    x, w = mk.zeros(1, 3, 4, 4), mk.zeros(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be ≥ 0 and smaller than the "
                                         r"stride \(PyTorch's rule\); got output_padding 1 with stride 1"):
        F.conv_transpose2d(x, w, output_padding=1)
    with pytest.raises(ValueError, match=r"output_padding 2 with stride 2 along the width"):
        F.conv_transpose2d(x, w, stride=2, output_padding=(1, 2))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding must be ≥ 0; got -1"):
        F.conv_transpose2d(x, w, stride=2, output_padding=-1)
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected a 4-D input \(N, d_prev, H, W\); "
                                         r"got shape \(3, 4, 4\)"):
        F.conv_transpose2d(mk.zeros(3, 4, 4), w)
    with pytest.raises(ValueError, match=r"expected a 4-D weight \(d_prev, d, k_h, k_w\); got shape \(3, 2, 3\)"):
        F.conv_transpose2d(x, mk.zeros(3, 2, 3))
    with pytest.raises(ValueError, match=r"weight \(2, 2, 3, 3\) expects input with 2 channels \(N, 2, H, W\); "
                                         r"got \(1, 3, 4, 4\)"):
        F.conv_transpose2d(x, mk.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"bias of shape \(3,\) does not match weight \(3, 2, 3, 3\): "
                                         r"expected \(2,\), one per output channel"):
        F.conv_transpose2d(x, w, mk.zeros(3))
    with pytest.raises(TypeError, match=r"conv_transpose2d: input dtype float64 and weight dtype float32 differ"):
        F.conv_transpose2d(mk.zeros(1, 3, 4, 4, dtype="float64"), w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: the output would be empty: .* = -1×-1"):
        F.conv_transpose2d(mk.zeros(1, 3, 1, 1), mk.zeros(3, 2, 1, 1), padding=1)
    with pytest.raises(ValueError, match=r"conv_transpose2d: stride must be positive; got 0"):
        F.conv_transpose2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv_transpose2d: padding must be ≥ 0; got -1"):
        F.conv_transpose2d(x, w, padding=-1)


def test_conv_transpose_layer_errors():
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3→2, k=3\) expects \(N, 3, H, W\); got \(1, 2, 4, 4\)"):
        nn.ConvTranspose2d(3, 2, 3)(mk.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding must be smaller than the stride"):
        nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding must be ≥ 0; got -1"):
        nn.ConvTranspose2d(3, 2, 3, output_padding=-1)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: in_channels must be positive; got 0"):
        nn.ConvTranspose2d(0, 2, 3)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: kernel_size must be an int or a pair"):
        nn.ConvTranspose2d(3, 2, 2.5)


# --------------------------------------------------------------------------- embedding


def test_embedding_forward_picks_rows_and_backward_adds_repeated_indices():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 3))
    idx = np.array([[4, 0, 4], [4, 2, 0]])
    g = rng.normal(size=(2, 3, 3))
    t = mk.tensor(W, requires_grad=True)
    y = embedding(idx, t)
    assert y.shape == (2, 3, 3)
    np.testing.assert_array_equal(y.numpy(), W[idx])
    y.backward(g)
    # dL/dW = onehot(idx)ᵀ · dL/dy: row 4 gets three gradients, rows 1 and 3 none
    onehot = (idx.reshape(-1, 1) == np.arange(5)).astype(float)
    expected = onehot.T @ g.reshape(-1, 3)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-12)
    np.testing.assert_allclose(t.grad[4], g[0, 0] + g[0, 2] + g[1, 0], rtol=1e-12)
    assert not t.grad[1].any() and not t.grad[3].any()


@given(st.integers(1, 6), st.integers(1, 4), st.lists(st.integers(0, 5), min_size=1, max_size=8),
       st.integers(0, 2**16))
def test_embedding_gradcheck(n_extra, dim, labels, seed):
    n = max(labels) + n_extra
    W = np.random.default_rng(seed).normal(size=(n, dim))
    check_grad(lambda w: embedding(np.array(labels), w), W)


def test_embedding_takes_tensors_lists_ints_and_unsigned_indices():
    W = mk.tensor(np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(embedding(mk.tensor([3, 1]), W).numpy(), [[9, 10, 11], [3, 4, 5]])
    np.testing.assert_array_equal(embedding([3, 1], W).numpy(), [[9, 10, 11], [3, 4, 5]])
    np.testing.assert_array_equal(embedding(np.array([2], dtype=np.uint8), W).numpy(), [[6, 7, 8]])
    assert embedding(2, W).shape == (3,)
    assert embedding(np.zeros((0,), dtype=np.int64), W).shape == (0, 3)


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    W, idx, g = rng.normal(size=(10, 6)), rng.integers(0, 10, size=(4, 7)), rng.normal(size=(4, 7, 6))
    tw = torch.tensor(W, requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw)
    ty.backward(torch.tensor(g))
    mw = mk.tensor(W, requires_grad=True)
    my = F.embedding(idx, mw)
    my.backward(g)
    np.testing.assert_array_equal(my.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(mw.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_embedding_layer():
    mk.manual_seed(0)
    layer = nn.Embedding(100, 50)
    assert layer.weight.shape == (100, 50) and layer.num_parameters() == 5000
    w = layer.weight.numpy()
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1.0) < 0.05   # N(0, 1), as PyTorch
    assert repr(layer) == "Embedding(100, 50)"
    assert layer.num_embeddings == 100 and layer.embedding_dim == 50
    labels = mk.tensor([3, 3, 7])
    y = layer(labels)
    np.testing.assert_array_equal(y.numpy(), w[[3, 3, 7]])
    y.sum().backward()
    assert layer.weight.grad[3].tolist() == [2.0] * 50 and layer.weight.grad[7].tolist() == [1.0] * 50


def test_embedding_errors_name_what_is_wrong():
    W = mk.zeros(10, 4)
    with pytest.raises(ValueError, match=r"embedding: indices must be integers \(class labels 0..n−1\); "
                                         r"got dtype float64"):
        F.embedding(np.array([1.0, 2.0]), W)
    with pytest.raises(TypeError, match=r"got dtype bool"):   # also a TypeError (ArgumentTypeError)
        F.embedding(np.array([True]), W)
    with pytest.raises(ValueError, match=r"embedding: index 10 is out of range for a table of n=10 rows "
                                         r"\(expected 0 ≤ index ≤ 9\)"):
        F.embedding([0, 10, 3], W)
    with pytest.raises(ValueError, match=r"embedding: index -1 is out of range for a table of n=10 rows"):
        F.embedding([-1], W)
    with pytest.raises(ValueError, match=r"embedding: weight must be 2-D \(num_embeddings, embedding_dim\); "
                                         r"got shape \(10,\)"):
        F.embedding([0], mk.zeros(10))
    with pytest.raises(ValueError, match=r"Embedding: num_embeddings must be positive; got 0"):
        nn.Embedding(0, 4)
    with pytest.raises(ValueError, match=r"Embedding: embedding_dim must be an int; got 2.5"):
        nn.Embedding(3, 2.5)


# --------------------------------------------------------------------------- nearest interpolation


def ref_nearest(x, size):
    """y[n, c, i, j] = x[n, c, ⌊i·H/H'⌋, ⌊j·W/W'⌋], one pixel at a time."""
    N, C, H, W = x.shape
    y = np.zeros((N, C) + tuple(size), dtype=x.dtype)
    for i in range(size[0]):
        for j in range(size[1]):
            y[:, :, i, j] = x[:, :, i * H // size[0], j * W // size[1]]
    return y


def test_nearest_indices_follow_pytorchs_rule():
    np.testing.assert_array_equal(nearest_indices(6, 3, np), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(nearest_indices(3, 5, np), [0, 1, 3])   # ⌊0⌋, ⌊5/3⌋, ⌊10/3⌋
    np.testing.assert_array_equal(nearest_indices(7, 5, np), [0, 0, 1, 2, 2, 3, 4])


@st.composite
def nearest_case(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return shape, (draw(st.integers(1, 13)), draw(st.integers(1, 13))), draw(st.integers(0, 2**16))


@given(nearest_case())
def test_nearest_forward_matches_the_loop_and_gradcheck(case):
    shape, size, seed = case
    x = np.random.default_rng(seed).normal(size=shape)
    y = interpolate(mk.tensor(x), size, mode="nearest")
    assert y.shape == shape[:2] + size and y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), ref_nearest(x, size))
    check_grad(lambda t: interpolate(t, size, mode="nearest"), x)


@given(nearest_case())
def test_nearest_matches_torch(case):
    torch = pytest.importorskip("torch")
    shape, size, seed = case
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=shape), rng.normal(size=shape[:2] + size)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, size=size, mode="nearest")
    ty.backward(torch.tensor(g))
    mx = mk.tensor(x, requires_grad=True)
    my = F.interpolate(mx, size, mode="nearest")
    my.backward(g)
    np.testing.assert_array_equal(my.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 1.5, 2.7, (2, 0.75)])
def test_scale_factor_gives_floor_of_h_times_s_like_torch(scale):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).normal(size=(1, 2, 5, 7))
    for mode in ("nearest", "bilinear"):
        y = F.interpolate(mk.tensor(x), scale_factor=scale, mode=mode).numpy()
        s = scale if isinstance(scale, tuple) else (scale, scale)
        assert y.shape[2:] == (math.floor(5 * s[0]), math.floor(7 * s[1]))
        t = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=scale, mode=mode,
                                            recompute_scale_factor=True)
        np.testing.assert_allclose(y, t.numpy(), rtol=1e-12, atol=1e-12)


def test_nearest_upsampling_by_2_copies_blocks_and_sums_their_gradients():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    t = mk.tensor(x, requires_grad=True)
    y = F.interpolate(t, scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(y.numpy()[0, 0], np.kron(x[0, 0], np.ones((2, 2))))
    g = np.arange(24.0).reshape(1, 1, 4, 6)
    y.backward(g)
    np.testing.assert_array_equal(t.grad, g.reshape(1, 1, 2, 2, 3, 2).sum(axis=(3, 5)))


def test_nearest_keeps_nan_local_and_integers_integer():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = np.nan
    y = F.interpolate(mk.tensor(x), (6, 6), mode="nearest").numpy()[0, 0]
    assert np.isnan(y).sum() == 4 and np.isnan(y[2:4, 4:6]).all()
    t = mk.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    g = np.zeros((1, 1, 6, 6))
    g[0, 0, 0, 0] = np.nan
    F.interpolate(t, (6, 6), mode="nearest").backward(g)
    assert np.isnan(t.grad).sum() == 1 and np.isnan(t.grad[0, 0, 0, 0])
    ints = F.interpolate(mk.tensor(np.arange(4).reshape(1, 1, 2, 2)), 4, mode="nearest")
    assert ints.dtype == np.arange(1).dtype
    np.testing.assert_array_equal(ints.numpy()[0, 0, 3], [2, 2, 3, 3])


def test_interpolate_errors_for_the_new_arguments():
    x = mk.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"interpolate: give exactly one of size and scale_factor; "
                                         r"got size=3, scale_factor=2"):
        F.interpolate(x, 3, scale_factor=2)
    with pytest.raises(ValueError, match=r"give exactly one of size and scale_factor; got size=None"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"interpolate: scale_factor must be > 0; got 0"):
        F.interpolate(x, scale_factor=0)
    with pytest.raises(ValueError, match=r"interpolate: scale_factor must be a positive number or a pair"):
        F.interpolate(x, scale_factor="2")
    with pytest.raises(ValueError, match=r"interpolate: scale_factor 0.2 makes an empty map: "
                                         r"⌊\(4, 4\) · \(0.2, 0.2\)⌋ = \(0, 0\)"):
        F.interpolate(x, scale_factor=0.2)
    with pytest.raises(ValueError, match=r"interpolate: align_corners=True applies to mode='bilinear' only"):
        F.interpolate(x, 8, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match=r"interpolate: unknown mode 'bicubic'; expected one of "
                                         r"\('bilinear', 'nearest'\)"):
        F.interpolate(x, 8, mode="bicubic")


# --------------------------------------------------------------------------- nn.Upsample


def test_upsample_module_is_interpolate():
    x = mk.randn(2, 3, 5, 4)
    up = nn.Upsample(scale_factor=2)
    np.testing.assert_array_equal(up(x).numpy(), ref_nearest(x.numpy(), (10, 8)))
    assert repr(up) == "Upsample(scale_factor=2, mode='nearest')" and up.num_parameters() == 0
    bil = nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(bil(x).numpy(), F.interpolate(x, (7, 9), align_corners=True).numpy())
    assert repr(bil) == "Upsample(size=(7, 9), mode='bilinear', align_corners=True)"
    default_corners = nn.Upsample(scale_factor=1.5, mode="bilinear")
    np.testing.assert_array_equal(default_corners(x).numpy(), F.interpolate(x, (7, 6)).numpy())


def test_upsample_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"Upsample: give exactly one of size and scale_factor; "
                                         r"got size=None, scale_factor=None"):
        nn.Upsample()
    with pytest.raises(ValueError, match=r"Upsample: give exactly one of size and scale_factor"):
        nn.Upsample(size=4, scale_factor=2)
    with pytest.raises(ValueError, match=r"Upsample: mode must be one of \('nearest', 'bilinear'\); got 'linear'"):
        nn.Upsample(scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match=r"Upsample: align_corners applies to mode='bilinear' only; "
                                         r"got align_corners=False with mode='nearest'"):
        nn.Upsample(scale_factor=2, align_corners=False)
    with pytest.raises(ValueError, match=r"Upsample: align_corners must be None, True or False; got 1"):
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=1)
    with pytest.raises(ValueError, match=r"Upsample: scale_factor must be > 0; got -2"):
        nn.Upsample(scale_factor=-2)
    with pytest.raises(ValueError, match=r"Upsample: size must be positive; got 0"):
        nn.Upsample(size=(0, 3))
    with pytest.raises(ValueError, match=r"Upsample\(scale_factor=2, mode='nearest'\) expects \(N, C, H, W\); "
                                         r"got \(2, 3\)"):
        nn.Upsample(scale_factor=2)(mk.zeros(2, 3))


# --------------------------------------------------------------------------- complexity counts


class TinyGenerator(nn.Module):
    """A label embedding added to a 4×7×7 map, upsampled ×2, then a transposed conv to 3×28×28."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.up = nn.Upsample(scale_factor=2)
        self.deconv = nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)

    def forward(self, x):
        labels = mk.tensor(np.zeros(x.shape[0], dtype=np.int64))
        h = x + self.emb(labels).reshape(x.shape[0], 4, 1, 1)
        return self.deconv(self.up(h))


def test_summary_counts_the_generator_layers():
    rows = {r.name: r for r in profile.summary(TinyGenerator(), (4, 7, 7), convention="macs").rows}
    assert (rows["emb"].params, rows["emb"].macs) == (10 * 4, 0)
    assert (rows["up"].params, rows["up"].macs, rows["up"].output_shape) == (0, 0, (4, 14, 14))
    deconv = rows["deconv"]
    assert deconv.output_shape == (3, 28, 28)
    assert deconv.params == 4 * 4 * 4 * 3 + 3                 # k·k·d_prev·d + d
    assert deconv.macs == deconv.flops == 14 * 14 * 4 * 4 * 4 * 3   # H_in·W_in·k·k·d_prev·d
    lecture = {r.name: r for r in profile.summary(TinyGenerator(), (4, 7, 7)).rows}["deconv"]
    assert lecture.flops == 2 * (deconv.macs + 28 * 28 * 3)   # the bias as one more MAC per output value
    flops = {r.name: r for r in profile.summary(TinyGenerator(), (4, 7, 7), convention="flops").rows}["deconv"]
    assert flops.flops == 2 * deconv.macs


def test_conv_transpose_macs_are_the_multiplies_of_the_definition():
    """The reference loop does one k×k×d block of products per input pixel and input channel."""
    H, W, k, d_prev, d = 5, 3, 3, 2, 4
    assert profile.conv_transpose_flops(H, W, k, d_prev, d, "macs") == H * W * d_prev * (k * k * d)
    assert profile.conv_transpose_flops(H, W, (3, 2), d_prev, d, "flops") == 2 * H * W * 6 * d_prev * d
    with pytest.raises(ValueError, match=r"give out_hw"):
        profile.conv_transpose_flops(H, W, k, d_prev, d)
    assert profile.conv_transpose_flops(H, W, k, d_prev, d, bias=False) == 2 * H * W * k * k * d_prev * d


# --------------------------------------------------------------------------- public names and the GPU


def test_the_new_names_are_public():
    assert F.conv_transpose2d is conv_transpose2d and F.embedding is embedding
    for name in ("conv_transpose2d", "embedding", "interpolate"):
        assert name in F.__all__
    for name in ("ConvTranspose2d", "Embedding", "Upsample", "Tanh", "LeakyReLU"):
        assert name in nn.__all__ and getattr(nn, name).__module__ == "minikd.nn.layers"


@pytest.mark.gpu
def test_gpu_matches_cpu():
    rng = np.random.default_rng(5)
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in [(2, 3, 5, 4), (3, 2, 4, 3), (2,)])
    cases = [
        (lambda t, u, v: F.conv_transpose2d(t, u, v, stride=2, padding=1, output_padding=1), [x, w, b]),
        (lambda u: F.embedding(np.array([[1, 2, 1]]), u), [rng.normal(size=(4, 3)).astype(np.float32)]),
        (lambda t: F.interpolate(t, (7, 9), mode="nearest"), [x]),
    ]
    for fn, arrays in cases:
        cpu = [mk.tensor(a, requires_grad=True) for a in arrays]
        gpu = [mk.tensor(a, device="cuda", requires_grad=True) for a in arrays]
        yc, yg = fn(*cpu), fn(*gpu)
        np.testing.assert_allclose(yg.numpy(), yc.numpy(), rtol=1e-5, atol=1e-5)
        g = rng.normal(size=yc.shape).astype(np.float32)
        yc.backward(g)
        yg.backward(mk.tensor(g, device="cuda"))
        for tc, tg in zip(cpu, gpu):
            np.testing.assert_allclose(mk.tensor(tg.grad).numpy(), tc.grad, rtol=1e-4, atol=1e-5)
