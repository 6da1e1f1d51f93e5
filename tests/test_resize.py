"""Bilinear interpolation, F.interpolate (minikd/ops/resize.py).

The reference is a per-pixel loop written from PyTorch's definition (half-pixel source
coordinates for align_corners=False, corner-aligned for True), independent of the
matrix formulation under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd.ops.resize import interpolate, interpolation_matrix
from tests.util import check_grad

# --------------------------------------------------------------------------- plain-Python reference


def source_coordinate(i, n_in, n_out, align_corners):
    """Where output index i reads in the input (PyTorch's area_pixel_compute_source_index)."""
    if align_corners:
        return i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return max((i + 0.5) * n_in / n_out - 0.5, 0.0)


def ref_bilinear(x, size, align_corners):
    """y[n, c, i, j] = Σ of the four neighbours of (src_h(i), src_w(j)), weighted by the distances."""
    N, C, H, W = x.shape
    Ho, Wo = size
    y = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        sh = source_coordinate(i, H, Ho, align_corners)
        h0 = min(math.floor(sh), H - 1)
        h1 = min(h0 + 1, H - 1)
        lh = sh - h0
        for j in range(Wo):
            sw = source_coordinate(j, W, Wo, align_corners)
            w0 = min(math.floor(sw), W - 1)
            w1 = min(w0 + 1, W - 1)
            lw = sw - w0
            for n in range(N):
                for c in range(C):
                    y[n, c, i, j] = ((1 - lh) * (1 - lw) * x[n, c, h0, w0] + (1 - lh) * lw * x[n, c, h0, w1]
                                     + lh * (1 - lw) * x[n, c, h1, w0] + lh * lw * x[n, c, h1, w1])
    return y


# --------------------------------------------------------------------------- known values


def test_upsample_2x2_to_4x4_half_pixel():
    """The classic example (PyTorch's F.interpolate(..., 'bilinear', align_corners=False) gives the same)."""
    x = mk.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = [[1.0, 1.25, 1.75, 2.0],
                [1.5, 1.75, 2.25, 2.5],
                [2.5, 2.75, 3.25, 3.5],
                [3.0, 3.25, 3.75, 4.0]]
    y = interpolate(x, size=(4, 4))
    assert y.shape == (1, 1, 4, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy()[0, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(F.interpolate(x, 4).numpy(), y.numpy())  # an int size is (size, size)


def test_upsample_align_corners_keeps_the_corners():
    x = mk.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = interpolate(x, size=(3, 3), align_corners=True).numpy()[0, 0]
    np.testing.assert_allclose(y, [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]], rtol=1e-6)


def test_downsample_by_two_averages_pairs():
    """4 → 2 with half-pixel centres: src = (i + 0.5)·2 − 0.5 = 0.5, 2.5, the middle of each pair."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y = interpolate(mk.tensor(x), size=(2, 2)).numpy()[0, 0]
    expected = [[(x[0, 0, 2 * a:2 * a + 2, 2 * b:2 * b + 2]).mean() for b in range(2)] for a in range(2)]
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_interpolation_matrix_rows_are_convex_weights():
    for n_out, n_in in [(1, 1), (1, 5), (5, 1), (3, 7), (7, 3), (8, 8)]:
        for ac in (False, True):
            A = interpolation_matrix(n_out, n_in, ac, np, np.float64)
            assert A.shape == (n_out, n_in)
            np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-12)
            assert np.all(A >= 0) and np.all((A > 0).sum(axis=1) <= 2)  # two neighbours at most


# --------------------------------------------------------------------------- forward against the loop


@st.composite
def resize_case(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ho, wo = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return (n, c, h, w), (ho, wo), draw(st.booleans()), draw(st.integers(0, 2**16))


@given(resize_case())
def test_forward_matches_per_pixel_loop(case):
    shape, size, align_corners, seed = case
    x = np.random.default_rng(seed).normal(size=shape)
    y = interpolate(mk.tensor(x), size, align_corners=align_corners)
    assert y.shape == shape[:2] + size and y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), ref_bilinear(x, size, align_corners), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_same_size_is_the_identity(align_corners):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    y = interpolate(mk.tensor(x), size=(5, 4), align_corners=align_corners)
    np.testing.assert_array_equal(y.numpy(), x)
    t = mk.tensor(x, requires_grad=True)
    interpolate(t, (5, 4), align_corners=align_corners).sum().backward()
    np.testing.assert_array_equal(t.grad, np.ones_like(x))


def test_constant_map_stays_constant_and_integers_become_float32():
    x = np.full((1, 2, 3, 5), 7, dtype=np.int64)
    y = interpolate(mk.tensor(x), size=(6, 2))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), 7.0, rtol=1e-6)


# --------------------------------------------------------------------------- gradients


@given(resize_case())
def test_gradcheck(case):
    shape, size, align_corners, seed = case
    x = np.random.default_rng(seed).normal(size=shape)
    check_grad(lambda t: interpolate(t, size, align_corners=align_corners), x)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(9, 13), (2, 3)])   # up- and down-sampling of a 5×6 map
def test_backward_is_the_adjoint(size, align_corners):
    """⟨A x, g⟩ = ⟨x, Aᵀ g⟩: the gradient of a linear map is its transpose applied to dL/dy."""
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(2, 3, 5, 6)), rng.normal(size=(2, 3) + size)
    t = mk.tensor(x, requires_grad=True)
    y = interpolate(t, size, align_corners=align_corners)
    y.backward(g)
    assert float((y.numpy() * g).sum()) == pytest.approx(float((x * t.grad).sum()), rel=1e-12)


def test_gradient_of_upsampling_by_two_sums_to_the_output_area():
    """Every output pixel's weights sum to 1, so Σ dL/dx = Σ dL/dy = H'·W' for dL/dy = 1."""
    t = mk.tensor(np.zeros((1, 1, 3, 4)), requires_grad=True)
    interpolate(t, (6, 8)).sum().backward()
    assert t.grad.sum() == pytest.approx(48.0)


# --------------------------------------------------------------------------- errors and exports


def test_errors_name_what_is_wrong():
    x = mk.tensor(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"interpolate: expected a 4-D input \(N, C, H, W\); got shape \(2, 2\)"):
        interpolate(mk.tensor(np.zeros((2, 2))), (3, 3))
    with pytest.raises(ValueError, match=r"size must be a positive int or a pair"):
        interpolate(x, (0, 3))
    with pytest.raises(ValueError, match=r"size must be a positive int or a pair"):
        interpolate(x, (2, 3, 4))
    with pytest.raises(ValueError, match=r"unknown mode 'bicubic'"):
        interpolate(x, 3, mode="bicubic")
    with pytest.raises(TypeError, match=r"align_corners must be True or False"):
        interpolate(x, 3, align_corners=None)


def test_exported():
    assert F.interpolate is interpolate
    assert mk.ops.interpolate is interpolate
    assert "interpolate" in F.__all__ and "interpolate" in mk.ops.__all__


@pytest.mark.gpu
def test_gpu_matches_cpu():
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 6)).astype(np.float32)
    for ac in (False, True):
        tc, tg = mk.tensor(x, requires_grad=True), mk.tensor(x, device="cuda", requires_grad=True)
        yc, yg = interpolate(tc, (7, 4), align_corners=ac), interpolate(tg, (7, 4), align_corners=ac)
        np.testing.assert_allclose(yg.numpy(), yc.numpy(), rtol=1e-5, atol=1e-6)
        yc.sum().backward()
        yg.sum().backward()
        assert tg.device == "cuda:0"
        np.testing.assert_allclose(mk.tensor(tg.grad).numpy(), tc.grad, rtol=1e-5, atol=1e-5)
