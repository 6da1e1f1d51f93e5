"""Data-free knowledge distillation (issue 14): L_DFKD, DAFL's generator losses, DeepInversion's
BatchNorm statistics and image priors, activation maximisation with priors, and the input checks.

Each loss: gradient-checked in float64 and compared with a direct NumPy computation written
from the paper's formula (not from the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import kd, nn
from tests.util import np_ce, np_kl, np_softmax


def leaf(a):
    return mk.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


batches = st.tuples(st.integers(1, 5), st.integers(2, 6), st.integers(0, 2**16))   # N, C, seed

# --------------------------------------------------------------------------- L_DFKD


@given(case=batches, T=st.sampled_from([1.0, 2.0, 4.0]))
def test_dfkd_loss_is_t_squared_kl_of_the_teachers_soft_labels(case, T):
    n, c, seed = case
    rng = np.random.default_rng(seed)
    z_s, z_t = rng.normal(0, 2, (n, c)), rng.normal(0, 2, (n, c))
    expected = T * T * np_kl(np_softmax(z_t, T), np_softmax(z_s, T))
    assert kd.dfkd_loss(mk.tensor(z_s), mk.tensor(z_t), T=T).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert mk.gradcheck(lambda s: kd.dfkd_loss(s, z_t, T=T), leaf(z_s))


def test_dfkd_loss_leaves_the_teacher_untouched_and_checks_its_arguments():
    z_s, z_t = leaf([[1.0, 2.0, 0.5]]), leaf([[0.0, 3.0, 1.0]])
    kd.dfkd_loss(z_s, z_t, T=3.0).backward()
    assert z_t.grad is None and np.abs(z_s.grad).sum() > 0
    with pytest.raises(ValueError, match="dfkd_loss: the temperature"):
        kd.dfkd_loss(z_s, z_t, T=0.0)
    with pytest.raises(ValueError, match="dfkd_loss: .*same shape"):
        kd.dfkd_loss(z_s, [[1.0, 2.0]])


# --------------------------------------------------------------------------- DAFL (Chen et al., ICCV 2019)


def np_dafl(z, f, convention):
    """The paper's equations, and the authors' code's normalisation (mean over features, log10)."""
    n = len(z)
    l_oh = np_ce(z, z.argmax(axis=1))
    l1 = np.abs(f.reshape(n, -1)).sum(axis=1)
    p_bar = np_softmax(z).mean(axis=0)
    if convention == "paper":
        return l_oh, -l1.mean(), (p_bar * np.log(p_bar)).sum()
    return l_oh, -l1.mean() / f.reshape(n, -1).shape[1], (p_bar * np.log10(p_bar)).sum()


@given(case=batches, d=st.integers(1, 6), convention=st.sampled_from(["code", "paper"]))
def test_dafl_losses_match_the_papers_equations(case, d, convention):
    n, c, seed = case
    rng = np.random.default_rng(seed)
    z, f = rng.normal(0, 2, (n, c)), rng.normal(0, 1, (n, d))
    got = kd.dafl_losses(mk.tensor(z), mk.tensor(f), convention=convention)
    for g, e in zip(got, np_dafl(z, f, convention)):
        assert g.item() == pytest.approx(e, rel=1e-10, abs=1e-12)
    f = np.where(np.abs(f) < 1e-3, 0.5, f)                       # |f| has a kink at 0
    z = z + np.arange(c) * 1e-2                                   # no tie for the arg-max
    for k in range(3):
        assert mk.gradcheck(lambda a, b, k=k: kd.dafl_losses(a, b, convention=convention)[k], leaf(z), leaf(f))


def test_dafl_activation_loss_on_feature_maps_sums_or_averages_over_every_feature():
    f = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2) - 5     # (N, C, H, W)
    z = np.zeros((2, 4))
    _, l_a_paper, _ = kd.dafl_losses(z, f, convention="paper")
    _, l_a_code, _ = kd.dafl_losses(z, f, convention="code")
    assert l_a_paper.item() == pytest.approx(-np.abs(f).sum() / 2)
    assert l_a_code.item() == pytest.approx(-np.abs(f).mean())


def test_dafl_information_entropy_is_smallest_when_the_classes_are_balanced():
    C = 10
    balanced = np.eye(C) * 20.0                       # one confident sample per class: p̄ ≈ uniform
    collapsed = np.tile(np.eye(C)[0] * 20.0, (C, 1))  # every sample says class 0
    ie = {name: kd.dafl_losses(z, np.ones((C, 3)), convention="paper")[2].item()
          for name, z in (("balanced", balanced), ("collapsed", collapsed))}
    assert ie["balanced"] == pytest.approx(-math.log(C), abs=1e-6)
    assert ie["collapsed"] == pytest.approx(0.0, abs=1e-6)
    # a class whose probability underflows to exactly 0 counts 0 · log 0 = 0, with a finite gradient
    z = leaf([[800.0, 0.0], [800.0, 0.0]])
    kd.dafl_losses(z, np.ones((2, 1)))[2].backward()
    assert np.isfinite(z.grad).all()


def test_dafl_generator_loss_uses_the_papers_mnist_weights_by_default():
    rng = np.random.default_rng(1)
    z, f = rng.normal(size=(4, 10)), rng.normal(size=(4, 8))
    l_oh, l_a, l_ie = np_dafl(z, f, "code")
    assert kd.dafl_generator_loss(z, f).item() == pytest.approx(l_oh + 0.1 * l_a + 5.0 * l_ie, rel=1e-10)
    assert kd.dafl_generator_loss(z, f, alpha=0, beta=0).item() == pytest.approx(l_oh, rel=1e-10)
    with pytest.raises(ValueError, match="alpha"):
        kd.dafl_generator_loss(z, f, alpha=-1)
    with pytest.raises(ValueError, match="convention"):
        kd.dafl_losses(z, f, convention="torch")
    with pytest.raises(ValueError, match="same N"):
        kd.dafl_losses(z, f[:3])


# --------------------------------------------------------------------------- image priors


def np_tv(x, p):
    dv, dh = x[:, :, 1:, :] - x[:, :, :-1, :], x[:, :, :, 1:] - x[:, :, :, :-1]
    return (np.abs(dv) ** p).mean() + (np.abs(dh) ** p).mean()


images = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(2, 5), st.integers(2, 5), st.integers(0, 2**16))


@given(case=images, p=st.sampled_from([1, 2]))
def test_total_variation_is_the_mean_neighbour_difference(case, p):
    n, c, h, w, seed = case
    x = np.random.default_rng(seed).normal(size=(n, c, h, w))
    assert kd.total_variation(mk.tensor(x), p=p).item() == pytest.approx(np_tv(x, p), rel=1e-10)
    assert mk.gradcheck(lambda t: kd.total_variation(t, p=p), leaf(x))


def test_total_variation_of_a_flat_image_is_zero_and_of_stripes_is_known():
    assert kd.total_variation(np.full((1, 1, 4, 4), 0.3)).item() == 0.0
    stripes = np.zeros((1, 1, 2, 4))
    stripes[..., 1::2] = 1.0                    # 0 1 0 1: every horizontal step is 1, vertical 0
    assert kd.total_variation(stripes, p=1).item() == pytest.approx(1.0)
    assert kd.total_variation(np.ones((1, 1, 1, 3)) * [[[[0.0, 2.0, 2.0]]]]).item() == pytest.approx(2.0)  # H = 1
    with pytest.raises(ValueError, match="p must be one of"):
        kd.total_variation(stripes, p=3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        kd.total_variation(np.zeros((4, 4)))


def test_l2_prior_is_the_mean_square():
    x = np.random.default_rng(2).normal(size=(2, 1, 3, 3))
    assert kd.l2_prior(mk.tensor(x)).item() == pytest.approx((x ** 2).mean(), rel=1e-12)
    assert mk.gradcheck(kd.l2_prior, leaf(x))


@given(case=images, shift=st.integers(-7, 7), axis=st.integers(0, 3))
def test_roll_is_numpys_roll_and_rolls_the_gradient_back(case, shift, axis):
    n, c, h, w, seed = case
    x = np.random.default_rng(seed).normal(size=(n, c, h, w))
    np.testing.assert_array_equal(kd.roll(mk.tensor(x), shift, axis).numpy(), np.roll(x, shift, axis))
    weights = np.random.default_rng(seed + 1).normal(size=x.shape)
    assert mk.gradcheck(lambda t: (kd.roll(t, shift, axis) * weights).sum(), leaf(x))


def test_random_shift_rolls_by_the_generators_draw_and_passes_the_gradient_to_x():
    x = leaf(np.random.default_rng(3).normal(size=(2, 1, 6, 6)))
    di, dj = np.random.default_rng(7).integers(-2, 3, size=2)
    y = kd.random_shift(x, 2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(y.numpy(), np.roll(x.numpy(), (di, dj), axis=(2, 3)))
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.numpy())
    assert kd.random_shift(x, 0) is x
    with pytest.raises(ValueError, match="max_shift"):
        kd.random_shift(x, -1)
    # different draws give different shifts (seeded: repeatable)
    rng = np.random.default_rng(0)
    shifted = {kd.random_shift(x, 3, rng=rng).numpy().tobytes() for _ in range(10)}
    assert len(shifted) > 1


class FixedDraws:
    """A stand-in for numpy's Generator whose ``uniform`` returns the given values in turn, after
    checking that it was asked for the range given with them: ``FixedDraws((low, high, values), ...)``."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def uniform(self, low, high, size):
        want_low, want_high, values = self.draws.pop(0)
        assert (low, high) == pytest.approx((want_low, want_high))
        return np.broadcast_to(np.asarray(values, dtype=np.float64), size)


def np_affine(x, theta_deg, s, fill):
    """The reference, pixel by pixel: output (i, j) reads the input at q_i = c_i + (cos θ·di − sin θ·dj)/s,
    q_j = c_j + (sin θ·di + cos θ·dj)/s (di = i − c_i, dj = j − c_j), bilinearly, ``fill`` outside the image."""
    n, c, h, w = x.shape
    out = np.empty_like(x)
    ci, cj = (h - 1) / 2, (w - 1) / 2
    for k in range(n):
        t = math.radians(theta_deg[k])
        for i in range(h):
            for j in range(w):
                qi = (math.cos(t) * (i - ci) - math.sin(t) * (j - cj)) / s[k] + ci
                qj = (math.sin(t) * (i - ci) + math.cos(t) * (j - cj)) / s[k] + cj
                i0, j0 = math.floor(qi), math.floor(qj)
                value = np.zeros(c)
                for a, b in ((i0, j0), (i0 + 1, j0), (i0, j0 + 1), (i0 + 1, j0 + 1)):
                    weight = (1 - abs(qi - a)) * (1 - abs(qj - b))
                    value += weight * (x[k, :, a, b] if 0 <= a < h and 0 <= b < w else fill)
                out[k, :, i, j] = value
    return out


@given(case=st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(3, 7), st.integers(3, 7),
                      st.integers(0, 2**16)),
       fill=st.sampled_from([0.0, -0.4242]))
def test_random_affine_matches_a_pixel_by_pixel_bilinear_warp_and_passes_the_gradient(case, fill):
    n, c, h, w, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w))
    theta, s = rng.uniform(-30, 30, n), rng.uniform(0.8, 1.2, n)
    draws = ((-30, 30, theta), (0.8, 1.2, s))
    y = kd.random_affine(mk.tensor(x), 30, 0.2, fill=fill, rng=FixedDraws(*draws))
    np.testing.assert_allclose(y.numpy(), np_affine(x, theta, s, fill), rtol=1e-10, atol=1e-12)
    weights = rng.normal(size=x.shape)
    assert mk.gradcheck(lambda t: (kd.random_affine(t, 30, 0.2, fill=fill, rng=FixedDraws(*draws)) * weights)
                        .sum(), leaf(x))


def test_random_affine_known_warps_and_bad_arguments():
    x = np.arange(2 * 25, dtype=np.float64).reshape(2, 1, 5, 5)
    same = kd.random_affine(mk.tensor(x), 10, 0.1, rng=FixedDraws((-10, 10, 0.0), (0.9, 1.1, 1.0))).numpy()
    np.testing.assert_allclose(same, x, atol=1e-12)                       # θ = 0, s = 1: the identity
    turned = kd.random_affine(mk.tensor(x), 90, rng=FixedDraws((-90, 90, 90.0), (1, 1, 1.0))).numpy()
    np.testing.assert_allclose(turned, np.rot90(x, k=-1, axes=(2, 3)), atol=1e-9)   # a quarter turn, exactly
    small = kd.random_affine(mk.tensor(np.ones((1, 1, 9, 9))), 0, 0.5, fill=-1.0,
                             rng=FixedDraws((0, 0, 0.0), (0.5, 1.5, 0.5))).numpy()
    assert small[0, 0, 4, 4] == pytest.approx(1.0) and small[0, 0, 0, 0] == pytest.approx(-1.0)  # shrunk: fill shows
    t = mk.tensor(x)
    assert kd.random_affine(t, 0, 0.0) is t
    for kwargs, match in (({"degrees": -1}, "degrees"), ({"degrees": 181}, "degrees"),
                          ({"degrees": 5, "scale": 1.0}, "scale"), ({"degrees": 5, "fill": math.nan}, "fill")):
        with pytest.raises(ValueError, match=f"random_affine: {match}"):
            kd.random_affine(t, **kwargs)
    with pytest.raises(ValueError, match="random_affine: expected images"):
        kd.random_affine(mk.tensor(np.ones((3, 5, 5))), 5)


# --------------------------------------------------------------------------- DeepInversion: BatchNorm statistics


def bn_teacher():
    mk.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 5 * 5, 4), nn.BatchNorm1d(4))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean = np.random.default_rng(len(m.running_mean)).normal(size=m.num_features)
            m.running_var = np.random.default_rng(9).uniform(0.5, 2.0, size=m.num_features)
            m.weight.data = np.random.default_rng(4).uniform(0.5, 1.5, size=m.num_features)
    return model.eval()


def bn_inputs(model, x):
    """The input array of every BatchNorm layer, in order, seen by a plain test hook."""
    seen = []
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    handles = [m.register_forward_hook(lambda mod, args, out: seen.append(np.array(args[0].numpy()))) for m in bns]
    with mk.no_grad():
        model(mk.tensor(x))
    for h in handles:
        h.remove()
    return bns, seen


def np_bn_loss(model, x):
    """R_feature = Σ_l ‖μ_l − μ_run‖₂ + ‖σ²_l − σ²_run‖₂, biased σ², per channel (axis 1)."""
    total = 0.0
    for m, a in zip(*bn_inputs(model, x)):
        axes = (0,) + tuple(range(2, a.ndim))
        total += np.linalg.norm(a.mean(axis=axes) - m.running_mean) + np.linalg.norm(a.var(axis=axes) - m.running_var)
    return total


def test_bn_statistics_loss_is_deepinversions_formula_and_reaches_the_input_image():
    model = bn_teacher()
    x = leaf(np.random.default_rng(5).normal(size=(4, 1, 5, 5)))
    with kd.BNStatistics(model) as bn:
        model(x)
        loss = bn.loss()
        assert loss.item() == pytest.approx(np_bn_loss(model, x.numpy()), rel=1e-10)
        loss.backward()
        assert x.grad is not None and np.isfinite(x.grad).all() and np.abs(x.grad).sum() > 0
        assert mk.gradcheck(lambda t: (model(t), bn.loss())[1], leaf(x.numpy()))
        assert bn.loss(first_weight=10.0).item() > loss.item()
    assert all(not m._forward_hooks for m in model.modules())        # removed on leaving the block


def test_bn_statistics_loss_vanishes_on_the_data_the_running_statistics_came_from():
    model = bn_teacher()
    x = np.random.default_rng(6).normal(1.0, 2.0, size=(8, 1, 5, 5))
    # the teacher "trained on" x: each layer's running stats := the statistics of its input on x,
    # set in order (a layer's input depends on the layers before it)
    bns, _ = bn_inputs(model, x)
    for i, m in enumerate(bns):
        a = bn_inputs(model, x)[1][i]
        axes = (0,) + tuple(range(2, a.ndim))
        m.running_mean, m.running_var = a.mean(axis=axes), a.var(axis=axes)
    bn = kd.BNStatistics(model)
    model(mk.tensor(x))
    assert bn.loss().item() < 1e-5
    model(mk.tensor(np.random.default_rng(7).normal(size=x.shape)))     # other data: other statistics
    assert bn.loss().item() > 0.1
    bn.remove()
    assert all(not m._forward_hooks for m in model.modules())


def test_bn_statistics_refuses_a_teacher_without_batchnorm_or_in_training_mode():
    with pytest.raises(ValueError, match="needs a teacher with BatchNorm after its convolutions.*TeacherModel"):
        kd.BNStatistics(mk.models.TeacherModel())
    model = bn_teacher()
    with pytest.raises(ValueError, match="training mode"):
        kd.BNStatistics(model.train())
    bn = kd.BNStatistics(model.eval())
    with pytest.raises(ValueError, match="forward pass"):
        bn.loss()
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        model(mk.tensor(np.zeros((2, 1, 5, 5))))
    bn.remove()


def test_freeze_teacher_stops_the_gradient_at_the_input():
    model = kd.freeze_teacher(bn_teacher().train())
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = leaf(np.random.default_rng(8).normal(size=(2, 1, 5, 5)))
    model(x).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------- activation maximisation with priors


@given(batches)
def test_activation_maximisation_loss_is_the_cross_entropy_to_the_targets(case):
    n, c, seed = case
    rng = np.random.default_rng(seed)
    z, y = rng.normal(0, 2, (n, c)), rng.integers(0, c, n)
    assert kd.activation_maximisation_loss(mk.tensor(z), y).item() == pytest.approx(np_ce(z, y), rel=1e-10)
    assert mk.gradcheck(lambda t: kd.activation_maximisation_loss(t, y), leaf(z))


def test_activation_maximisation_loss_checks_the_labels():
    z = np.zeros((2, 10))
    with pytest.raises(ValueError, match=r"0\.\.9.*got label 10 at index 1"):
        kd.activation_maximisation_loss(z, [3, 10])
    with pytest.raises(ValueError, match="integers"):
        kd.activation_maximisation_loss(z, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="2 labels for 3"):
        kd.activation_maximisation_loss(np.zeros((3, 10)), [1, 2])


def np_js(p, q):
    """JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, batch mean: from the definition."""
    m = (p + q) / 2
    return 0.5 * np_kl(p, m) + 0.5 * np_kl(q, m)


@given(batches)
def test_js_divergence_and_the_competition_loss_match_the_definition_and_pass_the_gradient(case):
    n, c, seed = case
    rng = np.random.default_rng(seed)
    z_t, z_s = rng.normal(0, 2, (n, c)), rng.normal(0, 2, (n, c))
    expected = np_js(np_softmax(z_t), np_softmax(z_s))
    assert kd.js_divergence(mk.tensor(z_t), mk.tensor(z_s)).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert kd.js_divergence(z_s, z_t).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)     # symmetric
    assert kd.competition_loss(z_t, z_s).item() == pytest.approx(1 - expected, rel=1e-12)
    assert mk.gradcheck(kd.competition_loss, leaf(z_t), leaf(z_s))      # the gradient reaches both sides


def test_js_divergence_is_zero_for_agreement_near_ln2_for_certain_disagreement_and_finite_at_extremes():
    z = np.array([[1.0, -2.0, 0.5]])
    assert kd.js_divergence(z, z).item() == pytest.approx(0.0, abs=1e-12)
    assert kd.js_divergence([[1000.0, -1000.0]], [[-1000.0, 1000.0]]).item() == pytest.approx(math.log(2))
    assert kd.js_divergence([3.0, 0.0], [0.0, 3.0]).item() == pytest.approx(              # one sample (C,)
        np_js(np_softmax(np.array([[3.0, 0.0]])), np_softmax(np.array([[0.0, 3.0]]))))
    t, s = leaf([[1000.0, -1000.0]]), leaf([[-1000.0, 1000.0]])
    kd.competition_loss(t, s).backward()        # saturated softmaxes: a finite (zero) gradient, not NaN
    assert np.isfinite(t.grad).all() and np.isfinite(s.grad).all()
    with pytest.raises(ValueError, match=r"competition_loss: .*same shape.*\(2, 3\) and \(2, 4\)"):
        kd.competition_loss(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="js_divergence"):
        kd.js_divergence(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)))
    for empty in ((0, 3), (2, 0)):      # no sample, no class: an error naming the function, not a NaN
        with pytest.raises(ValueError, match=r"js_divergence: needs at least one sample and one class"):
            kd.js_divergence(np.zeros(empty), np.zeros(empty))


def np_diversity(f):
    f = f.reshape(len(f), -1)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    cos = f @ f.T
    n = len(f)
    return (cos.sum() - np.trace(cos)) / (n * (n - 1))


@given(st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**16)))
def test_diversity_loss_is_the_mean_off_diagonal_cosine(case):
    n, d, seed = case
    f = np.random.default_rng(seed).normal(size=(n, d)) + 0.1
    assert kd.diversity_loss(mk.tensor(f)).item() == pytest.approx(np_diversity(f), rel=1e-9, abs=1e-12)
    assert mk.gradcheck(kd.diversity_loss, leaf(f))


def test_diversity_loss_is_one_for_a_collapsed_batch_and_low_for_a_spread_one():
    assert kd.diversity_loss(np.tile([[1.0, 2.0, 3.0]], (4, 1))).item() == pytest.approx(1.0)
    assert kd.diversity_loss(np.array([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(-1.0)
    assert kd.diversity_loss(np.eye(3).reshape(3, 1, 3, 1)).item() == pytest.approx(0.0)   # (N, C, H, W)
    with pytest.raises(ValueError, match="at least 2"):
        kd.diversity_loss(np.ones((1, 3)))


# --------------------------------------------------------------------------- the input checks


def test_check_generator_output_names_the_expected_and_the_got_shape():
    good = np.zeros((3, 1, 28, 28), dtype=np.float32)
    assert kd.check_generator_output(good) is good
    assert kd.check_generator_output(mk.tensor(good), n=3) is not None
    with pytest.raises(ValueError, match=r"expected|must be N×1×28×28; got shape \(3, 28, 28\)"):
        kd.check_generator_output(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match=r"N×1×28×28; got shape \(3, 3, 28, 28\)"):
        kd.check_generator_output(np.zeros((3, 3, 28, 28)))
    with pytest.raises(ValueError, match=r"5×1×28×28; got shape \(3, 1, 28, 28\)"):
        kd.check_generator_output(good, n=5)
    with pytest.raises(ValueError, match=r"N×1×32×32; got shape \(3, 1, 28, 28\)"):
        kd.check_generator_output(good, size=32)


def test_check_class_labels_refuses_out_of_range_and_non_integer_labels():
    np.testing.assert_array_equal(kd.check_class_labels([0, 9, 4]), [0, 9, 4])
    assert kd.check_class_labels(mk.tensor(np.array([1, 2]))).dtype == np.int64
    with pytest.raises(ValueError, match=r"0\.\.9 \(num_classes = 10\); got label -1 at index 0"):
        kd.check_class_labels([-1, 3])
    with pytest.raises(ValueError, match=r"0\.\.4.*got label 5"):
        kd.check_class_labels([5], num_classes=5)
    with pytest.raises(ValueError, match="integers.*float64"):
        kd.check_class_labels(np.array([1.0]))
    with pytest.raises(ValueError, match="integers.*bool"):
        kd.check_class_labels(np.array([True]))
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        kd.check_class_labels(np.zeros((2, 2), dtype=np.int64))
