"""A first network: an MLP on MNIST, trained for one epoch with Adam.

    python examples/mnist_mlp.py [--epochs 1] [--data-dir PATH]

784 → 512 (batch norm, ReLU) → 10, Adam at 1e-3 with a cosine decay over the run,
batch 32. Expect about 97.4 % test accuracy after one epoch, in a few seconds on a
laptop CPU. (Without the batch norm and the decay, one epoch gives ≈ 96.5 %.)

The training loop is ``fit`` in ``examples/common.py``, the one every example uses: for each
minibatch, the loss, ``opt.zero_grad()``, ``loss.backward()``, ``opt.step()``.
"""

import argparse

import numpy as np
from common import (
    DATA_DIR_HELP,
    ce_step,
    check_data_dir,
    check_training_options,
    evaluate,
    fit,
    load_mnist_data,
    run_cli,
)

import minikd as mk
from minikd import nn, optim
from minikd.data import DataLoader, normalize

TRAIN_IMAGES = 60_000   # MNIST's training set: train() reads it all (no subset)


def make_mlp(hidden: int = 512) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


def train(epochs=1, batch_size=32, lr=1e-3, seed=0, data_dir=None, progress=True):
    """Train the MLP with :func:`common.fit` (cross-entropy, Adam, the learning rate decayed every
    minibatch); return (test accuracy, seconds of training)."""
    mk.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_mnist_data(data_dir)  # prints the folder it read
    train_loader = DataLoader(normalize(x_train), y_train, batch_size, shuffle=True, seed=seed)
    model = make_mlp()
    opt = optim.Adam(model.parameters(), lr=lr)
    schedule = optim.CosineAnnealingLR(opt, T_max=epochs * len(train_loader))  # stepped every batch
    _, seconds = fit(model, opt, ce_step, train_loader, epochs, schedule=schedule, progress=progress)
    return evaluate(model, normalize(x_test), y_test), seconds


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    args = p.parse_args(argv)
    # every check before any work: a bad option is one line and exit status 2, never a traceback
    check_training_options(p, args)
    check_batch_size(p, args.batch_size)
    check_data_dir(p, args.data_dir)
    return args


def check_batch_size(p, batch_size: int, n: int = TRAIN_IMAGES) -> None:
    """The MLP has BatchNorm, which in training needs at least two images per batch: ``--batch-size`` must be
    ≥ 2, and must not leave a last batch of a single image of the ``n`` training images (no batch is dropped)."""
    if batch_size < 2:
        p.error(f"--batch-size {batch_size}: the MLP's BatchNorm needs at least 2 images per training batch; "
                "expected ≥ 2")
    if n % batch_size == 1:
        near = [b for b in (batch_size - 1, batch_size + 1) if b >= 2 and n % b != 1]
        p.error(f"--batch-size {batch_size}: leaves a last batch of 1 image ({n:,} training images = "
                f"{n // batch_size:,} × {batch_size} + 1), and the MLP's BatchNorm needs at least 2 per batch; "
                "expected a batch size that leaves no last image alone"
                + (f" (e.g. {' or '.join(map(str, near))})" if near else ""))


def main(argv=None):
    args = parse_args(argv)
    acc, seconds = train(args.epochs, args.batch_size, args.lr, args.seed, args.data_dir)
    print(f"MLP 784-512-10: test accuracy {100 * acc:.2f} % after {args.epochs} epoch(s), "
          f"{seconds:.1f} s of training ({np.round(60000 * args.epochs / seconds):.0f} images/s)")


if __name__ == "__main__":
    run_cli(main)
