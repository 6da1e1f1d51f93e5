"""The gradient checker itself: it passes right gradients and catches wrong ones."""

import numpy as np
import pytest

import minikd as mk
from minikd.function import Function


class WrongSquare(Function):
    """y = x², with a backward that is off by a factor 1.01 — a subtle bug."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * 2.02 * self.x


class ForgetsOneElement(Function):
    """y = 3x, whose backward drops the gradient of the last element."""

    def forward(self, x):
        return 3 * x

    def backward(self, gy):
        g = 3 * gy
        g.reshape(-1)[-1] = 0
        return g


def x64(*shape, seed=0):
    return mk.tensor(np.random.default_rng(seed).uniform(0.5, 1.5, shape), requires_grad=True)


def test_right_gradients_pass_in_both_modes():
    x = x64(3, 4)
    assert mk.gradcheck(lambda t: (t * t).exp().sum(axis=1), x)
    assert mk.gradcheck(lambda t: (t * t).exp().sum(axis=1), x, mode="random")


def test_a_wrong_gradient_is_caught_and_reported():
    x = x64(2, 3)
    with pytest.raises(mk.GradcheckError) as info:
        mk.gradcheck(WrongSquare.apply, x)
    msg = str(info.value)
    assert "input 0 (shape (2, 3))" in msg and "autograd" in msg and "finite difference" in msg
    assert "rel error" in msg


def test_a_wrong_gradient_is_caught_by_random_directions():
    with pytest.raises(mk.GradcheckError, match="random direction"):
        mk.gradcheck(WrongSquare.apply, x64(50, 40), mode="random")


def test_the_worst_index_is_named():
    x = x64(2, 3)
    with pytest.raises(mk.GradcheckError, match=r"at index \(1, 2\)"):
        mk.gradcheck(ForgetsOneElement.apply, x)


def test_random_subset_mode_for_large_inputs_still_checks():
    x = x64(100, 100)
    assert mk.gradcheck(lambda t: (t * 2).tanh(), x, max_elements=20)


def test_the_callers_tensors_are_left_untouched():
    x = x64(3)
    before = x.numpy().copy()
    mk.gradcheck(lambda t: t.exp(), x)
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None


def test_float32_inputs_are_refused_with_advice():
    x = mk.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="need float64"):
        mk.gradcheck(lambda t: t * 2, x)


def test_nothing_to_check_is_an_error():
    with pytest.raises(ValueError, match=r"no input is a Tensor with requires_grad=True.*mk\.tensor\(array, "
                                         r"requires_grad=True\)"):
        mk.gradcheck(lambda t: t * 2, mk.tensor(np.ones(2)))
    # a bare array is named as such (it once read as if the array lacked requires_grad)
    with pytest.raises(ValueError, match=r"input\(s\) \[1\] are arrays, not Tensors"):
        mk.gradcheck(lambda a, b: a * b, 2.0, np.ones(3))


def test_only_inputs_that_require_grad_are_checked():
    x, c = x64(3), mk.tensor(np.ones(3))
    assert mk.gradcheck(lambda a, b: a * b, x, c)
