"""compact(): structured pruning made physical — same output, fewer parameters and FLOPs.

The masks are written by hand here (the buffers of the mask contract), so these tests do not
depend on ``prune()``.
"""

import numpy as np
import pytest

import minikd as mk
from minikd import functional as F
from minikd import nn, optim
from minikd.models import TeacherModel
from minikd.profile import conv_flops, conv_params, linear_flops, linear_params, measure_latency, summary
from minikd.prune.compact import CompactReport, compact

MNIST = (1, 28, 28)


# --------------------------------------------------------------------------- helpers

def _ones_like_weight(layer):
    mask = layer._buffers.get("weight_mask")
    return np.ones(layer.weight.shape, layer.weight.dtype) if mask is None else mask.numpy().copy()


def mask_units(layer, units):
    """Structure 'filter' / 'neuron': output units ``units`` masked out, weights and bias."""
    weight_mask = _ones_like_weight(layer)
    weight_mask[list(units)] = 0
    bias_mask = np.ones(layer.bias.shape, layer.bias.dtype)
    bias_mask[list(units)] = 0
    layer.register_buffer("weight_mask", weight_mask)
    layer.register_buffer("bias_mask", bias_mask)


def mask_inputs(layer, channels):
    """Structure 'channel': input channels (Conv2d) or input features (Linear) masked out for every unit."""
    weight_mask = _ones_like_weight(layer)
    weight_mask[:, list(channels)] = 0
    layer.register_buffer("weight_mask", weight_mask)


def teacher(dtype=np.float32, seed=0):
    mk.manual_seed(seed)
    model = TeacherModel()
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


def batch(shape, dtype=np.float32, n=4, seed=1):
    return mk.tensor(np.random.default_rng(seed).standard_normal((n, *shape)).astype(dtype))


def logits(model, x):
    model.eval()
    with mk.no_grad():
        return model(x).numpy()


def pruned_teacher(dtype=np.float32):
    """conv1 filters 0, 5, 7 and conv2 input channels 8, 9 (so conv1 loses 5 of 32); conv2 filters
    1, 2, 3, 10 (60 of 64 left, fc1 loses 4·7·7 inputs); fc1 neurons 0, 4, 100 (125 of 128 left)."""
    model = teacher(dtype)
    mask_units(model.conv1, [0, 5, 7])
    mask_units(model.conv2, [1, 2, 3, 10])
    mask_inputs(model.conv2, [8, 9])
    mask_units(model.fc1, [0, 4, 100])
    return model


# --------------------------------------------------------------------------- same output

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_teacher_output_is_unchanged_and_layers_are_smaller(dtype):
    model = pruned_teacher(dtype)
    x = batch(MNIST, dtype)
    before = logits(model, x)
    assert compact(model, MNIST) is model
    np.testing.assert_allclose(logits(model, x), before, atol=1e-5, rtol=1e-5 if dtype == np.float32 else 1e-10)
    assert model.conv1.weight.shape == (27, 1, 3, 3) and model.conv1.bias.shape == (27,)
    assert model.conv2.weight.shape == (60, 27, 3, 3) and model.conv2.in_channels == 27
    assert model.fc1.weight.shape == (125, 60 * 7 * 7) and model.fc1.in_features == 60 * 49
    assert model.fc2.weight.shape == (10, 125) and model.fc2.in_features == 125
    assert all(p.dtype == dtype for p in model.parameters())
    assert model.conv2.weight_mask.shape == (60, 27, 3, 3) and model.fc1.bias_mask.shape == (125,)


def test_unstructured_zeros_inside_kept_units_stay_masked():
    model = pruned_teacher()
    mask = model.conv2.weight_mask.numpy().copy()
    mask[20, 30, 1, 2] = 0  # conv2 filter 20, input channel 30: both kept
    model.conv2.register_buffer("weight_mask", mask)
    compact(model, MNIST)
    # filter 20 is the 17th kept (1, 2, 3, 10 removed); channel 30 the 25th (0, 5, 7, 8, 9 removed)
    assert model.conv2.weight_mask.numpy()[16, 25, 1, 2] == 0
    assert model.conv2.weight_mask.numpy().sum() == 60 * 27 * 9 - 1


def test_the_weights_moved_with_their_units():
    model = pruned_teacher()
    w1, w2 = model.conv1.weight.numpy().copy(), model.fc1.weight.numpy().copy()
    compact(model, MNIST)
    kept1 = [c for c in range(32) if c not in (0, 5, 7, 8, 9)]
    kept2 = [c for c in range(64) if c not in (1, 2, 3, 10)]
    kept_fc1 = [c for c in range(128) if c not in (0, 4, 100)]
    np.testing.assert_array_equal(model.conv1.weight.numpy(), w1[kept1])
    cols = (np.array(kept2)[:, None] * 49 + np.arange(49)).ravel()
    np.testing.assert_array_equal(model.fc1.weight.numpy(), w2[kept_fc1][:, cols])


def test_last_layer_outputs_and_first_layer_inputs_are_never_removed():
    mk.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    mask_inputs(model[0], [1])          # one of the network's input channels
    mask_units(model[3], [2])           # one of the network's outputs
    x = batch((2, 5, 5))
    before = logits(model, x)
    model, report = compact(model, (2, 5, 5), return_report=True)
    assert model[0].weight.shape == (4, 2, 3, 3) and model[3].weight.shape == (3, 36)
    assert report.layers == [] and str(report) == "compact: nothing to remove"
    np.testing.assert_allclose(logits(model, x), before, atol=1e-6)


def test_layers_without_masks_lose_their_exactly_zero_units():
    """After remove_masks the pruned units are plain zeros: weights and bias 0."""
    model = teacher()
    model.conv2.weight.data[[4, 6]] = 0
    model.conv2.bias.data[[4, 6]] = 0
    model.fc1.weight.data[7] = 0        # bias of neuron 7 not 0: a constant unit, kept
    x = batch(MNIST)
    before = logits(model, x)
    compact(model, MNIST)
    assert model.conv2.weight.shape == (62, 32, 3, 3) and model.fc1.weight.shape == (128, 62 * 49)
    np.testing.assert_allclose(logits(model, x), before, atol=1e-5)


def test_the_random_stream_and_forward_hooks_survive():
    model = pruned_teacher()
    seen = []
    model.fc1.register_forward_hook(lambda layer, inputs, output: seen.append(output.shape))
    mk.manual_seed(123)
    compact(model, MNIST)
    drawn = mk.randn(3).numpy()
    mk.manual_seed(123)
    np.testing.assert_array_equal(mk.randn(3).numpy(), drawn)  # compact drew no random numbers
    seen.clear()
    logits(model, batch(MNIST, n=2))
    assert seen == [(2, 125)]


def test_report_lists_each_rebuilt_layer():
    model, report = compact(pruned_teacher(), MNIST, return_report=True)
    assert isinstance(report, CompactReport)
    assert [c.name for c in report.layers] == ["conv1", "conv2", "fc1", "fc2"]
    conv1 = report.layers[0]
    assert conv1.removed_outputs == (0, 5, 7, 8, 9) and conv1.shape_after == (27, 1, 3, 3)
    assert report.layers[1].removed_inputs == (0, 5, 7, 8, 9) and report.layers[1].removed_outputs == (1, 2, 3, 10)
    assert report.params_before - report.params_after == 421_642 - model.num_parameters()
    assert "conv1 (Conv2d)" in str(report)


# --------------------------------------------------------------------------- batch norm

def bn_net(dtype=np.float32, seed=0):
    """conv(2→6, k3, p1) → BN → ReLU → conv(6→5, k3) → Flatten → Linear(80→7) → ReLU → Linear(7→3), input 2×6×6."""
    mk.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 5, 3),
                          nn.Flatten(), nn.Linear(5 * 4 * 4, 7), nn.ReLU(), nn.Linear(7, 3))
    rng = np.random.default_rng(seed)
    bn = model[1]
    bn.weight.data[:] = rng.uniform(0.5, 2, 6)
    bn.bias.data[:] = rng.uniform(-1, 1, 6)
    bn.running_mean.data[:] = rng.uniform(-1, 1, 6)
    bn.running_var.data[:] = rng.uniform(0.5, 2, 6)
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


def both_modes(model, x):
    """Eval-mode output, and training-mode output (batch statistics) without touching the running ones."""
    state = model.state_dict()
    out_eval = logits(model, x)
    model.train()
    with mk.no_grad():
        out_train = model(x).numpy()
    model.load_state_dict(state)
    return out_eval, out_train


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_bn_conv_flatten_linear_chain_with_zero_bn_output(dtype):
    model = bn_net(dtype)
    mask_units(model[0], [1, 4])
    model[1].bias.data[[1, 4]] = 0          # β = 0 and μ = 0: BN maps the removed channels' 0 to 0
    model[1].running_mean.data[[1, 4]] = 0
    mask_units(model[3], [2])               # conv → flatten → linear: 16 features of the Linear go
    mask_units(model[5], [6])               # linear → linear
    x = batch((2, 6, 6), dtype)
    before = both_modes(model, x)
    compact(model, (2, 6, 6))
    assert model[0].weight.shape == (4, 2, 3, 3) and model[1].num_features == 4
    assert model[1].running_mean.shape == (4,) and model[1].weight.shape == (4,)
    assert model[3].weight.shape == (4, 4, 3, 3) and model[5].weight.shape == (6, 4 * 16)
    assert model[7].weight.shape == (3, 6)
    for a, b in zip(both_modes(model, x), before):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_removed_channel_with_nonzero_bn_output_is_kept_with_a_warning():
    model = bn_net()
    mask_units(model[0], [1, 4])
    model[1].bias.data[4] = 0
    model[1].running_mean.data[4] = 0       # channel 4: BN(0) = 0; channel 1: BN(0) = β − γμ/√(σ²+ε) ≠ 0
    x = batch((2, 6, 6))
    before = logits(model, x)
    with pytest.warns(UserWarning, match=r"'0' keeps masked units \[1\]"):
        model, report = compact(model, (2, 6, 6), return_report=True)
    assert model[0].weight.shape == (5, 2, 3, 3) and model[1].num_features == 5
    assert report.kept["0"][0] == [1]
    np.testing.assert_allclose(logits(model, x), before, atol=1e-5)


def test_bn_with_zero_eval_output_but_nonzero_beta_is_kept():
    """β ≠ 0 but β = γ·μ/√(σ²+ε): 0 in eval, β in training — removing it would change training."""
    model = bn_net(np.float64)
    mask_units(model[0], [2])
    bn = model[1]
    bn.running_var.data[2] = 1 - bn.eps
    bn.bias.data[2] = bn.weight.data[2] * bn.running_mean.data[2]
    with pytest.warns(UserWarning, match="keeps masked units"):
        compact(model, (2, 6, 6))
    assert model[0].weight.shape == (6, 2, 3, 3)


def test_an_unused_channel_goes_whatever_its_bn_does():
    model = bn_net()
    mask_inputs(model[3], [0, 5])           # conv 2 never reads channels 0 and 5: conv 1 and BN lose them
    x = batch((2, 6, 6))
    before = both_modes(model, x)
    compact(model, (2, 6, 6))
    assert model[0].weight.shape == (4, 2, 3, 3) and model[1].num_features == 4
    assert model[3].weight.shape == (5, 4, 3, 3)
    for a, b in zip(both_modes(model, x), before):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_pooling_between_a_conv_and_its_bn():
    mk.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 3, 3))
    mask_units(model[0], [1])               # default running stats and β: BN maps 0 to 0
    x = batch((1, 8, 8))
    before = both_modes(model, x)
    compact(model, (1, 8, 8))
    assert model[0].weight.shape == (3, 1, 3, 3) and model[2].num_features == 3 and model[4].in_channels == 3
    for a, b in zip(both_modes(model, x), before):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_bn_that_does_not_follow_its_layer_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.BatchNorm1d(36), nn.Linear(36, 2))
    with pytest.raises(NotImplementedError, match="BatchNorm '2'.*right after its layer"):
        compact(model, (1, 5, 5))


def test_linear_bn1d_linear():
    mk.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))
    mask_units(model[1], [0, 3, 7])
    x = batch((3, 4))
    before = both_modes(model, x)
    compact(model, (3, 4))
    assert model[1].weight.shape == (5, 12) and model[2].num_features == 5 and model[4].weight.shape == (4, 5)
    for a, b in zip(both_modes(model, x), before):
        np.testing.assert_allclose(a, b, atol=1e-5)


# --------------------------------------------------------------------------- counts

def teacher_counts(c1, c2, hidden, convention="lecture"):
    """Parameters and FLOPs of a teacher-shaped network from the lecture's formulas."""
    params = (conv_params(3, 1, c1) + conv_params(3, c1, c2) + linear_params(c2 * 49, hidden)
              + linear_params(hidden, 10))
    flops = (conv_flops(28, 28, 3, 1, c1, convention) + conv_flops(14, 14, 3, c1, c2, convention)
             + linear_flops(c2 * 49, hidden, convention) + linear_flops(hidden, 10, convention))
    return params, flops


def test_parameters_and_flops_shrink_by_exactly_the_removed_amount():
    model = pruned_teacher()
    s0 = summary(model, MNIST)
    assert (s0.total_params, s0.total_flops) == teacher_counts(32, 64, 128)
    compact(model, MNIST)
    s1 = summary(model, MNIST)
    assert (s1.total_params, s1.total_flops) == teacher_counts(27, 60, 125)
    removed_params = (5 * (9 + 1)                        # conv1: 5 filters of 1·3·3 + bias
                      + 4 * (9 * 32 + 1) + 60 * 9 * 5    # conv2: 4 filters; 5 input channels of the other 60
                      + 3 * (64 * 49 + 1) + 125 * 4 * 49  # fc1: 3 neurons; 4·49 inputs of the other 125
                      + 10 * 3)                          # fc2: 3 inputs
    assert s0.total_params - s1.total_params == removed_params
    assert s1.total_macs == teacher_counts(27, 60, 125, "macs")[1]
    assert s1.total_nonzero_params == s1.total_params  # every removed weight is gone, none left as a 0


def test_heavily_compacted_teacher_does_fewer_macs():
    """75 % of conv2's filters and fc1's neurons removed. Latencies are printed, not asserted."""
    model = teacher()
    mask_units(model.conv2, [c for c in range(64) if c % 4])   # keep every 4th
    mask_units(model.fc1, [c for c in range(128) if c % 4])
    x = batch(MNIST)
    before_out = logits(model, x)
    before = summary(model, MNIST, "macs").total_macs
    slow = measure_latency(model, MNIST, batch_size=32, warmup=2, repeats=5)
    compact(model, MNIST)
    after = summary(model, MNIST, "macs").total_macs
    fast = measure_latency(model, MNIST, batch_size=32, warmup=2, repeats=5)
    assert before == teacher_counts(32, 64, 128, "macs")[1]
    assert after == teacher_counts(32, 16, 32, "macs")[1] and after < before / 3
    np.testing.assert_allclose(logits(model, x), before_out, atol=1e-5)
    print(f"\nteacher, 75 % of conv2 and fc1 removed: MACs {before:,} → {after:,}; latency {slow} → {fast}")


# --------------------------------------------------------------------------- training and checkpoints

def test_compacted_model_trains_and_round_trips_through_a_checkpoint(tmp_path):
    model = compact(pruned_teacher(), MNIST)
    model.conv2.register_buffer("weight_mask", model.conv2.weight_mask.numpy() * (np.arange(27) != 3)[:, None, None])
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = batch(MNIST), mk.tensor(np.array([1, 2, 3, 4]))
    model.train()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
    assert np.all(model.conv2.weight.grad[:, 3] == 0)  # still masked: no gradient
    w = model.fc1.weight.numpy().copy()
    opt.step()
    assert not np.array_equal(model.fc1.weight.numpy(), w)

    path = tmp_path / "compact.npz"
    mk.save(model.state_dict(), path)
    out = logits(model, x)
    for p in model.parameters():
        p.data[...] = 0
    model.load_state_dict(mk.load(path))
    np.testing.assert_array_equal(logits(model, x), out)
    with pytest.raises(ValueError, match="wrong shapes"):
        TeacherModel().load_state_dict(mk.load(path), strict=False)


# --------------------------------------------------------------------------- errors

def test_a_layer_run_twice_is_refused():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(NotImplementedError, match="runs more than once"):
        compact(model, (4,))


def test_grouped_convs_are_refused():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with pytest.raises(NotImplementedError, match="groups=2"):
        compact(model, (4, 8, 8))


def test_linear_feeding_a_conv_is_refused():
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 16)
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(self.fc(x).reshape(x.shape[0], 1, 4, 4))

    with pytest.raises(NotImplementedError, match="'fc' → 'conv'.*not supported"):
        compact(Decoder(), (3,))


def test_pruning_a_layer_to_nothing_is_refused():
    model = teacher()
    mask_units(model.conv2, range(64))
    with pytest.raises(ValueError, match="prune layer 'conv2' to nothing"):
        compact(model, MNIST)
    model = teacher()
    mask_inputs(model.fc2, range(128))
    with pytest.raises(ValueError, match="prune layer 'fc1' to nothing"):
        compact(model, MNIST)


def test_a_residual_connection_is_detected_and_the_model_left_unchanged():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
            self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            h = F.relu(self.conv1(x))
            return self.conv2(h) + h   # conv2 skips channel 1, the sum does not

    mk.manual_seed(0)
    model = Residual()
    mask_inputs(model.conv2, [1])
    conv1, conv2 = model.conv1, model.conv2
    with pytest.raises(NotImplementedError, match="left unchanged"):
        compact(model, (3, 5, 5))
    assert model.conv1 is conv1 and model.conv2 is conv2


def test_an_op_mixing_channels_is_detected_and_the_model_left_unchanged():
    class Centred(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 2, 3, padding=1)

        def forward(self, x):
            h = F.relu(self.conv1(x))
            return self.conv2(h - h.mean(axis=1, keepdims=True))  # the mean reads channel 2 too

    mk.manual_seed(0)
    model = Centred()
    mask_inputs(model.conv2, [2])
    x = batch((1, 5, 5))
    before = logits(model, x)
    with pytest.raises(NotImplementedError, match="output differs.*left unchanged"):
        compact(model, (1, 5, 5))
    assert model.conv1.weight.shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(logits(model, x), before)


def test_other_parameterised_layers_are_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(np.ones(4, dtype=np.float32))

        def forward(self, x):
            return x * self.s

    model = nn.Sequential(nn.Linear(4, 4), Scale(), nn.Linear(4, 2))
    with pytest.raises(NotImplementedError, match="'1' \\(Scale\\) has parameters"):
        compact(model, (4,))
