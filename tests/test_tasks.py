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
