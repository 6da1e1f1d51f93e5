"""The acceptance run of the engine core: an MLP on the real MNIST, one epoch, ≥ 97 %."""

import pytest

from tests.util import load_example, needs_mnist


@pytest.mark.slow
@needs_mnist
def test_mlp_reaches_97_percent_in_one_epoch():
    example = load_example("mnist_mlp")
    accuracy, seconds = example.train(epochs=1, progress=False)
    print(f"MLP test accuracy {accuracy:.4f} after one epoch, {seconds:.1f} s")
    assert accuracy >= 0.97
