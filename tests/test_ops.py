"""Every core op: forward against NumPy, backward against finite differences (float64),
with hypothesis drawing shapes, broadcasts, axes and indices."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minikd as mk
from minikd import ops
from tests.util import away_from_kinks, check_grad, distinct

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@st.composite
def broadcastable_pair(draw):
    """Two shapes that broadcast together (new leading axes and axes of size 1)."""
    shape = draw(shapes)
    other = list(shape[draw(st.integers(0, len(shape) - 1)):])  # drop leading axes
    other = [1 if draw(st.booleans()) else n for n in other]
    if draw(st.booleans()):
        return shape, tuple(other)
    return tuple(other), shape


seeds = st.integers(0, 2**16)

BINARY = {
    "add": (ops.add, np.add),
    "sub": (ops.sub, np.subtract),
    "mul": (ops.mul, np.multiply),
    "div": (ops.div, np.divide),
    "pow": (ops.pow, np.power),
}


@pytest.mark.parametrize("name", BINARY)
@given(pair=broadcastable_pair(), seed=seeds)
def test_binary_ops_broadcast_forward_and_backward(name, pair, seed):
    op, ref = BINARY[name]
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, pair[0])  # positive: pow and div stay smooth
    b = rng.uniform(0.5, 2.0, pair[1])
    out = op(mk.tensor(a.astype(np.float32)), mk.tensor(b.astype(np.float32)))
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-5, atol=1e-6)  # float32 vs float64
    assert check_grad(op, a, b)


UNARY = {
    "neg": (ops.neg, np.negative, (-2, 2)),
    "exp": (ops.exp, np.exp, (-2, 2)),
    "log": (ops.log, np.log, (0.2, 3)),
    "sqrt": (ops.sqrt, np.sqrt, (0.2, 3)),
    "tanh": (ops.tanh, np.tanh, (-3, 3)),
    "sigmoid": (ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-6, 6)),
}


@pytest.mark.parametrize("name", UNARY)
@given(shape=shapes, seed=seeds)
def test_smooth_unary_ops(name, shape, seed):
    op, ref, (lo, hi) = UNARY[name]
    x = np.random.default_rng(seed).uniform(lo, hi, shape)
    np.testing.assert_allclose(op(mk.tensor(x)).numpy(), ref(x), rtol=1e-7)
    assert check_grad(op, x)


KINKED = {
    "relu": (ops.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: ops.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "abs": (ops.abs, np.abs),
    "clip": (lambda t: ops.clip(t, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
}


@pytest.mark.parametrize("name", KINKED)
@given(shape=shapes, seed=seeds)
def test_kinked_ops_away_from_their_kinks(name, shape, seed):
    op, ref = KINKED[name]
    x = away_from_kinks(np.random.default_rng(seed), shape)
    x[np.abs(np.abs(x) - 0.5) < 0.05] = 0.3  # keep clip's corners at ±0.5 out of reach too
    np.testing.assert_allclose(op(mk.tensor(x)).numpy(), ref(x))
    assert check_grad(op, x)


def test_sigmoid_does_not_overflow():
    y = ops.sigmoid(mk.tensor([-1000.0, 0.0, 1000.0])).numpy()
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])
    assert np.isfinite(y).all()


@st.composite
def shape_and_axis(draw):
    shape = draw(shapes)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@given(case=shape_and_axis(), seed=seeds)
def test_reductions_over_any_axes(name, case, seed):
    shape, axis, keepdims = case
    x = distinct(np.random.default_rng(seed), shape)  # no ties for max
    op = getattr(ops, name)
    out = op(mk.tensor(x), axis, keepdims)
    np.testing.assert_allclose(out.numpy(), getattr(np, name)(x, axis=axis, keepdims=keepdims))
    assert check_grad(lambda t: op(t, axis, keepdims), x)


def test_max_splits_the_gradient_between_ties():
    x = mk.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_reduction_axis_out_of_range_is_named():
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimensions"):
        ops.sum(mk.tensor(np.ones((2, 3))), 2)


@given(shape=shapes, seed=seeds)
def test_reshape_flatten_transpose(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    perm = tuple(rng.permutation(len(shape)))
    np.testing.assert_array_equal(ops.transpose(mk.tensor(x), perm).numpy(), x.transpose(perm))
    assert check_grad(lambda t: ops.transpose(t, perm) * mk.tensor(np.arange(x.size).reshape(
        x.transpose(perm).shape)), x)
    assert check_grad(lambda t: ops.reshape(t, -1) * mk.tensor(np.arange(x.size, dtype=float)), x)
    assert ops.flatten(mk.tensor(x), 0).shape == (x.size,)


def test_reshape_to_an_impossible_shape_names_both():
    with pytest.raises(ValueError, match=r"shape \(2, 3\) \(6 elements\) as \(4,\)"):
        mk.tensor(np.ones((2, 3))).reshape(4)


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["mm", "vec_left", "vec_right", "vv", "batched", "broadcast"]))
    b = draw(st.integers(1, 3))
    return {"mm": ((n, k), (k, m)), "vec_left": ((k,), (k, m)), "vec_right": ((n, k), (k,)),
            "vv": ((k,), (k,)), "batched": ((b, n, k), (b, k, m)), "broadcast": ((b, n, k), (k, m))}[kind]


@given(pair=matmul_shapes(), seed=seeds)
def test_matmul_all_operand_kinds(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(pair[0]), rng.standard_normal(pair[1])
    np.testing.assert_allclose((mk.tensor(a) @ mk.tensor(b)).numpy(), a @ b, rtol=1e-12)
    assert check_grad(ops.matmul, a, b)


def test_matmul_of_incompatible_shapes_is_named():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) @ \(4, 5\) are incompatible"):
        mk.tensor(np.ones((2, 3))) @ mk.tensor(np.ones((4, 5)))


@given(seed=seeds, n=st.integers(1, 4), i=st.integers(1, 5), o=st.integers(1, 4), bias=st.booleans())
def test_linear_is_x_w_transpose_plus_b(seed, n, i, o, bias):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal(o)
    ref = x @ w.T + (b if bias else 0)
    args = (x, w, b) if bias else (x, w)
    np.testing.assert_allclose(ops.linear(*map(mk.tensor, args)).numpy(), ref, rtol=1e-12)
    assert check_grad(ops.linear, *args)


def test_linear_forward_equals_direct_loops_in_float32():
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(5, 7), (3, 7), (3,)])
    expected = np.zeros((5, 3))
    for n in range(5):
        for o in range(3):
            expected[n, o] = sum(float(x[n, i]) * float(w[o, i]) for i in range(7)) + float(b[o])
    out = ops.linear(mk.tensor(x), mk.tensor(w), mk.tensor(b))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_linear_feature_mismatch_is_named():
    with pytest.raises(ValueError, match=r"input of shape \(8, 100\) has 100 features.*expects 784"):
        ops.linear(mk.tensor(np.ones((8, 100))), mk.tensor(np.ones((128, 784))))


INDICES = [
    (slice(1, 3),), (0,), (slice(None), [0, 2, 2]), (Ellipsis, 1), (None, 1), ([1, 0, 1], slice(0, 2)),
]


@pytest.mark.parametrize("index", INDICES, ids=str)
def test_getitem_basic_and_integer_array_indexing(index):
    x = np.random.default_rng(0).standard_normal((3, 4))
    index = index[0] if len(index) == 1 else index
    np.testing.assert_array_equal(mk.tensor(x)[index].numpy(), x[index])
    assert check_grad(lambda t: t[index], x)


def test_getitem_repeated_indices_add_their_gradients():
    x = mk.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 1.0])


def test_getitem_with_a_boolean_mask():
    x = np.array([1.0, -2.0, 3.0])
    mask = x > 0
    np.testing.assert_array_equal(mk.tensor(x)[mask].numpy(), [1.0, 3.0])
    assert check_grad(lambda t: t[mask], x)


@given(shape=shapes, seed=seeds, n=st.integers(1, 3))
def test_concatenate_and_stack(shape, seed, n):
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(0, len(shape)))
    parts = []
    for _ in range(n):
        s = list(shape)
        s[axis] = int(rng.integers(1, 4))
        parts.append(rng.standard_normal(s))
    out = mk.concatenate([mk.tensor(p) for p in parts], axis=axis)
    np.testing.assert_array_equal(out.numpy(), np.concatenate(parts, axis=axis))
    assert check_grad(lambda *ts: mk.concatenate(ts, axis=axis), *parts)
    same = [rng.standard_normal(shape) for _ in range(n)]
    np.testing.assert_array_equal(mk.stack([mk.tensor(p) for p in same], axis=-1).numpy(), np.stack(same, -1))
    assert check_grad(lambda *ts: mk.stack(ts, axis=axis), *same)


def test_concatenate_and_stack_shape_errors():
    a, b = mk.tensor(np.ones((2, 3))), mk.tensor(np.ones((3, 2)))
    with pytest.raises(ValueError, match="differ outside that axis"):
        mk.concatenate([a, b], axis=0)
    with pytest.raises(ValueError, match="same shape"):
        mk.stack([a, b])


@given(pair=broadcastable_pair(), seed=seeds)
def test_where_sends_the_gradient_to_the_chosen_side(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(pair[0]), rng.standard_normal(pair[1])
    cond = rng.random(np.broadcast_shapes(a.shape, b.shape)) > 0.5
    np.testing.assert_array_equal(mk.where(cond, mk.tensor(a), mk.tensor(b)).numpy(), np.where(cond, a, b))
    assert check_grad(lambda x, y: mk.where(cond, x, y), a, b)


def test_cast_passes_the_gradient_back_in_the_source_dtype():
    x = mk.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_clip_with_inverted_bounds_is_refused():
    with pytest.raises(ValueError, match="lower bound 1 is above upper bound 0"):
        ops.clip(mk.tensor([0.0]), 1, 0)
