"""Data: MNIST's IDX files and a minibatch loader."""

from .idx import IDXError, read_idx
from .loader import DataLoader
from .mnist import MEAN, STD, find_data_dir, load_mnist, normalize

__all__ = ["MEAN", "STD", "DataLoader", "IDXError", "find_data_dir", "load_mnist", "normalize", "read_idx"]
