"""The numba.cuda kernels (minikd/kernels/cuda.py) compute the numbers of their xp references.

Run on Numba's CUDA simulator, on NumPy arrays, on a machine without a GPU::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q -m cudasim tests/test_cuda_kernels.py

or without the variable on a machine where Numba sees a GPU (then on CuPy arrays). Otherwise
the whole module is skipped. Shapes are tiny: the simulator runs every GPU thread as a
Python thread. Copies, gathers, comparisons and divisions are compared exactly (each sum is
taken in the reference's order); Adam, whose products a GPU compiler may fuse into FMAs, to
float tolerance.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def _real_gpu() -> bool:
    import minikd
    from minikd import kernels

    return minikd.cuda_available() and kernels.cuda_kernels_usable()


if not SIMULATOR and not _real_gpu():
    from minikd import kernels as _kernels

    pytest.skip("GPU kernels: run with NUMBA_ENABLE_CUDASIM=1 (Numba's CUDA simulator), or on a machine where "
                f"Numba and CuPy see a GPU (numba.cuda: {_kernels.cuda_kernels_status()})", allow_module_level=True)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from minikd import kernels as K  # noqa: E402
from minikd.backend import to_numpy  # noqa: E402
from minikd.kernels import conv, intgemm, pool  # noqa: E402
from minikd.kernels import cuda as KC  # noqa: E402

pytestmark = pytest.mark.cudasim

DTYPES = [np.float32, np.float64]
FEW = settings(max_examples=25, deadline=None)


def dev(a):
    """The array where the kernels run: itself on the simulator, a CuPy copy on a GPU."""
    if SIMULATOR:
        return a
    import cupy

    return cupy.asarray(a)


def host(a):
    return to_numpy(a)


@st.composite
def windows(draw):
    """(x shape, kernel, stride, padding): strides below and above the kernel (overlapping and
    gapped windows), padding up to 2 (also more than half the kernel: windows all padding)."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 6))
    W = draw(st.integers(max(1, kw - 2 * pw), 6))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return (N, C, H, W), (kh, kw), (sh, sw), (ph, pw)


def _x(shape, dtype, seed, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most windows hold their maximum more than once
        return rng.integers(-1, 2, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _same(got, want):
    got = host(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)  # NaN equals NaN here


# --------------------------------------------------------------------------- im2col / col2im


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(w=windows(), channel_major=st.booleans(), seed=st.integers(0, 99))
def test_im2col_and_col2im_equal_the_reference(w, channel_major, seed, dtype):
    shape, kernel, stride, padding = w
    x = _x(shape, dtype, seed)
    if channel_major:  # a convolution's output: (N, C, H, W) viewed from a (C, N, H, W) buffer
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    cols = conv.im2col_numpy(x, kernel, stride, padding)
    _same(KC.im2col_cuda(dev(x), kernel, stride, padding), cols)
    gcols = _x(cols.shape, dtype, seed + 1)
    # overlapping windows (stride < kernel) add up: the gather sums them in the reference's order
    _same(KC.col2im_cuda(dev(gcols), shape, kernel, stride, padding),
          conv.col2im_numpy(gcols, shape, kernel, stride, padding))


def test_col2im_sums_overlapping_windows():
    # 3×3 windows, stride 1, on a 4×4 image of ones: the middle pixels are in 9, 6 or 4 windows... of the 2×2
    shape, kernel, stride, padding = (1, 1, 4, 4), (3, 3), (1, 1), (0, 0)
    cols = np.ones((9, 4), np.float32)
    got = host(KC.col2im_cuda(dev(cols), shape, kernel, stride, padding))
    np.testing.assert_array_equal(got, conv.col2im_numpy(cols, shape, kernel, stride, padding))
    assert got[0, 0].tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(w=windows(), ties=st.booleans(), seed=st.integers(0, 99))
def test_max_pool_equals_the_reference(w, ties, seed, dtype):
    shape, kernel, stride, padding = w
    x = _x(shape, dtype, seed, ties)
    y, argmax = pool.max_pool_forward_numpy(x, kernel, stride, padding)
    y_c, argmax_c = KC.max_pool_forward_cuda(dev(x), kernel, stride, padding)
    _same(y_c, y)
    _same(argmax_c, argmax)  # int32; on ties the first position in the window (row-major) wins
    gy = _x(y.shape, dtype, seed + 1)
    _same(KC.max_pool_backward_cuda(dev(gy), argmax_c, shape, kernel, stride, padding),
          pool.max_pool_backward_numpy(gy, argmax, shape, kernel, stride, padding))


def test_max_pool_ties_nan_and_infinities():
    x = np.array([[[[1, 1, 0, -np.inf],
                    [0, 1, np.nan, 5],
                    [-np.inf, -np.inf, 2, 7],
                    [-np.inf, -np.inf, 7, 2]]]], np.float32)
    for kernel, stride, padding in [((2, 2), (2, 2), (0, 0)), ((2, 2), (1, 1), (1, 1)), ((3, 3), (1, 1), (1, 1))]:
        y, argmax = pool.max_pool_forward_numpy(x, kernel, stride, padding)
        y_c, argmax_c = KC.max_pool_forward_cuda(dev(x), kernel, stride, padding)
        _same(y_c, y)
        _same(argmax_c, argmax)
        gy = np.arange(1, y.size + 1, dtype=np.float32).reshape(y.shape)
        _same(KC.max_pool_backward_cuda(dev(gy), argmax_c, x.shape, kernel, stride, padding),
              pool.max_pool_backward_numpy(gy, argmax, x.shape, kernel, stride, padding))
    y, argmax = KC.max_pool_forward_cuda(dev(x), (2, 2), (2, 2), (0, 0))
    assert host(argmax)[0, 0].tolist() == [[0, 2], [0, 1]]  # ties: the first; a NaN beats 5; all −∞: 0


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(w=windows(), seed=st.integers(0, 99))
def test_avg_pool_equals_the_reference(w, seed, dtype):
    shape, kernel, stride, padding = w
    x = _x(shape, dtype, seed)
    y = pool.avg_pool_forward_numpy(x, kernel, stride, padding)
    _same(KC.avg_pool_forward_cuda(dev(x), kernel, stride, padding), y)
    gy = _x(y.shape, dtype, seed + 1)
    _same(KC.avg_pool_backward_cuda(dev(gy), shape, kernel, stride, padding),
          pool.avg_pool_backward_numpy(gy, shape, kernel, stride, padding))


# --------------------------------------------------------------------------- int8 GEMM

int8s = st.sampled_from([-128, -127, -1, 0, 1, 2, 126, 127]) | st.integers(-128, 127)


@FEW
@given(m=st.integers(1, 5), k=st.integers(1, 9), n=st.integers(1, 5), data=st.data())
def test_int8_matmul_equals_the_reference(m, k, n, data):
    a = np.array(data.draw(st.lists(int8s, min_size=m * k, max_size=m * k)), np.int8).reshape(m, k)
    b = np.array(data.draw(st.lists(int8s, min_size=k * n, max_size=k * n)), np.int8).reshape(k, n)
    _same(KC.int8_matmul_cuda(dev(a), dev(b)), intgemm.int8_matmul_numpy(a, b))


def test_int8_matmul_extremes_do_not_wrap_around():
    k = 300  # 300 · 16384 = 4,915,200: far past int16, and past int8 from the first product
    a = np.full((2, k), -128, np.int8)
    a[1] = 127
    b = np.full((k, 3), -128, np.int8)
    b[:, 1] = 127
    got = host(KC.int8_matmul_cuda(dev(a), dev(b)))
    _same(got, intgemm.int8_matmul_numpy(a, b))
    assert got.tolist() == [[k * 16384, -k * 16256, k * 16384], [-k * 16256, k * 16129, -k * 16256]]


def test_int8_matmul_checks_its_inputs_as_the_reference():
    a, b = np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8)
    with pytest.raises(TypeError, match="expected int8"):
        KC.int8_matmul_cuda(dev(a.astype(np.int16)), dev(b))
    with pytest.raises(ValueError, match="inner sizes differ"):
        KC.int8_matmul_cuda(dev(a), dev(a))


# --------------------------------------------------------------------------- Adam


def _adam_reference(p0, grads, lr, betas, eps, weight_decay):
    """Adam.step's plain xp maths (the "numpy" backend, NumPy arrays), a few steps."""
    from minikd import nn, optim

    p = nn.Parameter(p0.copy())
    opt = optim.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    with K.use_backend("numpy"):
        for g in grads:
            p.grad = g
            opt.step()
    return p.data, opt.state[0]["m"], opt.state[0]["v"]


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(n=st.integers(1, 40), weight_decay=st.sampled_from([0.0, 0.01, 0.5]), steps=st.integers(1, 4),
       betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]), seed=st.integers(0, 99))
def test_adam_equals_adam_step(n, weight_decay, steps, betas, seed, dtype):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal((n, 2)).astype(dtype)
    grads = [rng.standard_normal((n, 2)).astype(dtype) for _ in range(steps)]
    lr, eps = 1e-2, 1e-8
    p, m, v = dev(p0.copy()), dev(np.zeros_like(p0)), dev(np.zeros_like(p0))
    for t, g in enumerate(grads, start=1):  # the bias corrections change with t
        KC.adam_update_cuda(p, dev(g), m, v, lr, betas[0], betas[1], eps, weight_decay, t)
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    for got, want in zip((p, m, v), _adam_reference(p0, grads, lr, betas, eps, weight_decay)):
        got = host(got)
        assert got.dtype == want.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tol)
    assert not np.array_equal(host(p), p0)  # the parameter did move


def test_adam_refuses_non_contiguous_arrays():
    p = dev(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        KC.adam_update_cuda(p, p.T, p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)


# --------------------------------------------------------------------------- dispatch


def test_dispatch_sends_gpu_arrays_to_the_cuda_kernels_and_numpy_arrays_never(monkeypatch):
    """``minikd.kernels`` routes arrays on a CUDA device to these kernels. On the simulator there is
    no CuPy array: a NumPy subclass posing as one (device "cuda:0") stands in for it."""
    if SIMULATOR:
        assert not K.cuda_kernels_usable()  # the simulator is not a real GPU: CuPy would take the references

        class Gpu(np.ndarray):
            pass

        monkeypatch.setattr(K, "cuda_kernels_usable", lambda: True)
        monkeypatch.setattr(K, "device_of", lambda a: "cuda:0" if isinstance(a, Gpu) else "cpu")

        def on_gpu(a):
            return a.view(Gpu)
    else:
        on_gpu = dev
    calls = []
    for name in ("im2col_cuda", "col2im_cuda", "max_pool_forward_cuda", "max_pool_backward_cuda",
                 "avg_pool_forward_cuda", "avg_pool_backward_cuda", "int8_matmul_cuda", "adam_update_cuda"):
        original = getattr(KC, name)

        def record(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(KC, name, record)

    x = _x((1, 2, 4, 4), np.float32, 0)
    w = (2, 2), (1, 1), (1, 1)
    cols = K.im2col(on_gpu(x), *w)
    _same(cols, conv.im2col_numpy(x, *w))
    K.col2im(on_gpu(cols), x.shape, *w)
    y, saved = K.max_pool_forward(on_gpu(x), *w)
    K.max_pool_backward(on_gpu(y), saved, *w)
    K.avg_pool_backward(on_gpu(K.avg_pool_forward(on_gpu(x), *w)), x.shape, *w)
    a = np.ones((2, 3), np.int8)
    K.int8_matmul(on_gpu(a), on_gpu(a.T.copy()))
    p, g, m, v = (on_gpu(np.ones(5, np.float32)) for _ in range(4))
    assert K.adam_update_applies(p, g, m, v)
    K.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)
    assert calls == ["im2col_cuda", "col2im_cuda", "max_pool_forward_cuda", "max_pool_backward_cuda",
                     "avg_pool_forward_cuda", "avg_pool_backward_cuda", "int8_matmul_cuda", "adam_update_cuda"]

    calls.clear()  # NumPy arrays: the CPU kernels, as before
    K.im2col(x, *w)
    K.max_pool_forward(x, *w)
    K.int8_matmul(a, a.T.copy())
    with K.use_backend("numpy"):  # the readable references everywhere, GPU arrays too
        K.im2col(on_gpu(x), *w)
        assert not K.adam_update_applies(p, g, m, v)
    assert calls == []


def test_import_minikd_does_not_import_numba_cuda():
    code = ("import sys, minikd, minikd.kernels; "
            "print('numba.cuda' in sys.modules, 'minikd.kernels.cuda' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "False"]


_PTX_CHECK = '''
import minikd.kernels.cuda as KC  # first: it readies numba-cuda for this NumPy (see _numpy_names_for_numba_cuda)
from numba import cuda, types as T
from numba.cuda.cudadrv.error import NvvmSupportError

i64, i32 = T.int64, T.int32
A = lambda dtype, ndim: T.Array(dtype, ndim, "A")  # any strides, as a CuPy view may have
C = lambda dtype, ndim: T.Array(dtype, ndim, "C")
signatures = [(KC._int8_matmul_kernel, (A(T.int8, 2), A(T.int8, 2), C(i32, 2)))]
for f in (T.float32, T.float64):
    signatures += [
        (KC._im2col_kernel, (A(f, 4),) + (i64,) * 8 + (C(f, 2),)),
        (KC._col2im_kernel, (A(f, 2),) + (i64,) * 8 + (f, C(f, 4))),
        (KC._max_pool_forward_kernel, (A(f, 4),) + (i64,) * 6 + (f, C(f, 4), C(i32, 4))),
        (KC._max_pool_backward_kernel, (A(f, 4), A(i32, 4)) + (i64,) * 6 + (f, C(f, 4))),
        (KC._avg_pool_forward_kernel, (A(f, 4),) + (i64,) * 6 + (f, f, C(f, 4))),
        (KC._avg_pool_backward_kernel, (A(f, 4),) + (i64,) * 6 + (f, f, C(f, 4))),
        (KC._adam_kernel, (C(f, 1),) * 4 + (f,) * 8),
    ]
for kernel, signature in signatures:
    try:
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
    except (NvvmSupportError, RuntimeError) as e:  # no libNVVM, or no libdevice beside it
        if not isinstance(e, NvvmSupportError) and "libdevice" not in str(e) and "NVVM" not in str(e):
            raise
        print("NO-NVVM", " ".join(str(e).split()))
        raise SystemExit(0)
    # float32 data is summed in float32: no float64 instruction in a float32 build
    assert signature[0].dtype != T.float32 or ".f64" not in ptx, kernel.py_func.__name__
print("compiled", len(signatures))
'''


def test_the_kernels_compile_for_a_real_gpu():
    """The simulator runs the kernels as Python and types nothing: compile each one to PTX for an
    sm_90 GPU (Numba's CUDA target, without the simulator; needs NVVM from a CUDA toolkit, not a GPU)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", _PTX_CHECK], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    if out.stdout.startswith("NO-NVVM"):
        pytest.skip(f"no NVVM (CUDA toolkit) to compile with: {out.stdout.strip()[:200]}")
    assert out.stdout.split() == ["compiled", "15"]
