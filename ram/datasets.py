"""Every dataset RAM reads, named by `Config.dataset`, as uint8 images [N, H, W, C] in memory.

    dataset=mnist                 MNIST (`ram.data`): the 50k / 10k / 10k split of the paper
    dataset=tfds:NAME[:CONFIG]    any tensorflow-datasets image-classification dataset
    dataset=folder:PATH           a folder of images, one sub-folder per class

A folder is laid out as tensorflow-datasets' `ImageFolder` and torchvision's `ImageFolder` read it::

    PATH/train/CLASS/*.png        (and the other IMAGE_SUFFIXES: .jpg, .bmp, .tif, .webp, ...)
    PATH/test/CLASS/*.png         optional
    PATH/validation/CLASS/*.png   optional

or, without `train/`, PATH/CLASS/*.png alone. Classes are the sorted sub-folder names of the
training split (label i is the i-th name). `val/` and `valid/` are read as `validation/`; any other
folder beside `train/`, or a split folder of class folders without `train/`, is an error, so a split
is never silently ignored or read as a class. Hidden files (`.*`, such as macOS's `._NAME`) are skipped; other files and
folders inside a class folder are not read, and said in one line. A split the dataset does
not have is carved from its training split, the same on every machine and run: in a folder, each
image whose path (CLASS/NAME) hashes into a fixed `HOLDOUT` band (`carve_files`), so adding or
removing images never moves another image between splits (unless the folder is too small to put
an image in each band); in arrays and tfds datasets, a fixed
`HOLDOUT` share chosen by a fixed seed (`carve`). Greyscale images (16-bit ones scaled to 8 bits)
give 1 channel; a dataset with any colour image gives 3 (alpha dropped). Every image must have one
size, unless `image_size=S` resizes them all to S x S.

`load(config)` returns a `Dataset` (three `Split`s and a `DatasetInfo`: name, classes, channels,
image size); `fit_config(config, info)` fills the config's `num_classes`, `channels` and, for
`task=mnist` (the image as it is), `canvas` from the data, and refuses an explicit setting the data
contradicts. `from_arrays` makes a `Dataset` of numpy arrays already in memory (the Python API).

Bad data ends with one line (`DataError`): an empty folder, a class folder without images, an
image that does not decode (named), images of mixed sizes, an unknown tfds name, a dataset that is
not image classification, channels-first arrays, labels that are not whole numbers. Images decode one at a
time to `image_size`, so large photos need no more memory than the resized dataset.

A folder's decoded arrays are cached (`$RAM_CACHE_DIR`, default `~/.cache/ram`; `RAM_CACHE_DIR=off`
caches nothing), one `.npz` per folder and `image_size`, named also by the folder's state (its
images' names, labels, sizes, modification and change times, inodes, and Pillow's version), so an
added, removed or rewritten image makes a new file, which replaces the old one. A tfds dataset is
decoded on each load (tensorflow-datasets keeps its own prepared copy; MNIST keeps `ram.data`'s
cache).
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import os
import sys
import unicodedata
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ram import data
from ram.config import Config
from ram.data import Split, as_nhwc
from ram.errors import ConfigError, DataError

# torchvision's ImageFolder's suffixes, and .gif (its first frame)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
SPLITS = ("train", "validation", "test")
SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val", "valid"), "test": ("test",)}
HOLDOUT = 0.1  # share of the training images carved out for a missing validation (or test) split
CARVE_SEEDS = {"validation": 1, "test": 2}  # arrays and tfds: a carved split is fixed by its seed
CARVE_BANDS = {"validation": 0.0, "test": HOLDOUT}  # folders: where each carved split's hash band starts
CACHE_ENV = "RAM_CACHE_DIR"
CACHE_FORMAT = 2  # bump when the arrays a folder decodes to change (2: carved splits stored, by file)
CACHE_SAY_MB = 256  # a cache file this large is announced (where it is, and how to turn caching off)
MNIST_CLASSES = 10
DARK = 16  # a training split whose brightest pixel is at most this is said (likely read wrong)


class DatasetSpec(NamedTuple):
    """A parsed `Config.dataset`."""

    kind: str  # mnist | tfds | folder | arrays
    name: str = ""  # tfds: the dataset's name; arrays: the name given to `from_arrays` ("" by default)
    config: str = ""  # tfds: its builder config ("" = the default)
    path: str = ""  # folder: the folder


class DatasetInfo(NamedTuple):
    """What the model and the tasks need to know about a dataset."""

    name: str  # as in the config: "mnist", "tfds:cifar10", "folder:PATH", or "arrays"
    num_classes: int
    channels: int  # C
    image_shape: tuple[int, int]  # (H, W) of every image
    class_names: tuple[str, ...] = ()  # label i is class_names[i] (empty if unnamed)


MNIST_INFO = DatasetInfo("mnist", MNIST_CLASSES, 1, (28, 28), tuple(str(i) for i in range(MNIST_CLASSES)))


class Dataset(NamedTuple):
    """Three splits of uint8 images [N, H, W, C] and int32 labels [N], and what they are."""

    train: Split
    validation: Split
    test: Split
    info: DatasetInfo


def parse_dataset(name: str) -> DatasetSpec:
    """`"mnist"`, `"tfds:NAME[:CONFIG]"`, `"folder:PATH"` or `"arrays[:NAME]"` -> `DatasetSpec`;
    `ConfigError` otherwise. `arrays` is what a run trained on `from_arrays` data records: arrays in
    memory, which only the Python API can pass again."""
    kind, _, rest = name.partition(":")
    if name == "mnist":
        return DatasetSpec("mnist")
    if kind == "arrays":
        return DatasetSpec("arrays", name=rest)
    if kind == "tfds" and rest:
        tfds_name, _, tfds_config = rest.partition(":")
        if tfds_name and ":" not in tfds_config and "/" not in tfds_name:
            return DatasetSpec("tfds", name=tfds_name, config=tfds_config)
    if kind == "folder" and rest:
        return DatasetSpec("folder", path=rest)
    raise ConfigError(
        f"dataset={name!r}: use mnist, tfds:NAME[:CONFIG] (a tensorflow-datasets image dataset) or folder:PATH"
    )


def parse_dataset_kind(name: str) -> str | None:
    """The kind of a dataset name (`DatasetSpec.kind`), or None if `name` is none of them."""
    try:
        return parse_dataset(name).kind
    except ConfigError:
        return None


def absolute_folder(config: Config) -> Config:
    """`config` with its `folder:PATH` written one way: `~` expanded, made absolute (as the current
    directory resolves it), no trailing slash or `.` (a `..` is kept: after a symbolic link it is
    not the folder before it). A run folder so names its data wherever `ram eval` is run from, and
    `--resume` accepts another spelling of the same folder."""
    spec = parse_dataset(config.dataset)
    if spec.kind != "folder":
        return config
    return config.replace(dataset=f"folder:{Path(spec.path).expanduser().absolute()}")


# -- splits and images ------------------------------------------------------------------------------


def carve(split: Split, count: int, seed: int) -> tuple[Split, Split]:
    """`(rest, held_out)`: `count` examples of `split` held out, chosen by a permutation of `seed`;
    both parts keep their order."""
    n, k = len(split.labels), count
    if not 1 <= k < n:
        raise DataError(f"a split of {n} image(s) is too small to hold {k} out for a missing split")
    held = np.zeros(n, bool)
    held[np.random.default_rng(seed).permutation(n)[:k]] = True
    return Split(split.images[~held], split.labels[~held]), Split(split.images[held], split.labels[held])


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """[N, H, W, C] uint8 -> [N, size, size, C] uint8, bilinear (PIL), each image on its own."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        out[i] = _resize_one(Image, image, size)
    return out


def _resize_one(image_module, image: np.ndarray, size: int) -> np.ndarray:
    """[H, W, C] uint8 -> [size, size, C] uint8."""
    channels = image.shape[-1]
    pil = image_module.fromarray(image[..., 0] if channels == 1 else image)
    out = np.asarray(pil.resize((size, size), image_module.BILINEAR))
    return out[..., None] if channels == 1 else out


def _to_uint8(images: np.ndarray, what: str) -> np.ndarray:
    """uint8 images as they are; float images in [0, 1] scaled by 255 and rounded."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1 or np.isnan(images).any()):
            raise DataError(f"{what}: float images must lie in [0, 1] (or pass uint8 images in 0-255)")
        return np.rint(images * 255).astype(np.uint8)
    raise DataError(f"{what}: images must be uint8 (0-255) or float in [0, 1], not {images.dtype}")


def stack_images(
    images: list[np.ndarray],
    names: list[str],
    source: str,
    colour: bool = False,
    fix: str = "set image_size=S to resize them all to S x S",
) -> np.ndarray:
    """Stacks [H, W, C] images into [N, H, W, C], greyscale ones repeated to 3 channels if `colour` or
    any image is in colour (as a folder of both trains); one line, ending in `fix`, if their sizes differ."""
    if colour or any(im.shape[-1] == 3 for im in images):
        images = [np.repeat(im, 3, -1) if im.shape[-1] == 1 else im for im in images]
    first = images[0].shape[:2]
    for im, name in zip(images, names, strict=True):
        if im.shape[:2] != first:
            raise DataError(
                f"{source}: images of mixed sizes ({names[0]} is {first[0]}x{first[1]}, {name} is "
                f"{im.shape[0]}x{im.shape[1]}); {fix}"
            )
    return np.stack(images)


def make_dataset(name: str, splits: dict[str, Split], num_classes: int, class_names: tuple[str, ...] = ()) -> Dataset:
    """A `Dataset` of the given splits; a missing validation or test split is carved from train."""
    splits = dict(splits)
    train = splits["train"]
    count = max(1, int(len(train.labels) * HOLDOUT + 0.5))  # of the training images as given
    for split_name in ("validation", "test"):
        if splits.get(split_name) is None:
            train, splits[split_name] = carve(train, count, CARVE_SEEDS[split_name])
    out = {"train": train, "validation": splits["validation"], "test": splits["test"]}
    shapes = {k: s.images.shape[1:] for k, s in out.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"{name}: the splits' images differ in shape ({shapes}); set image_size=S to resize them all")
    for k, s in out.items():
        if len(s.labels) == 0:
            raise DataError(f"{name}: the {k} split has no images")
        if s.labels.min() < 0 or s.labels.max() >= num_classes:
            raise DataError(f"{name}: the {k} split has labels outside 0..{num_classes - 1}")
    brightest = int(out["train"].images.max())
    if brightest <= DARK:
        print(
            f"ram: warning: {name}: the brightest training pixel is {brightest} of 255: are the images scaled "
            "as meant? (16-bit image files are scaled 65535 -> 255, and their alpha is dropped)",
            file=sys.stderr,
        )
    h, w, c = shapes["train"]
    info = DatasetInfo(name, int(num_classes), int(c), (int(h), int(w)), tuple(class_names))
    return Dataset(**out, info=info)


def from_arrays(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    num_classes: int | None = None,
    name: str = "arrays",
) -> Dataset:
    """A `Dataset` of arrays in memory: each split is `(images, labels)` with images [N, H, W] or
    [N, H, W, C], uint8 (0-255) or float in [0, 1], and integer labels [N]. A missing validation or
    test split is carved from train; `num_classes` defaults to the largest label + 1. A run trained on
    it records `dataset=arrays` (`arrays:NAME` for another `name`), whatever its config said, and
    skips the checks that only MNIST's digits need: any size, channels and classes train."""
    name = name if parse_dataset_kind(name) == "arrays" else f"arrays:{name}"
    splits = {}
    for split_name, pair in (("train", train), ("validation", validation), ("test", test)):
        if pair is None:
            continue
        images, labels = pair
        images, labels = as_nhwc(_to_uint8(images, f"{name} {split_name}")), np.asarray(labels)
        if images.ndim == 4 and images.shape[-1] > 4 and images.shape[1] in (1, 3, 4):
            raise DataError(
                f"{name} {split_name}: images {images.shape} look channels-first ([N, C, H, W]); pass "
                "[N, H, W, C], e.g. np.moveaxis(images, 1, -1)"
            )
        if np.issubdtype(labels.dtype, np.floating):
            if labels.size and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
                raise DataError(f"{name} {split_name}: labels must be whole numbers 0..K-1 (some are fractions)")
        elif not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise DataError(
                f"{name} {split_name}: labels must be integers 0..K-1, not {labels.dtype} (map class names "
                "to integers first)"
            )
        labels = labels.astype(np.int32)
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise DataError(
                f"{name} {split_name}: expected images [N, H, W(, C)] and labels [N], got {images.shape} "
                f"and {labels.shape}"
            )
        splits[split_name] = Split(images, labels)
    if num_classes is None:
        num_classes = int(max(s.labels.max() for s in splits.values())) + 1
    return make_dataset(name, splits, num_classes)


# -- loaders ----------------------------------------------------------------------------------------


def load(config: Config, mnist_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None):
    """The dataset `config.dataset` names, resized to `config.image_size` if that is set."""
    return load_dataset(config.dataset, image_size=config.image_size, mnist_dir=mnist_dir, data_dir=data_dir)


def load_dataset(
    name: str,
    *,
    image_size: int = 0,
    mnist_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Loads `mnist`, `tfds:NAME[:CONFIG]` or `folder:PATH` (see the module's docstring).

    Args:
      name: `Config.dataset`.
      image_size: > 0 resizes every image to image_size x image_size; 0 keeps them as stored.
      mnist_dir: MNIST's local folder (`ram.data.load_mnist`).
      data_dir: tensorflow-datasets' data folder.

    Returns:
      `Dataset` of uint8 images [N, H, W, C] and int32 labels [N] per split.
    """
    spec = parse_dataset(name)
    if spec.kind == "arrays":
        raise DataError(
            f"dataset={name}: arrays in memory (ram.datasets.from_arrays) cannot be loaded by name; pass them "
            "from Python: ram.train.train_and_evaluate(config, RUN_DIR, data), ram.evaluate.evaluate_run(RUN_DIR, data)"
        )
    if spec.kind == "mnist":
        mnist = data.load_mnist(mnist_dir, data_dir)
        splits = {k: Split(as_nhwc(s.images), s.labels) for k, s in mnist._asdict().items()}
        if image_size:
            splits = {k: Split(resize_images(s.images, image_size), s.labels) for k, s in splits.items()}
        return make_dataset(name, splits, MNIST_CLASSES, MNIST_INFO.class_names)
    if spec.kind == "tfds":
        return load_tfds(spec.name, spec.config, data_dir=data_dir, image_size=image_size)
    return load_folder(spec.path, image_size=image_size)


def load_folder(path: str | os.PathLike, image_size: int = 0) -> Dataset:
    """A folder of class sub-folders of images (`folder:PATH`; layout in the module's docstring)."""
    root = Path(path).expanduser()
    name = f"folder:{path}"
    if not root.is_dir():
        raise DataError(f"{name}: {root} is not a folder")
    split_dirs = _split_folders(root, name)
    classes = sorted(p.name for p in split_dirs["train"].iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"{name}: {split_dirs['train']} has no class sub-folders (expected {split_dirs['train']}/CLASS/*.png)"
        )
    if len(classes) == 1:
        raise DataError(
            f"{name}: {split_dirs['train']} has one class folder ({classes[0]}); a classifier needs at least two"
        )
    files, labels, skipped = {}, {}, []
    for split_name, folder in split_dirs.items():
        found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{name}: {folder} has class folder(s) {unknown} that the training split lacks")
        files[split_name], labels[split_name] = [], []
        for label, cls in enumerate(classes):
            if not (folder / cls).is_dir():
                continue
            entries = [p for p in (folder / cls).iterdir() if not p.name.startswith(".")]
            images = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                inner = any(p.is_dir() for p in entries)
                hint = f" but folders: name the splits {_SPLIT_NAMES}" if inner and folder == root else ""
                raise DataError(f"{name}: the class folder {folder / cls} has no images ({_SUFFIX_NAMES}){hint}")
            kept = set(images)
            skipped += [p for p in entries if p not in kept]
            files[split_name] += images
            labels[split_name] += [label] * len(images)
        if not files[split_name]:
            raise DataError(f"{name}: {folder} has no class sub-folders of images (expected {folder}/CLASS/*.png)")
    kinds = collections.Counter(p.suffix.lower() for paths in files.values() for p in paths)
    if len(kinds) > 1:  # e.g. a mask.tif beside the .png images: said, as it is read as an image too
        said = ", ".join(f"{n} {suffix}" for suffix, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"ram: {name}: images of {len(kinds)} kinds: {said}", file=sys.stderr)
    if skipped:
        folders = sum(p.is_dir() for p in skipped)
        parts = [f"{len(skipped) - folders} file(s) that are not images ({_SUFFIX_NAMES})", f"{folders} sub-folder(s)"]
        said = " and ".join(part for part, n in zip(parts, (len(skipped) - folders, folders), strict=True) if n)
        print(f"ram: {name}: not read: {said} in class folders, e.g. {skipped[0]}", file=sys.stderr)
    for split_name in ("validation", "test"):
        if split_name not in files:
            files["train"], labels["train"], files[split_name], labels[split_name] = carve_files(
                files["train"], labels["train"], split_dirs["train"], split_name, name
            )
    cache = _cache_file(root, files, labels, image_size)
    splits = _read_cache(cache) if cache is not None and cache.is_file() else None
    if splits is None:
        splits = _decode(files, labels, image_size, name)
        if cache is not None:
            _write_cache(cache, splits, name)
    return make_dataset(name, splits, len(classes), tuple(classes))


_SPLIT_NAMES = "train/, validation/ (or val/, valid/) and test/"
_SUFFIX_NAMES = ", ".join(IMAGE_SUFFIXES)


def _split_folders(root: Path, name: str) -> dict[str, Path]:
    """`{split: folder}` of a folder dataset: its split folders (`SPLIT_FOLDERS`, in any case) if it
    has `train/`, else `{"train": root}`. A folder beside `train/` that names no split, or two names
    of one split, is one line: a split is never silently ignored."""
    found = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if "train" not in {n.lower() for n in found}:
        splits = sorted(
            n
            for n, path in found.items()
            if any(n.lower() in names for names in SPLIT_FOLDERS.values()) and _holds_class_folders(path)
        )
        if splits:  # test/CLASS/*.png without train/; a class named test (test/*.png) is a class
            raise DataError(
                f"{name}: it has {', '.join(f'{n}/' for n in splits)} but no train/: put the training images in "
                f"train/CLASS/ beside it (a split folder is not read as a class)"
            )
        return {"train": root}
    out = {}
    for split_name, names in SPLIT_FOLDERS.items():
        present = sorted(n for n in found if n.lower() in names)
        if len(present) > 1:
            raise DataError(f"{name}: {' and '.join(f'{n}/' for n in present)} both name the {split_name} split")
        if present:
            out[split_name] = found[present[0]]
    other = sorted(n for n in found if not any(n.lower() in names for names in SPLIT_FOLDERS.values()))
    if other:
        raise DataError(
            f"{name}: beside train/ it has {', '.join(f'{n}/' for n in other)}, which names no split "
            f"(the split folders are {_SPLIT_NAMES}; class folders go inside them)"
        )
    return out


def _holds_class_folders(folder: Path) -> bool:
    """Whether `folder` holds sub-folders and no images of its own (a split's layout, not a class's)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    has_images = any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in entries)
    return not has_images and any(p.is_dir() for p in entries)


def carve_files(
    files: list[Path], labels: list[int], folder: Path, split_name: str, name: str
) -> tuple[list[Path], list[int], list[Path], list[int]]:
    """`(train files, labels, held-out files, labels)`: the images whose path in `folder` (CLASS/NAME)
    hashes into `split_name`'s band of width `HOLDOUT` are held out, so an image's split depends on
    its own name alone (the name in Unicode NFC, as macOS and Linux list it alike). If the band holds
    none (a folder too small to fill it), the image of lowest hash above it is held out instead."""
    band = CARVE_BANDS[split_name]
    keys = (_name_bytes(p.relative_to(folder).as_posix()) for p in files)
    u = np.array([int(hashlib.sha256(k).hexdigest()[:12], 16) / 16**12 for k in keys])
    held = (u >= band) & (u < band + HOLDOUT)
    if not held.any():
        held[np.argmin(np.where(u >= band, u, u + 1))] = True  # the lowest hash at or above the band
    if held.all():
        raise DataError(
            f"{name}: too few training images to hold one out for a missing {split_name} split; add images "
            f"or a {split_name}/ folder"
        )
    keep = np.flatnonzero(~held)
    out = np.flatnonzero(held)
    return [files[i] for i in keep], [labels[i] for i in keep], [files[i] for i in out], [labels[i] for i in out]


def _name_bytes(text: str) -> bytes:
    """A file name as bytes to hash: NFC, and names that are not UTF-8 kept byte for byte."""
    return unicodedata.normalize("NFC", text).encode("utf-8", "surrogateescape")


def _decode(files: dict[str, list[Path]], labels: dict[str, list[int]], image_size: int, name: str) -> dict:
    """`{split: Split}` of a folder's image files: one size, one number of channels."""
    decoded = {s: read_images(paths, image_size) for s, paths in files.items()}
    colour = any(im.shape[-1] == 3 for ims in decoded.values() for im in ims)
    splits = {}
    for split_name, images in decoded.items():
        stacked = stack_images(images, [str(p) for p in files[split_name]], name, colour)
        splits[split_name] = Split(stacked, np.asarray(labels[split_name], np.int32))
    if not image_size:
        shapes = {s: sp.images.shape[1:3] for s, sp in splits.items()}
        if len(set(shapes.values())) > 1:
            first = {s: str(files[s][0]) for s in shapes}
            raise DataError(
                f"{name}: images of mixed sizes across splits "
                f"({', '.join(f'{first[s]} is {h}x{w}' for s, (h, w) in shapes.items())}); "
                "set image_size=S to resize them all to S x S"
            )
    return splits


def cache_dir() -> Path | None:
    """Where decoded folders are cached: `$RAM_CACHE_DIR` (None for `off`), else
    `$XDG_CACHE_HOME/ram` or `~/.cache/ram`."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "no", "none") else Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ram"


def _cache_file(root: Path, files: dict[str, list[Path]], labels: dict[str, list[int]], image_size: int) -> Path | None:
    """The cache file of a folder in its present state (None: caching is off). Its name is
    `folder-<the folder and image_size>-<its images' state>.npz`: a new state replaces the old file."""
    folder = cache_dir()
    if folder is None:
        return None
    from PIL import __version__ as pillow

    where = hashlib.sha256(f"{root.resolve()}\nimage_size={image_size}".encode()).hexdigest()[:16]
    h = hashlib.sha256(f"ram folder cache {CACHE_FORMAT} Pillow {pillow}\n".encode())
    for split_name in sorted(files):
        for path, label in zip(files[split_name], labels[split_name], strict=True):
            try:
                st = path.stat()
            except OSError as e:
                raise DataError(
                    f"folder:{root}: {path} changed while the folder was read ({e.strerror or e})"
                ) from None
            state = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            h.update(_name_bytes(f"{split_name}\t{path.relative_to(root)}\t{label}\t{state}\n"))
    return folder / f"folder-{where}-{h.hexdigest()[:16]}.npz"


def _read_cache(path: Path) -> dict | None:
    """`{split: Split}` from a cache file; None (said) if it does not read."""
    try:
        with np.load(path) as z:
            splits = {s: Split(z[f"{s}_images"], z[f"{s}_labels"]) for s in SPLITS if f"{s}_images" in z.files}
        if "train" not in splits:
            raise ValueError("no train split")
        return splits
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        print(
            f"ram: the cache file {path} does not read ({type(e).__name__}); decoding the images again", file=sys.stderr
        )
        return None


def _write_cache(path: Path, splits: dict, name: str) -> None:
    """Writes the cache file whole or not at all, and removes the folder's older ones; a failure to
    write is said and ignored (the data is loaded all the same)."""
    arrays = {f"{s}_{k}": getattr(split, k) for s, split in splits.items() for k in ("images", "labels")}
    error = data.write_npz(path, arrays)
    if error is not None:
        print(
            f"ram: {name}: not cached ({error.strerror or error}); set {CACHE_ENV} to a writable folder, or off",
            file=sys.stderr,
        )
        return
    for older in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.npz"):
        if older != path:
            older.unlink(missing_ok=True)
    mb = path.stat().st_size / 2**20
    if mb >= CACHE_SAY_MB:  # a small cache goes unsaid: bad settings found after the load stay one line
        print(
            f"ram: {name}: decoded images cached in {path} ({mb:.0f} MB; {CACHE_ENV}=off caches nothing)",
            file=sys.stderr,
        )


def read_images(paths: list[Path], image_size: int = 0) -> list[np.ndarray]:
    """`read_image` of every path, in order, decoded on a thread per core (Pillow decodes without the
    GIL: half the time on 2 cores); the first unreadable file raises its `DataError`."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda path: read_image(path, image_size), paths))


def read_image(path: Path, image_size: int = 0) -> np.ndarray:
    """One image file as uint8 [H, W, 1] (greyscale) or [H, W, 3] (colour; alpha dropped); resized to
    [image_size, image_size, C] at once if image_size > 0 (`resize_images`' pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I"):  # 16-bit greyscale PNG ("I;16", or "I" in older Pillows)
                array = _from_16_bit(np.asarray(im), path)
            else:
                grey = im.mode in ("1", "L", "LA") or (im.mode in ("P", "PA") and _grey_palette(im))
                array = np.asarray(im.convert("L" if grey else "RGB"), np.uint8)
    except PermissionError as e:
        raise DataError(f"cannot read the image {path}: {e.strerror}") from None
    except Image.DecompressionBombError:
        raise DataError(
            f"cannot read the image {path}: it has more pixels than Pillow decodes ({Image.MAX_IMAGE_PIXELS:,}); "
            "shrink it, or raise PIL.Image.MAX_IMAGE_PIXELS from Python"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise DataError(f"cannot read the image {path}: it is corrupt or not an image ({type(e).__name__})") from None
    array = array[..., None] if array.ndim == 2 else array
    return _resize_one(Image, array, image_size) if image_size else array


def _from_16_bit(pixels: np.ndarray, path: Path) -> np.ndarray:
    """16-bit greyscale [H, W] (0-65535) -> uint8 [H, W], scaled (65535 -> 255) and rounded."""
    if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
        raise DataError(f"cannot read the image {path}: its {pixels.dtype} values are not 16-bit greyscale (0-65535)")
    return np.rint(pixels.astype(np.float64) / 257).astype(np.uint8)


def _grey_palette(im) -> bool:
    palette = np.asarray(im.getpalette() or [], np.int32).reshape(-1, 3)
    return bool(len(palette)) and bool((palette == palette[:, :1]).all())


def _tfds_splits(builder) -> list[str]:
    names = list(builder.info.splits.keys())
    # Code-only metadata (a builder not yet prepared, or `tfds.testing.mock_data`) lists no splits.
    return names or ["train", "test"]


def load_tfds(name: str, config: str = "", *, data_dir=None, image_size: int = 0) -> Dataset:
    """A tensorflow-datasets image-classification dataset (`tfds:NAME[:CONFIG]`), in its stored order.

    Its image and label features are its `supervised_keys`; the label must be a `ClassLabel` and the
    image an `Image`. tensorflow-datasets downloads and prepares the dataset if it has not yet."""
    from PIL import Image

    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"tfds:{name}: tensorflow-datasets is not importable ({e}); pip install tensorflow-datasets"
        ) from None
    label = f"tfds:{name}" + (f":{config}" if config else "")
    try:
        builder = tfds.builder(f"{name}/{config}" if config else name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError, or an unknown builder config
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{label}: tensorflow-datasets does not know it ({first[:160]})") from None
    keys = builder.info.supervised_keys
    features = builder.info.features
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        raise DataError(f"{label} is not an image-classification dataset (it has no (image, label) supervised keys)")
    image_key, label_key = keys
    if not isinstance(features[image_key], tfds.features.Image) or not isinstance(
        features[label_key], tfds.features.ClassLabel
    ):
        kinds = f"{type(features[image_key]).__name__}, {type(features[label_key]).__name__}"
        raise DataError(
            f"{label} is not an image-classification dataset (its supervised keys are {keys}: {kinds}); "
            "ram needs an Image and a ClassLabel"
        )
    try:
        builder.download_and_prepare()
    except Exception as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise DataError(f"{label}: tensorflow-datasets could not prepare it ({type(e).__name__}: {first})") from None
    splits = {}
    for split_name in _tfds_splits(builder):
        if split_name not in SPLITS:
            continue
        images, labels = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=split_name, shuffle_files=False)):
            image = example[image_key]
            image = image[..., :3] if image.shape[-1] == 4 else image
            images.append(_resize_one(Image, image, image_size) if image_size else image)
            labels.append(int(example[label_key]))
        if images:
            names = [f"{split_name}[{i}]" for i in range(len(images))]
            splits[split_name] = Split(stack_images(images, names, label), np.asarray(labels, np.int32))
    if "train" not in splits:
        raise DataError(f"{label}: it has no train split (splits: {_tfds_splits(builder)})")
    classes = features[label_key]
    return make_dataset(label, splits, classes.num_classes, tuple(classes.names))


# -- the config and the data -------------------------------------------------------------------------


def info_of(dataset) -> DatasetInfo:
    """The `DatasetInfo` of a `Dataset`, or of a bare (train, validation, test) triple such as
    `ram.data.Mnist` (MNIST's 10 classes and their names; channels and size from the arrays)."""
    if isinstance(getattr(dataset, "info", None), DatasetInfo):
        return dataset.info
    images = as_nhwc(np.asarray(dataset.train.images[:1]))
    h, w, c = images.shape[1:]
    return DatasetInfo("mnist", MNIST_CLASSES, int(c), (int(h), int(w)), MNIST_INFO.class_names)


def fields_from_data(task: str) -> tuple[str, ...]:
    """The config fields `fit_config` sets from the data on `task`."""
    return ("num_classes", "channels", *(("canvas",) if task == "mnist" else ()))


def fit_config(config: Config, info: DatasetInfo) -> Config:
    """`config` with `num_classes`, `channels` and (for `task=mnist`) `canvas` taken from the data.

    A setting the data contradicts (`num_classes=5` on a 10-class dataset, a canvas smaller than the
    images, clutter pieces larger than them) is one line (`DataError`). 0 means "from the data"."""
    h, w = info.image_shape
    for field, value, what in (("num_classes", info.num_classes, "classes"), ("channels", info.channels, "channels")):
        if getattr(config, field) not in (0, value):
            raise DataError(
                f"{field}={getattr(config, field)}: {info.name} has {value} {what}; set {field}={value} "
                "or leave it out (0 takes it from the data)"
            )
    # canvas (task=mnist): the image as it is
    if parse_dataset_kind(info.name) == "arrays":  # what trained is the arrays, whatever config.dataset says
        config = config.replace(dataset=info.name)
    from_data = {"num_classes": info.num_classes, "channels": info.channels, "canvas": max(h, w)}
    changes = {k: from_data[k] for k in fields_from_data(config.task)}
    if config.task == "mnist":
        # The canvas is the images' own size; a value other than the default (28) or that size asked
        # for something task=mnist does not do, so it is refused rather than silently replaced.
        if config.canvas not in (Config.canvas, max(h, w)):
            raise DataError(
                f"canvas={config.canvas}: task=mnist looks at the {h}x{w} images of {info.name} as they are; "
                "leave canvas out, or use task=translated for a larger canvas"
            )
        if config.train_shift and 2 * config.train_shift >= min(h, w):
            raise DataError(
                f"train_shift={config.train_shift}: too large for the {h}x{w} images of {info.name} (at most "
                f"{(min(h, w) - 1) // 2})"
            )
    else:
        if config.canvas < max(h, w):
            raise DataError(
                f"canvas={config.canvas}: a {config.task} canvas must hold the {h}x{w} images of {info.name}; "
                f"use canvas >= {max(h, w)} or image_size= to resize them"
            )
        if config.task == "cluttered" and config.clutter_size > min(h, w):
            raise DataError(
                f"clutter_size={config.clutter_size}: clutter pieces are cut from the {h}x{w} images of "
                f"{info.name}; use clutter_size <= {min(h, w)}"
            )
    try:
        fitted = config.replace(**changes).validate()
        return fitted.check_retina(fitted.canvas)
    except ConfigError as e:
        raise DataError(f"with the {h}x{w} images of {info.name}: {e}") from None


def fingerprint(dataset, splits: tuple[str, ...] = SPLITS) -> dict:
    """`{"dataset": name, "image_shape": [H, W, C], "class_names": [...], SPLIT: {"images": N,
    "sha256": digest}}` of `splits`: what a run trained and was evaluated on. The digest is that of the sorted per-image
    digests (each of an image's shape, pixels [H, W, C] and label), so it does not depend on the order
    the images were read in: the same images and labels give the same fingerprint from tfds, the MNIST
    files or a folder, on any system. (Runs from before session 21 recorded no image_shape, and from
    before session 22 no class_names: label i's name, empty where the dataset names none.)"""
    shape = as_nhwc(np.asarray(getattr(dataset, splits[0]).images[:1])).shape[1:]
    info = info_of(dataset)
    out = {"dataset": info.name, "image_shape": [int(d) for d in shape], "class_names": list(info.class_names)}
    for split_name in splits:
        split = getattr(dataset, split_name)
        images = np.ascontiguousarray(as_nhwc(np.asarray(split.images)))
        labels = np.asarray(split.labels).astype(np.int64)
        head = f"{images.shape[1:]} {images.dtype}".encode()
        rows = images.reshape(len(images), -1)
        each = sorted(
            hashlib.sha256(head + label.tobytes() + row.data).digest()[:16]
            for row, label in zip(rows, labels, strict=True)
        )
        out[split_name] = {"images": int(len(labels)), "sha256": hashlib.sha256(b"".join(each)).hexdigest()[:16]}
    return out


def changed_splits(recorded: dict | None, now: dict, splits: tuple[str, ...]) -> str | None:
    """None if `splits` are as `recorded` (or nothing was recorded); else what changed, in words."""
    if not recorded:
        return None
    changed = [
        f"{s} ({(recorded.get(s) or {}).get('images', '?')} images then, {now[s]['images']} now)"
        for s in splits
        if s in recorded and recorded[s] != now[s]
    ]
    return "; ".join(changed) or None


def write_folder(dataset, root: str | os.PathLike, limit: int | None = None) -> Path:
    """Writes a dataset's splits as a `folder:` dataset: root/SPLIT/CLASS/INDEX.png (PNG is lossless,
    so `load_folder` reads back the same pixels). `limit` keeps the first `limit` images of each split.

    Class folders are named by `class_names` (MNIST: "0".."9"), else by the label; files by the image's
    index in its split (zero-padded), so a folder lists each class's images in split order."""
    from PIL import Image

    root = Path(root)
    info = info_of(dataset)
    names = info.class_names or tuple(str(i) for i in range(info.num_classes))
    for split_name in SPLITS:
        split = getattr(dataset, split_name)
        images, labels = as_nhwc(np.asarray(split.images))[:limit], np.asarray(split.labels)[:limit]
        width = len(str(max(len(labels) - 1, 0)))
        for label in np.unique(labels):  # only classes with images: an empty class folder is an error
            (root / split_name / names[label]).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            pixels = image[..., 0] if image.shape[-1] == 1 else image
            Image.fromarray(pixels).save(root / split_name / names[label] / f"{i:0{width}d}.png")
    return root
