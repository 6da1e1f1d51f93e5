"""nn.utils.max_norm_: the max-norm weight constraint, against a direct NumPy computation, on
every shape a layer's weight takes, on the stand-in device, and its bad arguments."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minikd as mk
from minikd import nn
from minikd.nn.utils import max_norm_
from tests import standin


def reference(w: np.ndarray, c: float) -> np.ndarray:
    """Each row (unit) of w, flattened, scaled to norm c if its norm exceeds c: a loop, the plain maths."""
    out = w.copy()
    for j in range(w.shape[0]):
        norm = np.sqrt(np.sum(w[j].astype(np.float64) ** 2))
        if norm > c:
            out[j] = w[j] * (c / norm)
    return out


def test_a_row_outside_the_ball_gets_length_c_and_keeps_its_direction_a_row_inside_is_untouched():
    layer = nn.Linear(4, 3)
    layer.weight.data[...] = [[3, 4, 0, 0], [0.1, -0.2, 0, 0], [0, 0, 0, 0]]
    inside = layer.weight.data[1:].copy()
    assert max_norm_(layer.weight, 1.0) is layer.weight
    np.testing.assert_allclose(layer.weight.data[0], [0.6, 0.8, 0, 0], rtol=1e-6)  # (3, 4)/5
    np.testing.assert_array_equal(layer.weight.data[1:], inside)  # bit for bit, the zero row too
    max_norm_(layer.weight, 10.0)  # every row inside a larger ball: nothing moves
    np.testing.assert_allclose(layer.weight.data[0], [0.6, 0.8, 0, 0], rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), c=st.floats(0.05, 5.0),
       scale=st.floats(0.1, 10.0), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_max_norm_matches_the_plain_loop_for_every_weight_shape(shape, c, scale, seed, dtype):
    w = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    t = mk.tensor(w.copy())
    max_norm_(t, c)
    np.testing.assert_allclose(t.data, reference(w, c), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
    assert t.data.dtype == dtype and t.data.shape == tuple(shape)
    norms = np.sqrt((t.data.astype(np.float64) ** 2).reshape(shape[0], -1).sum(axis=1))
    assert (norms <= c * (1 + 1e-5)).all()


def test_a_conv_weight_is_constrained_filter_by_filter():
    conv = nn.Conv2d(2, 3, 3)
    conv.weight.data *= 50  # every filter far outside the ball
    before = conv.weight.data.copy()
    max_norm_(conv.weight, 0.5)
    norms = np.sqrt((conv.weight.data ** 2).reshape(3, -1).sum(axis=1))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-5)
    np.testing.assert_allclose(conv.weight.data, reference(before, 0.5), rtol=1e-5)


def test_it_changes_the_parameters_own_array_and_counts_as_an_in_place_change():
    layer = nn.Linear(3, 2)
    layer.weight.data *= 100
    array, version = layer.weight.data, layer.weight._version
    max_norm_(layer.weight, 1.0)
    assert layer.weight.data is array  # in place: an optimizer holding the array sees the change
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, rtol=1e-6)
    assert layer.weight._version == version + 1
    assert layer.weight.grad is None and layer.weight.requires_grad  # outside autograd: no graph, no gradient


def test_a_graph_recorded_before_the_constraint_refuses_to_backpropagate_through_the_old_weights():
    layer = nn.Linear(3, 2)
    layer.weight.data *= 100
    out = layer(mk.ones(4, 3)).sum()  # the product remembers the weight it used
    max_norm_(layer.weight, 1.0)
    with pytest.raises(RuntimeError, match="was changed in place after the forward pass"):
        out.backward()
    layer(mk.ones(4, 3)).sum().backward()  # a new forward pass after the constraint trains as usual
    assert layer.weight.grad.shape == (2, 3)


def test_a_diverged_row_is_not_hidden():
    t = mk.tensor(np.array([[np.nan, 1.0], [np.inf, 1.0], [3.0, 4.0]], dtype=np.float32))
    with np.errstate(invalid="ignore"):
        max_norm_(t, 1.0)
    assert np.isnan(t.data[0, 0]) and t.data[0, 1] == 1.0  # a nan row is left as it is
    assert np.isnan(t.data[1, 0]) and t.data[1, 1] == 0.0  # an inf row: inf·0 = nan, the rest 0
    np.testing.assert_allclose(t.data[2], [0.6, 0.8], rtol=1e-6)


def test_on_a_device_it_uses_the_arrays_namespace_and_never_waits_for_it(device):
    layer = nn.Linear(5, 4)
    layer.weight.data *= 20
    expected = reference(layer.weight.data.copy(), 1.5)
    layer.to(device)
    syncs = standin.HOST_SYNCS["count"]
    max_norm_(layer.weight, 1.5)
    if device == "standin":  # called after every step: it must not make the host wait for the device
        assert standin.HOST_SYNCS["count"] == syncs, standin.HOST_SYNCS["where"][syncs:]
    np.testing.assert_allclose(mk.backend.to_numpy(layer.weight.data), expected, rtol=1e-5)


@pytest.mark.parametrize("c, message", [(0.0, "max_norm_: the radius c must be > 0; got 0.0"),
                                        (-1.0, "max_norm_: the radius c must be > 0; got -1.0"),
                                        (float("nan"), "max_norm_: the radius c must be a finite number; got nan"),
                                        (float("inf"), "max_norm_: the radius c must be a finite number; got inf")])
def test_a_bad_radius_is_a_value_error_naming_it(c, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        max_norm_(nn.Linear(2, 2).weight, c)


def test_a_bias_an_integer_weight_or_an_array_is_refused():
    with pytest.raises(ValueError, match=r"max_norm_: weight must have at least 2 dimensions, .*got shape \(2,\)"):
        max_norm_(nn.Linear(3, 2).bias, 1.0)
    with pytest.raises(TypeError, match="max_norm_: weight must be a Tensor .*got ndarray"):
        max_norm_(np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError, match="max_norm_: weight must be floating point; got dtype int64"):
        max_norm_(mk.tensor(np.full((2, 2), 5, dtype=np.int64)), 1.0)
    with pytest.raises(TypeError, match="max_norm_: the radius c must be a number"):
        max_norm_(nn.Linear(2, 2).weight, "1")
