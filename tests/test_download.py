"""Downloading MNIST: file:// mirrors in a temp folder stand in for the servers; no test touches the network."""

import hashlib
import urllib.error
import urllib.request

import numpy as np
import pytest

import minikd.data.download as dl
from minikd.data import ChecksumError, DownloadError, download_file, download_mnist, load_mnist, md5sum
from tests.test_data import fake_mnist, write_idx

NAMES = list(dl.MD5)
TRAIN = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real ~/.cache, no MINIKD_* settings from outside, and any real network access fails the test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MINIKD_DATA", raising=False)
    monkeypatch.delenv("MINIKD_MNIST_MIRRORS", raising=False)
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        assert str(url).startswith("file:"), f"a test tried the network: {url}"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder of small fake MNIST files served as a file:// mirror, with their MD5s made the known ones."""
    folder = tmp_path / "mirror"
    fake_mnist(folder, n_train=5, n_test=3)
    for name in NAMES:
        monkeypatch.setitem(dl.MD5, name, md5sum(folder / name))
    return folder


def bad_mirror(tmp_path, name="bad"):
    """A mirror whose files have the right names but the wrong content."""
    folder = tmp_path / name
    folder.mkdir()
    for n in NAMES:
        (folder / n).write_bytes(b"not the file you are looking for")
    return folder


def leftovers(folder):
    """The ``.part`` files left in ``folder`` (none when the folder itself is gone)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part")) if folder.exists() else []


def test_md5sum_streams_the_whole_file(tmp_path):
    data = bytes(range(256)) * 1000  # several chunks
    (tmp_path / "f").write_bytes(data)
    assert md5sum(tmp_path / "f") == hashlib.md5(data).hexdigest()


def test_download_from_a_file_mirror_then_load(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("MINIKD_MNIST_MIRRORS", mirror.as_uri())
    x, y = load_mnist("train", data_dir=tmp_path / "data")
    assert x.shape == (5, 28, 28) and y.shape == (5,)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == TRAIN  # only the split asked for
    x2, _ = load_mnist("train", data_dir=tmp_path / "data", verify=True)  # now local, and MD5-clean
    np.testing.assert_array_equal(x, x2)


def test_without_a_folder_it_downloads_into_the_per_user_cache(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("MINIKD_MNIST_MIRRORS", mirror.as_uri())
    x, _ = load_mnist("test")
    assert len(x) == 3
    cache = tmp_path / "home" / ".cache" / "minikd" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_minikd_data_is_the_download_target_when_no_folder_is_given(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("MINIKD_MNIST_MIRRORS", f"{(tmp_path / 'nowhere').as_uri()}, {mirror.as_uri()}")
    assert len(load_mnist("train")[0]) == 5
    assert sorted(p.name for p in (tmp_path / "env").iterdir()) == TRAIN
    monkeypatch.setattr(dl, "_fetch", lambda *a: pytest.fail("files already there must not be downloaded"))
    assert len(load_mnist("train")[0]) == 5


def test_download_mnist_fetches_only_the_missing_files(tmp_path, mirror):
    out = tmp_path / "out"
    out.mkdir()
    (out / TRAIN[0]).write_bytes((mirror / TRAIN[0]).read_bytes())
    (mirror / TRAIN[0]).unlink()  # would fail if it were asked for
    paths = download_mnist(out, mirrors=[mirror.as_uri()], progress=False)
    assert [p.name for p in paths] == NAMES and all(md5sum(p) == dl.MD5[p.name] for p in paths)


def test_a_mirror_with_a_bad_file_is_skipped_for_the_next(tmp_path, mirror):
    bad = bad_mirror(tmp_path)
    out = tmp_path / "out"
    path = download_file(TRAIN[1], out, mirrors=[bad.as_uri(), mirror.as_uri()], progress=False)
    assert path == out / TRAIN[1] and md5sum(path) == dl.MD5[TRAIN[1]]
    assert path.stat().st_mode & 0o777 == 0o644  # not the temp file's private 0600
    assert sorted(p.name for p in out.iterdir()) == [TRAIN[1]] and not leftovers(out)


def test_wrong_checksum_on_every_mirror_is_an_error_and_leaves_no_partial_file(tmp_path, mirror):
    bad1, bad2 = bad_mirror(tmp_path, "bad1"), bad_mirror(tmp_path, "bad2")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DownloadError) as info:
        download_file(TRAIN[0], out, mirrors=[bad1.as_uri(), bad2.as_uri()], progress=False)
    msg = str(info.value)
    got = hashlib.md5(b"not the file you are looking for").hexdigest()
    assert TRAIN[0] in msg and msg.count(f"checksum mismatch: got {got} expected {dl.MD5[TRAIN[0]]}") == 2
    assert (bad1 / TRAIN[0]).as_uri() in msg and (bad2 / TRAIN[0]).as_uri() in msg
    assert list(out.iterdir()) == []  # neither the .part file nor a bad final file
    assert info.value.missing == [TRAIN[0]] and len(info.value.failures) == 2


def test_no_network_ends_in_one_clear_message(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "env"))
    with pytest.raises(DownloadError) as info:
        load_mnist("train", data_dir=tmp_path / "explicit")
    e, msg = info.value, str(info.value)
    assert isinstance(e, FileNotFoundError) and isinstance(e, RuntimeError)
    # which files are missing
    assert "MNIST files missing: " + ", ".join(TRAIN) in msg
    # where they were looked for, in order
    folders = [tmp_path / "explicit", tmp_path / "env", tmp_path / "home" / ".cache" / "minikd" / "mnist"]
    assert "Looked for them in: " + "; ".join(map(str, folders)) in msg
    # each mirror tried, with the reason
    for m in dl.MIRRORS:
        assert f"{m}{TRAIN[0]}: no network or server unreachable: " in msg
    assert "Temporary failure in name resolution" in msg
    # how to provide them
    assert "copy the four files" in msg and "MINIKD_DATA" in msg and "--data-dir" in msg
    assert "MINIKD_MNIST_MIRRORS" in msg
    assert not leftovers(tmp_path / "explicit")


def test_an_unreachable_file_mirror_is_reported_like_no_network(tmp_path):
    with pytest.raises(DownloadError, match="no network or server unreachable: .*No such file"):
        download_mnist(tmp_path / "out", files=TRAIN, mirrors=[(tmp_path / "nowhere").as_uri()], progress=False)
    assert not (tmp_path / "out").exists()  # no partial file, and not the empty folder either


def test_an_interrupted_download_leaves_no_partial_file(tmp_path, mirror, monkeypatch):
    class Interrupted:
        headers = {"Content-Length": "1000"}
        calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return b"x" * 100

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        download_file(TRAIN[0], tmp_path / "out", mirrors=[mirror.as_uri()], progress=False)
    assert not (tmp_path / "out").exists()  # no partial file, and not the empty folder either


def test_download_false_gives_the_plain_file_not_found_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_fetch", lambda *a: pytest.fail("download=False must not download"))
    with pytest.raises(FileNotFoundError, match="MNIST not found") as info:
        load_mnist("test", data_dir=tmp_path / "nowhere", download=False)
    assert not isinstance(info.value, DownloadError)


def test_verify_names_a_local_file_whose_md5_is_wrong(tmp_path, mirror):
    (tmp_path / "data").mkdir()
    for name in TRAIN:
        (tmp_path / "data" / name).write_bytes((mirror / name).read_bytes())
    write_idx(tmp_path / "data" / TRAIN[1], np.zeros(5))  # valid, but not the published file
    load_mnist("train", data_dir=tmp_path / "data")  # not re-hashed by default
    with pytest.raises(ChecksumError, match=f"{TRAIN[1]}: MD5 is .*, expected {dl.MD5[TRAIN[1]]}"):
        load_mnist("train", data_dir=tmp_path / "data", verify=True)


# ------------------------------------------------- issue #11: name every missing file, leave no empty folder

def offline(monkeypatch):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.mark.parametrize("split", ["train", "test"])
def test_offline_message_names_all_four_missing_files_and_leaves_no_cache_folder(tmp_path, monkeypatch, split):
    offline(monkeypatch)
    with pytest.raises(DownloadError) as info:
        load_mnist(split)  # no folder given, none set: the per-user cache is the target
    e, msg = info.value, str(info.value)
    assert "MNIST files missing: " + ", ".join(NAMES) + "." in msg  # all four, not the split's two
    assert e.missing == NAMES
    assert not (tmp_path / "home" / ".cache").exists()  # ~/.cache/minikd/mnist was not left behind, empty
    assert (tmp_path / "home").exists() is False  # nor any folder above it that the download created


def test_offline_message_leaves_out_files_another_folder_holds(tmp_path, mirror, monkeypatch):
    (tmp_path / "env").mkdir()
    for name in NAMES[2:]:  # the test split is there; the training split is not
        (tmp_path / "env" / name).write_bytes((mirror / name).read_bytes())
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "env"))
    offline(monkeypatch)
    with pytest.raises(DownloadError) as info:
        load_mnist("train")
    assert "MNIST files missing: " + ", ".join(NAMES[:2]) + "." in str(info.value)
    assert info.value.missing == NAMES[:2]
    assert sorted(p.name for p in (tmp_path / "env").iterdir()) == sorted(NAMES[2:])  # untouched, no .part


def test_download_false_names_all_four_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test", data_dir=tmp_path / "nowhere", download=False)
    assert "Missing: " + ", ".join(NAMES) + "." in str(info.value)
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_download_keeps_folders_that_were_there_or_hold_a_file(tmp_path, mirror):
    there = tmp_path / "there"
    there.mkdir()
    with pytest.raises(DownloadError):
        download_mnist(there / "a" / "b", files=TRAIN, mirrors=[(tmp_path / "nowhere").as_uri()], progress=False)
    assert there.is_dir() and list(there.iterdir()) == []  # created a/b removed, the existing folder kept
    partial = mirror.parent / "partial"
    (partial / "m").mkdir(parents=True)
    (partial / "m" / TRAIN[0]).write_bytes((mirror / TRAIN[0]).read_bytes())  # a mirror with only one file
    with pytest.raises(DownloadError) as info:
        download_mnist(tmp_path / "out", files=TRAIN, mirrors=[(partial / "m").as_uri()], progress=False)
    assert info.value.missing == [TRAIN[1]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [TRAIN[0]]  # the good file stays


def test_mnist_dir_downloads_all_four_and_says_where(tmp_path, mirror, monkeypatch):
    from minikd.data.mnist import mnist_dir

    monkeypatch.setenv("MINIKD_MNIST_MIRRORS", mirror.as_uri())
    folder = mnist_dir(tmp_path / "data")
    assert folder == tmp_path / "data" and sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    monkeypatch.setattr(dl, "_fetch", lambda *a: pytest.fail("files already there must not be downloaded"))
    assert mnist_dir(tmp_path / "data") == folder
    monkeypatch.setenv("MINIKD_DATA", str(folder))
    assert mnist_dir() == folder


def test_mnist_dir_offline_names_all_four_and_leaves_nothing(tmp_path, monkeypatch):
    from minikd.data.mnist import mnist_dir

    offline(monkeypatch)
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "env"))
    with pytest.raises(DownloadError) as info:
        mnist_dir()
    assert info.value.missing == NAMES and "MNIST files missing: " + ", ".join(NAMES) + "." in str(info.value)
    assert not (tmp_path / "env").exists()
    with pytest.raises(FileNotFoundError, match="Missing: " + ", ".join(NAMES)):
        mnist_dir(download=False)
