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


@pytest.mark.parametrize("size, message", [
    ("1", "--batch-size 1: the MLP's BatchNorm needs at least 2 images per training batch; expected ≥ 2"),
    ("59999", "--batch-size 59999: leaves a last batch of 1 image (60,000 training images = 1 × 59999 + 1)"),
])
def test_a_batch_size_that_leaves_batchnorm_one_image_is_refused_before_any_work(capsys, size, message):
    """BatchNorm in training needs two images or more per batch: a batch of 1, or a last batch of 1 of the
    60,000 training images, is refused by the checks (one error line, status 2), not a crash in epoch 1."""
    example = load_example("mnist_mlp")
    with pytest.raises(SystemExit) as info:
        example.parse_args(["--batch-size", size])
    assert info.value.code == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], captured.err
    assert captured.out == ""


def test_a_batch_size_that_leaves_two_images_or_more_is_accepted():
    example = load_example("mnist_mlp")
    for size in (2, 32, 59998, 60000, 70000):       # 60,000 = 1 × 59998 + 2; 70,000: one batch of all 60,000
        assert example.parse_args(["--batch-size", str(size)]).batch_size == size
