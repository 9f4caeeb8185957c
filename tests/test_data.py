"""MNIST through tensorflow-datasets from the local folder: same bytes and order as the files."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from ram import data
from ram.errors import DataError


def test_tfds_arrays_equal_the_original_files_in_order(mnist, mnist_dir):
    # The fixture went through tensorflow-datasets (not the numpy fallback): its decoded cache exists.
    tfds = pytest.importorskip("tensorflow_datasets")
    assert (Path(tfds.builder("mnist", file_format="array_record").data_dir) / "ram-arrays.npz").is_file()
    raw = data.read_idx_folder(mnist_dir)
    np.testing.assert_array_equal(np.concatenate([mnist.train.images, mnist.validation.images]), raw["train_images"])
    np.testing.assert_array_equal(np.concatenate([mnist.train.labels, mnist.validation.labels]), raw["train_labels"])
    np.testing.assert_array_equal(mnist.test.images, raw["test_images"])
    np.testing.assert_array_equal(mnist.test.labels, raw["test_labels"])


def test_a_cache_that_cannot_be_written_is_said_and_the_data_loaded(monkeypatch, capsys, tmp_path, mnist):
    """The decoded arrays' cache is written under a name of this process's own; a write that fails
    (a read-only data folder) leaves one line and no temporary file, and the load goes on."""
    tfds = pytest.importorskip("tensorflow_datasets")
    prepared = Path(tfds.builder("mnist", file_format="array_record").data_dir).parents[1]
    shutil.copytree(prepared / "mnist", tmp_path / "mnist", ignore=shutil.ignore_patterns("*.npz"))

    def refuse(path, **arrays):
        Path(path).write_bytes(b"partial")  # a write that fails part way
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(data.np, "savez", refuse)
    loaded = data.load_mnist(data_dir=tmp_path)
    np.testing.assert_array_equal(loaded.test.images, mnist.test.images)
    assert "not cached" in capsys.readouterr().err
    assert not list((tmp_path / "mnist").rglob("*.npz"))


def test_splits_are_50k_10k_10k(mnist):
    assert [len(s.labels) for s in mnist] == [50_000, 10_000, 10_000]
    assert mnist.train.images.dtype == np.uint8 and mnist.train.images.shape[1:] == (28, 28)
    # Label counts of the test set, as published with the files.
    assert np.bincount(mnist.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_env_var_names_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.resolve_mnist_dir() == tmp_path
    assert data.resolve_mnist_dir("/elsewhere").as_posix() == "/elsewhere"


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.check_mnist_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is missing"):
        data.check_mnist_dir(tmp_path)


def test_corrupt_file_is_named(tmp_path, mnist_dir):
    for name in data.MNIST_FILES:
        shutil.copy(f"{mnist_dir}/{name}", tmp_path / name)
    data.check_mnist_dir(tmp_path)  # intact copies pass
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is corrupt"):
        data.load_mnist(tmp_path)


def _hide_tfds(monkeypatch):
    """Makes `import tensorflow_datasets` fail, as on an image without it."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "tensorflow_datasets" or name.startswith("tensorflow_datasets."):
            raise ImportError("No module named 'tensorflow_datasets'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_without_tfds_a_local_folder_gives_the_same_splits(monkeypatch, mnist, mnist_dir):
    _hide_tfds(monkeypatch)
    fallback = data.load_mnist(mnist_dir)
    for a, b in zip(fallback, mnist, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)


def test_without_tfds_and_without_a_folder_says_what_to_do(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    _hide_tfds(monkeypatch)
    with pytest.raises(DataError, match="tensorflow-datasets is not importable.*--mnist-dir"):
        data.load_mnist()


def test_when_tfds_cannot_prepare_a_local_folder_is_read_with_numpy(monkeypatch, capsys, tmp_path, mnist, mnist_dir):
    tfds = pytest.importorskip("tensorflow_datasets")

    def fail(self, *args, **kw):  # as without TensorFlow
        raise ModuleNotFoundError("No module named 'tensorflow'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    fallback = data.load_mnist(mnist_dir, data_dir=tmp_path)  # an empty data folder: must prepare
    assert "could not prepare mnist (ModuleNotFoundError" in capsys.readouterr().err
    for a, b in zip(fallback, mnist, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(DataError, match="could not prepare mnist: ModuleNotFoundError.*--mnist-dir"):
        data.load_mnist(data_dir=tmp_path)  # no folder to fall back on
    # Said before the download starts: offline, its retries take minutes to fail.
    assert "ram: downloading MNIST with tensorflow-datasets into" in capsys.readouterr().err
