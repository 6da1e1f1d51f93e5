"""Off the CPU: layers, models, training, pruning, quantization and distillation on another device
give the CPU's numbers, and device mistakes get clear errors.

The ``device`` fixture (tests/conftest.py) is the stand-in device everywhere (NumPy behind a
wrapper that refuses implicit host conversions, tests/standin.py) and a real GPU (``cuda``,
marker ``gpu``) where there is one. The op-by-op checks run through ``tests/util.check_grad``,
which repeats every op test on the stand-in.
"""

import copy

import numpy as np
import pytest

import minikd as mk
from minikd import backend, kd, nn, optim, prune, quant
from minikd import functional as F
from minikd.models import StudentModel, TeacherModelBN
from tests import standin

# float32 on a real GPU sums in another order: the CPU tests' float32 tolerances
TOL = dict(rtol=2e-5, atol=2e-5)


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


def host(t):
    return backend.to_numpy(t.data if isinstance(t, mk.Tensor) else t)


def twins(make, device):
    """The same model twice (same weights): one on the CPU, one on ``device``."""
    mk.manual_seed(0)
    cpu = make()
    return cpu, copy.deepcopy(cpu).to(device)


def train_steps(model, device, opt_cls=optim.Adam, steps=3, **opt_kwargs):
    opt = opt_cls(model.parameters(), lr=1e-3, **opt_kwargs)
    losses = []
    for s in range(steps):
        x, y = batch(seed=s)
        loss = F.cross_entropy(model(mk.tensor(x, device=device)), mk.tensor(y, device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make, opt_cls, kwargs", [
    (StudentModel, optim.Adam, {}), (StudentModel, optim.Adam, {"weight_decay": 1e-2}),
    (StudentModel, optim.SGD, {"momentum": 0.9, "nesterov": True}),
    # with BatchNorm, SGD: a conv bias before a BatchNorm has a zero gradient, which Adam would
    # divide by its own size, so that rounding noise decides the step
    (TeacherModelBN, optim.SGD, {"momentum": 0.9})])
def test_training_steps_match_the_cpu(make, opt_cls, kwargs, device):
    cpu, dev = twins(make, device)
    assert all(p.device == backend.check_device(device) for p in dev.parameters())
    np.testing.assert_allclose(train_steps(dev, device, opt_cls, **kwargs), train_steps(cpu, "cpu", opt_cls, **kwargs),
                               **TOL)
    for (name, a), b in zip(cpu.state_dict().items(), dev.state_dict().values()):
        np.testing.assert_allclose(b, a, err_msg=name, **TOL)     # state_dict: host copies from any device


@pytest.mark.parametrize("step", ["student", "teacher", "logit KD", "feature KD", "RKD"])
def test_a_training_step_makes_no_hidden_host_sync(step):
    """Forward, backward and Adam's step on the stand-in convert nothing to a Python scalar, index
    with no boolean mask and copy nothing to the host (each would be a wait for the GPU): only the
    explicit loss.item() does. (A real GPU found one this test then missed: max pooling's argmax
    written through a mask.)"""
    mk.manual_seed(0)
    model = (TeacherModelBN if step == "teacher" else StudentModel)().to("standin")
    teacher = TeacherModelBN().to("standin").eval() if "KD" in step else None
    adapter = nn.Linear(64, 128).to("standin") if step == "feature KD" else None  # student → teacher features
    opt = optim.Adam([*model.parameters(), *(adapter.parameters() if adapter else [])], lr=1e-3)
    x, y = batch()
    x, y = mk.tensor(x, device="standin"), mk.tensor(y, device="standin")

    def loss():
        if teacher is None:
            return F.cross_entropy(model(x), y)
        with mk.no_grad():
            t_logits, t_feats = teacher(x, return_features=True)
        s_logits, s_feats = model(x, return_features=True)
        if step == "logit KD":
            return kd.kd_loss(s_logits, t_logits, y, T=4.0, lam=0.5)
        if step == "feature KD":
            return kd.feature_kd_loss(s_logits, s_feats, t_feats, y, adapter)
        return F.cross_entropy(s_logits, y) + kd.rkd_loss(s_feats, t_feats)

    loss().backward()
    opt.step()  # the first step creates the state
    standin.reset_host_syncs()
    value = loss()
    opt.zero_grad()
    value.backward()
    opt.step()
    assert standin.HOST_SYNCS["count"] == 0, standin.HOST_SYNCS["where"]


def test_layers_forward_and_backward_match_the_cpu(device):
    rng = np.random.default_rng(0)
    layers = [nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1),
              nn.MaxPool2d(2), nn.AvgPool2d(2, padding=1), nn.BatchNorm2d(3), nn.Upsample(scale_factor=2),
              nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.LeakyReLU(0.1), nn.Dropout(0.0)),
              nn.Sequential(nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.Identity())]
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    for layer in layers:
        mk.manual_seed(0)
        dev = copy.deepcopy(layer).to(device)
        outs, grads = [], []
        for model, where in ((layer, "cpu"), (dev, device)):
            t = mk.tensor(x, device=where, requires_grad=True)
            y = model(t)
            (y * y).sum().backward()
            outs.append(host(y))
            grads.append(host(t.grad))
        np.testing.assert_allclose(outs[1], outs[0], err_msg=repr(layer), **TOL)
        np.testing.assert_allclose(grads[1], grads[0], err_msg=repr(layer), **TOL)


def test_embedding_and_conditional_generator_run_on_the_device(device):
    from minikd.models import ConditionalGenerator

    cpu, dev = twins(ConditionalGenerator, device)
    z = np.random.default_rng(0).standard_normal((4, cpu.z_dim)).astype(np.float32)
    labels = np.array([0, 3, 7, 9])
    a = cpu.eval()(mk.tensor(z), mk.tensor(labels))
    b = dev.eval()(mk.tensor(z, device=device), mk.tensor(labels, device=device))
    np.testing.assert_allclose(host(b), host(a), **TOL)


def test_distillation_losses_match_the_cpu(device):
    rng = np.random.default_rng(0)
    z_s, z_t = rng.standard_normal((6, 10)).astype(np.float32), rng.standard_normal((6, 10)).astype(np.float32)
    f_s, f_t = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 8)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    mk.manual_seed(0)
    adapter = kd.make_adapter((4,), (8,))

    def losses(where, adapter):
        s = mk.tensor(z_s, device=where)
        fs = mk.tensor(f_s, device=where)
        return [kd.kd_loss(s, mk.tensor(z_t, device=where), mk.tensor(y, device=where), T=4.0, lam=0.7),
                kd.kd_loss(s, z_t, y, T=4.0, lam=0.7),               # NumPy teacher logits and labels: uploaded
                kd.feature_kd_loss(s, fs, f_t, y, adapter, lam=0.5),
                kd.rkd_loss(fs, f_t),
                kd.qud_loss(fs, f_s, f_t[:, :4], tau=0.5)]

    dev_adapter = copy.deepcopy(adapter).to(device)
    for a, b in zip(losses("cpu", adapter), losses(device, dev_adapter)):
        np.testing.assert_allclose(host(b), host(a), **TOL)


def test_pruning_and_compacting_on_the_device(device):
    cpu, dev = twins(StudentModel, device)
    for m in (cpu, dev):
        prune.prune(m, 0.5, structure="filter", layers=["conv1", "conv2"])
        prune.prune(m, 0.3, criterion="l1", scope="global")
    for (name, a), b in zip(cpu.state_dict().items(), dev.state_dict().values()):
        np.testing.assert_array_equal(b, a, err_msg=name)             # the same masks
    x, _ = batch()
    np.testing.assert_allclose(host(dev(mk.tensor(x, device=device))), host(cpu(mk.tensor(x))), **TOL)
    assert prune.sparsity(dev).total == prune.sparsity(cpu).total


def test_quantization_and_integer_inference_on_the_device(device):
    cpu, dev = twins(StudentModel, device)
    x, _ = batch(32)
    q_cpu = quant.quantize_model(cpu, calibration_batches=[mk.tensor(x)])
    q_dev = quant.quantize_model(dev, calibration_batches=[mk.tensor(x, device=device)])
    i_cpu, i_dev = quant.convert_to_integer(q_cpu), quant.convert_to_integer(q_dev)
    assert i_dev.conv1.weight.device == backend.check_device(device) and i_dev.conv1.weight.dtype == np.int8
    np.testing.assert_array_equal(host(i_dev.conv1.weight), host(i_cpu.conv1.weight))
    with mk.no_grad():
        a, b = i_cpu(mk.tensor(x)), i_dev(mk.tensor(x, device=device))
    np.testing.assert_allclose(host(b), host(a), rtol=1e-5, atol=1e-5)


def test_save_from_the_device_and_load_back(device, tmp_path):
    _, dev = twins(StudentModel, device)
    for suffix in ("npz", "safetensors"):
        if suffix == "safetensors":
            pytest.importorskip("safetensors")
        mk.save(dev.state_dict(), tmp_path / f"m.{suffix}")
        fresh = StudentModel().to(device)
        fresh.load_state_dict(mk.load(tmp_path / f"m.{suffix}"))
        assert all(p.device == backend.check_device(device) for p in fresh.parameters())
        for a, b in zip(dev.state_dict().values(), fresh.state_dict().values()):
            np.testing.assert_array_equal(a, b)


def test_default_device_puts_new_tensors_and_layers_there(device):
    previous = mk.set_default_device(device)
    try:
        assert mk.zeros(2).device == backend.check_device(device)
        assert mk.randn(2, 3).device == backend.check_device(device)
        assert mk.tensor([1.0, 2.0]).device == backend.check_device(device)
        layer = nn.Linear(3, 2)
        assert layer.weight.device == backend.check_device(device)
        layer(mk.randn(4, 3)).sum().backward()
    finally:
        mk.set_default_device(previous)
    assert mk.zeros(2).device == "cpu"


# --------------------------------------------------------------------------- mistakes, on the stand-in


def test_two_devices_in_one_op_name_both():
    a, b = mk.randn(3, device="standin"), mk.randn(3)
    with pytest.raises(RuntimeError, match=r"Add: its inputs are on two devices, standin and cpu"):
        a + b
    with pytest.raises(RuntimeError, match=r"MatMul: its inputs are on two devices, cpu and standin"):
        mk.randn(2, 3) @ mk.randn(3, 2, device="standin")
    layer = nn.Linear(3, 2)                                            # on the CPU
    with pytest.raises(RuntimeError, match=r"Linear: its inputs are on two devices, standin and cpu"):
        layer(mk.randn(4, 3, device="standin"))
    with pytest.raises(TypeError, match=r"Mul: input 1 is a NumPy array .* pass mk.tensor\(x, device='standin'\)"):
        a * np.ones(3, dtype=np.float32)


def test_a_model_moved_after_its_optimizer_stepped_is_an_error():
    mk.manual_seed(0)
    model = StudentModel()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch()
    loss = F.cross_entropy(model(mk.tensor(x)), mk.tensor(y))
    loss.backward()
    opt.step()
    model.to("standin")
    loss = F.cross_entropy(model(mk.tensor(x, device="standin")), mk.tensor(y, device="standin"))
    opt.zero_grad()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"Adam.step: parameter 0 is on standin but its optimizer state is on "
                                           r"cpu: the model was moved after the optimizer had stepped"):
        opt.step()


def test_batch_norm_statistics_must_live_with_the_input():
    with pytest.raises(RuntimeError, match="running_mean is on cpu and the input on standin"):
        F.batch_norm(mk.randn(4, 3, device="standin"), np.zeros(3, np.float32), np.ones(3, np.float32))


def test_the_stand_in_refuses_numpy_on_device_data():
    t = mk.randn(3, device="standin")
    for call in (lambda: np.exp(t.data), lambda: np.asarray(t.data), lambda: np.concatenate([t.data, t.data])):
        with pytest.raises(standin.DeviceMixError):
            call()
    np.testing.assert_array_equal(t.numpy(), backend.to_numpy(t.data))   # the explicit copy is fine


def test_cuda_errors_say_what_to_install(monkeypatch):
    if mk.cuda_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match=r"gpu-cuda12.*gpu-cuda13|finds no CUDA device"):
        mk.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"gpu-cuda12|finds no CUDA device"):
        mk.randn(2).to("cuda:1")
    with pytest.raises(ValueError, match=r"unknown device 'gpu'; expected 'cpu', 'cuda' or 'cuda:N'"):
        mk.zeros(2, device="gpu")
    with pytest.raises(RuntimeError):
        mk.set_default_device("cuda")
    assert mk.default_device() == "cpu"


def test_minikd_device_environment_variable_is_checked(tmp_path):
    import subprocess
    import sys

    code = "import minikd as mk; print(mk.default_device(), mk.zeros(1).device)"
    ok = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "MINIKD_DEVICE": "cpu"},
                        capture_output=True, text=True)
    assert ok.stdout.split() == ["cpu", "cpu"]
    bad = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "MINIKD_DEVICE": "tpu"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "MINIKD_DEVICE='tpu': unknown device 'tpu'" in bad.stderr


def test_the_stand_in_counts_every_kind_of_wait_for_the_gpu():
    """Each of these makes CuPy wait for the GPU; the stand-in must count each one, or a step's
    "no host sync" test could not fail for it."""
    a = standin.xp.asarray(np.arange(6.0))
    mask = a > 2
    waits = {
        "float": lambda: float(a[0]),
        "item": lambda: a.sum().item(),
        "a device mask": lambda: a[mask],
        "a host mask": lambda: a[np.arange(6) > 2],
        "assigning through a mask": lambda: a.__setitem__(mask, 0.0),
        "nonzero": lambda: standin.xp.nonzero(mask),
        "where with one argument": lambda: standin.xp.where(mask),
        "unique": lambda: standin.xp.unique(a),
        "get": lambda: a.get(),
        "to_numpy": lambda: backend.to_numpy(a),
    }
    for what, fn in waits.items():
        standin.reset_host_syncs()
        fn()
        assert standin.HOST_SYNCS["count"] == 1, what
    standin.reset_host_syncs()
    standin.xp.where(mask, a, 0.0)        # three arguments: elementwise, no wait
    a[1:3] = 5.0                          # basic indexing: no wait
    assert standin.HOST_SYNCS["count"] == 0
