"""nn.Module (registration, state, hooks, modes, repr), the layers, and initialisation."""

import math
from collections import OrderedDict

import numpy as np
import pytest

import minikd as mk
from minikd import functional as F
from minikd import nn
from minikd.nn import init


def requires_op(fn, *args, name):
    """Skip when a functional op is still a placeholder (written in parallel by someone else)."""
    try:
        fn(*args)
    except NotImplementedError:
        pytest.skip(f"{name} not yet available")


def requires_conv2d():
    requires_op(F.conv2d, mk.ones(1, 1, 3, 3), mk.ones(1, 1, 2, 2), name="conv2d")


def requires_pooling():
    requires_op(F.max_pool2d, mk.ones(1, 1, 2, 2), 2, name="max_pool2d")
    requires_op(F.avg_pool2d, mk.ones(1, 1, 2, 2), 2, name="avg_pool2d")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(3, 2)
        self.register_buffer("steps", np.zeros(1, dtype=np.int64))
        self.not_registered = 5

    def forward(self, x):
        return self.head(F.relu(self.block(x)))


# --------------------------------------------------------------------------- registration


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(p, mk.Tensor) and p.requires_grad and p.shape == (2, 3)
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_named_parameters_buffers_and_modules():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
        "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "steps", "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked"]  # PyTorch's three
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    assert len(list(net.modules())) == 5
    assert net.block.fc.weight is dict(net.named_parameters())["block.fc.weight"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert net.not_registered == 5
    assert net.num_parameters() == 3 + (4 * 3 + 3) + 3 + 3 + (3 * 2 + 2)


def test_shared_parameters_are_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert seq.num_parameters() == 12


def test_reassigning_and_deleting_attributes():
    m = Block()
    m.fc = nn.Identity()  # a module replaces a module
    assert "fc.weight" not in dict(m.named_parameters())
    m.scale = None
    assert m.scale is None and "scale" not in dict(m.named_parameters())
    with pytest.raises(TypeError, match="nn.Parameter"):
        m.scale = np.ones(3)
    del m.bn
    assert not hasattr(m, "bn")
    m.bn_stats = mk.zeros(2)  # a plain Tensor attribute is not a buffer
    assert "bn_stats" not in m.state_dict()


def test_buffer_reassignment_keeps_it_a_buffer():
    bn = nn.BatchNorm1d(2)
    bn.running_mean = np.array([1.0, 2.0], dtype=np.float32)
    assert isinstance(bn.running_mean, mk.Tensor)
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [1.0, 2.0])


def test_forgetting_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Bad()


# --------------------------------------------------------------------------- state dicts


def test_state_dict_holds_numpy_copies_of_parameters_and_buffers():
    net = Net()
    state = net.state_dict()
    assert isinstance(state, OrderedDict)
    # PyTorch's order: each module's parameters, then its buffers, then its children
    assert list(state) == ["steps", "block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight",
                           "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
                           "block.bn.num_batches_tracked", "head.weight", "head.bias"]
    assert all(isinstance(a, np.ndarray) for a in state.values())
    state["head.bias"][:] = 123.0  # a copy: the model does not change
    assert not np.any(net.head.bias.numpy() == 123.0)


def test_load_state_dict_round_trip_keeps_parameter_identity():
    mk.manual_seed(0)
    a = Net()
    mk.manual_seed(1)
    b = Net()
    weight = b.head.weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.head.weight is weight  # loaded in place: an optimizer holding it still works
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    # Tensors are accepted as values too
    b.load_state_dict({k: mk.tensor(v) for k, v in a.state_dict().items()})


def test_load_state_dict_lists_every_problem_at_once():
    net = Net()
    state = net.state_dict()
    del state["head.bias"]
    state["extra.weight"] = np.zeros(2)
    state["block.fc.weight"] = np.zeros((5, 4), dtype=np.float32)
    with pytest.raises(ValueError) as err:
        net.load_state_dict(state)
    msg = str(err.value)
    assert "missing keys: head.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "block.fc.weight: checkpoint has shape (5, 4), the model has (3, 4)" in msg


def test_load_state_dict_non_strict_reports_keys_but_still_checks_shapes():
    net = Net()
    state = net.state_dict()
    del state["head.bias"]
    state["extra"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    state["head.weight"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match=r"head.weight: checkpoint has shape \(1, 1\), the model has \(2, 3\)"):
        net.load_state_dict(state, strict=False)


# --------------------------------------------------------------------------- hooks, modes, repr, devices


def test_forward_hooks_fire_replace_output_and_remove():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs, out.shape)))
    x = mk.ones(3, 2)
    lin(x)
    assert seen == [(lin, (x,), (3, 2))]
    h2 = lin.register_forward_hook(lambda m, inputs, out: out * 0)
    assert np.all(lin(x).numpy() == 0)
    h2.remove()
    assert not np.all(lin(x).numpy() == 0)
    h1.remove()
    lin(x)
    assert len(seen) == 3  # called for the three forward passes before removal only
    h1.remove()  # removing twice is harmless


def test_hook_sees_activations_inside_a_sequential():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    activations = {}
    model[1].register_forward_hook(lambda m, i, o: activations.setdefault("relu", o.numpy()))
    model(mk.randn(5, 4))
    assert activations["relu"].shape == (5, 3) and np.all(activations["relu"] >= 0)


def test_train_and_eval_propagate_to_every_module():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_and_batch_norm_layers_follow_the_mode():
    mk.manual_seed(0)
    drop = nn.Dropout(0.5)
    x = mk.ones(20, 20)
    assert np.any(drop(x).numpy() == 0)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())

    bn = nn.BatchNorm1d(3, momentum=0.5)
    data = mk.randn(16, 3) * 2 + 3
    bn(data)  # training: updates the running statistics
    rm = bn.running_mean.numpy().copy()
    assert np.all(rm > 0.5)
    bn.eval()
    y = bn(data).numpy()
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)  # unchanged in eval
    expected = (data.numpy() - rm) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Sequential(nn.Dropout(0.2), nn.Linear(128, 10)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=128, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.2)\n"
        "    (1): Linear(in_features=128, out_features=10, bias=True)\n"
        "  )\n"
        ")")
    assert repr(nn.Conv2d(1, 32, 3)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(2, 4, 5, stride=2, padding=1, groups=2, bias=False)) == \
        "Conv2d(2, 4, kernel_size=(5, 5), stride=(2, 2), padding=(1, 1), groups=2, bias=False)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True)"
    assert repr(nn.Flatten()) == "Flatten(start_axis=1)"


def test_to_cpu_keeps_parameter_identity_and_zero_grad_clears():
    net = Net()
    params = list(net.parameters())
    assert net.to("cpu") is net
    assert all(a is b for a, b in zip(params, net.parameters()))
    net(mk.randn(4, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.gpu
def test_to_cuda_moves_parameters_and_buffers_in_place():
    net = Net()
    weight = net.head.weight
    opt = mk.optim.SGD(net.parameters(), lr=0.1)
    net.to("cuda")
    assert net.head.weight is weight and weight.device == "cuda:0"
    assert all(b.device == "cuda:0" for b in net.buffers())
    net(mk.randn(4, 4, device="cuda")).sum().backward()
    opt.step()
    assert net.to("cpu").head.weight.device == "cpu"


# --------------------------------------------------------------------------- initialisation


def test_linear_default_init_is_pytorch_uniform_with_fan_in():
    mk.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # it uses the whole range
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # std of U(−a, a) is a/√3
    assert abs(w.mean()) < 0.01 * bound


def test_conv_default_init_uses_fan_in_of_d_prev_k_k_over_groups():
    mk.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, groups=2)
    fan_in = 8 * 3 * 3 // 2
    assert init.calculate_fan_in_and_fan_out(conv.weight) == (fan_in, 16 * 3 * 3)
    bound = 1 / math.sqrt(fan_in)
    w = conv.weight.numpy()
    assert w.shape == (16, 4, 3, 3)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(conv.bias.numpy()).max() <= bound


def test_init_is_repeatable_with_a_seed():
    mk.manual_seed(7)
    a = nn.Linear(5, 5).weight.numpy()
    mk.manual_seed(7)
    b = nn.Linear(5, 5).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_other_initialisers():
    mk.manual_seed(0)
    w = nn.Parameter(np.empty((200, 300), dtype=np.float32))
    init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 200)) < 0.02 * math.sqrt(2 / 200)
    init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.99 * bound
    init.xavier_normal_(w)
    assert abs(w.numpy().std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    init.uniform_(w, 2, 3)
    assert w.numpy().min() >= 2 and w.numpy().max() <= 3
    init.normal_(w, 5, 0.1)
    assert abs(w.numpy().mean() - 5) < 0.01
    init.zeros_(w)
    assert not w.numpy().any()
    init.ones_(w)
    assert np.all(w.numpy() == 1)
    assert w.dtype == np.float32
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_uniform_(nn.Parameter(np.zeros(3, dtype=np.float32)))


# --------------------------------------------------------------------------- layers


def test_linear_forward_matches_numpy_and_checks_input():
    lin = nn.Linear(4, 3)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = lin(mk.tensor(x)).numpy()
    np.testing.assert_allclose(y, x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-5, atol=1e-6)
    assert nn.Linear(4, 3, bias=False).bias is None
    assert nn.Linear(784, 128).num_parameters() == (784 + 1) * 128
    with pytest.raises(ValueError, match=r"^Linear\(784→128\) expects \(\.\.\., 784\); got \(8, 100\)$"):
        nn.Linear(784, 128)(mk.zeros(8, 100))


def test_conv2d_parameters_and_input_errors():
    assert nn.Conv2d(1, 32, 3).num_parameters() == 32 * 3 * 3 * 1 + 32
    assert nn.Conv2d(4, 8, 3, groups=2).num_parameters() == 8 * 3 * 3 * 4 // 2 + 8
    assert nn.Conv2d(4, 8, 3, bias=False).num_parameters() == 8 * 3 * 3 * 4
    with pytest.raises(ValueError, match=r"^Conv2d\(1→32, k=3\) expects \(N, 1, H, W\); got \(8, 3, 28, 28\)$"):
        nn.Conv2d(1, 32, 3)(mk.zeros(8, 3, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d\(1→32, k=3\) expects \(N, 1, H, W\); got \(28, 28\)"):
        nn.Conv2d(1, 32, 3)(mk.zeros(28, 28))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        nn.Conv2d(1, 2, 5)(mk.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)


def test_conv2d_forward_matches_a_direct_convolution():
    requires_conv2d()
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    y = conv(mk.tensor(x)).numpy()
    w, b = conv.weight.numpy().astype(np.float64), conv.bias.numpy().astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    H_out, W_out = (7 + 2 - 3) // 2 + 1, (6 + 2 - 3) // 2 + 1
    expected = np.zeros((2, 3, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            expected[:, :, i, j] = np.einsum("nchw,dchw->nd", window, w) + b
    assert y.shape == (2, 3, H_out, W_out)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_pooling_layers():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2\) expects \(N, C, H, W\); got \(4, 4\)"):
        nn.MaxPool2d(2)(mk.zeros(4, 4))
    with pytest.raises(ValueError, match=r"AvgPool2d\(kernel_size=2\) expects"):
        nn.AvgPool2d(2)(mk.zeros(1, 4, 4))
    assert nn.MaxPool2d(3).stride == 3 and nn.MaxPool2d(3, stride=1).stride == 1
    requires_pooling()
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(mk.tensor(x)).numpy(), [[[[5, 7], [13, 15]]]])
    np.testing.assert_allclose(nn.AvgPool2d(2)(mk.tensor(x)).numpy(), [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_batch_norm_layers_check_input_and_count_parameters():
    bn1, bn2 = nn.BatchNorm1d(64), nn.BatchNorm2d(16)
    assert bn1.num_parameters() == 128 and len(list(bn1.buffers())) == 3  # μ, σ², and the count k
    assert nn.BatchNorm1d(4, affine=False).num_parameters() == 0
    with pytest.raises(ValueError, match=r"^BatchNorm1d\(64\) expects \(N, 64\) or \(N, 64, L\); got \(8, 32\)$"):
        bn1(mk.zeros(8, 32))
    with pytest.raises(ValueError, match=r"^BatchNorm2d\(16\) expects \(N, 16, H, W\); got \(8, 3, 28, 28\)$"):
        bn2(mk.zeros(8, 3, 28, 28))
    with pytest.raises(ValueError, match=r"^BatchNorm2d\(16\) expects \(N, 16, H, W\); got \(8, 16\)$"):
        bn2(mk.zeros(8, 16))
    y = bn2(mk.randn(4, 16, 3, 3) * 3 + 1).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)


def test_activation_and_shape_layers():
    x = mk.tensor(np.array([[-2.0, 0.5]], dtype=np.float32))
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), [[0, 0.5]])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).numpy(), [[-0.2, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp([[2.0, -0.5]])), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh([[-2.0, 0.5]]), rtol=1e-6)
    assert nn.Identity()(x) is x
    assert nn.Flatten()(mk.zeros(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(start_axis=2)(mk.zeros(2, 3, 4, 5)).shape == (2, 3, 20)
    with pytest.raises(ValueError, match="Flatten"):
        nn.Flatten()(mk.zeros(3))
    with pytest.raises(ValueError, match=r"Dropout: p .* \[0, 1\)"):
        nn.Dropout(1.0)


def test_sequential_is_indexable_sliceable_and_iterable():
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2]
    assert seq(mk.randn(5, 4)).shape == (5, 2)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    seq.append(nn.Identity())
    assert len(seq) == 4


def test_a_small_mlp_learns_with_backward_and_sgd():
    mk.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)  # XOR-like: needs the hidden layer
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid())
    opt = mk.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = mk.tensor(x), mk.tensor(y)

    def loss_fn():
        d = model(xt) - yt
        return (d * d).mean()

    first = loss_fn().item()
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.25 * first


def test_a_small_cnn_runs_forward_and_backward():
    requires_conv2d()
    requires_pooling()
    mk.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    out = model(mk.randn(2, 1, 8, 8))
    assert out.shape == (2, 3)
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_deepcopy_gives_an_independent_model():
    import copy

    teacher = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    student = copy.deepcopy(teacher)
    assert [n for n, _ in student.named_parameters()] == [n for n, _ in teacher.named_parameters()]
    assert student[0].weight is not teacher[0].weight
    student[0].weight.data[...] = 0
    assert np.any(teacher[0].weight.numpy() != 0)
