"""Translated and cluttered MNIST: the recipe's properties, and the fixed evaluation sets pinned."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ram import tasks
from ram.config import get_config


def test_translated_canvas_holds_exactly_the_digit():
    split = tasks.synthetic_split(16)
    config = get_config("translated60")
    images, labels = tasks.eval_batch("test", split, jnp.arange(8), config)
    assert images.shape == (8, 60, 60, 1) and float(images.max()) <= 1.0
    canvases = np.rint(np.asarray(images[..., 0]) * 255).astype(np.int64)
    digits = np.asarray(split.images[:8], np.int64)
    for canvas, digit in zip(canvases, digits, strict=True):
        placed = [(t, q) for t in range(33) for q in range(33) if np.array_equal(canvas[t : t + 28, q : q + 28], digit)]
        assert placed, "the digit is not on the canvas unchanged"
        t, q = placed[0]
        rest = canvas.copy()
        rest[t : t + 28, q : q + 28] = 0
        assert not rest.any()  # and nothing else is
    np.testing.assert_array_equal(labels, split.labels[:8])


def test_cluttered_canvas_is_clipped_sum_of_pieces_and_digit():
    split = tasks.DeviceSplit(jnp.full((4, 28, 28), 200, jnp.uint8), jnp.zeros(4, jnp.int32))
    config = get_config("cluttered60", ["clutter_pieces=40"])
    images, _ = tasks.eval_batch("validation", split, jnp.arange(4), config)
    values = set(np.unique(np.rint(np.asarray(images) * 255).astype(int)).tolist())
    assert values <= {0, 200, 255}  # 200 alone, or clipped sums of overlapping pieces
    assert 255 in values and 0 in values


def test_eval_sets_do_not_depend_on_batching():
    split = tasks.synthetic_split(16)
    config = get_config("cluttered60")
    whole, _ = tasks.eval_batch("test", split, jnp.arange(10), config)
    parts = [tasks.eval_batch("test", split, jnp.arange(lo, lo + 5), config)[0] for lo in (0, 5)]
    np.testing.assert_array_equal(whole, jnp.concatenate(parts))
    other, _ = tasks.eval_batch("validation", split, jnp.arange(10), config)
    assert not np.array_equal(whole, other)


def test_training_batches_are_fresh_every_step():
    split = tasks.synthetic_split(16)
    config = get_config("cluttered60")
    a, _ = tasks.train_batch(jax.random.key(0), split, config, 4)
    b, _ = tasks.train_batch(jax.random.key(1), split, config, 4)
    assert a.shape == (4, 60, 60, 1) and not np.array_equal(a, b)


# SHA-256 of the first 64 validation and test canvases (uint8) of each preset, made from real MNIST.
# If one changes, every recorded result of that task stops being comparable: change it only on purpose.
PINNED = {
    "translated60": "a913dc76a485d487f1a52db2b5c19e6a09827f90d47746fa904025724c151b13",
    "cluttered60": "578646283f7830b73457acae2ee4239c6b54ad7df96eb3028b3ad6d458fe70db",
    "cluttered100": "2540e80694149f27446df7b0155b35fa50f471079f43498cf0d1328593d31368",
}


@pytest.mark.parametrize("preset", sorted(PINNED))
def test_fixed_eval_sets_are_pinned(preset, mnist):
    config = get_config(preset)
    digest = hashlib.sha256()
    for name in ("validation", "test"):
        split = tasks.to_device(getattr(mnist, name))
        images, _ = tasks.eval_batch(name, split, jnp.arange(64), config)
        digest.update(np.rint(np.asarray(images) * 255).astype(np.uint8).tobytes())
    assert digest.hexdigest() == PINNED[preset]


def test_train_shift_moves_training_digits_only():
    """Synthetic data: one bright pixel per image, so every shift can be read off exactly."""
    n = 256
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 14, 10] = 255
    split = tasks.DeviceSplit(jnp.asarray(images), jnp.zeros(n, jnp.int32))
    config = get_config("mnist28", ["train_shift=3"])
    batch, _ = tasks.train_batch(jax.random.key(0), split, config, n)
    batch = np.asarray(batch[..., 0])
    assert np.all(batch.reshape(n, -1).sum(1) == 1.0)  # the pixel is moved, never lost or blurred
    rows, cols = np.nonzero(batch)[1:]
    dy, dx = rows - 14, cols - 10
    assert set(dy) == set(dx) == set(range(-3, 4))  # uniform over [-3, 3] in both axes
    val, _ = tasks.eval_batch("validation", split, jnp.arange(8), config)
    np.testing.assert_array_equal(np.asarray(val[..., 0]), images[:8] / 255.0)


def test_affine_by_hand():
    """Synthetic images: the identity, quarter turns, and a 2x zoom, each known exactly."""
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 256, (9, 9, 2)), jnp.uint8)
    np.testing.assert_array_equal(tasks.affine(image, 0.0, 1.0), image)
    # counter-clockwise as displayed (row 0 at the top), as np.rot90 turns the first two axes
    np.testing.assert_array_equal(tasks.affine(image, 90.0, 1.0), np.rot90(np.asarray(image)))
    np.testing.assert_array_equal(tasks.affine(image, -90.0, 1.0), np.rot90(np.asarray(image), -1))
    # scale 2 about the centre (4, 4): output (4 + 2d) reads input (4 + d); odd offsets interpolate
    zoomed = np.asarray(tasks.affine(image, 0.0, 2.0), np.float64)
    np.testing.assert_array_equal(zoomed[::2, ::2], np.asarray(image)[2:7, 2:7])
    between = (np.asarray(image, np.float64)[2:6, 2:7] + np.asarray(image, np.float64)[3:7, 2:7]) / 2
    np.testing.assert_allclose(zoomed[1::2, ::2], between, atol=0.5 + 1e-6)  # rounded to uint8
    # scaled down, the border reads outside the image: zero
    assert not np.asarray(tasks.affine(image, 0.0, 0.5))[0].any()


@pytest.mark.parametrize("preset", ["mnist28", "translated60", "cluttered60"])
def test_train_distortion_changes_training_digits_only(preset):
    """Synthetic digits (a bright bar): training canvases are distorted within the configured range;
    labels, validation and test canvases, and the batch without distortion, are as before."""
    n = 64
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 6:22, 13:15] = 255  # a vertical bar, 16 x 2 px, at the centre
    split = tasks.DeviceSplit(jnp.asarray(images), jnp.arange(n, dtype=jnp.int32) % 10)
    plain = get_config(preset)
    distorted = get_config(preset, ["train_rotation=30", "train_scale=0.2"])
    key = jax.random.key(3)
    a, labels_a = tasks.train_batch(key, split, plain, n)
    b, labels_b = tasks.train_batch(key, split, distorted, n)
    np.testing.assert_array_equal(labels_a, labels_b)
    assert not np.array_equal(a, b)
    # the bar's mass scales with the zoom (16 x 2 px -> up to 1.2^2 as much, or down to 0.8^2)
    bar = images[0].sum() / 255.0
    mass = np.asarray(b).reshape(n, -1).sum(1)
    if preset != "cluttered60":
        assert np.all(mass > 0.6 * bar) and np.all(mass < 1.5 * bar)
        assert mass.std() > 0.01 * bar  # different images, different draws
    for name in ("validation", "test"):
        np.testing.assert_array_equal(
            tasks.eval_batch(name, split, jnp.arange(8), plain)[0],
            tasks.eval_batch(name, split, jnp.arange(8), distorted)[0],
        )


def test_train_distortion_angle_within_range():
    """Synthetic: a horizontal bar's angle after `distort` stays within +-train_rotation and covers it."""
    image = np.zeros((29, 29, 1), np.uint8)
    image[14, 2:27] = 255
    config = get_config("translated60", ["train_rotation=20"])
    keys = jax.random.split(jax.random.key(0), 200)
    out = np.asarray(jax.vmap(lambda k: tasks.distort(k, jnp.asarray(image), config))(keys), np.float64)[..., 0]
    rows, cols = np.mgrid[:29, :29]
    angles = []
    for o in out:
        w = o / o.sum()
        y, x = (w * rows).sum() - 14, (w * cols).sum() - 14
        cov = np.cov(np.stack([(cols - 14).ravel() - x, (rows - 14).ravel() - y]), aweights=w.ravel())
        vals, vecs = np.linalg.eigh(cov)
        major = vecs[:, -1]
        angles.append(np.degrees(np.arctan(-major[1] / major[0])))  # counter-clockwise as displayed
    angles = np.asarray(angles)
    assert np.abs(angles).max() < 20.5 and np.abs(angles).max() > 17
    assert (angles > 5).mean() > 0.2 and (angles < -5).mean() > 0.2


@pytest.mark.parametrize("preset", ["mnist28", "translated60", "cluttered60"])
def test_figures_show_examples_spread_over_a_split_stored_class_by_class(preset):
    """An image folder's splits come class by class: the examples of a figure (`ram visualize`,
    `ram data show`, the validation figure) are spread over the split, not its first ones. Synthetic
    arrays (not MNIST), ten of each of four classes in order."""
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    split = tasks.DeviceSplit(jnp.asarray(images), jnp.repeat(jnp.arange(4, dtype=jnp.int32), 10))
    np.testing.assert_array_equal(tasks.spread(40, 4), [0, 13, 26, 39])
    np.testing.assert_array_equal(tasks.spread(3, 8), [0, 1, 2])  # at most the split
    shown, labels = tasks.figure_examples("test", split, get_config(preset), 4)
    assert labels.tolist() == [0, 1, 2, 3] and shown.shape[0] == 4
