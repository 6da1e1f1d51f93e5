"""Pruning: criteria, scope, structure, masks through training and checkpoints, schedules, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd as mk
from minikd import functional as F
from minikd import nn, optim, prune
from minikd.models import StudentModel, TeacherModel
from minikd.profile import summary


def mlp(sizes=(6, 5, 4, 3), seed=0):
    """Linear layers named "0", "2", "4" (ReLUs between); the last one is the classifier."""
    mk.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def cnn(c1=4, c2=6, hidden=5, seed=0):
    """conv "0" → relu → conv "2" → relu → flatten → fc "5" → relu → fc "7" on 1×6×6 inputs."""
    mk.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(c2 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def weight(layer):
    return layer.weight.numpy().astype(np.float64)


def mask(layer, name="weight"):
    return layer._buffers[name + "_mask"].numpy()


def expected_removed(scores, k):
    """The k lowest scores by a stable NumPy sort (ties to the earlier entry), as a boolean array."""
    removed = np.zeros(scores.size, dtype=bool)
    removed[np.argsort(scores.ravel(), kind="stable")[:k]] = True
    return removed.reshape(scores.shape)


def k_of(amount, n):
    return int(np.floor(amount * n + 0.5))


# --------------------------------------------------------------------------- unstructured

@given(sizes=st.lists(st.integers(1, 9), min_size=3, max_size=4), amount=st.floats(0, 1),
       criterion=st.sampled_from(["l1", "l2"]))
def test_local_unstructured_zeroes_the_expected_count_per_layer_and_the_smallest(sizes, amount, criterion):
    model = mlp(sizes)
    layers = [m for m in model if isinstance(m, nn.Linear)][:-1]
    before = [np.abs(weight(m)) for m in layers]
    prune.prune(model, amount, criterion=criterion, scope="local")
    for m, scores in zip(layers, before):
        removed = expected_removed(scores, k_of(amount, scores.size))
        np.testing.assert_array_equal(mask(m) == 0, removed)
        assert (m.weight.numpy() == 0).sum() >= removed.sum()
        assert np.all(m.weight.numpy()[removed] == 0)
        assert "bias_mask" not in m._buffers  # unstructured: biases are not pruned


@given(sizes=st.lists(st.integers(1, 9), min_size=3, max_size=4), amount=st.floats(0, 1))
def test_global_unstructured_uses_one_threshold_over_all_chosen_layers(sizes, amount):
    model = mlp(sizes)
    layers = [m for m in model if isinstance(m, nn.Linear)][:-1]
    scores = np.concatenate([np.abs(weight(m)).ravel() for m in layers])
    prune.prune(model, amount, scope="global")
    removed = expected_removed(scores, k_of(amount, scores.size))
    got = np.concatenate([(mask(m) == 0).ravel() for m in layers])
    np.testing.assert_array_equal(got, removed)
    assert got.sum() == k_of(amount, scores.size)


def test_ties_are_broken_by_position_deterministically():
    model = mlp((3, 4, 2))
    model[0].weight.data[...] = 0.5
    prune.prune(model, 0.25, layers=["0"])  # 3 of 12 equal weights: the first three
    assert (mask(model[0]) == 0).ravel().tolist() == [True] * 3 + [False] * 9
    model = mlp((3, 4, 2))
    model[0].weight.data[...] = 0.5
    prune.prune(model, 0.5, structure="neuron", layers=["0"])  # 2 of 4 equal neurons: rows 0 and 1
    assert (mask(model[0]).sum(axis=1) == 0).tolist() == [True, True, False, False]


def test_pruning_is_cumulative_and_pruned_weights_stay_pruned():
    model = mlp((10, 10, 2))
    layer = model[0]
    prune.prune(model, 0.5)
    first = mask(layer) == 0
    layer.weight.data[...] = 1.0  # all equal now, so only "already pruned first" decides
    prune.prune(model, 0.8)
    second = mask(layer) == 0
    assert first.sum() == 50 and second.sum() == 80 and np.all(second[first])
    assert np.all(layer.weight.numpy()[second] == 0)
    prune.prune(model, 0.3)  # a lower amount than reached: nothing comes back
    np.testing.assert_array_equal(mask(layer) == 0, second)
    assert prune.sparsity(model).layers["0"].zeros == 80


def test_amount_zero_removes_nothing_and_amount_one_removes_every_weight():
    model = mlp()
    prune.prune(model, 0.0)
    assert prune.sparsity(model).total.zeros == 0
    prune.prune(model, 1.0)
    assert all(np.all(mask(m) == 0) for m in (model[0], model[2]))
    assert "weight_mask" not in model[4]._buffers  # the classifier


# --------------------------------------------------------------------------- structured

@given(c1=st.integers(2, 6), c2=st.integers(2, 6), amount=st.floats(0, 0.99), criterion=st.sampled_from(["l1", "l2"]))
def test_filter_pruning_masks_whole_filters_and_their_bias(c1, c2, amount, criterion):
    model = cnn(c1, c2)
    convs = [model[0], model[2]]
    norms = [np.abs(weight(c)).reshape(len(weight(c)), -1).sum(1) if criterion == "l1"
             else np.sqrt((weight(c) ** 2).reshape(len(weight(c)), -1).sum(1)) for c in convs]
    if any(k_of(amount, len(n)) == len(n) for n in norms):
        with pytest.raises(ValueError, match="would remove all"):
            prune.prune(model, amount, criterion=criterion, structure="filter")
        return
    prune.prune(model, amount, criterion=criterion, structure="filter")
    for conv, n in zip(convs, norms):
        removed = expected_removed(n, k_of(amount, len(n)))
        unit_zero = mask(conv).reshape(len(n), -1).max(axis=1) == 0
        np.testing.assert_array_equal(unit_zero, removed)
        assert np.all(mask(conv)[~removed] == 1)
        np.testing.assert_array_equal(mask(conv, "bias") == 0, removed)
        assert np.all(conv.weight.numpy()[removed] == 0) and np.all(conv.bias.numpy()[removed] == 0)
    assert "weight_mask" not in model[5]._buffers  # 'filter' applies to convs only


@given(amount=st.floats(0, 0.89))  # 0.9 and up would remove all 5 (an error, tested below)
def test_channel_pruning_masks_conv_input_channels_without_touching_the_bias(amount):
    model = cnn(c1=5)
    conv = model[2]
    norms = np.abs(weight(conv)).transpose(1, 0, 2, 3).reshape(5, -1).sum(1)
    prune.prune(model, amount, structure="channel", layers=["2"])
    removed = expected_removed(norms, k_of(amount, 5))
    np.testing.assert_array_equal(mask(conv).transpose(1, 0, 2, 3).reshape(5, -1).max(axis=1) == 0, removed)
    assert np.all(mask(conv)[:, ~removed] == 1) and "bias_mask" not in conv._buffers


def test_neuron_pruning_masks_rows_and_bias_globally_with_one_threshold():
    model = mlp((6, 8, 5, 3))
    a, b = model[0], model[2]
    # the lecture's "L1 mean of neuron weights": a's neurons have 6 weights, b's 8
    norms = np.concatenate([np.abs(weight(a)).mean(1), np.abs(weight(b)).mean(1)])
    prune.prune(model, 0.3, structure="neuron", scope="global")  # b's smaller weights (fan-in 8) go first
    removed = expected_removed(norms, k_of(0.3, 13))
    got = np.concatenate([mask(a).max(1) == 0, mask(b).max(1) == 0])
    np.testing.assert_array_equal(got, removed)
    np.testing.assert_array_equal(np.concatenate([mask(a, "bias"), mask(b, "bias")]) == 0, removed)


def test_global_filter_pruning_compares_filters_of_different_sizes_by_their_mean():
    """A sceptical trial: by the sum of |w|, a conv1 filter of the teacher (9 weights) always scored
    below a conv2 filter (288), so one global threshold took 91 % of conv1 at 0.3 and refused 0.4
    ("would remove all 32 filters of conv1")."""
    mk.manual_seed(0)
    model = TeacherModel()
    prune.prune(model, 0.4, structure="filter", scope="global", layers=["conv1", "conv2"])
    layers = prune.sparsity(model).layers
    assert layers["conv1"].fraction < 0.2 and layers["conv2"].fraction > 0.5


def test_structured_pruning_then_compact_makes_the_teacher_smaller_with_the_same_output():
    model = TeacherModel()
    prune.prune(model, 0.5, structure="filter", layers=["conv1", "conv2"])
    prune.prune(model, 0.5, structure="neuron", layers=["fc1"])
    x = mk.randn(2, 1, 28, 28)
    model.eval()
    expected = model(x).numpy()
    before = summary(model, (1, 28, 28))
    prune.compact(model, (1, 28, 28))
    after = summary(model, (1, 28, 28))
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert after.total_params < before.total_params and after.total_flops < before.total_flops
    assert model.conv1.out_channels == 16 and model.conv2.out_channels == 32 and model.fc1.out_features == 64


# --------------------------------------------------------------------------- masks in training and checkpoints

@pytest.mark.parametrize("make_optimizer", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-2),
], ids=["SGD", "Adam"])
@pytest.mark.parametrize("structure", ["unstructured", "filter"])
def test_pruned_weights_stay_exactly_zero_through_backward_and_optimizer_steps(make_optimizer, structure):
    model = cnn()
    prune.prune(model, 0.5, structure=structure, layers=["0", "2"])
    zeros_before = {n: mask(model[i]) == 0 for n, i in (("0", 0), ("2", 2))}
    opt = make_optimizer(model.parameters())
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = mk.tensor(rng.standard_normal((4, 1, 6, 6)).astype(np.float32))
        loss = F.cross_entropy(model(x), mk.tensor(rng.integers(0, 3, 4)))
        opt.zero_grad()
        loss.backward()
        for n, i in (("0", 0), ("2", 2)):
            assert np.all(model[i].weight.grad[zeros_before[n]] == 0)  # the mask is part of the graph
        opt.step()
    for n, i in (("0", 0), ("2", 2)):
        assert np.all(model[i].weight.numpy()[zeros_before[n]] == 0)
        assert np.any(model[i].weight.numpy()[~zeros_before[n]] != 0)
    if structure == "filter":
        assert np.all(model[0].bias.numpy()[mask(model[0], "bias") == 0] == 0)


def test_masks_round_trip_through_save_and_load_into_a_fresh_model(tmp_path):
    model = cnn()
    prune.prune(model, 0.5, structure="filter", layers=["0"])
    prune.prune(model, 0.6, scope="global")
    path = tmp_path / "pruned.npz"
    mk.save(model.state_dict(), path)
    state = mk.load(path)
    assert {"0.weight_mask", "0.bias_mask", "2.weight_mask", "5.weight_mask"} <= set(state)

    fresh = cnn(seed=1)
    with pytest.raises(ValueError, match="unexpected keys"):
        fresh.load_state_dict(state)  # a plain strict load does not know the masks
    prune.load_pruned(fresh, state)
    for i in (0, 2, 5):
        np.testing.assert_array_equal(mask(fresh[i]), mask(model[i]))
        np.testing.assert_array_equal(fresh[i].weight.numpy(), model[i].weight.numpy())
    np.testing.assert_array_equal(mask(fresh[0], "bias"), mask(model[0], "bias"))
    x = mk.randn(2, 1, 6, 6)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    fresh[2].weight.data[...] = 1.0  # the loaded mask is applied in the forward pass
    assert np.all(fresh[2].masked("weight").numpy()[mask(model[2]) == 0] == 0)
    assert prune.sparsity(fresh).total == prune.sparsity(model).total


def test_remove_masks_bakes_them_into_the_weights_and_drops_the_buffers():
    model = cnn()
    prune.prune(model, 0.5, structure="filter", layers=["0"])
    prune.prune(model, 0.5, layers=["5"])
    x = mk.randn(2, 1, 6, 6)
    expected = model(x).numpy()
    zeros = prune.sparsity(model).total.zeros
    assert prune.remove_masks(model) is model
    assert not [n for n, _ in model.named_buffers() if n.endswith("_mask")]
    np.testing.assert_array_equal(model(x).numpy(), expected)
    assert prune.sparsity(model).total.zeros == zeros


# --------------------------------------------------------------------------- criteria

def test_gradient_criterion_matches_a_hand_computation_on_a_tiny_layer():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    model[0].weight.data[...] = np.array([[1, -2, 0.5], [0, 3, -1]], np.float32)

    def loss_fn(out, y):  # ∂L/∂W[o, i] = Σ_n y[n, o] · x[n, i] for the first layer when out is its output
        return (out * y).sum()

    first = nn.Sequential(model[0])
    batches = [(np.array([[1, 2, 3]], np.float32), np.array([[1, -1]], np.float32)),
               (np.array([[2, 0, -1], [0, 1, 1]], np.float32), np.array([[1, 0], [0, 2]], np.float32)),
               (np.array([[9, 9, 9]], np.float32), np.array([[9, 9]], np.float32))]  # beyond n_batches
    grads = prune.accumulate_gradients(first, batches, loss_fn, n_batches=2)
    # batch 1: g = [[1, 2, 3], [-1, -2, -3]]  → |w·g| = [[1, 4, 1.5], [0, 6, 3]]
    # batch 2: g = [[2, 0, -1], [0, 2, 2]]     → |w·g| = [[2, 0, 0.5], [0, 6, 2]]
    np.testing.assert_allclose(grads["0"], [[3, 4, 2], [0, 12, 5]])
    assert first[0].weight.grad is None  # gradients are cleared

    prune.prune(first, 0.5, criterion="gradient", grads=grads, layers=["0"])
    np.testing.assert_array_equal(mask(first[0]), [[0, 1, 0], [0, 1, 1]])  # scores 0, 2, 3 go

    again = nn.Sequential(nn.Linear(3, 2))
    again[0].weight.data[...] = np.array([[1, -2, 0.5], [0, 3, -1]], np.float32)
    prune.prune(again, 0.5, criterion="gradient", structure="neuron", grads=grads, layers=["0"])
    assert mask(again[0], "bias").tolist() == [0, 1]  # neuron scores 3 + 4 + 2 = 9 < 0 + 12 + 5 = 17


def test_gradient_criterion_on_a_model_from_a_data_loader():
    from minikd.data import DataLoader

    model = cnn()
    rng = np.random.default_rng(0)
    loader = DataLoader(rng.standard_normal((12, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 12), batch_size=4)
    grads = prune.accumulate_gradients(model, loader, F.cross_entropy, n_batches=2)
    assert set(grads) == {"0", "2", "5", "7"} and all(g.shape == model[int(n)].weight.shape for n, g in grads.items())
    prune.prune(model, 0.5, criterion="gradient", scope="global", grads=grads)
    scores = np.concatenate([grads[n].ravel() for n in ("0", "2", "5")])
    got = np.concatenate([(mask(model[int(n)]) == 0).ravel() for n in ("0", "2", "5")])
    np.testing.assert_array_equal(got, expected_removed(scores, k_of(0.5, scores.size)))


@pytest.mark.parametrize("structure", ["unstructured", "neuron"])
def test_random_criterion_is_seeded(structure):
    masks = []
    for seed in (3, 3, 4):
        model = mlp((8, 16, 3))
        prune.prune(model, 0.5, criterion="random", structure=structure, seed=seed)
        masks.append(mask(model[0]))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    assert (masks[0] == 0).sum() == (masks[2] == 0).sum()


def test_a_new_criterion_is_one_function_in_the_registry():
    def largest_first(layer, weight, structure, grads, rng):
        return -np.abs(weight)

    prune.CRITERIA["largest"] = largest_first
    try:
        model = mlp((3, 4, 2))
        w = np.abs(weight(model[0]))
        prune.prune(model, 0.25, criterion="largest")
        np.testing.assert_array_equal(mask(model[0]) == 0, expected_removed(-w, 3))
    finally:
        del prune.CRITERIA["largest"]


# --------------------------------------------------------------------------- choosing layers

def test_the_final_classifier_is_left_alone_unless_named():
    model = TeacherModel()
    assert set(prune.prune(model, 0.5)) == {"conv1", "conv2", "fc1"}
    assert "weight_mask" not in model.fc2._buffers
    assert prune.final_classifier(model) == prune.final_classifier(model, (1, 28, 28)) == "fc2"
    assert set(prune.prune(model, 0.5, layers=nn.Linear)) == {"fc1"}
    assert set(prune.prune(model, 0.5, layers=["fc2", nn.Conv2d])) == {"fc2", "conv1", "conv2"}
    assert set(prune.prune(model, 0.5, structure="neuron")) == {"fc1"}
    assert set(prune.prune(model, 0.5, structure="filter")) == {"conv1", "conv2"}


def test_the_classifier_is_the_last_linear_to_run_when_traced():
    class Reversed(nn.Module):  # registered fc_out first, but it runs last
        def __init__(self):
            super().__init__()
            self.fc_out = nn.Linear(4, 2)
            self.fc_in = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc_out(self.fc_in(x))

    model = Reversed()
    assert prune.final_classifier(model) == "fc_in"
    assert prune.final_classifier(model, (3,)) == "fc_out"
    assert set(prune.prune(model, 0.5, input_shape=(3,))) == {"fc_in"}



def test_layers_may_be_the_modules_themselves_as_in_pytorch():
    model = TeacherModel()
    masks = prune.prune(model, 0.5, layers=[model.conv1, model.fc1])
    assert set(masks) == {"conv1", "fc1"}
    assert "weight_mask" not in model.conv2._buffers and "weight_mask" not in model.fc2._buffers
    assert prune.sparsity(model).layers["fc1"].zeros == k_of(0.5, model.fc1.weight.size)

    by_name = TeacherModel()  # a module selects exactly what its name selects
    same = TeacherModel()
    same.load_state_dict(by_name.state_dict())
    a = prune.prune(by_name, 0.5, structure="filter", layers=["conv2"])
    b = prune.prune(same, 0.5, structure="filter", layers=same.conv2)  # one module, not in a list
    np.testing.assert_array_equal(a["conv2"], b["conv2"])

    # mixed with names and types; the classifier is pruned when given as a module
    mixed = TeacherModel()
    assert set(prune.prune(mixed, 0.5, layers=[mixed.fc2, "conv1", nn.Linear])) == {"conv1", "fc1", "fc2"}
    # a Sequential's layers
    seq = cnn()
    assert set(prune.prune(seq, 0.5, structure="neuron", layers=(seq[5],))) == {"5"}
    # the iterative method passes them through
    model = mlp((10, 20, 3))
    prune.iterative_prune(model, 0.5, 2, lambda m: None, layers=[model[2]])
    assert prune.sparsity(model).layers["2"].zeros == k_of(0.5, 60) and prune.sparsity(model).layers["0"].zeros == 0


def test_a_module_that_is_not_part_of_the_model_is_refused_clearly():
    model, other = TeacherModel(), TeacherModel()
    with pytest.raises(ValueError, match=r"layers= holds a Conv2d that is not part of TeacherModel"):
        prune.prune(model, 0.5, layers=[model.conv1, other.conv2])
    with pytest.raises(ValueError, match=r"layers= holds a Linear that is not part of TeacherModel"):
        prune.prune(model, 0.5, layers=nn.Linear(3, 4))
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ValueError, match="layer '1' is a BatchNorm2d; prune handles Linear and Conv2d"):
        prune.prune(bn, 0.5, layers=[bn[1]])
    with pytest.raises(ValueError, match=r"'neuron' .* needs a Linear, but layer 'conv1' is a Conv2d"):
        prune.prune(model, 0.5, structure="neuron", layers=[model.conv1])
    assert not [n for n, _ in model.named_buffers() if n.endswith("_mask")]  # nothing changed
    with pytest.raises(TypeError, match=r"layers= holds layer names \(str\), layer modules or layer types; got 3"):
        prune.prune(model, 0.5, layers=[3])
    with pytest.raises(TypeError, match=r"layers= is None, a layer name, module or type, or a list of them; got int"):
        prune.prune(model, 0.5, layers=3)
    with pytest.raises(TypeError, match=r"got dict"):
        prune.prune(model, 0.5, layers={"conv1": model.conv1})


def test_numeric_arguments_are_checked_with_the_shared_validators():
    model = mlp()
    for amount in (True, "0.5", None, [0.5]):
        with pytest.raises(TypeError, match=r"prune: amount is the fraction to remove, a number in \[0, 1\]"):
            prune.prune(model, amount)
    for amount in (float("nan"), float("inf"), -1, 2):
        with pytest.raises(ValueError, match=r"amount is the fraction to remove and must be in \[0, 1\]"):
            prune.prune(model, amount)
    for seed in (1.5, "0", None, True):
        with pytest.raises(TypeError, match="prune: seed must be an int"):
            prune.prune(model, 0.5, criterion="random", seed=seed)
    with pytest.raises(ValueError, match="prune: seed must be ≥ 0; got -1"):
        prune.prune(model, 0.5, criterion="random", seed=-1)
    with pytest.raises(TypeError, match="prune: criterion must be a string"):
        prune.prune(model, 0.5, criterion=None)
    with pytest.raises(TypeError, match="prune: model must be an nn.Module; got OrderedDict"):
        prune.prune(model.state_dict(), 0.5)
    assert prune.sparsity(model).total.zeros == 0  # nothing was pruned by any of these
    # NumPy numbers are numbers
    prune.prune(model, np.float32(0.5), criterion="random", seed=np.int64(3))
    assert prune.sparsity(model).layers["0"].zeros == k_of(0.5, 30)

    with pytest.raises(TypeError, match="schedule: steps must be an int; got 2.5"):
        prune.schedule(0.5, 2.5)
    with pytest.raises(TypeError, match="schedule: target .* must be a number; got '0.5'"):
        prune.schedule("0.5", 2)
    with pytest.raises(ValueError, match=r"schedule: target .* must be a finite number; got nan"):
        prune.schedule(float("nan"), 2)
    with pytest.raises(TypeError, match="accumulate_gradients: n_batches .* must be an int; got True"):
        prune.accumulate_gradients(model, [], F.cross_entropy, n_batches=True)
    with pytest.raises(ValueError, match="accumulate_gradients: n_batches .* must be positive; got 0"):
        prune.accumulate_gradients(model, [], F.cross_entropy, n_batches=0)


# --------------------------------------------------------------------------- sparsity and profile

def test_sparsity_per_layer_and_total_and_the_profile_non_zero_column():
    model = TeacherModel()
    prune.prune(model, 0.75, scope="local")
    s = prune.sparsity(model)
    sizes = {"conv1": 288, "conv2": 18432, "fc1": 401408, "fc2": 1280}
    for name, n in sizes.items():
        zeros = k_of(0.75, n) if name != "fc2" else 0
        assert s.layers[name] == (zeros, n, zeros / n)
    assert s.total.zeros == sum(r.zeros for r in s.layers.values()) and s.total.total == sum(sizes.values())
    assert float(s.total) == s.fraction == s.total.zeros / s.total.total
    text = str(s)
    assert "conv1" in text and "total" in text and "75.00 %" in text
    rows = {r.name: r for r in summary(model, (1, 28, 28)).rows}
    assert rows["fc1"].nonzero_params == 401408 - k_of(0.75, 401408) + 128  # the bias is not pruned


# --------------------------------------------------------------------------- one-shot and iterative

def test_schedules_linear_and_cubic():
    np.testing.assert_allclose(prune.schedule(0.8, 4), [0.2, 0.4, 0.6, 0.8])
    cubic = prune.schedule(0.9, 3, kind="cubic")
    np.testing.assert_allclose(cubic, [0.9 * (1 - (1 - t / 3) ** 3) for t in (1, 2, 3)])
    assert cubic[-1] == 0.9 and prune.schedule(0.5, 1) == [0.5]
    assert all(a < b for a, b in zip(cubic, cubic[1:]))
    assert cubic[0] > prune.schedule(0.9, 3)[0]  # cubic prunes fast first
    for bad in [dict(target=1.5, steps=3), dict(target=0.5, steps=0), dict(target=0.5, steps=3, kind="exp")]:
        with pytest.raises(ValueError):
            prune.schedule(**bad)


def test_iterative_pruning_alternates_pruning_and_fine_tuning_up_to_the_target():
    model = mlp((10, 20, 3))
    seen = []

    def finetune(m):
        seen.append(prune.sparsity(m).layers["0"].fraction)
        m[0].weight.data += 0.01  # fine-tuning moves the kept weights (pruned ones are masked anyway)
        return len(seen)

    history = prune.iterative_prune(model, 0.9, 3, finetune, kind="cubic", criterion="l1", scope="global")
    steps = prune.schedule(0.9, 3, kind="cubic")
    assert [h.amount for h in history] == steps and [h.result for h in history] == [1, 2, 3]
    np.testing.assert_allclose(seen, [k_of(s, 200) / 200 for s in steps])
    assert prune.sparsity(model).layers["0"].zeros == 180


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, match", [
    (dict(amount=1.5), r"amount .* must be in \[0, 1\]; got 1.5"),
    (dict(amount=-0.1), r"must be in \[0, 1\]"),
    (dict(criterion="l3"), r"unknown criterion 'l3'; expected one of 'l1', 'l2', 'gradient', 'random'"),
    (dict(scope="everywhere"), r"unknown scope 'everywhere'"),
    (dict(structure="kernel"), r"unknown structure 'kernel'"),
    (dict(layers=["fc3"]), r"no layer named 'fc3' in TeacherModel; its Linear and Conv2d layers are: conv1, conv2"),
    (dict(structure="filter", layers=["fc1"]), r"'filter' .* needs a Conv2d, but layer 'fc1' is a Linear"),
    (dict(structure="neuron", layers=["conv1"]), r"'neuron' .* needs a Linear, but layer 'conv1' is a Conv2d"),
    (dict(structure="channel", layers=nn.Linear), r"applies to Conv2d layers, not to Linear"),
    (dict(structure="filter", amount=1.0), r"would remove all 32 filters \(output channels\) of layer 'conv1'"),
    (dict(structure="channel", amount=0.5, layers=["conv1"]), r"would remove all 1 input channels of layer 'conv1'"),
    (dict(structure="neuron", amount=1.0, layers=["fc1"]), r"would remove all 128 neurons .* of layer 'fc1'"),
    (dict(criterion="gradient"), r"criterion='gradient' needs grads="),
    (dict(criterion="gradient", grads={"conv1": np.zeros((32, 1, 3, 3))}), r"grads has no entry for layer 'conv2'"),
])
def test_bad_arguments_raise_clear_errors_and_change_nothing(kwargs, match):
    model = TeacherModel()
    kwargs = {"amount": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        prune.prune(model, **kwargs)
    assert not [n for n, _ in model.named_buffers() if n.endswith("_mask")]


def test_global_structured_pruning_that_empties_one_layer_is_refused():
    model = mlp((4, 6, 6, 3))
    model[0].weight.data[...] = 1e-3  # every neuron of layer "0" is smaller than any of layer "2"
    with pytest.raises(ValueError, match="would remove all 6 neurons .* of layer '0'"):
        prune.prune(model, 0.5, structure="neuron", scope="global")


def test_other_bad_arguments():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ValueError, match="layer '1' is a BatchNorm2d; prune handles Linear and Conv2d"):
        prune.prune(model, 0.5, layers=["1"])
    with pytest.raises(ValueError, match="type BatchNorm2d cannot be pruned"):
        prune.prune(model, 0.5, layers=[nn.BatchNorm2d])
    with pytest.raises(TypeError, match="amount is the fraction"):
        prune.prune(model, "half")
    with pytest.raises(ValueError, match="no layer to prune with structure='neuron'"):
        prune.prune(model, 0.5, structure="neuron")  # its only Linear is the classifier
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="groups=1; layer '0' has groups=2"):
        prune.prune(grouped, 0.5, structure="channel", layers=["0"])
    with pytest.raises(ValueError, match=r"grads\['0'\] has shape \(2,\)"):
        prune.prune(grouped, 0.5, criterion="gradient", grads={"0": np.zeros(2)}, layers=["0"])
    with pytest.raises(ValueError, match="no minibatches"):
        prune.accumulate_gradients(grouped, [], F.cross_entropy)
    with pytest.raises(TypeError, match="finetune_fn must be callable"):
        prune.iterative_prune(grouped, 0.5, 2, None)


@pytest.mark.gpu
def test_pruning_a_model_on_the_gpu_keeps_masks_there():
    model = cnn().to("cuda")
    x = mk.randn(4, 1, 6, 6, device="cuda")
    grads = prune.accumulate_gradients(model, [(x, mk.tensor(np.array([0, 1, 2, 0]), device="cuda"))],
                                       F.cross_entropy)
    prune.prune(model, 0.5, criterion="gradient", structure="filter", layers=["0"], grads=grads)
    prune.prune(model, 0.5, layers=["2", "5"])
    assert all(b.device == "cuda:0" for n, b in model.named_buffers() if n.endswith("_mask"))
    opt = optim.Adam(model.parameters(), lr=0.01)
    F.cross_entropy(model(x), mk.tensor(np.array([0, 1, 2, 0]), device="cuda")).backward()
    opt.step()
    for i in (0, 2, 5):
        assert np.all(model[i].weight.numpy()[mask(model[i]) == 0] == 0)
    assert prune.sparsity(model).layers["2"].zeros == k_of(0.5, model[2].weight.size)


def test_channel_pruning_by_default_leaves_the_first_conv_whose_channels_are_the_image():
    """A sceptical trial: prune(StudentModel(), 0.5, structure="channel") was refused ("would remove
    all 1 input channels of layer 'conv1'"), though conv2 could be pruned; with a 3-channel input it
    would have masked image channels. layers=None now leaves conv1 alone, as it does the classifier."""
    model = StudentModel()
    prune.prune(model, 0.5, structure="channel")
    layers = prune.sparsity(model).layers
    assert layers["conv1"].fraction == 0 and layers["conv2"].fraction == 0.5
    with pytest.raises(ValueError, match="would remove all 1 input channels of layer 'conv1'"):
        prune.prune(StudentModel(), 0.5, structure="channel", layers=["conv1"])  # named: pruned as asked
