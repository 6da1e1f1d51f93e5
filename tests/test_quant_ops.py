"""The lecture's quantization operator: its two exercises with exact values, the round trip
within s/2 (hypothesis), the straight-through estimator, and the range observers."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import quant
from minikd.quant import (
    FakeQuantize,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    clip,
    dequantize,
    fake_quantize,
    qparams,
    quantize,
    transform,
)

# ---------------------------------------------------------------------------------------------
# The lecture's exercises, each step checked on its own


def test_symmetric_exercise_4_bits_alpha_1_beta_minus_1():
    """4-bit symmetric, α = 1.0, β = −1.0, x = [−1.0, −0.5, 0.0, 0.5, 1.0]."""
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    s, z = qparams(1.0, -1.0, 4, symmetric=True)
    assert s == 2 / 15  # (α − β)/(2^b − 1) = 2/15
    assert z == 0  # symmetric: z = 0
    # the formula for z agrees: round(−1·15/2 + 8) = round(0.5) = 0 (half to even)
    assert qparams(1.0, -1.0, 4, symmetric=False) == (2 / 15, 0)

    # x/s = [−7.5, −3.75, 0, 3.75, 7.5]; half to even: −7.5 → −8 and 7.5 → 8
    t = transform(x, s, z)
    np.testing.assert_array_equal(t, [-8, -4, 0, 4, 8])  # the slide's answer: T before clipping

    np.testing.assert_array_equal(clip(t, -8, 7), [-8, -4, 0, 4, 7])  # 4 bits: [−2^3, 2^3 − 1] = [−8, 7]
    q = quantize(x, 4, s, z)
    np.testing.assert_array_equal(q, [-8, -4, 0, 4, 7])  # Q(x, 4): the slide's 8 for 1.0 becomes 7
    assert q.dtype == np.int8

    np.testing.assert_allclose(dequantize(q, s, z), np.array([-8, -4, 0, 4, 7]) * 2 / 15)


def test_asymmetric_exercise_4_bits_range_minus_half_to_one_and_a_half():
    """4-bit asymmetric on [−0.5, 0.0, 0.5, 1.0] with the range [−0.5, 1.5]: α = 1.5 (top), β = −0.5."""
    x = np.array([-0.5, 0.0, 0.5, 1.0])
    s, z = qparams(1.5, -0.5, 4)
    assert s == 2 / 15  # (1.5 − (−0.5))/15
    assert z == 4  # round(−0.5 · 15/2 + 8) = round(4.25) = 4

    # x/s − z = [−3.75 − 4, 0 − 4, 3.75 − 4, 7.5 − 4] = [−7.75, −4, −0.25, 3.5]
    t = transform(x, s, z)
    np.testing.assert_array_equal(t, [-8, -4, 0, 4])  # −0.25 → −0, 3.5 → 4 (half to even)
    np.testing.assert_array_equal(clip(t, -8, 7), [-8, -4, 0, 4])  # all inside: clipping changes nothing
    np.testing.assert_array_equal(quantize(x, 4, s, z), [-8, -4, 0, 4])

    # back: s·(q + z) = 2/15 · [−4, 0, 4, 8]; the real 0 is exactly representable
    np.testing.assert_allclose(dequantize(quantize(x, 4, s, z), s, z), [-8 / 15, 0.0, 8 / 15, 16 / 15])
    assert dequantize(quantize(np.array([0.0]), 4, s, z), s, z)[0] == 0.0


def test_the_slides_literal_naming_of_the_asymmetric_exercise_is_rejected():
    """The slide writes α = −0.5, β = 1.5; in the formula α is the top, so that s would be negative."""
    assert (-0.5 - 1.5) / (2**4 - 1) < 0  # s = −2/15: nonsense as a step size
    with pytest.raises(ValueError, match="alpha must be ≥ beta"):
        qparams(-0.5, 1.5, 4)


def test_rounding_is_half_to_even():
    np.testing.assert_array_equal(transform(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.5]), 1.0, 0),
                                  [0, 2, 2, -0, -2, 4])


def test_float32_inputs_give_the_exercise_values():
    """x/s is computed in float64: in float32, 1.0/(2/15) is 7.4999995 and would round to 7."""
    assert np.float32(1.0) / np.float32(2 / 15) < 7.5
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(transform(x, 2 / 15, 0), [-8, -4, 0, 4, 8])
    np.testing.assert_array_equal(transform(mk.tensor(x), 2 / 15, 0), [-8, -4, 0, 4, 8])  # Tensors too


# ---------------------------------------------------------------------------------------------
# qparams: bit widths, per-channel, degenerate ranges


@pytest.mark.parametrize("b", [0, 1, 17, 32, 2.0, 8.5, True, "8"])
def test_bit_widths_outside_2_to_16_raise(b):
    with pytest.raises(ValueError, match="bit width"):
        qparams(1.0, -1.0, b)
    with pytest.raises(ValueError, match="bit width"):
        quantize(np.zeros(3), b, 1.0, 0)
    with pytest.raises(ValueError, match="bit width"):
        MinMaxObserver(b=b)


@pytest.mark.parametrize("b", range(2, 17))
def test_integer_range_and_dtype_for_every_bit_width(b):
    x = np.array([-1e9, 0.0, 1e9])
    q = quantize(x, b, 1.0, 0)
    assert q.tolist() == [-(2 ** (b - 1)), 0, 2 ** (b - 1) - 1]
    assert q.dtype == (np.int8 if b <= 8 else np.int16)
    assert quant.qrange(b) == (-(2 ** (b - 1)), 2 ** (b - 1) - 1)


def test_per_channel_qparams_are_arrays():
    alpha, beta = np.array([1.0, 3.0, 0.5]), np.array([-1.0, 1.0, -0.25])
    s, z = qparams(alpha, beta, 8)
    np.testing.assert_allclose(s, (alpha - beta) / 255)
    np.testing.assert_array_equal(z, np.round(beta * 255 / (alpha - beta) + 128))
    assert s.dtype == np.float64 and z.dtype == np.int64
    s, z = qparams(alpha, beta, 8, symmetric=True)
    np.testing.assert_allclose(s, 2 * np.array([1.0, 3.0, 0.5]) / 255)  # m = max(|α|, |β|)
    np.testing.assert_array_equal(z, 0)
    with pytest.raises(ValueError, match="alpha must be ≥ beta"):
        qparams(alpha, np.array([-1.0, 4.0, 0.0]), 8)
    with pytest.raises(ValueError, match="finite"):
        qparams(np.array([1.0, np.nan]), np.array([0.0, 0.0]), 8)


@pytest.mark.parametrize("c", [0.0, 3.0, -2.0, 1e-3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_degenerate_range_keeps_s_finite_and_the_constant_exact(c, symmetric):
    s, z = qparams(c, c, 8, symmetric=symmetric)
    assert np.isfinite(s) and s > 0
    x = np.full(4, c)
    x_hat = dequantize(quantize(x, 8, s, z), s, z)
    if symmetric and c != 0:  # not degenerate: the range is [−|c|, |c|], and c is its top end
        assert s == 2 * abs(c) / 255
        assert_within_half_a_step(x, x_hat, s, z)
    else:  # α = β: s = |c| (1 for c = 0) represents the constant exactly
        assert s == (abs(c) or 1.0)
        np.testing.assert_allclose(x_hat, x, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# The round trip: dequantize(quantize(x)) is within s/2 of x inside the range


def assert_within_half_a_step(x, x_hat, s, z):
    # s/2, plus float64 rounding slack (a few thousand ulps of the magnitudes involved)
    tol = s / 2 + 1e-12 * (np.abs(x) + np.abs(s * z) + s * 2**16)
    assert np.all(np.abs(x_hat - x) <= tol), np.max(np.abs(x_hat - x) / s)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def ranges(draw, channels):
    """[β, α] per channel, not narrower than 1e-3 of their magnitude (float64 resolves it)."""
    lows, highs = [], []
    for _ in range(channels):
        a, c = sorted([draw(finite), draw(finite)])
        if c - a < 1e-3 * max(1.0, abs(a), abs(c)):
            c = a + 1e-3 * max(1.0, abs(a), abs(c))
        lows.append(a)
        highs.append(c)
    return np.array(lows), np.array(highs)


@given(data=st.data(), b=st.integers(2, 16), symmetric=st.booleans(), seed=st.integers(0, 2**16))
def test_round_trip_per_tensor_within_half_a_step(data, b, symmetric, seed):
    (beta,), (alpha,) = data.draw(ranges(1))
    rng = np.random.default_rng(seed)
    x = np.concatenate([[beta, alpha, 0.0 if beta <= 0 <= alpha else beta], rng.uniform(beta, alpha, 20)])
    s, z = qparams(alpha, beta, b, symmetric=symmetric)
    assert_within_half_a_step(x, dequantize(quantize(x, b, s, z), s, z), s, z)


@given(data=st.data(), b=st.integers(2, 16), symmetric=st.booleans(), channels=st.integers(1, 4),
       axis=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_round_trip_per_channel_within_half_a_step(data, b, symmetric, channels, axis, seed):
    beta, alpha = data.draw(ranges(channels))
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 1, (channels, 3, 5))
    u[:, 0, 0], u[:, 0, 1] = 0.0, 1.0  # the ends of each channel's range
    x = beta[:, None, None] + u * (alpha - beta)[:, None, None]
    x = np.clip(x, beta[:, None, None], alpha[:, None, None])
    x = np.moveaxis(x, 0, axis)  # channels along `axis`
    s, z = qparams(alpha, beta, b, symmetric=symmetric)
    q = quantize(x, b, s, z, axis=axis)
    assert q.shape == x.shape
    x_hat = dequantize(q, s, z, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = channels
    assert_within_half_a_step(x, x_hat, s.reshape(shape), z.reshape(shape))


def test_per_channel_axis_reshapes_s_and_z():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(transform(x, np.array([1.0, 0.5]), np.array([0, 1]), axis=0),
                                  [[1, 2, 3], [1, 3, 5]])
    np.testing.assert_array_equal(transform(x, np.array([1.0, 0.5, 0.25]), 0, axis=1), [[1, 4, 12], [1, 4, 12]])
    np.testing.assert_array_equal(transform(x, np.array([1.0, 0.5, 0.25]), 0, axis=-1), [[1, 4, 12], [1, 4, 12]])
    with pytest.raises(ValueError, match="one entry per channel"):
        transform(x, np.array([1.0, 0.5, 0.25]), 0, axis=0)


# ---------------------------------------------------------------------------------------------
# fake_quantize and the straight-through estimator


def test_fake_quantize_forward_is_quantize_dequantize():
    x = np.random.default_rng(0).normal(size=(4, 5))
    s, z = qparams(x.max(), x.min(), 4)
    y = fake_quantize(mk.tensor(x), 4, s, z)
    assert isinstance(y, mk.Tensor) and y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), dequantize(quantize(x, 4, s, z), s, z))
    assert fake_quantize(mk.tensor(x.astype(np.float32)), 4, s, z).dtype == np.float32  # x's dtype


def test_ste_gradient_passes_inside_the_clipping_range_and_is_zero_outside():
    # b = 4, s = 0.25, z = 0: the clipping range is −8 ≤ x/s ≤ 7, i.e. −2 ≤ x ≤ 1.75
    x = mk.tensor(np.array([-3.0, -2.0, -1.1, 0.3, 1.75, 1.8, 5.0]), requires_grad=True)
    y = fake_quantize(x, 4, 0.25, 0)
    np.testing.assert_array_equal(y.numpy(), [-2.0, -2.0, -1.0, 0.25, 1.75, 1.75, 1.75])
    gy = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    y.backward(gy)
    # x/s = [−12, −8, −4.4, 1.2, 7, 7.2, 20]: the ends −8 and 7 count as inside; 7.2 rounds to 7
    # (not clipped) but is already outside for the STE, which looks at the un-rounded value
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0])


def test_ste_with_a_zero_point_and_per_channel():
    # channel 0: s = 0.5, z = 2 → inside for −8 ≤ x/0.5 − 2 ≤ 7, −3 ≤ x ≤ 4.5
    # channel 1: s = 0.1, z = 3 → inside for −8 ≤ 10x − 3 ≤ 7, −0.5 ≤ x ≤ 1.0
    x = mk.tensor(np.array([[-3.5, -3.0, 4.5, 4.6], [-0.6, -0.5, 1.0, 1.2]]), requires_grad=True)
    y = fake_quantize(x, 4, np.array([0.5, 0.1]), np.array([2, 3]), axis=0)
    y.backward(np.ones((2, 4)))
    np.testing.assert_array_equal(x.grad, [[0, 1, 1, 0], [0, 1, 1, 0]])
    np.testing.assert_allclose(y.numpy(), [[-3.0, -3.0, 4.5, 4.5], [-0.5, -0.5, 1.0, 1.0]])


def test_ste_is_not_the_true_gradient_of_rounding():
    """The true derivative of round() is 0 almost everywhere (and infinite at the jumps): a
    finite difference of the fake-quant forward at points away from the halves is exactly 0,
    so the true gradient would never move a weight. The STE *pretends* round is the identity
    and passes the gradient (1 per unit of dL/dy) through. It is a useful estimate, not the
    derivative — gradcheck, which compares with finite differences, rejects it."""
    s, z, b = 0.25, 0, 8
    x = np.array([-1.1, -0.3, 0.05, 0.4, 0.9])  # x/s = −4.4, −1.2, 0.2, 1.6, 3.6: far from any half
    h = 1e-6

    def forward(v):
        return fake_quantize(mk.tensor(v), b, s, z).numpy()

    finite_difference = (forward(x + h) - forward(x - h)) / (2 * h)
    np.testing.assert_array_equal(finite_difference, 0.0)  # the true derivative: 0
    np.testing.assert_array_equal((np.round((x + h) / s) - np.round((x - h) / s)) / (2 * h), 0.0)  # of round itself

    t = mk.tensor(x, requires_grad=True)
    fake_quantize(t, b, s, z).sum().backward()
    np.testing.assert_array_equal(t.grad, 1.0)  # the STE: 1

    with pytest.raises(mk.GradcheckError):
        mk.gradcheck(lambda v: fake_quantize(v, b, s, z), mk.tensor(x, requires_grad=True))


def test_fake_quantize_gives_no_gradient_to_s_and_z_and_none_without_grad():
    x = mk.tensor(np.array([0.1, 0.2]))
    assert not fake_quantize(x, 8, 0.01, 0).requires_grad
    assert FakeQuantize.apply(mk.tensor(np.array([0.1]), requires_grad=True), b=8, s=0.01, z=0).requires_grad


# ---------------------------------------------------------------------------------------------
# Observers


def test_min_max_observer_over_batches():
    obs = MinMaxObserver(b=8)
    obs.observe(np.array([0.5, -1.0, 2.0]))
    obs.observe(mk.tensor(np.array([[3.0, 0.0], [-0.5, 1.0]])))
    assert (obs.min_val, obs.max_val, obs.batches) == (-1.0, 3.0, 2)
    assert obs.qparams() == qparams(3.0, -1.0, 8)
    obs.reset()
    assert obs.min_val is None and obs.batches == 0
    with pytest.raises(RuntimeError, match="before any observe"):
        obs.qparams()


def test_observe_returns_its_input():
    x = mk.tensor(np.ones(3))
    assert MinMaxObserver().observe(x) is x


def test_moving_average_observer_formula():
    obs = MovingAverageMinMaxObserver(b=8, momentum=0.25)
    obs.observe(np.array([-1.0, 1.0]))  # the first batch initialises
    assert (obs.min_val, obs.max_val) == (-1.0, 1.0)
    obs.observe(np.array([-5.0, 3.0]))
    assert obs.min_val == pytest.approx(0.75 * -1.0 + 0.25 * -5.0)  # −2.0
    assert obs.max_val == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)  # 1.5
    obs.observe(np.array([0.0, 0.5]))
    assert obs.min_val == pytest.approx(0.75 * -2.0 + 0.25 * 0.0)
    assert obs.max_val == pytest.approx(0.75 * 1.5 + 0.25 * 0.5)
    with pytest.raises(ValueError, match="momentum"):
        MovingAverageMinMaxObserver(momentum=0.0)


def test_per_channel_observers_on_conv_and_linear_weights():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(6, 3, 3, 3))  # (d, d_prev, k, k): one range per filter
    obs = MinMaxObserver(b=4, axis=0)
    obs.observe(mk.tensor(conv))
    np.testing.assert_array_equal(obs.min_val, conv.reshape(6, -1).min(axis=1))
    np.testing.assert_array_equal(obs.max_val, conv.reshape(6, -1).max(axis=1))
    s, z = obs.qparams()
    assert s.shape == z.shape == (6,)
    q = quantize(conv, 4, s, z, axis=0)
    assert q.min() == -8 and q.max() == 7  # every filter uses the whole 4-bit range

    linear = rng.normal(size=(5, 7))  # (out, in): one range per row
    obs = MovingAverageMinMaxObserver(b=8, symmetric=True, axis=0, momentum=0.5)
    obs.observe(linear)
    obs.observe(2 * linear)
    np.testing.assert_allclose(obs.min_val, 1.5 * linear.min(axis=1))
    s, z = obs.qparams()
    np.testing.assert_allclose(s, 2 * np.maximum(np.abs(obs.min_val), np.abs(obs.max_val)) / 255)
    np.testing.assert_array_equal(z, np.zeros(5))
    with pytest.raises(ValueError, match="channels"):
        obs.observe(linear[:3])

    # activations (N, C, H, W): per-channel over axis 1
    obs = MinMaxObserver(axis=1)
    obs.observe(rng.normal(size=(2, 4, 3, 3)))
    assert obs.min_val.shape == (4,)


OBSERVERS = [
    ("MinMaxObserver", lambda: MinMaxObserver(b=8)),
    ("MovingAverageMinMaxObserver", lambda: MovingAverageMinMaxObserver(b=8, momentum=0.5)),
    ("MinMaxObserver", lambda: MinMaxObserver(b=8, axis=0)),
    ("MovingAverageMinMaxObserver", lambda: MovingAverageMinMaxObserver(b=8, axis=0, momentum=0.5)),
]


@pytest.mark.parametrize("name, make", OBSERVERS, ids=["minmax", "moving", "minmax-per-channel",
                                                        "moving-per-channel"])
@pytest.mark.parametrize("bad, what", [(np.nan, "1 NaN"), (np.inf, r"1 \+inf"), (-np.inf, "1 -inf")])
def test_a_non_finite_value_after_a_good_batch_raises_naming_the_observer(name, make, bad, what):
    obs = make()
    good = np.array([[-1.0, 2.0], [0.5, 3.0]])
    obs.observe(good)
    before = (np.copy(obs.min_val), np.copy(obs.max_val), obs.qparams())
    batch = good.copy()
    batch[1, 0] = bad
    channel = r" in channel 1 \(axis 0\)" if obs.axis is not None else ""
    with pytest.raises(ValueError, match=rf"^{name}: observed {what} in batch 2 \(shape \(2, 2\)\){channel}; "
                                         r"a range needs finite values"):
        obs.observe(mk.tensor(batch))
    # nothing was dropped silently and nothing poisoned: the range and the count are as before
    np.testing.assert_array_equal(obs.min_val, before[0])
    np.testing.assert_array_equal(obs.max_val, before[1])
    assert obs.batches == 1
    np.testing.assert_array_equal(obs.qparams()[0], before[2][0])
    assert np.all(np.isfinite(obs.qparams()[0]))


@pytest.mark.parametrize("name, make", OBSERVERS, ids=["minmax", "moving", "minmax-per-channel",
                                                        "moving-per-channel"])
def test_a_non_finite_first_batch_raises_too_and_leaves_no_range(name, make):
    obs = make()
    with pytest.raises(ValueError, match=rf"^{name}: observed 2 NaN, 1 \+inf in batch 1"):
        obs.observe(np.array([[np.nan, np.inf], [np.nan, 1.0]]))
    assert obs.min_val is None and obs.batches == 0
    with pytest.raises(RuntimeError, match="before any observe"):
        obs.qparams()


def test_observer_arguments_and_batches_are_checked():
    with pytest.raises(TypeError, match="MovingAverageMinMaxObserver: momentum must be a number; got True"):
        MovingAverageMinMaxObserver(momentum=True)
    with pytest.raises(ValueError, match=r"MovingAverageMinMaxObserver: momentum must be in \(0, 1\]; got 1.5"):
        MovingAverageMinMaxObserver(momentum=1.5)
    with pytest.raises(TypeError, match="MinMaxObserver: symmetric must be True or False; got 'no'"):
        MinMaxObserver(symmetric="no")
    with pytest.raises(TypeError, match="MinMaxObserver: axis .* must be an int; got '0'"):
        MinMaxObserver(axis="0")
    with pytest.raises(ValueError, match=r"MinMaxObserver: axis 2 is out of range for a tensor with 2 dimensions"):
        MinMaxObserver(axis=2).observe(np.ones((2, 3)))  # used to wrap silently to axis 0
    with pytest.raises(ValueError, match=r"MinMaxObserver: cannot observe an empty tensor \(shape \(0, 3\)\)"):
        MinMaxObserver().observe(np.ones((0, 3)))
    with pytest.raises(TypeError, match="MinMaxObserver: observes real numbers; got an array of dtype <U1"):
        MinMaxObserver().observe(np.array(["a"]))
    with pytest.raises(TypeError, match="observes real numbers; got an array of dtype complex128"):
        MinMaxObserver().observe(np.array([1 + 1j]))
    obs = MinMaxObserver(axis=-1)  # negative axes count from the end
    obs.observe(np.array([[1.0, -2.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(obs.min_val, [1.0, -2.0])
    wide = MinMaxObserver()
    wide.observe(np.array([-1e308, 1e308]))  # finite ends, but α − β overflows
    with pytest.raises(ValueError, match="MinMaxObserver: the observed range .* is too wide: its scale s .* inf"):
        wide.qparams()


@pytest.mark.parametrize("b", range(2, 17))
@pytest.mark.parametrize("symmetric", [False, True])
def test_observers_at_every_bit_width(b, symmetric):
    x = np.random.default_rng(b).normal(size=(3, 10)) + 0.5
    for obs in (MinMaxObserver(b, symmetric), MovingAverageMinMaxObserver(b, symmetric)):
        obs.observe(x)
        s, z = obs.qparams()
        m = max(abs(x.min()), abs(x.max()))
        assert s == pytest.approx(2 * m / (2**b - 1) if symmetric else (x.max() - x.min()) / (2**b - 1))
        assert z == 0 if symmetric else z == round(x.min() * (2**b - 1) / (x.max() - x.min()) + 2 ** (b - 1))
        assert_within_half_a_step(x, dequantize(quantize(x, b, s, z), s, z), s, z)


@pytest.mark.gpu
def test_quantization_on_the_gpu_matches_the_cpu():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3))
    w_gpu = mk.tensor(w, device="cuda")
    obs, obs_gpu = MinMaxObserver(b=4, axis=0), MovingAverageMinMaxObserver(b=4, axis=0)
    obs.observe(w)
    obs_gpu.observe(w_gpu)
    s, z = obs.qparams()
    s_gpu, z_gpu = obs_gpu.qparams()
    assert mk.backend.device_of(s_gpu) == "cuda:0"
    np.testing.assert_array_equal(mk.backend.to_numpy(s_gpu), s)
    q_gpu = quantize(w_gpu, 4, s_gpu, z_gpu, axis=0)
    assert mk.backend.device_of(q_gpu) == "cuda:0" and q_gpu.dtype == np.int8
    np.testing.assert_array_equal(mk.backend.to_numpy(q_gpu), quantize(w, 4, s, z, axis=0))
    np.testing.assert_allclose(mk.backend.to_numpy(dequantize(q_gpu, s_gpu, z_gpu, axis=0)),
                               dequantize(quantize(w, 4, s, z, axis=0), s, z, axis=0))

    x = mk.tensor(w.astype(np.float32), device="cuda", requires_grad=True)
    y = fake_quantize(x, 4, s_gpu, z_gpu, axis=0)
    assert y.device == "cuda:0" and y.dtype == np.float32
    y.sum().backward()
    ref = mk.tensor(w.astype(np.float32), requires_grad=True)
    fake_quantize(ref, 4, s, z, axis=0).sum().backward()
    np.testing.assert_array_equal(y.numpy(), fake_quantize(w.astype(np.float32), 4, s, z, axis=0).numpy())
    np.testing.assert_array_equal(mk.backend.to_numpy(x.grad), ref.grad)
    s1, z1 = qparams(mk.tensor(np.array(1.5), device="cuda"), -0.5, 4)  # 0-d device arrays stay arrays
    assert float(s1) == 2 / 15 and int(z1) == 4


BAD_SCALE = [  # (s, z, what the error names)
    (0.0, 0, "the scaling factor s must be finite and > 0"),
    (-0.1, 0, "the scaling factor s must be finite and > 0"),
    (float("nan"), 0, "the scaling factor s must be finite and > 0"),
    (float("inf"), 0, "the scaling factor s must be finite and > 0"),
    (0.1, 0.5, "the zero-point z must be a whole number"),
    (0.1, float("nan"), "the zero-point z must be a whole number"),
    (np.array([0.1, 0.0, 0.2]), np.array([0, 0, 0]), "the scaling factor s must be finite and > 0"),  # one channel
    (np.array([0.1, 0.1, 0.2]), np.array([0.0, 1.5, 0.0]), "the zero-point z must be a whole number"),
]


@pytest.mark.parametrize("s, z, message", BAD_SCALE, ids=[f"s={s!r},z={z!r}" for s, z, _ in BAD_SCALE])
def test_a_bad_scale_or_zero_point_is_refused_by_every_op_that_takes_them(s, z, message):
    """s = 0 gave nan with only NumPy's warning, s < 0 silently flipped the levels, z = 0.5 put them
    off the integer grid: each op now says which argument is wrong, and what it should be."""
    x = np.array([[0.5, -1.0, 2.0]] * 2, dtype=np.float32)
    axis = 1 if np.ndim(s) else None
    for name, call in (("quantize", lambda: quant.quantize(x, 8, s, z, axis=axis)),
                       ("dequantize", lambda: quant.dequantize(x.astype(np.int8), s, z, axis=axis)),
                       ("fake_quantize", lambda: quant.fake_quantize(mk.tensor(x), 8, s, z, axis=axis)),
                       ("transform", lambda: quant.transform(x, s, z, axis=axis))):
        with pytest.raises(ValueError, match=rf"^{name}: {message}"):
            call()


def test_the_scales_and_zero_points_qparams_makes_pass_the_check():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for symmetric in (False, True):
        s, z = quant.qparams(x.max(0), x.min(0), 4, symmetric=symmetric)
        quant.check_scale(s, z, "test")
        s, z = quant.qparams(float(x.max()), float(x.min()), 4, symmetric=symmetric)
        quant.check_scale(s, z, "test")
        np.testing.assert_allclose(quant.fake_quantize(mk.tensor(x), 4, s, z).numpy(),
                                   quant.dequantize(quant.quantize(x, 4, s, z), s, z), rtol=1e-6)
