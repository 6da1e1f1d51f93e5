"""The acceptance run of the engine core: an MLP on the real MNIST, one epoch, ≥ 97 %."""

import importlib.util
from pathlib import Path

import pytest

from minikd.data import find_data_dir


def _have_mnist():
    try:
        find_data_dir()
        return True
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _have_mnist(), reason="real MNIST files not found (set MINIKD_DATA)")
def test_mlp_reaches_97_percent_in_one_epoch():
    path = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"
    spec = importlib.util.spec_from_file_location("mnist_mlp", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    accuracy, seconds = example.train(epochs=1, progress=False)
    print(f"MLP test accuracy {accuracy:.4f} after one epoch, {seconds:.1f} s")
    assert accuracy >= 0.97
