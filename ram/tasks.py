"""The images RAM looks at, made on the device from MNIST arrays that stay there.

* `mnist`: the 28x28 digit as it is (training digits optionally shifted by up to `train_shift`
  pixels, an augmentation; validation and test digits never are).
* `translated`: the digit at a uniform position on a zero `canvas x canvas`.
* `cluttered`: the DeepMind mnist-cluttered recipe: `clutter_pieces` random `clutter_size` square
  crops of random digits *of the same split* are added at uniform positions, then the digit is added
  at a uniform position, and the sum is clipped to [0, 1].

Canvases are built in uint8 units (sums clipped to 255), which is exactly the recipe on [0, 1]
images scaled by 255. Every example is a function of one key: training draws fresh examples every
step inside the compiled train step; validation and test examples use the key
`fold_in(key(EVAL_SEEDS[split]), index)`, so they are the same on every machine, run and batch size.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from ram.config import Config

DIGIT = 28
EVAL_SEEDS = {"validation": 1, "test": 2}


class DeviceSplit(NamedTuple):
    """A split held on the device."""

    images: chex.Array  # [N, 28, 28] uint8
    labels: chex.Array  # [N] int32


def to_device(split) -> DeviceSplit:
    """A host split (`ram.data.Split`) as device arrays."""
    return DeviceSplit(jnp.asarray(split.images), jnp.asarray(split.labels, jnp.int32))


def synthetic_split(n: int = 4096, seed: int = 0) -> DeviceSplit:
    """Random uint8 arrays shaped like MNIST digits (synthetic, not MNIST), for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    return DeviceSplit(
        jnp.asarray(rng.integers(0, 256, (n, 28, 28)), jnp.uint8),
        jnp.asarray(rng.integers(0, 10, n), jnp.int32),
    )


def _add_at(canvas: chex.Array, patch: chex.Array, top_left: chex.Array) -> chex.Array:
    """Adds the [p, p] int32 `patch` to the int32 `canvas` at `top_left` (row, col), in place."""
    start = (top_left[0], top_left[1])
    window = jax.lax.dynamic_slice(canvas, start, patch.shape)
    return jax.lax.dynamic_update_slice(canvas, window + patch, start)


def compose(key: chex.PRNGKey, digit: chex.Array, pool: chex.Array, config: Config) -> chex.Array:
    """One example's canvas.

    Args:
      key: this example's key.
      digit: [28, 28] uint8 target digit.
      pool: [N, 28, 28] uint8 digits of the same split, the source of clutter.
      config: `task`, `canvas`, `clutter_pieces`, `clutter_size`.

    Returns:
      [canvas, canvas] uint8.
    """
    if config.task == "mnist":
        return digit
    w, p = config.canvas, config.clutter_size
    digit_key, clutter_key = jax.random.split(key)
    canvas = jnp.zeros((w, w), jnp.int32)
    if config.task == "cluttered":

        def piece(k):
            src_k, crop_k, pos_k = jax.random.split(k, 3)
            source = pool[jax.random.randint(src_k, (), 0, pool.shape[0])].astype(jnp.int32)
            crop = jax.lax.dynamic_slice(source, jax.random.randint(crop_k, (2,), 0, DIGIT - p + 1), (p, p))
            return crop, jax.random.randint(pos_k, (2,), 0, w - p + 1)

        # Draw every piece at once, then add them one by one where they go (no canvas per piece).
        crops, positions = jax.vmap(piece)(jax.random.split(clutter_key, config.clutter_pieces))
        for i in range(config.clutter_pieces):
            canvas = _add_at(canvas, crops[i], positions[i])
    top_left = jax.random.randint(digit_key, (2,), 0, w - DIGIT + 1)
    canvas = _add_at(canvas, digit.astype(jnp.int32), top_left)
    return jnp.clip(canvas, 0, 255).astype(jnp.uint8)


def to_model_input(canvases: chex.Array) -> chex.Array:
    """[B, H, W] uint8 -> [B, H, W, 1] float32 in [0, 1]."""
    return (canvases.astype(jnp.float32) / 255.0)[..., None]


def _compose_batch(keys: chex.Array, split: DeviceSplit, index: chex.Array, config: Config):
    canvases = jax.vmap(lambda k, d: compose(k, d, split.images, config))(keys, split.images[index])
    return to_model_input(canvases), split.labels[index]


@functools.partial(jax.jit, static_argnames=("config", "batch_size"))
def train_batch(key: chex.PRNGKey, split: DeviceSplit, config: Config, batch_size: int):
    """A fresh batch: digits drawn uniformly (with replacement), canvases made anew (and shifted by
    up to `config.train_shift` pixels, if set).

    Returns:
      images [B, canvas, canvas, 1] float32, labels [B] int32.
    """
    index_key, canvas_key = jax.random.split(key)
    index = jax.random.randint(index_key, (batch_size,), 0, split.labels.shape[0])
    keys = jax.random.split(canvas_key, batch_size)
    images, labels = _compose_batch(keys, split, index, config)
    if config.train_shift:
        images = jax.vmap(functools.partial(shift, max_shift=config.train_shift))(keys, images)
    return images, labels


def shift(key: chex.PRNGKey, image: chex.Array, max_shift: int) -> chex.Array:
    """[H, W, C] image moved by a uniform integer offset in [-max_shift, max_shift]^2, zero filled.

    `key` is the example's canvas key; `task=mnist` (the only task with a shift) draws nothing else
    from it."""
    m = max_shift
    padded = jnp.pad(image, ((m, m), (m, m), (0, 0)))
    start = jax.random.randint(jax.random.fold_in(key, 1), (2,), 0, 2 * m + 1)
    return jax.lax.dynamic_slice(padded, (start[0], start[1], 0), image.shape)


@functools.partial(jax.jit, static_argnames=("split_name", "config"))
def eval_batch(split_name: str, split: DeviceSplit, index: chex.Array, config: Config):
    """The fixed validation/test examples `index` ([B] int): same values on every machine and run.

    Returns:
      images [B, canvas, canvas, 1] float32, labels [B] int32.
    """
    base = jax.random.key(EVAL_SEEDS[split_name])
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(index)
    return _compose_batch(keys, split, index, config)
