"""Autograd mechanics: the graph, backward order, accumulation, no_grad, detach, errors."""

import numpy as np
import pytest

import minikd as mk


def test_backward_of_a_small_expression_matches_the_hand_derivative():
    # L = (a·b + a)²  →  dL/da = 2(ab + a)(b + 1),  dL/db = 2(ab + a)·a
    a = mk.tensor(3.0, requires_grad=True)
    b = mk.tensor(-2.0, requires_grad=True)
    loss = (a * b + a) ** 2
    loss.backward()
    inner = 3.0 * -2.0 + 3.0
    assert loss.item() == pytest.approx(inner ** 2)
    assert a.grad == pytest.approx(2 * inner * (-2.0 + 1))
    assert b.grad == pytest.approx(2 * inner * 3.0)


def test_a_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    y = x * x + x  # x reaches y by three paths
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.array([1.0, 2.0]) + 1)


def test_diamond_graph_visits_each_node_once():
    x = mk.tensor(2.0, requires_grad=True)
    h = x * 3
    y = h * h + h  # h shared by two branches
    y.backward()
    # dy/dx = (2h + 1)·3 with h = 6
    assert x.grad == pytest.approx((2 * 6 + 1) * 3)


def test_leaf_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = mk.tensor([1.0, -1.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])
    x.zero_grad()
    assert x.grad is None


def test_a_ten_thousand_op_chain_does_not_hit_the_recursion_limit():
    x = mk.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 10_000, rel=1e-3)


def test_no_grad_records_no_graph():
    x = mk.tensor([1.0], requires_grad=True)
    with mk.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    assert mk.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach() * x  # only the right factor carries a gradient
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_constants_get_no_gradient_and_keep_float32():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    c = mk.tensor([3.0, 4.0])
    y = (x * c + 1.5) / 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [1.5, 2.0])


def test_numpy_arrays_mix_with_tensors_on_either_side():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([2.0, 3.0], dtype=np.float32) * x
    assert isinstance(y, mk.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 3.0])


def test_comparisons_return_constant_boolean_tensors():
    x = mk.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.numpy(), [False, True, True])
    assert (x == x).numpy().all()


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2,\)"):
        (x * 2).backward()
    y = x * 2
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_backward_with_a_wrongly_shaped_gradient_is_refused():
    y = mk.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"grad has shape \(3,\)"):
        y.backward(np.ones(3))


def test_backward_without_requires_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        mk.tensor([1.0]).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mk.tensor([1, 2], requires_grad=True)


def test_dtypes_python_floats_become_float32_numpy_float64_stays():
    assert mk.tensor([1.0]).dtype == np.float32
    assert mk.tensor(np.array([1.0])).dtype == np.float64
    assert mk.tensor([1, 2]).dtype.kind == "i"
    assert mk.zeros(2, 3).shape == (2, 3) and mk.ones((2,)).dtype == np.float32


def test_seeded_random_tensors_repeat():
    mk.manual_seed(7)
    a = mk.randn(3, 2).numpy()
    mk.manual_seed(7)
    b = mk.randn(3, 2).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_tensor_copies_its_input():
    a = np.zeros(3)
    t = mk.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0


def test_repr_and_item_and_numpy_interop():
    t = mk.tensor([[1.0, 2.0]], requires_grad=True)
    assert "requires_grad=True" in repr(t) and "float32" in repr(t)
    assert np.asarray(t).shape == (1, 2)
    assert t.sum().item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_to_cpu_is_identity_and_unknown_device_is_refused():
    t = mk.tensor([1.0])
    assert t.to("cpu") is t
    with pytest.raises(ValueError, match="unknown device"):
        t.to("tpu")


def test_an_op_returning_a_wrong_gradient_shape_is_named():
    from minikd.function import Function

    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy[:1]

    x = mk.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(1,\)"):
        Broken.apply(x).sum().backward()
