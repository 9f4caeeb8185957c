"""MNIST through tensorflow-datasets, online or from a local folder of the four original files.

* Online, `load_mnist()` lets tensorflow-datasets download and prepare `mnist` as usual.
* Offline, pass the folder holding `train-images-idx3-ubyte.gz` and the three other original files
  (`mnist_dir=...`, the command line's `--mnist-dir`, or the `RAM_MNIST_DIR` environment variable):
  the files are checked against their published SHA-256 and tensorflow-datasets prepares `mnist`
  from them as its `manual_dir`. Preparing needs TensorFlow; reading a prepared dataset does not.

tensorflow-datasets stores each split in an order shuffled by a hash of the example's index. We
undo that with tensorflow-datasets' own hasher, so arrays come back in the original file order:
validation is then the last 10,000 training images, as in the paper and in the cluttered-MNIST
recipe. The decoded arrays are cached beside the prepared dataset (`ram-arrays.npz`), so later loads
skip decoding the images again.

Where tensorflow-datasets is not installed (say, a bare accelerator image) or cannot prepare the
folder (TensorFlow missing), a local folder is read with numpy instead (`read_idx_folder`): the same
arrays, which `tests/test_data.py` checks against the tensorflow-datasets path. Without a folder,
either failure ends with one line saying what to install or pass.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ram.errors import DataError

ENV_VAR = "RAM_MNIST_DIR"
NUM_TRAIN = 50_000  # the rest of the 60,000 training images is the validation split

# SHA-256 of the original files, as published by tensorflow-datasets (url_checksums/mnist.txt).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


class Split(NamedTuple):
    images: np.ndarray  # [N, H, W] (MNIST: [N, 28, 28]) or [N, H, W, C] uint8
    labels: np.ndarray  # [N] int32


def as_nhwc(images):
    """[N, H, W] or [N, H, W, C] -> [N, H, W, C] (a view of a host or device array: no value changes)."""
    return images[..., None] if images.ndim == 3 else images


class Mnist(NamedTuple):
    train: Split  # first 50,000 training images
    validation: Split  # last 10,000 training images
    test: Split  # the 10,000 test images


def resolve_mnist_dir(mnist_dir: str | os.PathLike | None = None) -> Path | None:
    """The local MNIST folder: the argument, else `$RAM_MNIST_DIR`, else None (download)."""
    chosen = mnist_dir or os.environ.get(ENV_VAR) or None
    return Path(chosen).expanduser() if chosen else None


def check_mnist_dir(folder: str | os.PathLike) -> Path:
    """Checks that `folder` holds the four original MNIST files, byte for byte.

    Raises:
      DataError: a one-line message naming the missing or corrupt file.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist (set --mnist-dir or ${ENV_VAR})")
    for name, sha in MNIST_FILES.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing: the MNIST folder needs {', '.join(MNIST_FILES)}")
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise DataError(f"{path} is corrupt (its SHA-256 differs from the original file's): download it again")
    return folder


def read_idx_folder(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the four IDX files with numpy, in file order (the fallback without tensorflow-datasets)."""
    folder = Path(folder)

    def read(name: str, offset: int) -> np.ndarray:
        return np.frombuffer(gzip.open(folder / name).read(), np.uint8, offset=offset)

    return {
        "train_images": read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
        "train_labels": read("train-labels-idx1-ubyte.gz", 8).astype(np.int32),
        "test_images": read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
        "test_labels": read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int32),
    }


def _file_order(split: str, n: int) -> np.ndarray:
    """[n] original index of each example in tensorflow-datasets' stored order of `split`."""
    from tensorflow_datasets.core import hashing

    hasher = hashing.Hasher(salt=split)
    hkeys = [hasher.hash_key(i) for i in range(n)]
    return np.argsort(np.asarray(hkeys, dtype=object)).astype(np.int64)


def _read_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    source = builder.as_data_source(split=split)
    records = source.__getitems__(list(range(len(source))))
    images = np.stack([r["image"][..., 0] for r in records]).astype(np.uint8)
    labels = np.asarray([r["label"] for r in records], np.int32)
    order = _file_order(split, len(records))
    out_images, out_labels = np.empty_like(images), np.empty_like(labels)
    out_images[order], out_labels[order] = images, labels
    return out_images, out_labels


def load_mnist(mnist_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> Mnist:
    """Loads MNIST in the original file order and splits it 50k / 10k / 10k.

    Args:
      mnist_dir: folder of the four original `*-ubyte.gz` files (offline); default `$RAM_MNIST_DIR`,
        and if that is unset too, tensorflow-datasets downloads them.
      data_dir: tensorflow-datasets' data folder (default: its own, usually ~/tensorflow_datasets).

    Returns:
      `Mnist` of uint8 images [N, 28, 28] and int32 labels [N], as numpy arrays.
    """
    folder = resolve_mnist_dir(mnist_dir)
    if folder is not None:
        check_mnist_dir(folder)
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        if folder is None:
            raise DataError(
                f"tensorflow-datasets is not importable ({e}): install it (pip install ram pulls it in) "
                f"or pass --mnist-dir / set ${ENV_VAR} to a folder of the four MNIST files"
            ) from None
        return _split(read_idx_folder(folder))

    builder = tfds.builder("mnist", data_dir=data_dir, file_format="array_record")
    cache = Path(builder.data_dir) / "ram-arrays.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            arrays = None  # an interrupted write: rebuild it
    else:
        arrays = None
    if arrays is None:
        if not builder.is_prepared():
            config = tfds.download.DownloadConfig(manual_dir=str(folder)) if folder else None
            if folder is None:  # offline, its retries take minutes before they fail: say what to do first
                print(
                    f"ram: downloading MNIST with tensorflow-datasets into {builder.data_dir} "
                    f"(offline? pass --mnist-dir DIR or set ${ENV_VAR} to a folder of the four *-ubyte.gz files)",
                    file=sys.stderr,
                    flush=True,
                )
            try:
                builder.download_and_prepare(download_config=config)
            except Exception as e:  # network down, TensorFlow missing, ...
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                if folder is None:
                    raise DataError(
                        f"tensorflow-datasets could not prepare mnist: {reason} "
                        f"(offline? pass --mnist-dir or set ${ENV_VAR})"
                    ) from None
                # The folder's files passed their SHA-256 check: numpy reads the same arrays.
                print(
                    f"ram: tensorflow-datasets could not prepare mnist ({reason}); reading {folder} with numpy",
                    file=sys.stderr,
                )
                return _split(read_idx_folder(folder))
        arrays = {}
        arrays["train_images"], arrays["train_labels"] = _read_split(builder, "train")
        arrays["test_images"], arrays["test_labels"] = _read_split(builder, "test")
        error = write_npz(cache, arrays)
        if error is not None:  # the arrays are loaded all the same
            reason = error.strerror or error
            print(f"ram: mnist: decoded arrays not cached in {cache.parent} ({reason})", file=sys.stderr)
    return _split(arrays)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> OSError | None:
    """Writes `arrays` to `path` whole or not at all, through a temporary file of this process's own
    (processes writing at once, on one host or on several sharing the folder, do not collide).
    Returns the error of a failed write, which leaves nothing behind."""
    tmp = path.with_name(f".{path.stem}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        return e
    finally:
        tmp.unlink(missing_ok=True)
    return None


def _split(arrays: dict[str, np.ndarray]) -> Mnist:
    """50k train / last 10k of the training file as validation / the 10k test images."""
    ti, tl = arrays["train_images"], arrays["train_labels"]
    return Mnist(
        train=Split(ti[:NUM_TRAIN], tl[:NUM_TRAIN]),
        validation=Split(ti[NUM_TRAIN:], tl[NUM_TRAIN:]),
        test=Split(arrays["test_images"], arrays["test_labels"]),
    )
