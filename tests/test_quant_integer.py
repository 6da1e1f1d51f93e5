"""Integer inference: the int8 kernel equals its NumPy reference, and the integer model
(int8 weights, int8 × int8 → int32 products) computes what the fake-quantized model does."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import kernels as K
from minikd import nn, profile, quant
from minikd.kernels import im2col, int8_matmul, jit
from minikd.kernels.intgemm import MAX_K, _int8_matmul_kernel, int8_matmul_numba, int8_matmul_numpy
from minikd.models import TeacherModel
from minikd.quant.integer import IntConv2d, IntLinear, convert_to_integer
from minikd.quant.modules import prepare_qat, quant_layers, quantize_model
from minikd.quant.ops import quantize

U = 2.0**-24  # float32 unit roundoff

# --------------------------------------------------------------------------- the kernel


@pytest.fixture(params=["serial", "parallel"])
def build(request, monkeypatch):
    """Run a kernel test with the serial and with the parallel build."""
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 0 if request.param == "parallel" else 2**62)
    return request.param


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


@given(m=st.integers(1, 17), k=st.integers(1, 40), n=st.integers(1, 23), seed=st.integers(0, 2**16))
def test_int8_matmul_numba_equals_the_numpy_reference(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a, b = _int8(rng, (m, k)), _int8(rng, (k, n))
    expected = int8_matmul_numpy(a, b)
    assert expected.dtype == np.int32
    np.testing.assert_array_equal(expected, a.astype(np.int64) @ b.astype(np.int64))
    for kernel in (_int8_matmul_kernel.parallel, _int8_matmul_kernel.serial):  # both builds
        c = np.empty((m, n), np.int32)
        kernel(a, b, c)
        np.testing.assert_array_equal(c, expected)
    np.testing.assert_array_equal(int8_matmul_numba(a, b), expected)


@pytest.mark.parametrize("value_a, value_b", [(-128, -128), (127, 127), (-128, 127), (127, -128)])
def test_int8_extremes_accumulate_in_int32_without_overflow(build, value_a, value_b):
    k = 4096  # 4096 · 128 · 128 = 2^26: far past int16 and int8, well inside int32
    a = np.full((3, k), value_a, np.int8)
    b = np.full((k, 5), value_b, np.int8)
    expected = np.full((3, 5), k * value_a * value_b, np.int64)
    np.testing.assert_array_equal(int8_matmul_numba(a, b), expected)
    np.testing.assert_array_equal(int8_matmul_numpy(a, b), expected)


def test_int8_matmul_random_wide_product(build):
    rng = np.random.default_rng(1)
    a, b = _int8(rng, (33, 3136)), _int8(rng, (3136, 70))  # the teacher's fc1 width
    np.testing.assert_array_equal(int8_matmul_numba(a, b), a.astype(np.int64) @ b.astype(np.int64))
    np.testing.assert_array_equal(int8_matmul_numba(a[:, ::2], b[::2]), int8_matmul_numpy(a[:, ::2], b[::2]))


def test_int8_matmul_follows_the_backend(monkeypatch):
    calls = []
    monkeypatch.setattr("minikd.kernels.int8_matmul_numba", lambda a, b: calls.append("numba"))
    monkeypatch.setattr("minikd.kernels.int8_matmul_numpy", lambda a, b: calls.append("numpy"))
    a = np.zeros((2, 2), np.int8)
    int8_matmul(a, a)
    with K.use_backend("numpy"):
        int8_matmul(a, a)
    assert calls == ["numba", "numpy"]


def test_int8_matmul_errors():
    a = np.zeros((2, 3), np.int8)
    with pytest.raises(TypeError, match="expected int8 matrices; got float32 and int8"):
        int8_matmul(a.astype(np.float32), a.T)
    with pytest.raises(ValueError, match="inner sizes differ"):
        int8_matmul(a, a)
    with pytest.raises(ValueError, match="expected two matrices"):
        int8_matmul(a[0], a.T)
    wide = np.zeros((1, MAX_K + 1), np.int8)
    with pytest.raises(ValueError, match="could overflow"):
        int8_matmul(wide, wide.T)


# --------------------------------------------------------------------------- models and inputs


def _random_inputs(seed, n=16, scale=1.0):
    return (np.random.default_rng(seed).standard_normal((n, 1, 28, 28)) * scale).astype(np.float32)


def _digit_like(seed, n=16):
    """MNIST-ish images: a dark background and a few bright strokes, normalised with MNIST's
    mean and std, (x − 0.1307)/0.3081, so pixels lie in [−0.42, 2.82]."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 28, 28), np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(n):
        for _ in range(rng.integers(2, 5)):  # strokes: thick segments between two random points
            (y0, x0), (y1, x1) = rng.uniform(5, 23, size=(2, 2))
            along = ((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)) / ((y1 - y0) ** 2 + (x1 - x0) ** 2 + 1e-9)
            t = np.clip(along, 0, 1)
            dist = np.hypot(yy - (y0 + t * (y1 - y0)), xx - (x0 + t * (x1 - x0)))
            img[i] = np.maximum(img[i], np.clip(2.0 - dist, 0, 1))
    return ((img - 0.1307) / 0.3081)[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def teacher():
    mk.manual_seed(0)
    return TeacherModel().eval()


def _models(teacher, w_bits=8, a_bits=8, per_channel=True, calibration=None):
    calibration = calibration or [_random_inputs(s) for s in range(3)] + [_digit_like(s) for s in range(3)]
    qmodel = quantize_model(teacher, w_bits, a_bits, calibration, per_channel=per_channel)
    return qmodel, convert_to_integer(qmodel)


def _record_inputs(model):
    """Hooks that keep (input, output) of every leaf layer by name."""
    seen = {}
    for name, m in model.named_modules():
        if name:
            m.register_forward_hook(lambda mod, inputs, out, name=name: seen.__setitem__(name, (inputs[0], out)))
    return seen


def _abs_sum(layer, q_x):
    """P_o = Σ_k |q_x,k + z_x| · |q_w,ok| for every output value (float64, exact for these sizes)."""
    a = np.abs(q_x.astype(np.float64) + float(layer.input_zero_point.data))
    w = np.abs(layer.weight.data.astype(np.float64)).reshape(layer.weight.shape[0], -1)
    if isinstance(layer, IntLinear):
        return a @ w.T
    N, _, H, W = q_x.shape
    cols = im2col(a, layer.kernel_size, layer.stride, layer.padding)  # padding: |−z_x + z_x| = 0
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    return (w @ cols).reshape(-1, N, Ho, Wo).transpose(1, 0, 2, 3)


def _channels(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# --------------------------------------------------------------------------- integer == fake, layer by layer


@pytest.mark.parametrize("w_bits, a_bits, per_channel", [(8, 8, True), (8, 8, False), (4, 4, True)])
@pytest.mark.parametrize("inputs", ["random", "digits"])
def test_each_integer_layer_matches_its_fake_quantized_layer_within_one_step(teacher, w_bits, a_bits, per_channel,
                                                                             inputs):
    """Fed the same input, an integer layer and its fake-quantized twin quantize it to the same
    integers and differ only by the float32 roundings of the fake sum:

        |y_int − y_fake| ≤ (K + 4) · u · s_x · s_w,o · P_o + 2u · |y|      (the derived bound)

    and, the acceptance, by less than one step s_x · max(s_w) of the output."""
    qmodel, imodel = _models(teacher, w_bits, a_bits, per_channel)
    seen = _record_inputs(imodel)
    x = _random_inputs(10, n=32) if inputs == "random" else _digit_like(10, n=32)
    with mk.no_grad():
        imodel(mk.tensor(x))
    fake_layers = dict(quant_layers(qmodel))
    for name, (layer_input, y_int) in seen.items():
        layer = imodel._modules[name]
        with mk.no_grad():
            y_fake = fake_layers[name](layer_input).numpy()
        y_int = y_int.numpy()
        s_x, s_w = float(layer.input_scale.data), layer.weight_scale.data.astype(np.float64)
        diff = np.abs(y_int.astype(np.float64) - y_fake)
        q_x = quantize(layer_input.numpy(), a_bits, s_x, layer.input_zero_point.data)
        K = int(np.prod(layer.weight.shape[1:]))
        bound = (K + 4) * U * s_x * _channels(s_w, y_int.ndim) * _abs_sum(layer, q_x) + 2 * U * np.abs(y_fake)
        assert np.all(diff <= bound * 1.001), f"{name}: beyond the float32 rounding bound"
        step = s_x * s_w.max()
        assert diff.max() < step, f"{name}: differs by {diff.max() / step:.2f} output steps"


def test_integer_layers_with_stride_groups_padding_and_no_bias_match_fake_quantization():
    """IntConv2d beyond the teacher: groups, stride 2, padding 2 (padded with −z_x, the integer
    of real 0) and inputs whose range does not hold 0 (it is widened to hold it)."""
    mk.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=2, groups=2, bias=False), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 5 * 5, 7, bias=False))
    rng = np.random.default_rng(3)
    batches = [rng.uniform(1.0, 2.0, (5, 4, 7, 7)).astype(np.float32) for _ in range(2)]
    qmodel = quantize_model(model, 8, 8, batches)
    assert int(qmodel[0].act_zero_point.item()) == 128  # β = 0 after widening: z = 2^{b−1}
    imodel = convert_to_integer(qmodel)
    assert isinstance(imodel[0], IntConv2d) and isinstance(imodel[3], IntLinear)
    x = mk.tensor(rng.uniform(1.0, 2.0, (3, 4, 7, 7)).astype(np.float32))
    with mk.no_grad():
        y_int, y_fake = imodel(x).numpy(), qmodel(x).numpy()
    step = float(imodel[3].input_scale.data) * float(imodel[3].weight_scale.data.max())
    assert np.abs(y_int - y_fake).max() < step


# --------------------------------------------------------------------------- integer ≈ fake, end to end


@pytest.mark.parametrize("inputs", ["random", "digits"])
def test_the_integer_teacher_follows_the_fake_quantized_teacher(teacher, inputs):
    """End to end, the two models feed every layer the same integers but for rare ±1 flips: a
    value a float32 rounding away from a half step rounds one way in one model and the other
    way in the other. A flip moves that layer's outputs by s_x·s_w·|q_w| (up to 127 steps), so
    the logits are compared relatively, and the predictions exactly."""
    qmodel, imodel = _models(teacher)
    seen_int, seen_fake = _record_inputs(imodel), _record_inputs(qmodel)
    x = mk.tensor(_random_inputs(20, n=64) if inputs == "random" else _digit_like(20, n=64))
    with mk.no_grad():
        y_int, y_fake = imodel(x).numpy(), qmodel(x).numpy()
    for name, layer in imodel.named_children():
        args = (8, layer.input_scale.data, layer.input_zero_point.data)
        q_int = quantize(seen_int[name][0].numpy(), *args).astype(int)
        q_fake = quantize(seen_fake[name][0].numpy(), *args).astype(int)
        flips = np.abs(q_int - q_fake)
        assert flips.max() <= 1 and flips.mean() < 2e-3, name
    assert np.abs(y_int - y_fake).max() <= 1e-2 * np.abs(y_fake).max()  # measured 1.4e-3
    np.testing.assert_array_equal(y_int.argmax(1), y_fake.argmax(1))


def test_a_qat_model_converts_too(teacher):
    qmodel = prepare_qat(teacher, 4, 4)
    with mk.no_grad():
        qmodel(mk.tensor(_random_inputs(0)))  # one training-mode forward sets (s_x, z_x)
    imodel = convert_to_integer(qmodel.eval())
    x = mk.tensor(_random_inputs(1))
    with mk.no_grad():
        np.testing.assert_allclose(imodel(x).numpy(), qmodel(x).numpy(), rtol=0, atol=1e-4)
    assert all(-8 <= int(layer.weight.data.min()) and int(layer.weight.data.max()) <= 7
               for layer in imodel.children())  # 4-bit integers, stored in int8


# --------------------------------------------------------------------------- storage and memory


def test_the_state_dict_holds_int8_weights_and_the_file_is_a_quarter(teacher, tmp_path):
    qmodel, imodel = _models(teacher)
    state = imodel.state_dict()
    assert {k: str(v.dtype) for k, v in state.items() if k.startswith("fc1.")} == {
        "fc1.weight": "int8", "fc1.bias": "float32", "fc1.weight_scale": "float32", "fc1.input_scale": "float32",
        "fc1.input_zero_point": "int32"}
    mk.save(teacher.state_dict(), tmp_path / "float.npz")
    mk.save(state, tmp_path / "int8.npz")
    ratio = os.path.getsize(tmp_path / "int8.npz") / os.path.getsize(tmp_path / "float.npz")
    assert ratio < 0.3  # measured 0.254: weights ¼, plus float32 biases and scales

    # a fresh integer model of the same shape loads it and computes the same outputs
    mk.manual_seed(1)
    other = convert_to_integer(quantize_model(TeacherModel(), calibration_batches=[_random_inputs(5)]))
    other.load_state_dict(mk.load(tmp_path / "int8.npz"))
    x = mk.tensor(_digit_like(3, n=4))
    with mk.no_grad():
        np.testing.assert_array_equal(other(x).numpy(), imodel(x).numpy())


def test_summary_counts_the_integer_teacher_at_a_quarter_of_the_float_memory(teacher):
    _, imodel = _models(teacher)
    float_summary, int_summary = profile.summary(teacher, (1, 28, 28)), profile.summary(imodel, (1, 28, 28))
    assert [r.type for r in int_summary.rows] == ["IntConv2d", "IntConv2d", "IntLinear", "IntLinear"]
    assert [r.bits for r in int_summary.rows] == [8] * 4
    assert int_summary.total_params == float_summary.total_params == 421_642
    assert int_summary.total_macs == float_summary.total_macs  # the counters know the integer layers
    assert int_summary.total_memory_bytes == pytest.approx(float_summary.total_memory_bytes / 4)


# --------------------------------------------------------------------------- errors


def test_convert_to_integer_explains_what_is_missing(teacher):
    with pytest.raises(ValueError, match="no QuantLinear/QuantConv2d layer; quantize it first"):
        convert_to_integer(teacher)
    with pytest.raises(ValueError, match=r"conv1 \(QuantConv2d\): its input quantization is not calibrated"):
        convert_to_integer(quantize_model(teacher, 8, 8))
    cal = [_random_inputs(0)]
    with pytest.raises(ValueError, match="integer inference needs both quantized"):
        convert_to_integer(quantize_model(teacher, 8, None, cal))
    with pytest.raises(ValueError, match="int8 arithmetic needs both ≤ 8"):
        convert_to_integer(quantize_model(teacher, 12, 8, cal))
    with pytest.raises(ValueError, match="symmetric weights"):
        convert_to_integer(quantize_model(teacher, 8, 8, cal, symmetric_weights=False))


def test_integer_layers_are_inference_only(teacher):
    _, imodel = _models(teacher, calibration=[_random_inputs(0)])
    x = mk.tensor(_random_inputs(1, n=2), requires_grad=True)
    with pytest.raises(RuntimeError, match="IntConv2d is for inference only: integer arithmetic has no gradient"):
        imodel(x)
    with mk.no_grad():
        assert imodel(x).shape == (2, 10)
    assert not imodel.training
    with pytest.raises(ValueError, match=r"IntLinear\(3136→128\) expects \(\.\.\., 3136\)"):
        imodel.fc1(mk.zeros(2, 5))
    with pytest.raises(ValueError, match="integer inference needs w_bits in 2..8"):
        IntLinear(3, 2, w_bits=9)


def test_a_nan_in_a_sample_makes_its_outputs_nan_as_in_the_fake_quantized_model():
    """A sceptical trial: the integer model turned a NaN input into finite logits (casting NaN to
    int8 is undefined, with a RuntimeWarning), where the fake-quantized model gave NaN."""
    import warnings

    from minikd.models import StudentModel

    mk.manual_seed(0)
    fake = quant.quantize_model(StudentModel().eval(), calibration_batches=[mk.randn(16, 1, 28, 28)])
    integer = quant.convert_to_integer(fake)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    x[1, 0, 5, 5] = np.nan
    with mk.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")                                  # no invalid cast any more
        got, want = integer(mk.tensor(x)).numpy(), fake(mk.tensor(x)).numpy()
    assert np.isnan(got[1]).all() and np.isnan(want[1]).all()
    np.testing.assert_allclose(got[[0, 2]], want[[0, 2]], atol=1e-5)  # the other samples as before
    linear = quant.convert_to_integer(quant.quantize_model(nn.Linear(4, 3), calibration_batches=[mk.randn(8, 4)]))
    rows = np.ones((2, 5, 4), np.float32)
    rows[1, 3, 0] = np.nan
    with mk.no_grad():
        y = linear(mk.tensor(rows)).numpy()
    assert np.isnan(y[1, 3]).all() and np.isfinite(np.delete(y.reshape(10, 3), 8, axis=0)).all()


def test_quantize_refuses_nan_numbers_and_lists_too_and_qparams_an_overflowing_range():
    """A sceptical trial: quantize(float('nan')) and quantize([nan]) gave 0 (only arrays were checked);
    qparams(1e308, -1e308) gave s = inf with a RuntimeWarning."""
    for x in (float("nan"), [1.0, float("nan")]):
        with pytest.raises(ValueError, match="quantize: x holds NaN"):
            quant.quantize(x, 8, 0.1, 0)
    with pytest.raises(ValueError, match=r"qparams: the range is too wide for float64: α − β overflows"):
        quant.qparams(1e308, -1e308, 8)
