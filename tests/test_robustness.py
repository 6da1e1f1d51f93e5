"""The faults a sceptical trial found (issue 11), by kind, each example holding its right value:
tensor semantics, floating-point extremes, argument checking and anomaly detection.
(Non-finite propagation: tests/test_nonfinite.py; files: tests/test_robustness_files.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minikd as mk
from minikd import export, kd, nn, optim, profile, prune, quant, verification
from minikd import functional as F
from minikd.checks import ArgumentTypeError
from minikd.data import DataLoader

# --------------------------------------------------------------------------- 1. tensor semantics: own gradients


def test_each_leaf_gets_its_own_gradient_array():
    a = mk.tensor([1.0, 2.0], requires_grad=True)
    b = mk.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad *= 0.5                      # clipping one gradient in place ...
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])   # ... leaves the other alone


@pytest.mark.parametrize("make", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: (a.reshape(2, 1) + b.reshape(2, 1)),
    lambda a, b: mk.concatenate([a, b])[:2] + mk.concatenate([a, b])[2:],
    lambda a, b: mk.where(mk.tensor([True, False]), a, b) + mk.where(mk.tensor([False, True]), a, b),
])
def test_no_two_leaves_share_memory_whatever_the_graph(make):
    a = mk.tensor([1.0, 2.0], requires_grad=True)
    b = mk.tensor([3.0, 4.0], requires_grad=True)
    y = make(a, b)
    g = np.ones(y.shape, dtype=np.float32)
    y.backward(g)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g) and not np.shares_memory(b.grad, g)  # nor with the caller's array


def test_a_leaf_that_is_the_output_does_not_keep_the_callers_gradient():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    g = mk.tensor([5.0, 6.0])
    y.backward(g)
    g.data[0] = 100.0
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


# --------------------------------------------------------------------------- 1. truth and conversion


def test_truth_and_conversion_follow_numpy_and_pytorch():
    assert bool(mk.tensor([0.0])) is False and bool(mk.tensor(1.0)) is True
    loss, best = mk.tensor(0.25), 0.5
    assert loss < best                         # `if loss < best:` on a 0-d tensor works
    assert float(mk.tensor(2.5)) == 2.5 and int(mk.tensor(7.9)) == 7
    assert [10, 20, 30][mk.tensor(2)] == 30   # __index__: integer tensors only
    assert math.isclose(float(F.cross_entropy(mk.tensor([[1.5, 2.5, 0.3]]), [1])), 0.3911, abs_tol=1e-4)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mk.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        float(mk.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][mk.tensor(1.0)]
    with pytest.raises(TypeError, match="0-d"):
        len(mk.tensor(3.0))


# --------------------------------------------------------------------------- 1. in-place change after forward


def test_changing_a_saved_input_after_forward_is_an_error_naming_op_and_tensor():
    w = mk.tensor([1.0], requires_grad=True)
    x = mk.tensor([2.0], requires_grad=True)
    y = (w * x).sum()
    w.data += 10          # x.grad would be 12 instead of 2
    with pytest.raises(RuntimeError, match=r"Mul\.backward: its input 0 .* changed in place"):
        y.backward()


def test_the_right_gradient_when_nothing_changed_and_after_a_step():
    w = mk.tensor([1.0], requires_grad=True)
    x = mk.tensor([2.0], requires_grad=True)
    (w * x).sum().backward()
    assert x.grad[0] == 1.0 and w.grad[0] == 2.0
    opt = optim.SGD([w], lr=0.1)
    opt.step()                              # a step after backward: fine, and counted
    assert w._version == 1
    y = (w * x).sum()
    opt.step()                              # a step between forward and backward: caught
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


@pytest.mark.parametrize("change", [
    lambda p, opt: opt.step(),                       # Adam's fused kernel writes p.data in place
    lambda p, opt: nn.init.uniform_(p),              # nn.init writes through p.data[...]
    lambda p, opt: setattr(p, "data", p.data * 2),  # assignment
])
def test_every_in_place_writer_bumps_the_version(change):
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    p.grad = np.ones(3, dtype=np.float32)
    opt = optim.Adam([p])
    before = p._version
    change(p, opt)
    assert p._version == before + 1


def test_a_write_into_the_array_is_caught_once_marked():
    """``t.data[...] = v`` cannot be seen by the Tensor (docs/debugging.md §2 says so): unmarked, the
    backward uses the new value, 5 instead of 2; ``_mark_modified()`` makes it an error."""
    a, b = mk.tensor([1.0], requires_grad=True), mk.tensor([2.0], requires_grad=True)
    y = (a * b).sum()
    b.data[...] = 5.0
    y.backward()
    assert a.grad[0] == 5.0          # the documented hole, as in PyTorch's .data
    a, b = mk.tensor([1.0], requires_grad=True), mk.tensor([2.0], requires_grad=True)
    y = (a * b).sum()
    b.data[...] = 5.0
    b._mark_modified()
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_ops_that_do_not_read_their_inputs_allow_a_change():
    """Like PyTorch, only a saved input counts: a + b needs no values to differentiate."""
    a = mk.tensor([1.0], requires_grad=True)
    b = mk.tensor([2.0], requires_grad=True)
    y = (a + b).sum()
    a.data += 5
    y.backward()
    assert a.grad[0] == 1.0 and b.grad[0] == 1.0


# --------------------------------------------------------------------------- 2. anomaly mode


def test_detect_anomaly_names_the_first_op_that_made_a_non_finite_value():
    """A deliberately broken network: log of a ReLU output that reaches 0."""
    mk.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = mk.tensor(-np.ones((2, 4), dtype=np.float32) * 10)   # every ReLU output is 0 here
    net[0].bias.data[...] = -5.0
    with mk.detect_anomaly(), np.errstate(all="ignore"):
        h = net(x)                                  # finite: ReLU is fine
        with pytest.raises(mk.AnomalyError, match=r"Log \(forward, inputs \(2, 3\)\) made .*±inf"):
            h.log().sum()
    with np.errstate(all="ignore"):
        assert not np.isfinite(h.log().sum().item())   # outside the block nothing is checked


def test_detect_anomaly_checks_the_backward_too():
    x = mk.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with mk.detect_anomaly(), np.errstate(all="ignore"):
        y = x.sqrt().sum()                          # √0 = 0: finite forward
        with pytest.raises(mk.AnomalyError, match=r"Sqrt \(inputs \(2,\)\) \(backward\) made 1 ±inf"):
            y.backward()                            # d√x/dx = ∞ at 0


def test_detect_anomaly_lets_inherited_nans_pass_and_costs_nothing_outside():
    x = mk.tensor(np.array([np.nan, 1.0]), requires_grad=True)
    with mk.detect_anomaly():
        (x * 2).sum().backward()                    # the NaN was born before: not this op's fault
    assert not mk.is_anomaly_enabled()


# --------------------------------------------------------------------------- 3. floating-point extremes


def test_sigmoid_is_accurate_far_out_on_both_sides():
    x = mk.tensor(np.array([-17.0, -20.0, -80.0, 0.0, 17.0, 40.0], dtype=np.float32), requires_grad=True)
    y = F.sigmoid(x)
    want = 1 / (1 + np.exp(-np.array([-17.0, -20.0, -80.0, 0.0, 17.0, 40.0])))   # float64 truth
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)
    assert y.numpy()[0] == pytest.approx(4.14e-8, rel=1e-2)          # was 5.96e-8
    assert np.log(y.numpy()[1]) == pytest.approx(-20.0, rel=1e-6)      # was −inf
    y.sum().backward()
    e = np.exp(-np.abs(np.array([-17.0, -20.0, -80.0, 0.0, 17.0, 40.0])))
    np.testing.assert_allclose(x.grad, e / (1 + e) ** 2, rtol=1e-5)    # σ(x)σ(−x), no cancellation
    assert x.grad[4] > 0                                               # 1 − y would be 0 in float32


def test_batch_norm_of_a_constant_large_channel_is_zero_and_its_gradient_exact():
    for value in (7.3e9, 1e30):
        x = mk.tensor(np.full((4, 2, 3, 3), value, dtype=np.float32), requires_grad=True)
        rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
        y = F.batch_norm(x, rm, rv)
        np.testing.assert_array_equal(y.numpy(), 0.0)                  # was ±1 (7.3e9) and 0 with inf var (1e30)
        assert np.isfinite(rv).all() and rv == pytest.approx(0.9)      # σ² = 0: 0.9·1 + 0.1·0
        assert rm == pytest.approx(0.1 * value, rel=1e-6)
        y.backward(mk.tensor(np.arange(72, dtype=np.float32).reshape(4, 2, 3, 3)))
        assert np.isfinite(x.grad).all()


def test_batch_norm_near_float32_limits_normalises_exactly():
    rng = np.random.default_rng(0)
    x64 = 1e18 * rng.standard_normal((16, 3))
    x = mk.tensor(x64.astype(np.float32), requires_grad=True)
    y = F.batch_norm(x, None, None)
    xf = x64.astype(np.float32).astype(np.float64)
    want = (xf - xf.mean(0)) / np.sqrt(xf.var(0) + 1e-5)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)
    mk.gradcheck(lambda t: F.batch_norm(t, None, None) * mk.tensor(np.arange(48.0).reshape(16, 3)),
                 mk.tensor(rng.standard_normal((16, 3)) * 1e3 + 1e9, requires_grad=True), rtol=1e-3, atol=1e-6,
                 eps=1e-2)


def test_pow_gradients_at_base_zero_take_the_limits():
    x = mk.tensor(np.array([0.0, 1.0, 2.0]))
    p = mk.tensor(np.array(2.0), requires_grad=True)
    (x ** p).sum().backward()
    assert p.grad == pytest.approx(4 * math.log(2))                    # 2.7726, was nan
    for b, da, db in ((2.0, 0.0, 0.0), (0.5, math.inf, 0.0), (0.0, 0.0, 0.0)):
        a = mk.tensor(np.array([0.0]), requires_grad=True)
        e = mk.tensor(np.array([b]), requires_grad=True)
        with np.errstate(divide="ignore"):
            y = a ** e
            y.sum().backward()
        assert y.item() == (1.0 if b == 0 else 0.0)
        assert a.grad[0] == da and e.grad[0] == db                     # PyTorch's values


# --------------------------------------------------------------------------- 4. argument checking


P0 = nn.Parameter(np.zeros(1, dtype=np.float32))


@pytest.mark.parametrize("call, error, message", [
    (lambda: mk.concatenate([mk.ones(2, 3), mk.ones(2, 3)], axis=5), ValueError,
     r"concatenate: axis 5 is out of range for a tensor with 2 dimensions"),
    (lambda: F.flatten(mk.ones(2, 3), 5), ValueError, r"flatten: start_axis 5 is out of range"),
    (lambda: mk.stack([mk.ones(2)], axis=3), ValueError, r"stack: axis 3 is out of range"),
    (lambda: mk.ones(2, 3).sum(axis=2), ValueError, r"sum: axis 2 is out of range"),
    (lambda: F.softmax(mk.ones(2, 3), axis=2), ValueError, r"softmax: axis 2 is out of range"),
    (lambda: nn.Linear(784.0, 10), TypeError, r"Linear: in_features must be an int; got 784\.0 \(float\)"),
    (lambda: nn.Conv2d(3, 4, 2.5), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints .*; got 2\.5"),
    (lambda: nn.Conv2d("1", 8, 3), TypeError, r"Conv2d: in_channels must be an int; got '1' \(str\)"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, r"Conv2d: stride must be positive; got 0"),
    (lambda: nn.MaxPool2d(2.0), TypeError, r"MaxPool2d: kernel_size must be an int or a pair"),
    (lambda: nn.BatchNorm2d(True), TypeError, r"BatchNorm2d: num_features must be an int; got True \(bool\)"),
    (lambda: nn.Dropout("0.5"), TypeError, r"Dropout: p .* must be a number; got '0\.5' \(str\)"),
    (lambda: nn.LeakyReLU(None), TypeError, r"LeakyReLU: negative_slope must be a number"),
    (lambda: optim.Adam([P0], lr="1e-3"), TypeError, r"Adam: lr .* must be a number; got '1e-3'"),
    (lambda: optim.SGD([P0], lr=0.1, momentum="0.9"), TypeError, r"SGD: momentum must be a number"),
    (lambda: optim.Adam([P0], betas=0.9), TypeError, r"Adam: betas must be a pair"),
    (lambda: F.softmax(mk.ones(3), T="3"), TypeError, r"softmax: the temperature T must be a positive finite number"),
    (lambda: F.softmax(mk.ones(3), T=True), TypeError, r"softmax: the temperature T .*got T=True"),
    (lambda: F.log_softmax(mk.ones(3), T=0), ValueError, r"log_softmax: the temperature T"),
    (lambda: kd.softmax_with_temperature([1.0, 2.0], T="3"), TypeError, r"softmax_with_temperature: the temperature"),
    (lambda: F.linear(mk.ones(2, 3), mk.ones(3)), ValueError, r"linear: the weight must be 2-D"),
    (lambda: F.linear(mk.ones(2, 3), mk.ones(2, 3), mk.ones(3)), ValueError,
     r"linear: bias of shape \(3,\) does not match the weight \(2, 3\)"),
    (lambda: mk.ones(2, 3) + mk.ones(4), ValueError, r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    (lambda: mk.ones(2, 3) * mk.ones(2), ValueError, r"mul: shapes \(2, 3\) and \(2,\) cannot be broadcast"),
    (lambda: mk.where(mk.ones(2) > 0, mk.ones(3), mk.ones(3)), ValueError, r"where .* cannot be broadcast"),
    (lambda: F.batch_norm(mk.ones(4, 3), None, None, momentum="0.1"), TypeError, r"batch_norm: momentum"),
    (lambda: F.leaky_relu(mk.ones(2), "0.1"), TypeError, r"leaky_relu: negative_slope must be a number"),
    # a learner's first mistakes (a fresh-user trial): each names the layer, the optimizer or the op
    (lambda: nn.Linear(4, 3)([[1.0, 2.0, 3.0, 4.0]]), TypeError,
     r"Linear: the input must be a Tensor or an array; got a list \(make one with mk\.tensor"),
    (lambda: nn.Conv2d(1, 2, 3)(3.0), TypeError, r"Conv2d: the input must be a Tensor or an array; got a float"),
    (lambda: nn.Flatten()([1, 2]), TypeError, r"Flatten: the input must be a Tensor or an array; got a list"),
    (lambda: nn.Linear(4, 3, bias="no"), TypeError, r"Linear: bias must be True or False; got 'no' \(str\)"),
    (lambda: nn.ConvTranspose2d(2, 1, 3, bias=0), TypeError, r"ConvTranspose2d: bias must be True or False; got 0"),
    (lambda: nn.BatchNorm2d(3, affine="yes"), TypeError, r"BatchNorm2d: affine must be True or False"),
    (lambda: mk.tensor(["a", "b"]), TypeError, r"tensor: the data must be numbers or booleans; got dtype <U1"),
    (lambda: optim.SGD(nn.Linear(2, 2).parameters, lr=0.1), TypeError,
     r"SGD: params is the method model\.parameters, not called: pass model\.parameters\(\)"),
    (lambda: optim.Adam(nn.Linear(2, 2)), TypeError, r"Adam: params .*got the module Linear itself: pass "
                                                     r"model\.parameters\(\)"),
    (lambda: optim.Adam([nn.Linear(2, 2)]), TypeError, r"Adam: params\[0\] is a Linear, not a Tensor \(a module"),
    (lambda: optim.SGD(3, lr=0.1), TypeError, r"SGD: params should be an iterable of Tensors, .*; got int 3"),
    (lambda: optim.SGD([], lr=0.1), ValueError, r"SGD: got an empty parameter list"),
    (lambda: kd.kl_divergence([10.0, 2.0, -1.0], [8.0, 1.0, -2.0]), ValueError,
     r"kl_divergence: P must be probabilities .*got values in \[-1, 10\], rows summing to 11…11\. For logits z, "
     r"pass softmax_with_temperature"),
    (lambda: kd.kl_divergence([0.7, 0.2, 0.1], [3.0, 2.0, 1.0]), ValueError, r"kl_divergence: Q must be probabilities"),
    (lambda: kd.rkd_loss(np.ones((3, 2)), np.zeros((3, 4)), w_dist=-1), ValueError, r"rkd_loss: w_dist must be ≥ 0"),
    # gradcheck's own settings: a NaN tolerance compares false, so a wrong gradient passed
    (lambda: mk.gradcheck(lambda t: t * 2, mk.tensor(np.ones(3), requires_grad=True), atol=float("nan")),
     ValueError, r"gradcheck: atol must be a finite number; got nan"),
    (lambda: mk.gradcheck(lambda t: t * 2, mk.tensor(np.ones(3), requires_grad=True), mode="random", n_directions=0),
     ValueError, r"gradcheck: n_directions must be positive; got 0"),
    (lambda: mk.gradcheck(lambda t: t * 2, mk.tensor(np.ones(3), requires_grad=True), eps=0), ValueError,
     r"gradcheck: eps \(the finite-difference step\) must be > 0; got 0"),
    # integer input to an op whose result is not an integer: it was cut to the input's dtype
    (lambda: F.sigmoid(mk.tensor(np.array([1, 2, -1]))), TypeError,
     r"Sigmoid: expects a floating-point input; got dtype int64 \(its result would be cut to integers\)"),
    (lambda: F.leaky_relu(mk.tensor(np.array([-3, 2])), 0.1), TypeError, r"LeakyReLU: expects a floating-point"),
    (lambda: F.avg_pool2d(mk.tensor(np.arange(16).reshape(1, 1, 4, 4)), 2), TypeError, r"AvgPool2d: expects a"),
    (lambda: F.batch_norm(mk.tensor(np.array([[0, 1], [2, 5], [4, 9]])), None, None), TypeError, r"BatchNorm: expects"),
    (lambda: F.dropout(mk.tensor(np.array([1, 2])), 0.5), TypeError, r"Dropout: expects a floating-point input"),
    (lambda: F.clip(mk.tensor(np.array([0, 1, 2])), 0.5, 1.5), TypeError,
     r"clip: integer input \(int64\) with the fractional bound lo=0\.5 would be cut to integers"),
    # shapes, seeds, dtypes and optimizer settings that were accepted and gave a wrong result
    (lambda: mk.zeros(2.5), TypeError, r"zeros: each size of the shape must be an int; got 2\.5"),
    (lambda: mk.ones(2, -1), ValueError, r"ones: each size of the shape must be ≥ 0; got -1"),
    (lambda: mk.randn(2, dtype=np.int64), TypeError, r"randn: dtype must be a floating-point type"),
    (lambda: mk.manual_seed(None), TypeError, r"manual_seed: seed must be an int; got None"),
    (lambda: nn.Linear(2, 2).register_forward_hook("x"), TypeError, r"register_forward_hook: hook must be a function"),
    (lambda: optim.SGD([P0, P0], lr=0.1), ValueError, r"SGD: a parameter appears more than once in params"),
    (lambda: optim.Adam([P0], eps=0), ValueError, r"Adam: eps must be > 0; got 0"),
    (lambda: optim.SGD([P0], 0.1, momentum=0.9, nesterov="no"), TypeError, r"SGD: nesterov must be True or False"),
    (lambda: nn.Linear(2, 2).train("no"), TypeError, r"train: mode must be True or False; got 'no'"),
    (lambda: F.dropout(mk.ones(3), 0.5, training="False"), TypeError, r"dropout: training must be True or False"),
    (lambda: F.batch_norm(mk.ones(4, 3), None, None, training="False"), TypeError, r"batch_norm: training must be"),
    (lambda: quant.quantize_model(nn.Sequential(nn.Linear(2, 2)), copy="no"), TypeError,
     r"quantize_model: copy must be True or False"),
    (lambda: kd.ConvAdapter(2, 4, align_corners="y"), TypeError, r"ConvAdapter: align_corners must be True or False"),
    # the lecture's counters: they computed anything they were given (-8 parameters, '4444')
    (lambda: profile.linear_params(-3, 4), ValueError, r"linear_params: I \(inputs\) must be positive; got -3"),
    (lambda: profile.linear_params(3, "4"), TypeError, r"linear_params: O \(outputs\) must be an int; got '4'"),
    (lambda: profile.conv_params(3, 3, 4, groups=2), ValueError, r"conv_params: groups=2 must divide both d_prev=3"),
    (lambda: profile.conv_flops(3, 3, 3, 4, 4, "macs", groups=8), ValueError, r"conv_flops: groups=8 must divide"),
    (lambda: profile.conv_params((3, 3, 3), 3, 4), TypeError, r"conv_params: k \(the kernel size\) must be an int or"),
    (lambda: profile.conv_transpose_flops(7, 7, 4, 8, 4, out_hw=(-14, 14)), ValueError,
     r"conv_transpose_flops: out_hw \(h_i, w_i\) must be positive; got -14"),
    (lambda: profile.conv_output_size(5, 3, p=0.5), TypeError, r"conv_output_size: p must be an int; got 0\.5"),
    (lambda: profile.memory_bytes(-10), ValueError, r"memory_bytes: n_params must be ≥ 0; got -10"),
    (lambda: profile.memory_bytes(22, None), TypeError, r"memory_bytes: dtype_or_bits must be a data type or a bit"),
    (lambda: profile.summary(nn.Sequential(nn.Linear(4, 2)), (4,), batch_size=0), ValueError,
     r"summary: batch_size must be positive; got 0"),
    (lambda: profile.summary(nn.Sequential(nn.Linear(4, 2)), 4), TypeError, r"summary: input_shape must be one"),
    (lambda: profile.measure_latency(nn.Sequential(nn.Linear(4, 2)), (4,), repeats=True), TypeError,
     r"measure_latency: repeats must be an int; got True"),
    # pruning, quantization and KD arguments that were accepted and gave a wrong result
    (lambda: prune.load_pruned(nn.Sequential(nn.Linear(2, 2)), {"0.weight": np.ones((2, 2), np.float32),
                                                             "0.bias": np.ones(2, np.float32),
                                                             "0.weight_mask": np.full((2, 2), 0.5, np.float32)}),
     ValueError, r"load_pruned: 0\.weight_mask must hold only 0 \(pruned\) and 1 \(kept\); it holds 0\.5"),
    (lambda: quant.IntLinear(4, 3)(mk.tensor(np.ones((1, 4), np.float32))), RuntimeError,
     r"IntLinear holds no quantized weights and scales yet: make it with convert_to_integer"),
    (lambda: quant.calibrate(nn.Sequential(nn.Linear(2, 2)), [np.ones((1, 2))]), ValueError,
     r"calibrate: the model holds no QuantLinear/QuantConv2d layer to calibrate"),
    (lambda: quant.quantize_model(nn.ReLU()), ValueError, r"quantize_model: the model has no Linear or Conv2d layer"),
    (lambda: quant.quantize(np.ones((2, 2)), 4, np.array([0.1, 0.1]), np.array([0, 0]), axis=5), ValueError,
     r"per-channel s and z: axis must be an int in -2\.\.1 for x of shape \(2, 2\); got 5"),
    (lambda: quant.qparams("1.5", -0.5, 4), TypeError, r"qparams: alpha must be a number or an array of numbers"),
    (lambda: kd.margin_logits(np.ones((2, 4), np.float32), np.ones((3, 4), np.float32), [0, -1]), ValueError,
     r"margin_logits: labels y must be in 0\.\.2 \(one centre per class\); got -1\.\.0"),
    (lambda: kd.distill_centres(nn.Parameter(np.zeros((3, 2), np.float32)), [0, 1], np.ones((2, 2), np.float32),
                                [2.0, 0.5]), ValueError, r"distill_centres: alpha must be in \[0, 1\]"),
    (lambda: kd.feature_kd_loss(np.ones((4, 10)), np.ones((3, 8)), np.ones((3, 8)), [0, 1, 2, 3], None), ValueError,
     r"feature_kd_loss: the student's logits \(4, 10\) and features \(3, 8\) must come from the same batch"),
    (lambda: kd.make_adapter((8.0,), (16,)), TypeError, r"make_adapter: the student shape must be a tuple of ints"),
    # errors that came from deep inside (an AttributeError, a numpy message) now name the op or argument
    (lambda: mk.ones(2) + None, TypeError, r"unsupported operand type\(s\) for \+: 'Tensor' and 'NoneType'"),
    (lambda: F.relu(None), TypeError, r"ReLU: the input is None; expected a Tensor or an array"),
    # a new user's trial: a forward without its return (the exercise's starter) said "got dtype object"
    (lambda: type("NoReturn", (mk.function.Function,), {"forward": lambda self, x: None}).apply(mk.ones(2)),
     TypeError, r"NoReturn\.forward returned None; it must return the output array"),
    (lambda: DataLoader([1, 2], [1, 2]), TypeError, r"DataLoader: x and y must be arrays"),
    (lambda: DataLoader(np.ones(2), np.ones(2), device="gpu"), ValueError, r"unknown device 'gpu'"),
    (lambda: mk.data.load_mnist(["train"]), ValueError, r"load_mnist: split must be one of \['test', 'train'\]"),
    (lambda: prune.sparsity(None), TypeError, r"sparsity: model must be a minikd nn\.Module; got NoneType"),
    (lambda: quant.convert_to_integer(None), TypeError, r"convert_to_integer: qmodel must be a minikd nn\.Module"),
    (lambda: prune.accumulate_gradients(nn.Sequential(nn.Linear(2, 2)), [], "ce"), TypeError,
     r"accumulate_gradients: loss_fn must be a function"),
    (lambda: prune.accumulate_gradients(nn.Sequential(nn.Linear(2, 2)), [(np.ones((1, 2), np.float32), [0])],
                                        lambda out, y: 1.0), TypeError,
     r"accumulate_gradients: loss_fn must return a scalar Tensor \(to differentiate\); got float"),
    (lambda: verification.cosine_scores(np.ones((3, 2)), ([0, 1], [1, 2], [True])), ValueError,
     r"cosine_scores: same must have one entry per pair, 2; got shape \(1,\)"),
    (lambda: quant.clip(np.ones(3), 1, -1), ValueError, r"clip: the lower bound l must be ≤ the upper bound u"),
    (lambda: kd.random_shift(np.ones((1, 1, 4, 4), np.float32), 2, rng=5), TypeError,
     r"random_shift: rng must be a numpy\.random\.Generator or None; got 5 \(for a seed, pass"),
    (lambda: kd.freeze_teacher(None), TypeError, r"freeze_teacher: teacher must be a minikd nn\.Module"),
    (lambda: export.to_torch_names(None), TypeError, r"to_torch_names: state must be a state dict"),
    (lambda: mk.arange(0, 5, 0), ValueError, r"arange: the step must not be 0"),
    (lambda: setattr(mk.ones(2), "data", "abc"), TypeError, r"Tensor\.data must be an array of numbers.*got str"),
    (lambda: mk.ones(2, 3).sum(axis=(0, 0)), ValueError, r"sum: axis \(0, 0\) names an axis twice"),
    (lambda: mk.ones(2, 3).sum(axis=1.0), TypeError, r"sum: axis must be an int, a tuple of ints or None; got 1\.0"),
    (lambda: mk.ones(2, 3).argmax(axis=2), ValueError, r"argmax: axis 2 is out of range"),
    (lambda: F.softmax(mk.zeros(0)), ValueError, r"softmax: no value along axis 0 to normalise over"),
    (lambda: mk.save({}, None), TypeError, r"save: path must be a file name \(a str or a pathlib\.Path\); got None"),
    (lambda: mk.load(123), TypeError, r"load: path must be a file name"),
    (lambda: mk.where(mk.ones(2), mk.ones(2), mk.zeros(2)), TypeError,
     r"where: cond must be boolean \(e\.g\. x > 0\); got dtype float32"),
    (lambda: mk.stack(mk.ones(2, 3)), TypeError, r"stack: expects a list or tuple of tensors; got Tensor"),
    (lambda: verification.compute_embeddings(lambda x: x, None), ValueError,
     r"compute_embeddings: x must be a batch of inputs \(N, \.\.\.\) of numbers"),
    (lambda: quant.quantize(np.array([np.nan, 1.0]), 4, 0.1, 0), ValueError,
     r"quantize: x holds NaN \(first at index \[0\]\), which no integer level can stand for"),
    # a flag given as anything but True or False (a string is truthy: it silently meant True)
    (lambda: mk.tensor([1.0], requires_grad="no"), TypeError, r"tensor: requires_grad must be True or False"),
    (lambda: mk.tensor([1.0]).requires_grad_("x"), TypeError, r"requires_grad_: flag must be True or False"),
    (lambda: DataLoader(np.ones(4), np.ones(4), 2, shuffle="yes"), TypeError, r"DataLoader: shuffle must be True"),
    (lambda: DataLoader(np.ones(4), np.ones(4), 2.5), TypeError, r"DataLoader: batch_size must be an int; got 2\.5"),
    (lambda: quant.qparams(1.0, -1.0, 8, symmetric="yes"), TypeError, r"qparams: symmetric must be True or False"),
    (lambda: profile.linear_params(2, 3, bias="no"), TypeError, r"linear_params: bias must be True or False"),
    (lambda: kd.kd_loss([1.0, 2.0], [1.0, 2.0], 0, t_squared="no"), TypeError, r"kd_loss: t_squared must be True"),
    (lambda: kd.rkd_distance_loss(np.ones((2, 2)), np.ones((2, 2)), huber=1), TypeError,
     r"rkd_distance_loss: huber must be True or False; got 1 \(int\)"),
    (lambda: nn.Linear(2, 2).load_state_dict({}, strict="no"), TypeError, r"load_state_dict: strict must be True"),
    (lambda: quant.quantize_model(nn.Sequential(nn.Linear(2, 2)), per_channel="no"), TypeError,
     r"QuantLinear: per_channel must be True or False; got 'no' \(str\)"),
    (lambda: kd.distill_centres(nn.Parameter(np.zeros((3, 2), dtype=np.float32)), [0, 3],
                                np.ones((2, 2), dtype=np.float32), [0.5, 0.5]), ValueError,
     r"distill_centres: labels y must be in 0\.\.2 \(one centre per class\); got 0\.\.3"),
    (lambda: kd.kl_divergence([[0.7, 0.2, 0.1]], [[0.6, 0.3, 0.2]]), ValueError,
     r"Q must be probabilities .*rows summing to 1\.1…1\.1"),
])
def test_bad_arguments_get_one_kind_of_error_naming_op_argument_and_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_wrong_gradient_fails_gradcheck_and_integer_ops_that_stay_exact_still_run():
    """The gradcheck settings are checked because the check itself must be able to fail; ReLU,
    max pooling and clip with whole bounds keep integer input exact, so they still take it."""
    from minikd.function import Function

    class Doubled(Function):  # y = 2x with the wrong backward 3·gy
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 3

    x = mk.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    for settings in ({}, {"mode": "random"}, {"atol": 1e3 * 0, "rtol": 0.0}):
        with pytest.raises(mk.GradcheckError):
            mk.gradcheck(Doubled.apply, x, **settings)
    xi = mk.tensor(np.array([[1, 2, -1, 3]]))
    assert F.relu(xi).numpy().tolist() == [[1, 2, 0, 3]] and F.clip(xi, 0, 2).numpy().tolist() == [[1, 2, 0, 2]]
    assert F.max_pool2d(mk.tensor(np.arange(16).reshape(1, 1, 4, 4)), 2).numpy().ravel().tolist() == [5, 7, 13, 15]


def test_kl_divergence_lets_non_finite_values_through_and_takes_float32_rounding():
    """Its probability check judges the finite values only (a NaN or ±inf goes on to the result,
    as through every op) and allows float32's rounding of a row's sum."""
    assert np.isnan(kd.kl_divergence([np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]).item())
    p = kd.softmax_with_temperature(np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32) * 30, T=1)
    assert kd.kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-6)


def test_qud_loss_takes_the_queue_itself():
    """Given the EmbeddingQueue rather than its embeddings (a natural mistake), qud_loss uses them."""
    rng = np.random.default_rng(0)
    q = kd.EmbeddingQueue(10, 8)
    q.push(rng.standard_normal((4, 8)))
    f_s, f_t = rng.standard_normal((2, 8)), rng.standard_normal((2, 8))
    assert kd.qud_loss(f_s, f_t, q).item() == pytest.approx(kd.qud_loss(f_s, f_t, q.embeddings).item())


def test_a_wrong_type_is_both_a_type_error_and_a_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


@pytest.mark.parametrize("x", [np.ones((2, 3)), np.ones((2, 3), dtype=np.int64)])
def test_one_dtype_policy_for_every_layer(x):
    """float64 or int64 input to float32 layers is refused, as F.conv2d already did."""
    for layer, shape in ((nn.Linear(3, 2), (2, 3)), (nn.Conv2d(1, 2, 1), (2, 1, 3, 1)), (nn.BatchNorm1d(3), (2, 3))):
        with pytest.raises(TypeError, match=r"input dtype .* differ; convert one of them .*astype\('float32'"):
            layer(mk.tensor(x.reshape(shape).astype(x.dtype)))
    out = nn.Linear(3, 2)(mk.tensor(x.astype(np.float32)))
    assert out.dtype == np.float32


def test_clip_takes_tensor_bounds():
    x = mk.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = F.clip(x, mk.tensor(0.0), mk.tensor(1.0))
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(F.clip(mk.tensor([0.0, 5.0]), mk.tensor([1.0, 2.0]), None).numpy(), [1.0, 5.0])
    with pytest.raises(ValueError, match="above upper bound"):
        F.clip(x, mk.tensor([0.0, 2.0, 0.0]), mk.tensor(1.0))


def test_batch_norm_momentum_none_is_the_cumulative_average():
    """PyTorch's meaning: the k-th batch weighs 1/k, so the running mean is the plain mean of batch means."""
    mk.manual_seed(0)
    bn = nn.BatchNorm1d(3, momentum=None)
    batches = [np.random.default_rng(i).normal(i, 1.0, (8, 3)).astype(np.float32) for i in range(4)]
    for b in batches:
        bn(mk.tensor(b))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in batches], axis=0), rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 4
    assert bn.state_dict()["num_batches_tracked"].dtype == np.int64  # PyTorch's buffer, key for key


@pytest.mark.parametrize("loss", [
    lambda z, y: F.cross_entropy(z, y), lambda z, y: kd.kd_loss(z, z.detach(), y),
    lambda z, y: kd.soft_loss(z, z.detach()), lambda z, y: F.mse_loss(z, z.detach()),
    lambda z, y: F.l1_loss(z, z.detach()), lambda z, y: F.kl_divergence(F.softmax(z), F.softmax(z)),
    lambda z, y: kd.feature_loss(z, z.detach()),
])
def test_empty_batches_one_documented_rule_for_every_loss(loss):
    z, y = mk.zeros(0, 3, requires_grad=True), np.zeros(0, dtype=np.int64)
    with pytest.raises(ValueError, match=r"the batch is empty \(N = 0\)"):
        loss(z, y)


def test_empty_batch_sums_are_zero_and_none_is_empty():
    z, y = mk.zeros(0, 3, requires_grad=True), np.zeros(0, dtype=np.int64)
    total = F.cross_entropy(z, y, reduction="sum")
    assert total.item() == 0.0
    total.backward()
    assert z.grad.shape == (0, 3)
    assert F.mse_loss(z, z.detach(), reduction="none").shape == (0, 3)


# --------------------------------------------------------------------------- PyTorch as the oracle, where installed


def test_the_issue_examples_agree_with_pytorch():
    """The values above were computed independently; where PyTorch is installed (it is not a
    dependency, and CI runs without it) the same examples are compared with it."""
    torch = pytest.importorskip("torch")
    # max-pool with a NaN inside a window
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    want = torch.nn.functional.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(F.max_pool2d(mk.tensor(x), 2).numpy(), want)
    # (soft cross-entropy with −inf logits is not compared: PyTorch 2.13 returns NaN there, and
    # 0.87997 is computed independently in test_soft_cross_entropy_with_masked_classes_is_finite)
    # sigmoid and its gradient far out
    xs = np.array([-17.0, -20.0, 40.0], dtype=np.float32)
    tx = torch.tensor(xs, requires_grad=True)
    torch.sigmoid(tx).sum().backward()
    mx = mk.tensor(xs, requires_grad=True)
    y = F.sigmoid(mx)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), torch.sigmoid(torch.tensor(xs)).numpy(), rtol=1e-6)
    # at x = 40 PyTorch's y(1 − y) is 0 in float32; minikd keeps e^(−40) = 4.25e-18 (the truth)
    np.testing.assert_allclose(mx.grad[:2], tx.grad.numpy()[:2], rtol=1e-5)
    assert tx.grad[2].item() == 0.0 and mx.grad[2] == pytest.approx(math.exp(-40), rel=1e-5)
    # pow at base 0, both gradients
    for b in (2.0, 0.5, 0.0):
        ta, tb = torch.zeros(1, dtype=torch.float64, requires_grad=True), torch.tensor([b], requires_grad=True,
                                                                                         dtype=torch.float64)
        (ta ** tb).sum().backward()
        ma, mb = mk.tensor(np.zeros(1), requires_grad=True), mk.tensor(np.array([b]), requires_grad=True)
        with np.errstate(divide="ignore"):
            (ma ** mb).sum().backward()
        assert (ma.grad[0], mb.grad[0]) == (ta.grad.item(), tb.grad.item())
    # the cumulative momentum of batch norm (a constant channel of 7.3e9 is not compared:
    # PyTorch 2.13 on this CPU gives −94733.8 there, minikd the exact 0)
    bn_t, bn_m = torch.nn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
    for i in range(3):
        b = np.random.default_rng(i).normal(i, 1.0, (8, 3)).astype(np.float32)
        bn_t(torch.tensor(b))
        bn_m(mk.tensor(b))
    np.testing.assert_allclose(bn_m.running_mean.numpy(), bn_t.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn_m.running_var.numpy(), bn_t.running_var.numpy(), rtol=1e-6)
