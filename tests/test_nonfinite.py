"""Non-finite values propagate: none vanishes, none appears (issue 11, section 2).

Two property tests, hypothesis drawing the position and the kind of the bad value:

1. **Elementwise ops, exactly.** For each unary op a plain-Python reference of the function
   and of its derivative, with the limits at ±inf written out (exp(−inf) = 0, tanh'(±inf) = 0,
   sigmoid(−inf) = 0, …). Forward: y_i = f(x_i) at every position, NaN where x_i is NaN.
   Backward: dL/dx_i = g_i · f'(x_i) — a NaN or ±inf upstream gradient survives wherever f'
   is finite and non-zero, and a zero derivative gives exactly 0, never inf · 0 = NaN.

2. **Every other op and layer, structurally.** Put a NaN (or ±inf) into one input element x_j:
   - forward: output i is NaN exactly when it depends on x_j (it changes when x_j is moved
     far away, ±1000); every other output is the clean run's value — for ±inf too, whose
     value at the dependent outputs is the op's own business (a softmax row gives NaN);
   - backward: put a NaN (or ±inf) into one upstream gradient g_i: with NaN, dL/dx_j is NaN
     exactly where the Jacobian entry ∂y_i/∂x_j is non-zero (read from a one-hot backward on
     clean data); with either, every other gradient entry is the clean one.

   A "maximum" with a NaN in its window is NaN (NumPy's ``max``, PyTorch's ``max_pool2d``);
   a term the maths leaves out (0 · log 0 in a KL divergence, a dropped unit) stays out.

   One product with 0 is kept, as in every dense GEMM (PyTorch's too): a weight that is 0 —
   a pruned one, or a tap of a convolution that reads zero padding — still multiplies its
   input, so ±inf · 0 = NaN there. The cases below draw no bad value where that happens;
   a pruned weight itself holding ±inf or NaN is masked by a select (tested at the end).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import kd, nn

BAD = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf}

# --------------------------------------------------------------------------- 1. elementwise ops, exactly


def _sigmoid(x):
    if math.isnan(x):
        return math.nan
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _dsigmoid(x):
    s = _sigmoid(x)
    return s * _sigmoid(-x)


def _dtanh(x):
    return 0.0 if math.isinf(x) else 1 - math.tanh(x) ** 2


def _dexp(x):
    return math.exp(x) if x < 700 else math.inf


def _nan_in_nan_out(f):
    return lambda x: math.nan if math.isnan(x) else f(x)


def _clip01(x):
    return x if math.isnan(x) else min(max(x, 0.0), 1.0)


# name: (minikd function, f, f', domain of the clean values)
UNARY = {
    "exp": (lambda t: t.exp(), lambda x: math.exp(x) if x < 700 else math.inf, _dexp, "any"),
    "log": (lambda t: t.log(), lambda x: math.log(x) if x > 0 else (math.inf if x == math.inf else math.nan),
            lambda x: 1 / x, "positive"),
    "sqrt": (lambda t: t.sqrt(), lambda x: math.sqrt(x) if x >= 0 else math.nan,
             lambda x: 0.0 if x == math.inf else 0.5 / math.sqrt(x) if x > 0 else math.nan, "positive"),
    "abs": (lambda t: t.abs(), abs, lambda x: math.copysign(1.0, x), "any"),
    "neg": (lambda t: -t, lambda x: -x, lambda x: -1.0, "any"),
    "tanh": (lambda t: t.tanh(), math.tanh, _dtanh, "any"),
    "sigmoid": (lambda t: t.sigmoid(), _sigmoid, _dsigmoid, "any"),
    "relu": (lambda t: t.relu(), lambda x: x if math.isnan(x) else max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0,
             "any"),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda x: x if x > 0 or math.isnan(x) else 0.1 * x,
                   lambda x: 1.0 if x > 0 else 0.1, "any"),
    "leaky_relu(0)": (lambda t: F.leaky_relu(t, 0.0), lambda x: x if x > 0 or math.isnan(x) else 0.0,
                      lambda x: 1.0 if x > 0 else 0.0, "any"),
    "clip": (lambda t: F.clip(t, 0.0, 1.0), _clip01, lambda x: 1.0 if 0 <= x <= 1 else 0.0, "any"),
}


def _clean(rng, n, domain):
    x = rng.uniform(0.2, 2.0, n) if domain == "positive" else rng.uniform(-2.0, 2.0, n)
    return x


@pytest.mark.parametrize("name", sorted(UNARY))
@given(seed=st.integers(0, 2**16), bad=st.lists(st.sampled_from(sorted(BAD)), min_size=1, max_size=3),
       bad_g=st.sampled_from(["nan", "+inf", "-inf", "none"]))
def test_elementwise_forward_and_backward_match_the_maths_at_nan_and_inf(name, seed, bad, bad_g):
    fn, f, df, domain = UNARY[name]
    f = _nan_in_nan_out(f)
    rng = np.random.default_rng(seed)
    n = 8
    x = _clean(rng, n, domain)
    where = rng.choice(n, size=len(bad), replace=False)
    for j, kind in zip(where, bad):
        x[j] = BAD[kind]
    g = rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n)
    # a non-finite upstream gradient where the local derivative is finite and non-zero
    finite_slope = [i for i in range(n) if i not in where and math.isfinite(df(x[i])) and df(x[i]) != 0]
    if bad_g != "none" and finite_slope:
        g[finite_slope[0]] = BAD[bad_g]
    t = mk.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        y = fn(t)
        y.backward(mk.tensor(g))
    for i in range(n):
        want = f(float(x[i]))
        got = float(y.numpy()[i])
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12, abs=1e-300), \
            f"{name} forward at x={x[i]}: got {got}, want {want}"
        if math.isnan(x[i]):
            continue  # the derivative at a NaN input is not defined; PyTorch returns 0 or g there, op by op
        slope = df(float(x[i]))
        want_g = 0.0 if slope == 0 else g[i] * slope  # a zero derivative selects 0, even for g = ±inf
        got_g = float(t.grad[i])
        assert (math.isnan(want_g) and math.isnan(got_g)) or got_g == pytest.approx(want_g, rel=1e-12), \
            f"{name} backward at x={x[i]}, g={g[i]}: got {got_g}, want {want_g}"


def test_relu_of_minus_inf_is_zero_and_its_gradient_is_not_nan():
    x = mk.tensor(np.array([-np.inf, np.nan, 2.0]), requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.numpy(), [0.0, np.nan, 2.0])
    y.backward(mk.tensor(np.array([np.inf, 1.0, np.inf])))
    assert x.grad[0] == 0.0 and x.grad[2] == np.inf


# --------------------------------------------------------------------------- 2. every other op, structurally


def _arr(rng, *shape, positive=False):
    a = rng.uniform(0.2, 2.0, shape) if positive else rng.uniform(-2.0, 2.0, shape)
    return a


def _probs(rng, *shape):
    a = rng.uniform(0.1, 1.0, shape)
    return a / a.sum(axis=-1, keepdims=True)


def _seeded(fn, seed=3):
    def run(*ts):
        mk.manual_seed(seed)
        return fn(*ts)
    return run


def _bn_train(x, w, b):
    C = x.shape[1]
    return F.batch_norm(x, np.zeros(C), np.ones(C), w, b, training=True)


def _bn_eval(x, w, b):
    C = x.shape[1]
    return F.batch_norm(x, np.linspace(-0.5, 0.5, C), np.linspace(0.5, 2.0, C), w, b, training=False)


def _pruned(layer):
    mask = np.ones(layer.weight.shape, dtype=np.float32)
    mask[0, 1] = mask[2, 3] = 0.0
    layer.register_buffer("weight_mask", mask)
    return layer


class _FakeQuant(nn.Module):
    def forward(self, x):
        from minikd.quant import fake_quantize

        return fake_quantize(x, 4, 0.25, 0)


def _layer(make, seed=0):
    """A layer built once (seeded) in float64, applied to the input."""
    mk.manual_seed(seed)
    layer = make()
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    for m in layer.modules():
        for name, buf in list(m.named_buffers(recurse=False)):
            if buf is not None and buf.dtype.kind == "f":
                setattr(m, name, buf.numpy().astype(np.float64))
    return layer


LABELS = np.array([2, 0, 1])
W_FIXED = np.linspace(-1, 1, 54).reshape(3, 2, 3, 3)

# name: (function of the input tensors, input arrays from an rng, which inputs may hold the NaN)
CASES = {
    "add (broadcast)": (lambda a, b: a + b, lambda r: [_arr(r, 3, 4), _arr(r, 4)]),
    "sub (broadcast)": (lambda a, b: a - b, lambda r: [_arr(r, 3, 1), _arr(r, 1, 4)]),
    "mul (broadcast)": (lambda a, b: a * b, lambda r: [_arr(r, 2, 3, 4), _arr(r, 3, 1)]),
    "div": (lambda a, b: a / b, lambda r: [_arr(r, 3, 4), _arr(r, 3, 4, positive=True)]),
    "pow": (lambda a, b: a ** b, lambda r: [_arr(r, 3, 4, positive=True), _arr(r, 4)]),
    "where": (lambda a, b: mk.where(mk.tensor(np.array([True, False, True, False])), a, b),
              lambda r: [_arr(r, 3, 4), _arr(r, 3, 4)]),
    "sum(axis=1)": (lambda a: a.sum(axis=1), lambda r: [_arr(r, 3, 4, 2)]),
    "mean": (lambda a: a.mean(axis=(0, 2)), lambda r: [_arr(r, 3, 4, 2)]),
    "max(axis=1)": (lambda a: a.max(axis=1), lambda r: [_arr(r, 3, 5)]),
    "reshape/transpose": (lambda a: a.reshape(4, 6).T, lambda r: [_arr(r, 2, 3, 4)]),
    "getitem (slice)": (lambda a: a[1:, ::2], lambda r: [_arr(r, 3, 4)]),
    "getitem (fancy, repeated)": (lambda a: a[np.array([0, 2, 0])], lambda r: [_arr(r, 3, 4)]),
    "concatenate/stack": (lambda a, b: mk.stack([mk.concatenate([a, b], axis=1), mk.concatenate([b * 2, a.exp()], 1)]),
                          lambda r: [_arr(r, 2, 3), _arr(r, 2, 3)]),
    "matmul": (lambda a, b: a @ b, lambda r: [_arr(r, 2, 3, 4), _arr(r, 4, 5)]),
    "linear": (F.linear, lambda r: [_arr(r, 3, 4), _arr(r, 2, 4), _arr(r, 2)]),
    "conv2d (stride 2)": (lambda x, w, b: F.conv2d(x, w, b, stride=2),
                          lambda r: [_arr(r, 2, 2, 5, 5), _arr(r, 3, 2, 3, 3), _arr(r, 3)]),
    # zero padding is a product with 0, as in every im2col/GEMM convolution (PyTorch's too): a NaN
    # *weight* tap that reads only padding makes that output NaN. So the NaN goes into x and b here.
    "conv2d (padding 1, NaN in x or b)": (lambda x, b: F.conv2d(x, mk.tensor(W_FIXED), b, stride=2, padding=1),
                                          lambda r: [_arr(r, 2, 2, 5, 5), _arr(r, 3)]),
    "conv2d (groups 2)": (lambda x, w: F.conv2d(x, w, groups=2), lambda r: [_arr(r, 1, 4, 4, 4), _arr(r, 2, 2, 2, 2)]),
    "max_pool2d 2x2": (lambda x: F.max_pool2d(x, 2), lambda r: [_arr(r, 2, 2, 4, 6)]),
    "max_pool2d 3x3 s1 p1": (lambda x: F.max_pool2d(x, 3, stride=1, padding=1), lambda r: [_arr(r, 1, 2, 4, 5)]),
    "avg_pool2d 3x3 s2 p1": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), lambda r: [_arr(r, 1, 2, 5, 5)]),
    "softmax T=2": (lambda z: F.softmax(z, T=2.0), lambda r: [_arr(r, 3, 5)]),
    "log_softmax axis 0": (lambda z: F.log_softmax(z, axis=0), lambda r: [_arr(r, 4, 3)]),
    "cross_entropy (labels, none)": (lambda z: F.cross_entropy(z, LABELS, reduction="none"),
                                     lambda r: [_arr(r, 3, 4)]),
    "cross_entropy (soft targets)": (lambda z, t: F.cross_entropy(z, t, reduction="none"),
                                     lambda r: [_arr(r, 3, 4), _probs(r, 3, 4)]),
    "mse_loss (none)": (lambda a, b: F.mse_loss(a, b, reduction="none"), lambda r: [_arr(r, 3, 4), _arr(r, 3, 4)]),
    "l1_loss": (lambda a, b: F.l1_loss(a, b), lambda r: [_arr(r, 3, 4), _arr(r, 3, 4)]),
    "kl_divergence (none)": (lambda p, q: F.kl_divergence(p, q, reduction="none"),
                             lambda r: [_probs(r, 3, 4), _probs(r, 3, 4)]),
    "batch_norm (training)": (_bn_train, lambda r: [_arr(r, 4, 3, 2, 2), _arr(r, 3), _arr(r, 3)]),
    "batch_norm (evaluation)": (_bn_eval, lambda r: [_arr(r, 4, 3), _arr(r, 3), _arr(r, 3)]),
    "interpolate": (lambda x: F.interpolate(x, (5, 3)), lambda r: [_arr(r, 1, 2, 3, 4)]),
    "kd_loss": (lambda zs: kd.kd_loss(zs, mk.tensor(np.linspace(-1, 1, 12).reshape(3, 4)), LABELS, T=3.0, lam=0.5),
                lambda r: [_arr(r, 3, 4)]),
    "soft_loss": (lambda zs: kd.soft_loss(zs, mk.tensor(np.linspace(-1, 1, 8).reshape(2, 4)), T=2.0),
                  lambda r: [_arr(r, 2, 4)]),
    "feature_loss": (lambda fs, ft: kd.feature_loss(fs, ft), lambda r: [_arr(r, 2, 5), _arr(r, 2, 5)]),
}

LAYERS = {
    "nn.Linear": (lambda: nn.Linear(4, 3), lambda r: [_arr(r, 2, 4)]),
    "nn.Conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1), lambda r: [_arr(r, 2, 2, 4, 4)]),
    "nn.BatchNorm1d": (lambda: nn.BatchNorm1d(3), lambda r: [_arr(r, 5, 3)]),
    "nn.BatchNorm2d (eval)": (lambda: nn.BatchNorm2d(2).eval(), lambda r: [_arr(r, 2, 2, 3, 3)]),
    "nn.MaxPool2d": (lambda: nn.MaxPool2d(2), lambda r: [_arr(r, 1, 2, 4, 4)]),
    "nn.AvgPool2d": (lambda: nn.AvgPool2d(2), lambda r: [_arr(r, 1, 2, 4, 4)]),
    "nn.Dropout": (lambda: nn.Dropout(0.5), lambda r: [_arr(r, 3, 6)]),
    "fake_quantize (STE)": (lambda: _FakeQuant(), lambda r: [_arr(r, 3, 4)]),
    "nn.Sequential CNN": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
                                                nn.Flatten(), nn.Linear(8, 3), nn.Sigmoid()),
                          lambda r: [_arr(r, 2, 1, 4, 4)]),
}


def _applied(make):
    return lambda x: _layer(make)(x)


def _all_cases():
    cases = dict(CASES)
    for name, (make, inputs) in LAYERS.items():
        cases[name] = (_applied(make), inputs)
    cases["nn.Dropout"] = (_seeded(cases["nn.Dropout"][0]), cases["nn.Dropout"][1])
    return cases


ALL = _all_cases()


def _run(fn, arrays, grad=True):
    ts = [mk.tensor(a, requires_grad=grad) for a in arrays]
    with np.errstate(all="ignore"):
        y = fn(*ts)
    return ts, y


def _same(a, b):
    return np.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", sorted(ALL))
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(sorted(BAD)), data=st.data())
def test_a_nan_input_reaches_exactly_the_outputs_that_depend_on_it(name, seed, kind, data):
    fn, make = ALL[name]
    arrays = make(np.random.default_rng(seed))
    k = data.draw(st.integers(0, len(arrays) - 1), label="input")
    j = data.draw(st.integers(0, arrays[k].size - 1), label="element")
    clean = _run(fn, arrays, grad=False)[1].numpy()

    def with_value(v):
        moved = [a.copy() for a in arrays]
        moved[k].reshape(-1)[j] = v
        return _run(fn, moved, grad=False)[1].numpy()

    x_j = arrays[k].reshape(-1)[j]
    depends = np.zeros(clean.shape, dtype=bool)
    for v in (x_j + 1000.0, x_j - 1000.0, -x_j):
        depends |= ~np.isclose(with_value(v), clean, rtol=0, atol=0, equal_nan=True)
    got = with_value(BAD[kind])
    if kind == "nan":
        assert np.isnan(got[depends]).all(), f"{name}: a NaN in input {k} vanished from outputs that depend on it"
    assert _same(got[~depends], clean[~depends]), \
        f"{name}: a {kind} in input {k} changed outputs that do not depend on it"


@pytest.mark.parametrize("name", sorted(ALL))
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(sorted(BAD)), data=st.data())
def test_a_nan_upstream_gradient_reaches_exactly_the_inputs_it_flows_to(name, seed, kind, data):
    fn, make = ALL[name]
    arrays = make(np.random.default_rng(seed))
    _, y = _run(fn, arrays)
    i = data.draw(st.integers(0, max(y.size - 1, 0)), label="output")
    rng = np.random.default_rng(seed + 1)
    g = np.array(rng.uniform(0.5, 1.5, y.shape) * rng.choice([-1.0, 1.0], y.shape))  # an array, also 0-d

    def grads(upstream):
        ts, out = _run(fn, arrays)
        with np.errstate(all="ignore"):
            out.backward(mk.tensor(np.asarray(upstream, dtype=np.float64)))
        return [np.zeros(t.shape) if t.grad is None else t.grad for t in ts]

    one_hot = np.zeros(y.shape)
    one_hot.reshape(-1)[i] = 1.0
    row = grads(one_hot)                       # ∂y_i/∂x for every input
    g_zero = g.copy()
    g_zero.reshape(-1)[i] = 0.0
    rest = grads(g_zero)                       # the gradient without output i's share
    g_nan = g.copy()
    g_nan.reshape(-1)[i] = BAD[kind]
    got = grads(g_nan)
    for k, (r, other, bad) in enumerate(zip(row, rest, got)):
        reached = r != 0
        if kind == "nan":
            assert np.isnan(bad[reached]).all(), f"{name}: a NaN upstream gradient vanished from input {k}"
        else:
            assert not np.isfinite(bad[reached]).any(), f"{name}: an infinite upstream gradient vanished from input {k}"
        assert _same(bad[~reached], other[~reached]), f"{name}: a {kind} upstream gradient leaked into input {k}"


def test_max_pool_keeps_a_nan_wherever_it_is_in_the_window():
    """The issue's example: PyTorch gives NaN first; the old kernels gave [[4, 7], [13, 15]]."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    import minikd.kernels as K

    for backend in K.BACKENDS:
        with K.use_backend(backend):
            for dtype in (np.float32, np.float64):
                y = F.max_pool2d(mk.tensor(x.astype(dtype)), 2).numpy()[0, 0]
                np.testing.assert_array_equal(y, [[np.nan, 7.0], [13.0, 15.0]])
                y = F.max_pool2d(mk.tensor(x.astype(dtype)), 3, stride=1, padding=1).numpy()[0, 0]
                assert np.isnan(y[:3, :3]).all() and y[3, 3] == 15.0


def test_soft_cross_entropy_with_masked_classes_is_finite():
    """z_s = [[1.2, −inf, 0.3]], target softmax([[0.7, −inf, 1.1]]): 0 · log 0 = 0 gives 0.87997
    (PyTorch's value), not NaN; the same through kd_loss with soft targets."""
    z_s = mk.tensor([[1.2, -np.inf, 0.3]], requires_grad=True)
    target = F.softmax(mk.tensor([[0.7, -np.inf, 1.1]]))
    t = target.numpy()[0]
    want = -(t[0] * (1.2 - np.logaddexp(1.2, 0.3)) + t[2] * (0.3 - np.logaddexp(1.2, 0.3)))
    loss = F.cross_entropy(z_s, target)
    assert loss.item() == pytest.approx(0.87997, abs=1e-5) and loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert np.isfinite(z_s.grad).all() and z_s.grad[0, 1] == 0.0
    total = kd.kd_loss(z_s, mk.tensor([[0.7, -np.inf, 1.1]]), target, T=2.0, lam=0.5)
    assert np.isfinite(total.item())


def test_gradcheck_fails_on_a_non_finite_finite_difference_naming_the_index():
    x = mk.tensor(np.array([0.5, -1.0]), requires_grad=True)
    with np.errstate(all="ignore"), pytest.raises(mk.GradcheckError, match=r"output index \(1,\)"):
        mk.gradcheck(lambda t: t.log(), x)
    x = mk.tensor(np.array([0.5, 1e-7, 2.0]), requires_grad=True)   # log is NaN at 1e-7 − eps
    with np.errstate(all="ignore"), pytest.raises(mk.GradcheckError, match=r"finite difference is nan .* index \(1,\)"):
        mk.gradcheck(lambda t: t.log(), x)


def test_a_pruned_weight_is_zero_even_when_it_holds_inf_or_nan():
    layer = _pruned(nn.Linear(4, 3))
    layer.weight.data[0, 1] = np.inf
    layer.weight.data[2, 3] = np.nan
    x = mk.tensor(np.ones((2, 4), dtype=np.float32))
    y = layer(x)
    assert np.isfinite(y.numpy()).all()          # a product with the mask would give NaN
    y.backward(mk.tensor(np.full((2, 3), np.inf, dtype=np.float32)))
    assert layer.weight.grad[0, 1] == 0.0 and layer.weight.grad[2, 3] == 0.0


def test_the_straight_through_estimator_zeroes_an_infinite_gradient_outside_the_range():
    from minikd.quant import fake_quantize

    x = mk.tensor(np.array([0.1, 100.0, -np.inf]), requires_grad=True)
    y = fake_quantize(x, 4, 0.25, 0)
    np.testing.assert_array_equal(y.numpy(), [0.0, 1.75, -2.0])   # saturates at s·(2^{b−1} − 1) and s·(−2^{b−1})
    y.backward(mk.tensor(np.array([np.inf, np.inf, 1.0])))
    np.testing.assert_array_equal(x.grad, [np.inf, 0.0, 0.0])
