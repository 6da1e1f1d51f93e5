"""Quantized layers: post-training quantization (PTQ) and quantization-aware training (QAT)."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import kd, nn, optim, profile, prune, quant
from minikd.models import TeacherModel
from minikd.quant.modules import QuantConv2d, QuantLinear, calibrate, prepare_qat, qat_kd_loss, quantize_model


def _inputs(seed, n=16):
    return np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32)


CALIBRATION = [_inputs(s) for s in range(4)]


@pytest.fixture(scope="module")
def teacher():
    mk.manual_seed(0)
    return TeacherModel().eval()


def _relative_error(model, reference, x):
    with mk.no_grad():
        y, y_ref = model(x).numpy(), reference(x).numpy()
    return np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref)


# --------------------------------------------------------------------------- PTQ


def test_w8a8_is_close_to_the_float_teacher_and_fewer_bits_drift_further(teacher):
    x = mk.tensor(_inputs(10, n=32))
    errors = {wa: _relative_error(quantize_model(teacher, *wa, CALIBRATION), teacher, x)
              for wa in [(8, 8), (6, 6), (4, 4)]}
    assert errors[(8, 8)] < 0.03          # measured 0.011
    assert errors[(8, 8)] < errors[(6, 6)] < errors[(4, 4)] < 0.5  # measured 0.04, 0.16
    assert _relative_error(quantize_model(teacher, 8, None), teacher, x) < errors[(8, 8)]  # weights only


def test_quantize_model_swaps_the_layers_of_a_copy(teacher):
    qmodel = quantize_model(teacher, 4, 6, CALIBRATION)
    assert [type(m) for m in qmodel.children()] == [QuantConv2d, QuantConv2d, QuantLinear, QuantLinear]
    assert all(type(m) in (nn.Conv2d, nn.Linear) for m in teacher.children())  # the original is untouched
    for (name, p), (_, q) in zip(teacher.named_parameters(), qmodel.named_parameters()):
        assert p is not q and np.array_equal(p.numpy(), q.numpy()), name  # same values, float32 weights kept
    assert [(m.weight_bits, m.act_bits) for m in qmodel.children()] == [(4, 6)] * 4
    assert isinstance(qmodel.conv1, nn.Conv2d)  # a subclass of the float layer


def test_copy_false_quantizes_in_place_and_keeps_the_parameter_objects():
    mk.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    params = list(model.parameters())
    qmodel = quantize_model(model, 8, None, copy=False)
    assert qmodel is model and [type(m) for m in model] == [QuantLinear, nn.ReLU, QuantLinear]  # order kept
    assert all(p is q for p, q in zip(params, model.parameters()))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "0.act_scale", "0.act_zero_point",
                                        "2.weight", "2.bias", "2.act_scale", "2.act_zero_point"]


def test_weights_are_fake_quantized_symmetrically_per_output_channel():
    mk.manual_seed(2)
    layer = quantize_model(nn.Linear(20, 4), 4, None)
    w, w_hat = layer.weight.numpy(), layer.quantized_weight().numpy()
    s_w, z_w = layer.weight_qparams()
    assert s_w.shape == (4,) and s_w.dtype == np.float32 and np.all(z_w == 0)
    np.testing.assert_allclose(s_w, 2 * np.abs(w).max(axis=1) / 15, rtol=1e-6)  # s = 2m / (2^b − 1)
    q = w_hat / s_w[:, None]
    np.testing.assert_allclose(q, np.round(q), atol=1e-4)  # on the grid s_w · integer ...
    assert q.min() >= -8 - 1e-4 and q.max() <= 7 + 1e-4    # ... of 4 bits
    assert np.all(np.abs(w_hat - w) <= s_w[:, None] / 2 + 1e-6)  # within half a step (m itself: clipped to 7)
    assert layer.masked("bias") is layer.bias                 # the bias stays float


def test_per_channel_beats_per_tensor_when_channels_differ_in_scale():
    """One scale for all rows wastes the int range on the small rows; one per row does not."""
    mk.manual_seed(3)
    layer = nn.Linear(64, 6, bias=False)
    with mk.no_grad():
        layer.weight.data *= np.logspace(-2, 0, 6, dtype=np.float32)[:, None]  # row scales 0.01 … 1
    x = mk.tensor(np.random.default_rng(3).standard_normal((32, 64)).astype(np.float32))
    with mk.no_grad():
        y = layer(x).numpy()
        errors = {}
        for per_channel in (True, False):
            y_q = quantize_model(layer, 6, None, per_channel=per_channel)(x).numpy()
            errors[per_channel] = np.linalg.norm(y_q - y, axis=0) / np.linalg.norm(y, axis=0)  # per output
    assert errors[True].max() < 0.05                   # every output channel keeps its precision
    assert errors[False].max() > 0.5                   # the 0.01 row rounds to (nearly) all zeros
    assert errors[True][-1] == pytest.approx(errors[False][-1], rel=0.5)  # the largest row: the same scale


def test_calibration_freezes_the_input_range_widened_to_hold_zero(teacher):
    qmodel = quantize_model(teacher, 8, 8, CALIBRATION)
    lo, hi = min(float(b.min()) for b in CALIBRATION), max(float(b.max()) for b in CALIBRATION)
    conv1 = qmodel.conv1
    np.testing.assert_allclose(float(conv1.act_scale.item()), (hi - lo) / 255, rtol=1e-6)
    assert int(conv1.act_zero_point.item()) == round(lo * 255 / (hi - lo) + 128)
    fc2 = qmodel.fc2  # after a ReLU: β = 0, so z_x = 2^{b−1} and real 0 is the integer −128
    assert int(fc2.act_zero_point.item()) == 128
    # every form of calibration batch gives the same ranges
    for batches in ([mk.tensor(b) for b in CALIBRATION], [(b, np.zeros(len(b), int)) for b in CALIBRATION]):
        other = quantize_model(teacher, 8, 8, batches)
        assert [float(m.act_scale.item()) for m in other.children()] == \
            [float(m.act_scale.item()) for m in qmodel.children()]


def test_an_uncalibrated_model_says_what_to_do_and_calibrate_fixes_it(teacher):
    qmodel = quantize_model(teacher, 8, 8)
    x = mk.tensor(_inputs(0, n=2))
    with pytest.raises(RuntimeError, match=r"conv1 \(QuantConv2d\): the input quantization \(a_bits=8\) has no "
                                           r"range yet: pass calibration_batches"):
        qmodel(x)
    calibrate(qmodel, CALIBRATION)
    np.testing.assert_array_equal(qmodel(x).numpy(), quantize_model(teacher, 8, 8, CALIBRATION)(x).numpy())
    with pytest.raises(ValueError, match="calibration_batches held no batch"):
        calibrate(qmodel, [])


@pytest.mark.parametrize("kwargs, message", [
    (dict(w_bits=1), "w_bits must be an integer number of bits in 2..16, or None to keep float32; got w_bits=1"),
    (dict(w_bits=32), "got w_bits=32"),
    (dict(a_bits=8.0), "a_bits must be an integer"),
    (dict(a_bits=True), "got a_bits=True"),
])
def test_bits_out_of_range_are_refused(teacher, kwargs, message):
    with pytest.raises(ValueError, match="quantize_model: .*" + re.escape(message)):
        quantize_model(teacher, **kwargs)
    with pytest.raises(ValueError, match="prepare_qat: "):
        prepare_qat(teacher, **kwargs)


def test_quantizing_twice_and_custom_forwards_are_refused(teacher):
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(quantize_model(teacher, 8, None))

    class Scaled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    with pytest.raises(TypeError, match="a Linear with its own forward"):
        quantize_model(nn.Sequential(Scaled(2, 2)))
    adapter = quantize_model(kd.LinearAdapter(3, 4), 8, None)  # a subclass keeping Linear's forward: fine
    assert isinstance(adapter, QuantLinear)


def test_pruning_masks_survive_quantization():
    mk.manual_seed(4)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 2))
    prune.prune(model, 0.5)
    qmodel = quantize_model(model, 8, None)
    assert "weight_mask" in dict(qmodel[0].named_buffers())
    assert np.all(qmodel[0].masked("weight").numpy()[qmodel[0].weight_mask.numpy() == 0] == 0)


def test_summary_counts_quantized_weights_at_their_width(teacher):
    float_memory = profile.summary(teacher, (1, 28, 28)).total_memory_bytes
    for w_bits, share in [(8, 1 / 4), (4, 1 / 8)]:
        s = profile.summary(quantize_model(teacher, w_bits, None), (1, 28, 28))
        assert [r.bits for r in s.rows] == [w_bits] * 4
        assert s.total_memory_bytes == pytest.approx(float_memory * share)
    s = profile.summary(quantize_model(teacher, None, 8, CALIBRATION), (1, 28, 28))
    assert s.total_memory_bytes == float_memory  # float weights: 32 bits


def test_the_state_dict_keeps_the_activation_ranges(teacher):
    qmodel = quantize_model(teacher, 8, 8, CALIBRATION)
    fresh = quantize_model(teacher, 8, 8)  # uncalibrated: s_x = 0
    fresh.load_state_dict(qmodel.state_dict())
    x = mk.tensor(_inputs(7, n=4))
    np.testing.assert_array_equal(fresh(x).numpy(), qmodel(x).numpy())


# --------------------------------------------------------------------------- QAT


def test_qat_trains_the_float_weights_through_the_straight_through_estimator(teacher):
    qmodel = prepare_qat(teacher, 4, 4)
    assert qmodel.training and all(m.qat for m in qmodel.children())
    rng = np.random.default_rng(0)
    x, y = mk.tensor(_inputs(0, n=32)), rng.integers(0, 10, 32)
    before = [p.numpy().copy() for p in qmodel.parameters()]
    opt = optim.SGD(qmodel.parameters(), lr=0.1)
    losses, scales = [], []
    for _ in range(4):
        opt.zero_grad()
        loss = F.cross_entropy(qmodel(x), y)
        loss.backward()
        assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in qmodel.parameters())
        opt.step()
        losses.append(loss.item())
        scales.append(float(qmodel.fc1.act_scale.item()))
    assert losses[-1] < losses[0]
    assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, qmodel.parameters()))
    assert len(set(scales)) > 1  # the moving-average range follows the activations
    qmodel.eval()  # evaluation: the last (s_x, z_x), nothing observed
    with mk.no_grad():
        y1 = qmodel(x).numpy()
        qmodel(mk.tensor(_inputs(1, n=32) * 10))
        np.testing.assert_array_equal(qmodel(x).numpy(), y1)


def test_qat_kd_loss_is_the_lectures_kd_loss(teacher):
    student = prepare_qat(teacher, 8, 8)
    x, y = mk.tensor(_inputs(2, n=8)), np.arange(8) % 10
    with mk.no_grad():
        z_t = teacher(x)
    z_s = student(x)
    loss = qat_kd_loss(z_s, z_t, y, T=4.0, lam=0.7)
    assert loss.item() == pytest.approx(kd.kd_loss(z_s, z_t, y, T=4.0, lam=0.7).item())
    loss.backward()
    assert student.fc2.weight.grad is not None and teacher.fc2.weight.grad is None


# --------------------------------------------------------------------------- QuantFace's loss (issue 14)


def _np_quantface(zq, fq, zfp, ffp, T, w_feature, w_logit):
    """From the paper's formula: MSE of the L2-normalised embeddings (summed over D, mean over N)
    plus T²·KL(softmax(z_fp/T) ‖ softmax(z_q/T)), batch mean."""
    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    def softmax(z):
        e = np.exp(z / T - (z / T).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    feat = ((unit(fq) - unit(ffp)) ** 2).sum(axis=1).mean()
    p, q = softmax(zfp), softmax(zq)
    return w_feature * feat + w_logit * T * T * (p * np.log(p / q)).sum(axis=1).mean()


@given(n=st.integers(1, 5), c=st.integers(2, 6), d=st.integers(1, 6), T=st.sampled_from([1.0, 3.0]),
       w=st.sampled_from([(1.0, 1.0), (1.0, 0.0), (0.5, 2.0)]), seed=st.integers(0, 10))
def test_quantface_loss_matches_numpy_and_gradchecks(n, c, d, T, w, seed):
    r = np.random.default_rng(seed)
    zq, fq, zfp, ffp = (r.standard_normal(s) for s in ((n, c), (n, d), (n, c), (n, d)))
    want = _np_quantface(zq, fq, zfp, ffp, T, *w)
    got = quant.quantface_loss(mk.tensor(zq), mk.tensor(fq), zfp, ffp, T=T, w_feature=w[0], w_logit=w[1]).item()
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert mk.gradcheck(lambda a, b: quant.quantface_loss(a, b, zfp, ffp, T=T, w_feature=w[0], w_logit=w[1]),
                        mk.tensor(zq, requires_grad=True), mk.tensor(fq, requires_grad=True))


def test_quantface_loss_is_zero_for_the_model_itself_and_scale_free_in_features():
    r = np.random.default_rng(0)
    z, f = r.standard_normal((4, 10)), r.standard_normal((4, 8))
    assert quant.quantface_loss(mk.tensor(z), mk.tensor(3.0 * f), z, f).item() == pytest.approx(0.0, abs=1e-12)
    # opposite embeddings: ‖u − (−u)‖² = 4 per sample
    assert quant.quantface_loss(mk.tensor(z), mk.tensor(-f), z, f, w_logit=0).item() == pytest.approx(4.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(T=0.0), "temperature"),
    (dict(w_feature=-1.0), "w_feature"),
    (dict(w_feature=0.0, w_logit=0.0), "both 0"),
])
def test_quantface_loss_rejects_bad_settings(kwargs, match):
    z, f = np.zeros((2, 3)), np.ones((2, 4))
    with pytest.raises(ValueError, match=match):
        quant.quantface_loss(mk.tensor(z), mk.tensor(f), z, f, **kwargs)


def test_quantface_loss_rejects_embeddings_of_different_shapes():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"quantface_loss: .*\(2, 4\) and \(2, 5\)"):
        quant.quantface_loss(mk.tensor(z), mk.tensor(np.ones((2, 4))), z, np.ones((2, 5)))
