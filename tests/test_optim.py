"""Optimizers and LR schedules against hand-written NumPy versions of PyTorch's formulas."""

import math

import numpy as np
import pytest

import minikd as mk
from minikd import nn, optim

STEPS = 6


def random_grads(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]


def reference_sgd(theta, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
    """torch.optim.SGD's update, written out in float64."""
    theta, buf = theta.astype(np.float64), None
    for g in grads:
        g = g.astype(np.float64)
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr * g
    return theta


def reference_adam(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """torch.optim.Adam's update (bias-corrected), written out in float64."""
    beta1, beta2 = betas
    theta = theta.astype(np.float64)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if weight_decay:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def run(opt_cls, theta0, grads, **kwargs):
    p = nn.Parameter(theta0.copy())
    opt = opt_cls([p], **kwargs)
    for g in grads:
        opt.zero_grad()
        p.grad = g.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, g)  # the optimizer never changes the gradient itself
    return p.numpy()


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_pytorch_formula(kwargs):
    theta0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    grads = random_grads((3, 4), STEPS)
    got = run(optim.SGD, theta0, grads, **kwargs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference_sgd(theta0, grads, **kwargs), rtol=1e-5, atol=1e-6)


ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=1e-3, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=5e-3, weight_decay=0.1),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_adam_matches_pytorch_formula(kwargs):
    theta0 = np.random.default_rng(2).standard_normal((5,)).astype(np.float32)
    grads = random_grads((5,), STEPS, seed=3)
    got = run(optim.Adam, theta0, grads, **kwargs)
    np.testing.assert_allclose(got, reference_adam(theta0, grads, **kwargs), rtol=1e-5, atol=1e-6)


def test_adam_first_step_moves_each_weight_by_about_lr():
    # bias correction: at t = 1, m̂ = g and v̂ = g², so the step is lr · g/|g| = ±lr
    p = nn.Parameter(np.zeros(4, dtype=np.float32))
    p.grad = np.array([1e-4, -3.0, 50.0, -0.2], dtype=np.float32)
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.numpy(), [-0.01, 0.01, -0.01, 0.01], rtol=1e-3)


@pytest.mark.parametrize("opt_cls", [optim.SGD, optim.Adam])
def test_parameters_without_gradient_are_skipped(opt_cls):
    a, b = nn.Parameter(np.ones(2, dtype=np.float32)), nn.Parameter(np.ones(2, dtype=np.float32))
    opt = opt_cls([a, b], lr=0.1, **({"momentum": 0.9} if opt_cls is optim.SGD else {}))
    a.grad = np.ones(2, dtype=np.float32)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [1, 1])
    assert opt.state[1] is None and not np.all(a.numpy() == 1)


def test_optimizer_argument_errors():
    p = nn.Parameter(np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([p], lr=-1e-3)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)


def test_zero_grad_clears_every_gradient():
    ps = [nn.Parameter(np.zeros(2, dtype=np.float32)) for _ in range(3)]
    for p in ps:
        p.grad = np.ones(2, dtype=np.float32)
    optim.Adam(ps).zero_grad()
    assert all(p.grad is None for p in ps)


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.1),
], ids=["sgd", "nesterov", "adam"])
def test_optimizers_minimize_a_quadratic(make_opt):
    # f(θ) = ½ Σ a_i (θ_i − c_i)², minimum at θ = c
    a = mk.tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32))
    c = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    theta = nn.Parameter(np.zeros(3, dtype=np.float32))
    opt = make_opt([theta])
    for _ in range(200):
        opt.zero_grad()
        d = theta - mk.tensor(c)
        (0.5 * (a * d * d).sum()).backward()
        opt.step()
    np.testing.assert_allclose(theta.numpy(), c, atol=1e-2)


# --------------------------------------------------------------------------- schedules


def test_step_lr_follows_its_closed_form():
    opt = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.5)
    sched = optim.StepLR(opt, step_size=3, gamma=0.1)
    assert sched.get_last_lr() == [0.5]
    for epoch in range(1, 10):
        sched.step()
        expected = 0.5 * 0.1 ** (epoch // 3)
        assert sched.get_last_lr() == [pytest.approx(expected)]
        assert opt.lr == pytest.approx(expected)


def test_cosine_annealing_follows_its_closed_form():
    opt = optim.Adam([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=8, eta_min=0.001)
    for epoch in range(1, 13):
        sched.step()
        expected = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * epoch / 8)) / 2
        assert opt.lr == pytest.approx(expected)
    assert sched.last_epoch == 12


def test_scheduler_argument_errors():
    opt = optim.SGD([nn.Parameter(np.zeros(1, dtype=np.float32))], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(TypeError, match="Optimizer"):
        optim.StepLR("not an optimizer", step_size=1)


@pytest.mark.gpu
@pytest.mark.parametrize("opt_cls,kwargs", [(optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
                                            (optim.Adam, dict(lr=1e-2, weight_decay=0.01))])
def test_optimizers_on_gpu_match_the_reference(opt_cls, kwargs):
    import cupy

    theta0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    grads = random_grads((3, 4), STEPS)
    p = nn.Parameter(mk.tensor(theta0, device="cuda"))
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = cupy.asarray(g)
        opt.step()
    ref = reference_sgd if opt_cls is optim.SGD else reference_adam
    np.testing.assert_allclose(p.numpy(), ref(theta0, grads, **kwargs), rtol=1e-5, atol=1e-6)
