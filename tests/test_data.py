"""The IDX reader and MNIST loading: real files when present, small bad files always."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from minikd.data import DataLoader, IDXError, check_md5, find_data_dir, load_mnist, normalize, read_idx


def write_idx(path, array, magic_type=0x08, ndim=None, truncate=0):
    ndim = array.ndim if ndim is None else ndim
    header = bytes([0, 0, magic_type, ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - truncate] if truncate else raw
    with gzip.open(path, "wb") as f:
        f.write(raw)


def fake_mnist(folder, n_train=5, n_test=3, labels_train=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz",
              rng.integers(0, 10, n_train) if labels_train is None else labels_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))


def test_a_small_valid_file_round_trips(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", expect_ndim=3), a)


def test_bad_magic_is_reported(tmp_path):
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(IDXError, match="bad magic number 12340801"):
        read_idx(p)


def test_wrong_number_of_dimensions_is_reported(tmp_path):
    write_idx(tmp_path / "labels.gz", np.zeros(5))
    with pytest.raises(IDXError, match="has 1 dimensions in its header; expected 3"):
        read_idx(tmp_path / "labels.gz", expect_ndim=3)


def test_truncated_data_is_reported(tmp_path):
    write_idx(tmp_path / "t.gz", np.zeros((2, 28, 28)), truncate=10)
    with pytest.raises(IDXError, match="truncated or corrupt"):
        read_idx(tmp_path / "t.gz")


def test_truncated_gzip_stream_is_reported(tmp_path):
    write_idx(tmp_path / "t.gz", np.zeros((50, 28, 28)))
    raw = (tmp_path / "t.gz").read_bytes()
    (tmp_path / "t.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXError, match="truncated or corrupt"):
        read_idx(tmp_path / "t.gz")


def test_header_of_10_images_with_data_for_9_and_a_half_names_the_file_and_sizes(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10, 28, 28))
    with gzip.open(p, "wb") as f:
        f.write(header + bytes(28 * 28 * 19 // 2))
    with pytest.raises(IDXError) as info:
        read_idx(p, expect_ndim=3)
    msg = str(info.value)
    assert str(p) in msg and f"holds {16 + 28 * 28 * 19 // 2} bytes" in msg and "(10, 28, 28)" in msg
    assert f"needs {16 + 28 * 28 * 10}" in msg and "truncated or corrupt" in msg


def test_wrong_label_count_is_reported(tmp_path):
    fake_mnist(tmp_path, n_train=5, labels_train=np.arange(4))
    with pytest.raises(IDXError, match="5 images .* but 4 labels"):
        load_mnist("train", data_dir=tmp_path)


def test_images_that_are_not_28_by_28_are_reported(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 27)))
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz: images are 28x27, expected 28x28"):
        load_mnist("train", data_dir=tmp_path)


def test_missing_files_message_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIKD_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError) as info:
        find_data_dir(tmp_path / "nowhere")
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "nowhere") in msg and "MINIKD_DATA" in msg


def test_explicit_folder_wins_over_the_environment(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "a")
    fake_mnist(tmp_path / "b", n_train=7)
    monkeypatch.setenv("MINIKD_DATA", str(tmp_path / "b"))
    assert find_data_dir(tmp_path / "a") == tmp_path / "a"
    assert len(load_mnist("train")[0]) == 7


def test_dataloader_batches_shuffle_seeded_and_drop_last():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    batches = [b[1].numpy().tolist() for b in DataLoader(x, y, batch_size=4)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(x, y, batch_size=4, drop_last=True)) == 2
    a = [b[1].numpy() for b in DataLoader(x, y, batch_size=4, shuffle=True, seed=3)]
    b = [b[1].numpy() for b in DataLoader(x, y, batch_size=4, shuffle=True, seed=3)]
    assert all((p == q).all() for p, q in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(10)) and np.concatenate(a).tolist() != list(range(10))
    with pytest.raises(ValueError, match="10 inputs but 9 targets"):
        DataLoader(x, y[:9])


REAL = Path(os.environ.get("MINIKD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


def test_normalize_gives_the_formula_for_every_pixel_value_bit_for_bit():
    """(x/255 − μ)/σ in float32 on each pixel (the looked-up table must give exactly these bits),
    the images' layout kept: (N, 1, H, W), C-contiguous."""
    from minikd.data.mnist import MEAN, STD

    x = np.arange(2 * 256, dtype=np.uint16).reshape(2, 16, 16).astype(np.uint8)[:, ::-1]   # every value, a strided view
    z = normalize(x)
    assert z.shape == (2, 1, 16, 16) and z.dtype == np.float32 and z.flags.c_contiguous
    expected = (x.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_array_equal(z[:, 0], expected)


@pytest.mark.skipif(not (REAL / "t10k-labels-idx1-ubyte.gz").exists(), reason="real MNIST files not present")
def test_real_mnist_has_the_official_shapes_and_first_labels():
    x, y = load_mnist("test", data_dir=REAL)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    z = normalize(x[:100])
    assert z.shape == (100, 1, 28, 28) and z.dtype == np.float32
    # already scaled or normalised pixels would be scaled again: refused, as is a wrong rank
    with pytest.raises(TypeError, match=r"normalize: expects raw MNIST pixels, a uint8 array .*got float32"):
        normalize(x[:2].astype(np.float32) / 255)
    with pytest.raises(TypeError, match=r"normalize: expects raw MNIST pixels"):
        normalize(z)
    with pytest.raises(ValueError, match=r"normalize: expects images \(N, H, W\); got shape \(28, 28\)"):
        normalize(x[0])


@pytest.mark.skipif(not (REAL / "train-images-idx3-ubyte.gz").exists(), reason="real MNIST files not present")
def test_real_mnist_files_have_the_published_md5_and_load_with_verify():
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        check_md5(REAL / name)
    x, y = load_mnist("test", data_dir=REAL, download=False, verify=True)
    assert len(x) == len(y) == 10000
