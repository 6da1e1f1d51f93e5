"""mk.save / mk.load: .npz round trips, no pickle, atomic writes, clear errors."""

import os
from collections import OrderedDict

import numpy as np
import pytest

import minikd as mk
from minikd import nn


def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path):
    state = OrderedDict([
        ("conv1.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)),
        ("conv1.bias", np.array([1.5, -2.5], dtype=np.float64)),
        ("bn.num_batches", np.array(7, dtype=np.int64)),
        ("file", np.zeros(1, dtype=np.float32)),  # a name numpy.savez could not take as a keyword
        ("tensor.value", mk.tensor(np.array([3.0], dtype=np.float32))),
    ])
    path = tmp_path / "model.npz"
    mk.save(state, path)
    loaded = mk.load(path)
    assert isinstance(loaded, OrderedDict)
    assert list(loaded) == list(state)
    for k, v in state.items():
        v = v.numpy() if isinstance(v, mk.Tensor) else v
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
        np.testing.assert_array_equal(loaded[k], v)
    # a plain NumPy archive: numpy.load reads it directly
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["conv1.bias"], [1.5, -2.5])


def test_model_checkpoint_round_trip(tmp_path):
    mk.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    a(mk.randn(8, 4))  # moves the running statistics away from their initial values
    mk.save(a.state_dict(), tmp_path / "ckpt.npz", compress=True)
    mk.manual_seed(1)
    b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    b.load_state_dict(mk.load(tmp_path / "ckpt.npz"))
    a.eval()
    b.eval()
    x = mk.randn(5, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_object_arrays_are_refused_on_save_and_on_load(tmp_path):
    with pytest.raises(TypeError, match="Python objects"):
        mk.save({"bad": np.array([{"a": 1}], dtype=object)}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    path = tmp_path / "pickled.npz"
    np.savez(path, ok=np.zeros(2), bad=np.array([{"a": 1}, None], dtype=object))  # numpy pickles this one
    with pytest.raises(ValueError, match="'bad'.*without pickle"):
        mk.load(path)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.npz"):
        mk.load(tmp_path / "missing.npz")
    text = tmp_path / "notes.npz"
    text.write_text("these are not arrays")
    with pytest.raises(ValueError, match="not a NumPy .npz archive"):
        mk.load(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        mk.load(single)


def test_save_argument_errors(tmp_path):
    with pytest.raises(TypeError, match=r"pass model.state_dict\(\)"):
        mk.save(nn.Linear(2, 2), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="non-empty string"):
        mk.save({1: np.zeros(1)}, tmp_path / "m.npz")


@pytest.mark.parametrize("name", ["student.pt", "student.pth", "model.onnx", "weights", "m.npy"])
def test_save_writes_only_its_two_formats(tmp_path, name):
    """Before: any suffix but .safetensors meant .npz, so student.pt was a zip that torch.load failed on."""
    with pytest.raises(ValueError, match=r"save: '.*' should end in .npz \(a NumPy archive\) or .safetensors"):
        mk.save({"w": np.zeros(2)}, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_load_still_reads_an_npz_archive_under_another_suffix(tmp_path):
    np.savez(tmp_path / "w.npz", w=np.arange(3))
    os.replace(tmp_path / "w.npz", tmp_path / "w.ckpt")
    assert mk.load(tmp_path / "w.ckpt")["w"].tolist() == [0, 1, 2]


def test_a_failure_mid_write_leaves_no_file_and_no_temp_file(tmp_path, monkeypatch):
    calls = []
    real_write_array = np.lib.format.write_array

    def failing_write_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first array is already in the archive
            raise OSError("disk full (simulated)")
        return real_write_array(fp, array, *args, **kwargs)

    state = {"a": np.zeros(1000, dtype=np.float32), "b": np.ones(1000, dtype=np.float32)}
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        mk.save(state, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []

    # an existing checkpoint survives a failed overwrite untouched
    monkeypatch.setattr(np.lib.format, "write_array", real_write_array)
    mk.save({"old": np.arange(3)}, tmp_path / "ckpt.npz")
    calls.clear()
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError):
        mk.save(state, tmp_path / "ckpt.npz")
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.setattr(np.lib.format, "write_array", real_write_array)
    np.testing.assert_array_equal(mk.load(tmp_path / "ckpt.npz")["old"], [0, 1, 2])


def test_saved_file_has_ordinary_permissions(tmp_path):
    mk.save({"a": np.zeros(1)}, tmp_path / "p.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "p.npz").stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------- name → array, and nothing else

def test_save_refuses_what_could_not_round_trip_and_writes_nothing(tmp_path):
    path = tmp_path / "m.npz"
    cases = [
        ({"a": np.zeros(1), "a.npy": np.ones(1)}, ValueError, r"key 'a.npy' ends in '.npy'.*'a.npy' and 'a'"),
        ({"w.npy": np.zeros(1)}, ValueError, r"key 'w.npy' ends in '.npy'"),
        ({"a\x00b": np.zeros(1)}, ValueError, "NUL"),
        ({("conv", 1): np.zeros(1)}, TypeError, r"non-empty string; got \('conv', 1\)"),
        ({"": np.zeros(1)}, TypeError, "non-empty string"),
        ({"lr": 0.1}, TypeError, r"entry 'lr' is a float; a checkpoint holds arrays or Tensors only"),
        ({"w": [1.0, 2.0]}, TypeError, r"entry 'w' is a list"),
        ({"name": "teacher"}, TypeError, r"entry 'name' is a str"),
        ({"n": np.float32(1.5)}, TypeError, r"entry 'n' is a float32"),
        ({"none": None}, TypeError, r"entry 'none' is a NoneType"),
        ({"obj": np.array([1, "a"], dtype=object)}, TypeError, r"entry 'obj' holds Python objects"),
        ({"rec": np.zeros(2, dtype=[("x", "f4"), ("y", "i4")])}, TypeError, r"entry 'rec' has the structured dtype"),
    ]
    for state, error, match in cases:
        with pytest.raises(error, match=match):
            mk.save(state, path)
        assert os.listdir(tmp_path) == [], state
    with pytest.raises(TypeError, match="compress must be True or False"):
        mk.save({"a": np.zeros(1)}, path, compress="yes")


def test_unusual_but_valid_names_and_dtypes_round_trip_exactly(tmp_path):
    state = OrderedDict([
        ("a", np.arange(3, dtype=np.int8)),
        ("a.np", np.ones(2, dtype=np.float16)),       # not '.npy': its own entry
        ("npy", np.zeros((0, 4), dtype=np.float32)),  # an empty array
        ("block/0.weight", np.eye(2, dtype=np.float64)),
        ("../escape", np.array(True)),
        ("poids.é", np.array([1 + 2j], dtype=np.complex64)),
        ("labels", np.array(["cat", "dog"])),
        ("when", np.array(["2024-01-02"], dtype="datetime64[D]")),
        ("fortran", np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3))),
        ("big_endian", np.arange(4, dtype=">i4")),
    ])
    for compress in (False, True):
        mk.save(state, tmp_path / "odd.npz", compress=compress)
        loaded = mk.load(tmp_path / "odd.npz")
        assert list(loaded) == list(state)
        for k, v in state.items():
            assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
            np.testing.assert_array_equal(loaded[k], v)
            assert loaded[k].flags.writeable, k  # a normal array the caller may change
        with np.load(tmp_path / "odd.npz", allow_pickle=False) as npz:  # still a plain NumPy archive
            np.testing.assert_array_equal(npz["fortran"], state["fortran"])


def _zip(path, members):
    """An .npz-like zip written member by member: {member name: bytes}."""
    import warnings
    import zipfile
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": written on purpose by one test
        for name, data in members:
            zf.writestr(name, data)


def _npy(array):
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_load_refuses_members_that_are_not_npy_arrays(tmp_path):
    path = tmp_path / "extra.npz"
    _zip(path, [("w.npy", _npy(np.ones(2))), ("notes.txt", b"trained on MNIST")])
    with pytest.raises(mk.CheckpointError, match=r"member 'notes.txt' of .*extra.npz.* is not a .npy array"):
        mk.load(path)
    _zip(path, [("w.npy", _npy(np.ones(2))), ("w.npy", _npy(np.zeros(2)))])
    with pytest.raises(mk.CheckpointError, match=r"holds the entry 'w' twice"):
        mk.load(path)
    _zip(path, [("rec.npy", _npy(np.zeros(2, dtype=[("x", "f4")])))])
    with pytest.raises(mk.CheckpointError, match=r"entry 'rec' .* is a structured array"):
        mk.load(path)


def test_a_member_whose_header_does_not_match_its_data_is_damaged_not_pickled(tmp_path):
    good = _npy(np.arange(4, dtype=np.float64))
    short = good[:-8]                                  # the header says 4 floats, 3 follow
    longer = good + b"\0" * 8                          # ... or 5 follow
    wrong_shape = _npy(np.arange(3, dtype=np.float64))[:-24] + good[-32:]
    for data in (short, longer, wrong_shape):
        path = tmp_path / "bad.npz"
        _zip(path, [("ok.npy", _npy(np.ones(1))), ("w.npy", data)])  # a valid zip: the CRC matches these bytes
        with pytest.raises(mk.CheckpointError) as err:
            mk.load(path)
        msg = str(err.value)
        assert "entry 'w'" in msg and "bad.npz" in msg and "damaged" in msg and "pickle" not in msg, msg
    assert issubclass(mk.CheckpointError, ValueError)


def test_load_paths_that_are_not_checkpoint_files(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        mk.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere.* does not exist"):
        mk.save({"a": np.zeros(1)}, tmp_path / "nowhere" / "m.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        mk.save({"a": np.zeros(1)}, tmp_path / "dir.npz")
    assert sorted(os.listdir(tmp_path)) == ["dir.npz"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_keeps_its_permission_error(tmp_path):
    path = tmp_path / "locked.npz"
    mk.save({"a": np.zeros(1)}, path)
    path.chmod(0)
    try:
        with pytest.raises(PermissionError):
            mk.load(path)
    finally:
        path.chmod(0o600)


# --------------------------------------------------------------------------- load_state_dict: no silent casts

class IntNet(nn.Module):
    """A layer holding int8 weights, as minikd.quant.convert_to_integer's layers do."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(np.array([1, -2, 3], dtype=np.int8), requires_grad=False)
        self.register_buffer("zero_point", np.zeros((), np.int32))
        self.register_buffer("scale", np.ones(3, np.float32))


def test_a_float_into_an_integer_weight_is_refused_naming_the_key_and_the_dtypes():
    net = IntNet()
    with pytest.raises(ValueError, match=r"weight: checkpoint dtype float64 cannot be loaded into the model's int8 "
                                         r"\(a float cannot be stored in an integer tensor"):
        net.load_state_dict({"weight": np.array([200.7, 0.2, -1.0]), "zero_point": np.zeros((), np.int32),
                             "scale": np.ones(3, np.float32)})
    np.testing.assert_array_equal(net.weight.numpy(), [1, -2, 3])  # unchanged (200.7 used to become −56)


def test_integer_loads_must_fit_and_same_kind_loads_still_work():
    net = IntNet()
    ok = {"weight": np.array([127, -128, 0], dtype=np.int64), "zero_point": np.array(5), "scale": np.full(3, 0.5)}
    net.load_state_dict(ok)  # int64 → int8 in range, Python-int array → int32, float64 → float32
    np.testing.assert_array_equal(net.weight.numpy(), [127, -128, 0])
    assert net.weight.dtype == np.int8 and int(net.zero_point.numpy()) == 5 and net.scale.dtype == np.float32
    bad = {**ok, "weight": np.array([128, 0, 0], dtype=np.int64)}
    with pytest.raises(ValueError, match=r"weight: .*\(values from 0 to 128 do not fit its range \[-128, 127\]"):
        net.load_state_dict(bad)
    np.testing.assert_array_equal(net.weight.numpy(), [127, -128, 0])
    with pytest.raises(ValueError, match=r"scale: checkpoint dtype float64 .* float32 \(finite values as large as "
                                         r"1e\+300 overflow float32"):
        net.load_state_dict({**ok, "scale": np.array([1.0, 1e300, 2.0])})


def test_every_conversion_problem_names_its_key_and_nothing_is_loaded():
    mk.manual_seed(0)
    layer = nn.Linear(2, 2)
    before = layer.state_dict()
    with pytest.raises(ValueError) as err:
        layer.load_state_dict({"weight": np.array([["a", "b"], ["c", "d"]]), "bias": np.full(2, 1 + 1j)})
    msg = str(err.value)
    assert "weight: checkpoint dtype <U1 cannot be loaded into the model's float32 (strings cannot be stored" in msg
    assert "bias: checkpoint dtype complex128 cannot be loaded into the model's float32 (complex numbers" in msg
    with pytest.raises(ValueError, match=r"weight: cannot be read as an array \(ValueError: .*inhomogeneous"):
        layer.load_state_dict({"weight": [[1.0, 2.0], [3.0]], "bias": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"wrong shapes: weight: checkpoint has shape \(3,\)"):
        layer.load_state_dict({"weight": np.zeros(3), "bias": np.ones(2, np.float32)})
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # the bias was fine each time, yet not loaded
    with pytest.raises(TypeError, match=r"expects a mapping name → array; got str \(load a file with "
                                        r"load_state_dict\(mk.load\(path\)\)\)"):
        layer.load_state_dict("model.npz")


def test_a_float_checkpoint_into_an_integer_model_is_refused():
    from minikd.models import TeacherModel
    from minikd.quant import convert_to_integer, quantize_model

    mk.manual_seed(0)
    teacher = TeacherModel().eval()
    calibration = [np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)]
    integer = convert_to_integer(quantize_model(teacher, 8, 8, calibration))
    weight = integer.fc1.weight.numpy().copy()
    with pytest.raises(ValueError) as err:
        integer.load_state_dict(teacher.state_dict(), strict=False)
    msg = str(err.value)
    for key in ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"):
        assert f"{key}: checkpoint dtype float32 cannot be loaded into the model's int8" in msg, key
    np.testing.assert_array_equal(integer.fc1.weight.numpy(), weight)  # not zeros
