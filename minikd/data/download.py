"""Fetch MNIST's four ``.gz`` files from public mirrors, each checked against its known MD5.

Every download streams into a temporary ``*.part`` file in the target folder; only a file whose
MD5 matches is renamed (atomically) to its final name, so a failed, corrupt or interrupted
download never leaves a partial file behind — nor an empty folder: the folders a download
created are removed again when it fails before any file arrived. Mirrors are tried in order; the environment
variable ``MINIKD_MNIST_MIRRORS`` (comma-separated base URLs, ``file://`` works too) replaces them.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .idx import IDXError

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MD5 = {  # of the original .gz files, as published (and as the files in shared/data/mnist hash to)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CHUNK = 1 << 16


class DownloadError(FileNotFoundError, RuntimeError):
    """MNIST files that are missing and could not be downloaded.

    A ``FileNotFoundError`` (the files are not there) and a ``RuntimeError``. Attributes:
    ``missing`` (file names), ``folders`` (where they were looked for) and ``failures``
    (``(url, reason)`` pairs, one per mirror tried).
    """

    def __init__(self, message: str, missing=(), folders=(), failures=()):
        super().__init__(message)
        self.missing, self.folders, self.failures = list(missing), list(folders), list(failures)


class ChecksumError(IDXError):
    """A local file whose MD5 differs from the published one."""


def mirrors_from_env() -> list[str]:
    """The mirrors to try: ``MINIKD_MNIST_MIRRORS`` (comma-separated) if set, else :data:`MIRRORS`."""
    env = os.environ.get("MINIKD_MNIST_MIRRORS", "")
    return [m.strip() for m in env.split(",") if m.strip()] or list(MIRRORS)


def md5sum(path) -> str:
    """The hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_md5(path) -> None:
    """Raise :class:`ChecksumError` if the file's MD5 is not the published one for its name."""
    path = Path(path)
    expected = MD5.get(path.name)
    if expected is None:
        raise KeyError(f"no known MD5 for {path.name!r}; known: {', '.join(MD5)}")
    got = md5sum(path)
    if got != expected:
        raise ChecksumError(f"{path}: MD5 is {got}, expected {expected}; the file is corrupt or not the original "
                            "MNIST file — delete it and provide it again (or let load_mnist download it)")


def _reason(e: BaseException, timeout: float) -> str:
    """A short, readable reason why one mirror failed."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP error {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            return f"timed out after {timeout} s: {e}"
        return f"no network or server unreachable: {e}"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout} s: {e}"
    return f"{type(e).__name__}: {e}"


def _fetch_one(url: str, name: str, folder: Path, expected: str, timeout: float, progress: bool) -> str | None:
    """Stream ``url`` into ``folder/name`` via a temp file; ``None`` on success, else the reason it failed."""
    try:
        tmp = tempfile.NamedTemporaryFile(dir=folder, prefix=name + ".", suffix=".part", delete=False)
    except OSError as e:
        return f"cannot write into {folder}: {e}"
    try:
        h = hashlib.md5()
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                      disable=not progress or total is None, leave=False) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    tmp.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        got = h.hexdigest()
        if got != expected:
            return f"checksum mismatch: got {got} expected {expected}"
        os.chmod(tmp.name, 0o644)  # a temp file is private (0600); the data file is not
        os.replace(tmp.name, folder / name)
        return None
    except Exception as e:  # every failure of one mirror is a reason to try the next
        return _reason(e, timeout)
    finally:  # also on KeyboardInterrupt: never leave a partial or bad file behind
        if os.path.exists(tmp.name):
            os.remove(tmp.name)


def _fetch(name, folder, mirrors, timeout, progress) -> list[tuple[str, str]]:
    """Try each mirror for ``name``; the ``(url, reason)`` failures, empty once one succeeded."""
    if name not in MD5:
        raise KeyError(f"no known MD5 for {name!r}; known: {', '.join(MD5)}")
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        if progress:
            print(f"minikd: downloading {url} into {folder}", file=sys.stderr)
        reason = _fetch_one(url, name, Path(folder), MD5[name], timeout, progress)
        if reason is None:
            return []
        failures.append((url, reason))
    return failures


def _message(missing, folders, failures, target=None) -> str:
    """The one message a failed or impossible download ends in: what, where, why, and how to fix it."""
    lines = ["MNIST files missing: " + ", ".join(missing) + ".",
             "Looked for them in: " + "; ".join(str(d) for d in folders) + "."]
    if failures:
        lines.append(f"Downloading them into {target} failed:" if target else "Downloading them failed:")
        lines += [f"  {url}: {reason}" for url, reason in failures]
    lines.append("To provide them: copy the four files (" + ", ".join(MD5) + ") into one of those folders, "
                 "or set MINIKD_DATA (or pass --data-dir) to a folder that holds them. Other mirrors can be "
                 "given as comma-separated base URLs in MINIKD_MNIST_MIRRORS.")
    return "\n".join(lines)


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the folders this created, deepest first."""
    created, d = [], folder
    while not d.exists() and d != d.parent:
        created.append(d)
        d = d.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders :func:`_make_folder` created, deepest first, as long as they are empty."""
    for d in created:
        try:
            d.rmdir()
        except OSError:  # not empty (a file did arrive) or not ours to remove: keep it and its parents
            return


def download_file(name: str, folder, mirrors=None, timeout: float = 30, progress: bool = True) -> Path:
    """Download one MNIST file into ``folder``, trying each mirror until one gives the right MD5.

    Returns the file's path; raises :class:`DownloadError` listing every mirror's failure
    (and leaves no folder behind that it created).
    """
    folder = Path(folder)
    mirrors = mirrors_from_env() if mirrors is None else list(mirrors)
    created = _make_folder(folder)
    try:
        failures = _fetch(name, folder, mirrors, timeout, progress)
    except BaseException:  # KeyboardInterrupt included
        _remove_empty(created)
        raise
    if failures:
        _remove_empty(created)
        raise DownloadError(_message([name], [folder], failures, folder), [name], [folder], failures)
    return folder / name


def download_mnist(folder, files=None, mirrors=None, timeout: float = 30, progress: bool = True,
                   looked_in=None) -> list[Path]:
    """Download those of ``files`` (default: all four) that ``folder`` lacks; their paths.

    ``looked_in`` lists the folders already searched, for the error message (default: ``[folder]``).
    Stops at the first file that no mirror could provide and raises :class:`DownloadError`
    naming every file still missing; a folder it created and that stayed empty is removed.
    """
    folder = Path(folder)
    files = list(MD5) if files is None else list(files)
    looked_in = [folder] if looked_in is None else list(looked_in)
    mirrors = mirrors_from_env() if mirrors is None else list(mirrors)
    missing = [name for name in files if not (folder / name).is_file()]
    if not missing:
        return [folder / name for name in files]
    try:
        created = _make_folder(folder)
    except OSError as e:
        failures = [(str(folder), f"cannot create the folder: {e}")]
        raise DownloadError(_message(missing, looked_in, failures, folder), missing, looked_in, failures) from None
    try:
        for i, name in enumerate(missing):
            failures = _fetch(name, folder, mirrors, timeout, progress)
            if failures:
                still = missing[i:]
                raise DownloadError(_message(still, looked_in, failures, folder), still, looked_in, failures)
    except BaseException:
        _remove_empty(created)
        raise
    return [folder / name for name in files]
