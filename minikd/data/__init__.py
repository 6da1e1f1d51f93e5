"""Data: MNIST's IDX files (found locally or downloaded, MD5-checked) and a minibatch loader."""

from .download import MD5, MIRRORS, ChecksumError, DownloadError, check_md5, download_file, download_mnist, md5sum
from .idx import IDXError, read_idx
from .loader import DataLoader
from .mnist import MEAN, STD, candidate_dirs, find_data_dir, load_mnist, normalize

__all__ = ["MD5", "MEAN", "MIRRORS", "STD", "ChecksumError", "DataLoader", "DownloadError", "IDXError",
           "candidate_dirs", "check_md5", "download_file", "download_mnist", "find_data_dir", "load_mnist", "md5sum",
           "normalize", "read_idx"]
