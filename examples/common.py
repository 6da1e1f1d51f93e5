"""Small helpers the MNIST examples share: evaluation, the lecture's training loop, atomic writes.

The examples put ``examples/`` first on ``sys.path`` when run as scripts, so they import this
module as ``common``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm import tqdm

import minikd as mk
from minikd import functional as F
from minikd import optim
from minikd.data import DataLoader


def evaluate(model, x, y, batch_size: int = 1000) -> float:
    """Test accuracy in eval mode, without a graph; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    correct = 0
    with mk.no_grad():
        for xb, yb in DataLoader(x, y, batch_size):
            correct += int((model(xb).numpy().argmax(axis=1) == yb.numpy()).sum())
    model.train(was_training)
    return correct / len(y)


def train_ce(model, x, y, epochs: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, progress=True,
             name: str = "model"):
    """The lecture's training: Adam, cross-entropy, shuffled minibatches, ``epochs`` passes."""
    opt = optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        batches = DataLoader(x, y, batch_size, shuffle=True, seed=seed + epoch)
        for xb, yb in tqdm(batches, desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False, disable=not progress):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Save a matplotlib figure through a temporary file and a rename: never half a PNG."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


def write_json(obj, path: Path) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    os.replace(tmp, path)
