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
