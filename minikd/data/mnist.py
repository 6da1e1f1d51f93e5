"""MNIST from its four standard IDX ``.gz`` files.

Where the files are looked for, in order: the ``data_dir`` argument, the
environment variable ``MINIKD_DATA``, and ``~/.cache/minikd/mnist``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .idx import IDXError, read_idx

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MEAN, STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]


def candidate_dirs(data_dir=None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    if os.environ.get("MINIKD_DATA"):
        dirs.append(Path(os.environ["MINIKD_DATA"]))
    dirs.append(Path.home() / ".cache" / "minikd" / "mnist")
    return dirs


def find_data_dir(data_dir=None) -> Path:
    """The first candidate folder that holds all four files, or a clear error."""
    dirs = candidate_dirs(data_dir)
    needed = [name for pair in FILES.values() for name in pair]
    for d in dirs:
        if all((d / name).is_file() for name in needed):
            return d
    raise FileNotFoundError(
        "MNIST not found. Looked for " + ", ".join(needed) + " in: " + "; ".join(str(d) for d in dirs)
        + ". Put the four files in one of those folders, or point MINIKD_DATA / --data-dir at a folder "
        "that holds them.")


def load_mnist(split: str = "train", data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 images (N, 28, 28) and int64 labels (N,) of ``split``."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}; got {split!r}")
    folder = find_data_dir(data_dir)
    image_file, label_file = FILES[split]
    images = read_idx(folder / image_file, expect_ndim=3)
    labels = read_idx(folder / label_file, expect_ndim=1)
    if len(images) != len(labels):
        raise IDXError(f"{folder}: {len(images)} images in {image_file} but {len(labels)} labels in {label_file}")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{folder / label_file}: label {labels.max()} is not a digit 0-9")
    return images, labels.astype(np.int64)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) → float32 (N, 1, 28, 28) with MNIST's mean and std: (x/255 − μ)/σ."""
    x = images.astype(np.float32) / 255.0
    return ((x - MEAN) / STD)[:, None, :, :]
