"""Datasets other than MNIST: name parsing, folders of images, tensorflow-datasets (mocked: nothing
downloads), arrays in memory, fitting a config to the data, and one line for each kind of bad data."""

import os
import sys

import numpy as np
import pytest

from ram import datasets
from ram.config import get_config
from ram.data import Split
from ram.errors import ConfigError, DataError


def write_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.mark.parametrize(
    "name, spec",
    [
        ("mnist", datasets.DatasetSpec("mnist")),
        ("tfds:cifar10", datasets.DatasetSpec("tfds", name="cifar10")),
        ("tfds:mnist_corrupted:shot_noise", datasets.DatasetSpec("tfds", name="mnist_corrupted", config="shot_noise")),
        ("folder:/data/my pictures", datasets.DatasetSpec("folder", path="/data/my pictures")),
        ("folder:C:/x", datasets.DatasetSpec("folder", path="C:/x")),
    ],
)
def test_dataset_names_parse(name, spec):
    assert datasets.parse_dataset(name) == spec


@pytest.mark.parametrize("name", ["", "cifar10", "tfds:", "tfds:a:b:c", "folder:", "MNIST", "hub:x"])
def test_bad_dataset_names_are_one_line(name):
    with pytest.raises(ConfigError, match="use mnist, tfds:NAME"):
        get_config("mnist28", [f"dataset={name}"])


def test_carve_is_fixed_disjoint_and_keeps_order():
    split = Split(np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1), np.arange(100, dtype=np.int32))
    rest, held = datasets.carve(split, 10, seed=1)
    assert len(held.labels) == 10 and len(rest.labels) == 90
    assert sorted(set(rest.labels) | set(held.labels)) == list(range(100))
    assert all(np.diff(rest.labels) > 0) and all(np.diff(held.labels) > 0)  # order kept
    np.testing.assert_array_equal(held.images[:, 0, 0, 0], held.labels)  # images travel with labels
    again, _ = datasets.carve(split, 10, seed=1)
    np.testing.assert_array_equal(again.labels, rest.labels)
    assert not np.array_equal(datasets.carve(split, 10, seed=2)[1].labels, held.labels)


def test_from_arrays_carves_missing_splits_and_reads_floats():
    rng = np.random.default_rng(0)
    images = rng.random((50, 12, 10, 3)).astype(np.float32)  # synthetic
    labels = rng.integers(0, 4, 50)
    ds = datasets.from_arrays((images, labels))
    assert [len(s.labels) for s in (ds.train, ds.validation, ds.test)] == [40, 5, 5]
    assert ds.info == datasets.DatasetInfo("arrays", int(labels.max()) + 1, 3, (12, 10), ())
    assert ds.train.images.dtype == np.uint8
    greys = datasets.from_arrays((np.zeros((8, 5, 5), np.uint8), np.arange(8) % 2), num_classes=3)
    assert greys.train.images.shape[1:] == (5, 5, 1) and greys.info.num_classes == 3
    with pytest.raises(DataError, match=r"float images must lie in \[0, 1\]"):
        datasets.from_arrays((images * 255, labels))
    with pytest.raises(DataError, match=r"images \(50, 3, 12, 10\) look channels-first .*np.moveaxis"):
        datasets.from_arrays((np.moveaxis(images, -1, 1), labels))
    with pytest.raises(DataError, match="labels must be whole numbers 0..K-1 \\(some are fractions\\)"):
        datasets.from_arrays((images, labels + 0.5))
    with pytest.raises(DataError, match="labels must be integers 0..K-1, not <U3 \\(map class names to integers"):
        datasets.from_arrays((images, np.array(["cat", "dog"] * 25)))
    whole = datasets.from_arrays((images, labels.astype(np.float64)))  # as np.loadtxt or pandas give them
    np.testing.assert_array_equal(whole.train.labels, ds.train.labels)


def test_mnist_digits_through_a_folder_equal_the_mnist_arrays(tmp_path, mnist_dir):
    """Real MNIST digits written as PNGs, read back through `folder:`: the same pixels and labels."""
    mnist = datasets.load_dataset("mnist", mnist_dir=mnist_dir)
    datasets.write_folder(mnist, tmp_path, limit=300)
    folder = datasets.load_dataset(f"folder:{tmp_path}")
    assert folder.info.num_classes == 10 and folder.info.channels == 1 and folder.info.image_shape == (28, 28)
    assert folder.info.class_names == tuple("0123456789")
    for name in ("train", "validation", "test"):
        ours, theirs = getattr(folder, name), getattr(mnist, name)
        # A folder lists class by class; within a class, in split order (the files' zero-padded indices).
        order = np.argsort(theirs.labels[:300], kind="stable")
        np.testing.assert_array_equal(ours.images, theirs.images[:300][order])
        np.testing.assert_array_equal(ours.labels, theirs.labels[:300][order])


def test_folder_without_splits_and_colour(tmp_path):
    """Synthetic images: PATH/CLASS/*.png alone gives carved validation and test splits; one colour
    image makes the whole dataset RGB (greyscale images repeated over 3 channels)."""
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(10):
            write_png(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (6, 8), dtype=np.uint8))
    write_png(tmp_path / "dog" / "rgb.jpg", rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    ds = datasets.load_dataset(f"folder:{tmp_path}")
    assert ds.info.class_names == ("cat", "dog") and ds.info.channels == 3 and ds.info.image_shape == (6, 8)
    sizes = [len(s.labels) for s in (ds.train, ds.validation, ds.test)]
    assert sum(sizes) == 21 and min(sizes) >= 1
    grey = ds.train.images[0]  # cat/0.png
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    resized = datasets.load_dataset(f"folder:{tmp_path}", image_size=4)
    assert resized.train.images.shape[1:] == (4, 4, 3)


def test_folders_as_users_have_them(tmp_path, capsys, monkeypatch):
    """Synthetic images: torchvision's image suffixes load; macOS's hidden `._NAME` files are skipped;
    other files and sub-folders of a class folder are said in one line; images are resized as they
    are read, to the pixels of resizing them after; a split folder without train/ is not a class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, suffix in (("a", ".bmp"), ("a", ".png"), ("b", ".webp"), ("b", ".tif"), ("b", ".jpg")):
        for i in range(3):
            array = rng.integers(0, 256, (9, 7, 3) if cls == "b" and suffix == ".jpg" else (9, 7), dtype=np.uint8)
            path = tmp_path / "kinds" / cls / f"{i}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    (tmp_path / "kinds" / "a" / "._0.png").write_bytes(b"AppleDouble metadata, not a PNG")
    (tmp_path / "kinds" / "a" / "notes.txt").write_text("not an image")
    write_png(tmp_path / "kinds" / "b" / "more" / "0.png", np.zeros((9, 7), np.uint8))
    ds = datasets.load_dataset(f"folder:{tmp_path / 'kinds'}")
    assert sum(len(s.labels) for s in (ds.train, ds.validation, ds.test)) == 15 and ds.info.channels == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].endswith("images of 5 kinds: 3 .bmp, 3 .jpg, 3 .png, 3 .tif, 3 .webp")
    assert "not read: 1 file(s) that are not images (.png, " in err[1] and ") and 1 sub-folder(s) in class" in err[1]
    assert len(err) == 2
    # Resized as read (the grey ones then repeated over 3 channels) = resized after decoding in full.
    full = {s: datasets.read_images(sorted((tmp_path / "kinds" / s).glob("[0-9].*"))) for s in ("a", "b")}
    small = {s: datasets.read_images(sorted((tmp_path / "kinds" / s).glob("[0-9].*")), 4) for s in ("a", "b")}
    for s in ("a", "b"):
        for im, sm in zip(full[s], small[s], strict=True):
            rgb = np.repeat(im, 3, -1) if im.shape[-1] == 1 else im
            np.testing.assert_array_equal(datasets.resize_images(rgb[None], 4)[0], np.broadcast_to(sm, (4, 4, 3)))
    for cls in ("cat", "dog", "test"):  # a class named test: its images are in it
        write_png(tmp_path / "notrain" / cls / "0.png", np.zeros((4, 4), np.uint8))
    assert datasets.load_dataset(f"folder:{tmp_path / 'notrain'}").info.class_names == ("cat", "dog", "test")
    (tmp_path / "notrain" / "test" / "0.png").rename(tmp_path / "notrain" / "0.png")
    write_png(tmp_path / "notrain" / "test" / "cat" / "0.png", np.zeros((4, 4), np.uint8))  # a split's layout
    with pytest.raises(DataError, match=r"it has test/ but no train/: put the training images in train/CLASS/"):
        datasets.load_dataset(f"folder:{tmp_path / 'notrain'}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # 9x7 = 63 pixels: over twice the limit
    with pytest.raises(DataError, match=r"a/0.bmp: it has more pixels than Pillow decodes \(20\)"):
        datasets.read_image(tmp_path / "kinds" / "a" / "0.bmp")


def test_dark_data_is_said():
    """Synthetic arrays: a training split no brighter than 16/255 (12-bit data in 16-bit files, or
    drawings in a dropped alpha channel) loads, with one warning."""
    images, labels = np.full((20, 5, 5), 16, np.uint8), np.arange(20) % 2

    def warning(images):
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            datasets.from_arrays((images, labels))
        return err.getvalue()

    assert "the brightest training pixel is 16 of 255: are the images scaled as meant?" in warning(images)
    assert warning(images + 1) == ""


def test_a_folder_is_named_one_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for spelling in ("pics", "pics/", "./pics", "~/pics", "~/pics/", "~/./pics", f"{tmp_path}//pics/"):
        config = datasets.absolute_folder(get_config("mnist28", [f"dataset=folder:{spelling}"]))
        assert config.dataset == f"folder:{tmp_path}/pics", spelling


def test_a_carved_split_depends_on_each_image_alone(tmp_path):
    """Synthetic images, each distinct: validation and test carved from a flat folder hold about a
    tenth each, are disjoint, and keep every image where it was when images are added or removed (a
    model's test set never takes in what it trained on)."""
    rng = np.random.default_rng(0)
    pixels = {}

    def add(cls, i):
        image = rng.integers(0, 256, (4, 4), dtype=np.uint8)
        pixels[image.tobytes()] = f"{cls}/{i}.png"
        write_png(tmp_path / cls / f"{i}.png", image)

    def where(ds):
        return {
            pixels[im.tobytes()]: split
            for split in ("train", "validation", "test")
            for im in getattr(ds, split).images[..., 0]
        }

    for cls in ("a", "b"):
        for i in range(200):
            add(cls, i)
    before = where(datasets.load_dataset(f"folder:{tmp_path}"))
    counts = {s: list(before.values()).count(s) for s in ("train", "validation", "test")}
    assert len(before) == 400 and 20 <= counts["validation"] <= 60 and 20 <= counts["test"] <= 60, counts
    for cls in ("a", "b"):
        for i in range(200, 260):
            add(cls, i)
    (tmp_path / "a" / "0.png").unlink()
    after = where(datasets.load_dataset(f"folder:{tmp_path}"))
    assert len(after) == 519
    assert all(after[f] == split for f, split in before.items() if f != "a/0.png")
    assert {s for f, s in after.items() if f not in before} == {"train", "validation", "test"}
    if os.name == "posix" and sys.platform != "darwin":  # a name that is not UTF-8 (Linux keeps its bytes)
        image = rng.integers(0, 256, (4, 4), dtype=np.uint8)
        pixels[image.tobytes()] = "b/cafe.png"
        write_png(tmp_path / os.fsdecode(b"b/caf\xe9.png"), image)
        assert len(where(datasets.load_dataset(f"folder:{tmp_path}"))) == 520
    tiny = tmp_path / "tiny"
    for cls in ("a", "b"):
        write_png(tiny / cls / "0.png", np.zeros((4, 4), np.uint8))
        write_png(tiny / cls / "1.png", np.ones((4, 4), np.uint8))
    ds = datasets.load_dataset(f"folder:{tiny}")  # a band that holds none still gets an image
    assert [len(s.labels) for s in (ds.train, ds.validation, ds.test)] == [2, 1, 1]


def test_the_fingerprint_is_of_the_images_and_labels_not_their_order_or_layout():
    """Synthetic arrays: an [N, H, W] triple and the same [N, H, W, 1] dataset, in any order, give
    one fingerprint; one changed pixel or label changes its split's digest alone."""
    from ram.data import Mnist

    rng = np.random.default_rng(0)
    splits = [Split(rng.integers(0, 256, (n, 5, 5), dtype=np.uint8), rng.integers(0, 3, n)) for n in (20, 6, 6)]
    triple = Mnist(*splits)
    order = rng.permutation(6)
    shuffled = datasets.Dataset(
        splits[0], splits[1], Split(splits[2].images[order][..., None], splits[2].labels[order]), datasets.MNIST_INFO
    )
    assert datasets.fingerprint(triple) == datasets.fingerprint(shuffled)
    changed = splits[2].images.copy()
    changed[0, 0, 0] ^= 1
    other = datasets.fingerprint(triple._replace(test=Split(changed, splits[2].labels)))
    relabelled = datasets.fingerprint(triple._replace(test=Split(splits[2].images, (splits[2].labels + 1) % 3)))
    before = datasets.fingerprint(triple)
    assert datasets.changed_splits(before, other, datasets.SPLITS) == "test (6 images then, 6 now)"
    assert relabelled["test"] != datasets.fingerprint(triple)["test"]
    assert datasets.changed_splits({"test": {}}, other, ("validation", "test")) == "test (? images then, 6 now)"
    assert datasets.changed_splits(None, other, datasets.SPLITS) is None


def test_split_folders_greyscale_kinds_and_one_class(tmp_path):
    """Synthetic images: val/ is the validation split; a folder beside train/ that names no split, a
    single class, and split folders without train/ are one line each; 16-bit greyscale PNGs are
    scaled to 8 bits and greyscale with alpha stays one channel."""
    from PIL import Image

    def fails(path, message):
        with pytest.raises(DataError, match=message) as e:
            datasets.load_dataset(f"folder:{path}")
        assert "\n" not in str(e.value)

    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        for cls in ("a", "b"):
            for i in range(n):
                write_png(tmp_path / "tv" / split / cls / f"{i}.png", np.full((4, 4), i, np.uint8))
    ds = datasets.load_dataset(f"folder:{tmp_path / 'tv'}")
    assert [len(s.labels) for s in (ds.train, ds.validation, ds.test)] == [12, 4, 6]
    for split in ("train", "val", "test"):  # as macOS and Windows may name them
        (tmp_path / "tv" / split).rename(tmp_path / "tv" / split.capitalize())
    ds = datasets.load_dataset(f"folder:{tmp_path / 'tv'}")
    assert [len(s.labels) for s in (ds.train, ds.validation, ds.test)] == [12, 4, 6]
    for split in ("train", "val", "test"):
        (tmp_path / "tv" / split.capitalize()).rename(tmp_path / "tv" / split)
    (tmp_path / "tv" / "testing").mkdir()
    fails(tmp_path / "tv", r"beside train/ it has testing/, which names no split")
    (tmp_path / "tv" / "testing").rmdir()
    (tmp_path / "tv" / "validation").mkdir()
    fails(tmp_path / "tv", r"val/ and validation/ both name the validation split")
    (tmp_path / "tv" / "validation").rmdir()
    (tmp_path / "tv" / "train").rename(tmp_path / "tv" / "training")
    fails(tmp_path / "tv", r"it has test/, val/ but no train/: put the training images in train/CLASS/")
    for split in ("training", "testing"):
        write_png(tmp_path / "ing" / split / "a" / "0.png", np.zeros((4, 4), np.uint8))
    fails(tmp_path / "ing", r"class folder .*/testing has no images .* but folders: name the splits train/")
    write_png(tmp_path / "one" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    fails(tmp_path / "one", r"has one class folder \(a\); a classifier needs at least two")

    deep = np.array([0, 128, 129, 385, 386, 1000, 30000, 65535] * 2, np.uint16).reshape(4, 4)
    write_png(tmp_path / "kinds" / "a" / "0.png", deep)
    assert Image.open(tmp_path / "kinds" / "a" / "0.png").mode.startswith("I")
    la = np.stack([np.arange(16, dtype=np.uint8).reshape(4, 4), np.full((4, 4), 255, np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "kinds" / "a" / "1.png")
    eight = [0, 0, 1, 1, 2, 4, 117, 255] * 2  # rounded to the nearest of 65535 / 255 steps
    np.testing.assert_array_equal(datasets.read_image(tmp_path / "kinds" / "a" / "0.png").ravel(), eight)
    np.testing.assert_array_equal(datasets.read_image(tmp_path / "kinds" / "a" / "1.png"), la[..., :1])


def test_a_decoded_folder_is_cached_until_its_images_change(tmp_path, monkeypatch, capsys):
    """Synthetic images: the second load reads the cache (no image decoded) and gives the same
    dataset; an added image, a rewritten one or another image_size decode again; a cache file
    that does not read is decoded again; RAM_CACHE_DIR=off writes nothing."""
    monkeypatch.setenv("RAM_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            for i in range(4):
                write_png(tmp_path / "data" / split / cls / f"{i}.png", rng.integers(0, 256, (5, 6), dtype=np.uint8))
    name = f"folder:{tmp_path / 'data'}"
    monkeypatch.setattr(datasets, "CACHE_SAY_MB", 0)  # announced from this size on (a tiny one is not)
    first = datasets.load_dataset(name)
    assert "decoded images cached in" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob("folder-*.npz"))) == 1
    decoded = []
    real = datasets.read_images
    monkeypatch.setattr(datasets, "read_images", lambda paths, size=0: decoded.append(len(paths)) or real(paths, size))
    again = datasets.load_dataset(name)
    assert decoded == [] and again.info == first.info
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(again, split).images, getattr(first, split).images)
        np.testing.assert_array_equal(getattr(again, split).labels, getattr(first, split).labels)
    write_png(tmp_path / "data" / "train" / "b" / "9.png", np.zeros((5, 6), np.uint8))  # an added image
    assert len(datasets.load_dataset(name).train.labels) == len(first.train.labels) + 1 and decoded
    decoded.clear()
    write_png(tmp_path / "data" / "test" / "a" / "0.png", np.full((5, 6), 7, np.uint8))  # rewritten
    (tmp_path / "data" / "test" / "a" / "0.png").touch()  # a later modification time, whatever the clock's grain
    assert datasets.load_dataset(name).test.images[0].max() == 7 and decoded
    decoded.clear()
    st = (tmp_path / "data" / "test" / "a" / "1.png").stat()
    os.utime(tmp_path / "data" / "test" / "a" / "1.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the time alone
    datasets.load_dataset(name)
    assert decoded and len(list((tmp_path / "cache").glob("folder-*.npz"))) == 1  # the newest state's file alone
    decoded.clear()
    assert datasets.load_dataset(name, image_size=3).train.images.shape[1:] == (3, 3, 1) and decoded
    for f in (tmp_path / "cache").glob("folder-*.npz"):
        f.write_bytes(b"not a zip file")
    decoded.clear()
    assert datasets.load_dataset(name).test.images[0].max() == 7 and decoded
    assert "does not read (ValueError); decoding the images again" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob("folder-*.npz"))) == 2  # one per image_size
    monkeypatch.setenv("RAM_CACHE_DIR", "off")
    datasets.load_dataset(f"folder:{tmp_path / 'data' / 'train'}")  # another folder: it would get a file
    assert len(list((tmp_path / "cache").glob("folder-*.npz"))) == 2


def test_bad_folders_say_what_is_wrong_in_one_line(tmp_path):
    def fails(path, message, **kw):
        with pytest.raises(DataError, match=message) as e:
            datasets.load_dataset(f"folder:{path}", **kw)
        assert "\n" not in str(e.value)

    fails(tmp_path / "nope", "is not a folder")
    (tmp_path / "empty").mkdir()
    fails(tmp_path / "empty", "has no class sub-folders")
    (tmp_path / "noimages" / "train" / "a").mkdir(parents=True)
    (tmp_path / "noimages" / "train" / "a" / "notes.txt").write_text("not an image")
    write_png(tmp_path / "noimages" / "train" / "b" / "0.png", np.zeros((4, 4), np.uint8))
    fails(tmp_path / "noimages", "the class folder .*/train/a has no images")
    write_png(tmp_path / "corrupt" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "corrupt" / "b" / "0.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "corrupt" / "a" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    fails(tmp_path / "corrupt", "cannot read the image .*corrupt/a/1.png")
    write_png(tmp_path / "mixed" / "train" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "mixed" / "train" / "b" / "0.png", np.zeros((5, 4), np.uint8))
    write_png(tmp_path / "mixed" / "val" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "mixed" / "test" / "b" / "0.png", np.zeros((4, 4), np.uint8))
    fails(tmp_path / "mixed", r"mixed sizes .*a/0.png is 4x4, .*b/0.png is 5x4\); set image_size=S")
    assert datasets.load_dataset(f"folder:{tmp_path / 'mixed'}", image_size=3).train.images.shape[1:] == (3, 3, 1)
    write_png(tmp_path / "extra" / "train" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "extra" / "train" / "b" / "0.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "extra" / "test" / "z" / "0.png", np.zeros((4, 4), np.uint8))
    fails(tmp_path / "extra", r"has class folder\(s\) \['z'\] that the training split lacks")
    (tmp_path / "extra" / "test" / "z" / "0.png").unlink()
    (tmp_path / "extra" / "test" / "z").rmdir()
    fails(tmp_path / "extra", "extra/test has no class sub-folders of images")


def test_tfds_image_datasets_through_mock_data():
    """tensorflow-datasets' own mock (random examples; nothing downloads): classes, channels and size
    come from the dataset's info; a missing validation split is carved from train."""
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20):
        cifar = datasets.load_dataset("tfds:cifar10")
        fashion = datasets.load_dataset("tfds:fashion_mnist", image_size=14)
        with pytest.raises(DataError, match="tfds:imdb_reviews is not an image-classification dataset"):
            datasets.load_dataset("tfds:imdb_reviews")
        with pytest.raises(DataError, match="tfds:no_such_dataset: tensorflow-datasets does not know it"):
            datasets.load_dataset("tfds:no_such_dataset")
    assert cifar.info[:4] == ("tfds:cifar10", 10, 3, (32, 32)) and len(cifar.info.class_names) == 10
    assert [len(s.labels) for s in (cifar.train, cifar.validation, cifar.test)] == [18, 2, 20]
    assert cifar.train.images.shape[1:] == (32, 32, 3) and cifar.train.images.dtype == np.uint8
    assert fashion.info[:4] == ("tfds:fashion_mnist", 10, 1, (14, 14))


def test_fit_config_takes_classes_channels_and_size_from_the_data():
    info = datasets.DatasetInfo("folder:x", 3, 3, (20, 24))
    fitted = datasets.fit_config(get_config("mnist28", ["dataset=folder:x"]), info)
    assert (fitted.num_classes, fitted.channels, fitted.canvas) == (3, 3, 24)  # task=mnist: the image as it is
    assert datasets.fit_config(fitted, info) == fitted  # fitting twice changes nothing
    cluttered = datasets.fit_config(get_config("cluttered60", ["dataset=folder:x"]), info)
    assert (cluttered.canvas, cluttered.num_classes) == (60, 3)
    for overrides, message in [
        (["num_classes=10"], "num_classes=10: folder:x has 3 classes; set num_classes=3"),
        (["channels=1"], "channels=1: folder:x has 3 channels"),
    ]:
        with pytest.raises(DataError, match=message):
            datasets.fit_config(get_config("mnist28", ["dataset=folder:x", *overrides]), info)
    with pytest.raises(DataError, match="canvas=64: task=mnist looks at the 20x24 images of folder:x as they are"):
        datasets.fit_config(get_config("mnist28", ["dataset=folder:x", "canvas=64"]), info)
    with pytest.raises(DataError, match="canvas=22: a translated canvas must hold the 20x24 images"):
        datasets.fit_config(get_config("translated60", ["dataset=folder:x", "canvas=22", "patch_size=8"]), info)
    with pytest.raises(DataError, match="clutter_size=21: clutter pieces are cut from the 20x24 images"):
        datasets.fit_config(get_config("cluttered60", ["dataset=folder:x", "clutter_size=21"]), info)
    # A shift is checked against the images' own size, known once they are loaded (not MNIST's 28).
    shifted = get_config("mnist28", ["dataset=folder:x", "train_shift=20"])
    assert datasets.fit_config(shifted, info._replace(image_shape=(64, 64))).train_shift == 20
    with pytest.raises(DataError, match=r"train_shift=20: too large for the 20x24 images of folder:x \(at most 9\)"):
        datasets.fit_config(shifted, info)
