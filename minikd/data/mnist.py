"""MNIST from its four standard IDX ``.gz`` files.

Where the files are looked for, in order: the ``data_dir`` argument (``--data-dir``), the
environment variable ``MINIKD_DATA``, and ``~/.cache/minikd/mnist``. Files that none of these
folders holds are downloaded (MD5-checked) into the first of them; see :mod:`.download`.
When they cannot be had, the error names every one of the four files that no folder holds,
not only the two of the split being loaded. (The examples are stricter about ``--data-dir``:
a folder given there must hold all four files; see :func:`missing_files`.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..checks import check_bool
from .download import DownloadError, _message, check_md5, download_mnist
from .idx import IDXError, read_idx

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MEAN, STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]


def candidate_dirs(data_dir=None) -> list[Path]:
    """The folders to look in, in order: ``data_dir``, ``$MINIKD_DATA``, ``~/.cache/minikd/mnist``."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
    if os.environ.get("MINIKD_DATA"):
        dirs.append(Path(os.environ["MINIKD_DATA"]))
    dirs.append(Path.home() / ".cache" / "minikd" / "mnist")
    return dirs


ALL_FILES = tuple(name for pair in FILES.values() for name in pair)  # the four, in the standard order


def missing_files(folder, files=ALL_FILES) -> list[str]:
    """Those of ``files`` (default: all four) that ``folder`` does not hold; [] when it holds them all."""
    folder = Path(folder)
    return [name for name in files if not (folder / name).is_file()]


def _first_holding(dirs, files) -> Path | None:
    """The first of ``dirs`` that holds every one of ``files``, or ``None``."""
    return next((d for d in dirs if not missing_files(d, files)), None)


def _nowhere(dirs, files=ALL_FILES) -> list[str]:
    """Those of ``files`` that none of ``dirs`` holds."""
    return [name for name in files if not any((d / name).is_file() for d in dirs)]


def _naming_all_missing(e: DownloadError, dirs, target) -> DownloadError:
    """``e``, or the same error naming every MNIST file that no folder holds — not only the split's."""
    missing = [name for name in ALL_FILES if name in e.missing or name in _nowhere(dirs)]
    missing += [name for name in e.missing if name not in missing]
    if missing == list(e.missing):
        return e
    return DownloadError(_message(missing, e.folders, e.failures, target), missing, e.folders, e.failures)


def find_data_dir(data_dir=None, files=None) -> Path:
    """The first candidate folder that holds ``files`` (default: all four), or a clear error. Never downloads.

    The error names every MNIST file that none of the folders holds (the four, when none is there).
    """
    dirs = candidate_dirs(data_dir)
    needed = list(ALL_FILES) if files is None else list(files)
    folder = _first_holding(dirs, needed)
    if folder is not None:
        return folder
    missing = _nowhere(dirs, list(ALL_FILES) + [name for name in needed if name not in ALL_FILES])
    what = (f"Missing: {', '.join(missing)}." if missing else
            f"No one folder holds all of {', '.join(needed)}; they must sit side by side.")
    raise FileNotFoundError(
        f"MNIST not found. {what} Looked for them in: " + "; ".join(str(d) for d in dirs)
        + ". Put them in one of those folders, or point MINIKD_DATA / --data-dir at a folder "
        "that holds them (load_mnist(..., download=True) downloads them).")


def mnist_dir(data_dir=None, download: bool = True) -> Path:
    """The folder that holds all four MNIST files: the first candidate that does, else the
    first candidate once the missing files were downloaded into it (``download=True``).

    Raises :class:`~.download.DownloadError` (``download=True``) or ``FileNotFoundError``
    naming every missing file, and leaves no empty folder behind.
    """
    dirs = candidate_dirs(data_dir)
    folder = _first_holding(dirs, ALL_FILES)
    if folder is not None:
        return folder
    if not check_bool(download, "mnist_dir", "download"):
        find_data_dir(data_dir)  # raises its clear FileNotFoundError
    try:
        download_mnist(dirs[0], ALL_FILES, looked_in=dirs)
    except DownloadError as e:
        raise _naming_all_missing(e, dirs, dirs[0]) from None
    return dirs[0]


def load_mnist(split: str = "train", data_dir=None, download: bool = True,
               verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 images (N, 28, 28) and int64 labels (N,) of ``split``.

    If no candidate folder holds the split's two files, they are downloaded into the first
    candidate (``download=True``; a :class:`~.download.DownloadError` if that fails) or a
    ``FileNotFoundError`` is raised (``download=False``); either names every MNIST file that
    no folder holds, the other split's too, so one fix provides them all. Downloads are always MD5-checked;
    ``verify=True`` also checks the MD5 of files already there (a ``ChecksumError`` names a bad one).
    """
    if not isinstance(split, str) or split not in FILES:
        raise ValueError(f"load_mnist: split must be one of {sorted(FILES)}; got {split!r}")
    image_file, label_file = FILES[split]
    dirs = candidate_dirs(data_dir)
    folder = _first_holding(dirs, FILES[split])
    if folder is None:
        if not check_bool(download, "load_mnist", "download"):
            find_data_dir(data_dir, FILES[split])  # raises its clear FileNotFoundError
        folder = dirs[0]
        try:
            download_mnist(folder, FILES[split], looked_in=dirs)
        except DownloadError as e:
            raise _naming_all_missing(e, dirs, folder) from None
    if verify:
        for name in FILES[split]:
            check_md5(folder / name)
    images = read_idx(folder / image_file, expect_ndim=3)
    labels = read_idx(folder / label_file, expect_ndim=1)
    if images.shape[1:] != (28, 28):
        raise IDXError(f"{folder / image_file}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise IDXError(f"{folder}: {len(images)} images in {image_file} but {len(labels)} labels in {label_file}; "
                       "the two files must hold the same number of items")
    if labels.size and labels.max() > 9:
        raise IDXError(f"{folder / label_file}: label {labels.max()} is not a digit 0-9")
    return images, labels.astype(np.int64)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) → float32 (N, 1, 28, 28) with MNIST's mean and std: (x/255 − μ)/σ.

    ``images``: raw pixels as :func:`load_mnist` gives them, uint8 (N, H, W). TypeError for any
    other dtype (float pixels already in [0, 1] would be divided by 255 again, normalised ones
    normalised twice), ValueError for another number of axes."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise TypeError(f"normalize: expects raw MNIST pixels, a uint8 array (N, H, W) as load_mnist gives them; got "
                        f"{getattr(images, 'dtype', type(images).__name__)} (already scaled or normalised?)")
    if images.ndim != 3:
        raise ValueError(f"normalize: expects images (N, H, W); got shape {images.shape}")
    # the formula on each of the 256 possible pixel values, in float32, then looked up per pixel:
    # the same numbers as computing it on every pixel, in one pass instead of four
    lut = (np.arange(256, dtype=np.float32) / 255.0 - MEAN) / STD
    return lut[images][:, None, :, :]
