"""The images RAM looks at, made on the device from arrays of a dataset's images that stay there.

* `mnist`: the image as it is, any size and channels (28x28 for MNIST digits; training images
  optionally shifted by up to `train_shift` pixels, an augmentation; validation and test images
  never are).
* On every task, training images can be rotated and scaled (`train_rotation`, `train_scale`: an
  augmentation, `distort`) before they go on the canvas; clutter pieces, validation and test images
  never are.
* `translated`: the image at a uniform position on a zero `canvas x canvas` (x C).
* `cluttered`: the DeepMind mnist-cluttered recipe: `clutter_pieces` random `clutter_size` square
  crops of random images *of the same split* are added at uniform positions, then the image is added
  at a uniform position, and the sum is clipped to [0, 1].

Images are [N, h, w, C] uint8 (any dataset of `ram.datasets`); [N, h, w] arrays, as `ram.data`
gives MNIST, are read as C = 1 and give the same canvases as before the channel axis existed.

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
from ram.data import as_nhwc

EVAL_SEEDS = {"validation": 1, "test": 2}


class DeviceSplit(NamedTuple):
    """A split held on the device."""

    images: chex.Array  # [N, h, w, C] uint8 (or [N, h, w]: C = 1)
    labels: chex.Array  # [N] int32


def to_device(split) -> DeviceSplit:
    """A host split (`ram.data.Split`: images [N, h, w, C] or [N, h, w]) as device arrays [N, h, w, C]."""
    images = np.asarray(split.images)
    images = images[..., None] if images.ndim == 3 else images
    return DeviceSplit(jnp.asarray(images), jnp.asarray(split.labels, jnp.int32))


def nbytes(split) -> int:
    """Bytes of a split's images (host or device)."""
    return int(np.prod(split.images.shape)) * np.dtype(split.images.dtype).itemsize


def _span(along_rows: int, along_cols: int):
    """`maxval` of a (row, col) draw: one number when both are equal (square images draw exactly as
    the 28x28 digits always did), else one per axis."""
    return along_rows if along_rows == along_cols else jnp.asarray([along_rows, along_cols])


def synthetic_split(n: int = 4096, seed: int = 0, shape: tuple[int, ...] = (28, 28)) -> DeviceSplit:
    """Random uint8 arrays shaped like MNIST digits, or `shape` ((h, w) or (h, w, C)) (synthetic, not
    MNIST), for tests and benchmarks."""
    rng = np.random.default_rng(seed)
    return DeviceSplit(
        jnp.asarray(rng.integers(0, 256, (n, *shape)), jnp.uint8),
        jnp.asarray(rng.integers(0, 10, n), jnp.int32),
    )


def _add_at(canvas: chex.Array, patch: chex.Array, top_left: chex.Array) -> chex.Array:
    """Adds the [p, q, C] int32 `patch` to the [W, W, C] int32 `canvas` at `top_left` (row, col), in place."""
    start = (top_left[0], top_left[1], 0)
    window = jax.lax.dynamic_slice(canvas, start, patch.shape)
    return jax.lax.dynamic_update_slice(canvas, window + patch, start)


def compose(key: chex.PRNGKey, digit: chex.Array, pool: chex.Array, config: Config) -> chex.Array:
    """One example's canvas.

    Args:
      key: this example's key.
      digit: [h, w, C] uint8 target image (an MNIST digit: [28, 28, 1]).
      pool: [N, h, w, C] uint8 images of the same split, the source of clutter.
      config: `task`, `canvas`, `clutter_pieces`, `clutter_size`.

    Returns:
      [canvas, canvas, C] uint8 ([h, w, C], the image itself, for `task=mnist`).
    """
    chex.assert_rank(digit, 3)
    if config.task == "mnist":
        return digit
    w, p = config.canvas, config.clutter_size
    rows, cols, channels = digit.shape
    digit_key, clutter_key = jax.random.split(key)
    canvas = jnp.zeros((w, w, channels), jnp.int32)
    if config.task == "cluttered":

        def piece(k):
            src_k, crop_k, pos_k = jax.random.split(k, 3)
            source = pool[jax.random.randint(src_k, (), 0, pool.shape[0])].astype(jnp.int32)
            start = jax.random.randint(crop_k, (2,), 0, _span(rows - p + 1, cols - p + 1))
            crop = jax.lax.dynamic_slice(source, (start[0], start[1], 0), (p, p, channels))
            return crop, jax.random.randint(pos_k, (2,), 0, w - p + 1)

        # Draw every piece at once, then add them one by one where they go (no canvas per piece).
        crops, positions = jax.vmap(piece)(jax.random.split(clutter_key, config.clutter_pieces))
        for i in range(config.clutter_pieces):
            canvas = _add_at(canvas, crops[i], positions[i])
    top_left = jax.random.randint(digit_key, (2,), 0, _span(w - rows + 1, w - cols + 1))
    canvas = _add_at(canvas, digit.astype(jnp.int32), top_left)
    return jnp.clip(canvas, 0, 255).astype(jnp.uint8)


def to_model_input(canvases: chex.Array) -> chex.Array:
    """[B, H, W, C] uint8 -> [B, H, W, C] float32 in [0, 1]."""
    return canvases.astype(jnp.float32) / 255.0


def _compose_batch(keys: chex.Array, split: DeviceSplit, index: chex.Array, config: Config, distorted: bool = False):
    pool = as_nhwc(split.images)
    digits = pool[index]
    if distorted:
        digits = jax.vmap(lambda k, d: distort(jax.random.fold_in(k, 2), d, config))(keys, digits)
    canvases = jax.vmap(lambda k, d: compose(k, d, pool, config))(keys, digits)
    return to_model_input(canvases), split.labels[index]


def affine(image: chex.Array, degrees: chex.Numeric, scale: chex.Numeric) -> chex.Array:
    """[h, w, C] uint8 `image` rotated by `degrees` (counter-clockwise as displayed) and scaled by
    `scale` about its centre: bilinear, zero outside the image, rounded back to uint8."""
    h, w, _ = image.shape
    angle = jnp.deg2rad(degrees)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    y, x = rows - (h - 1) / 2, cols - (w - 1) / 2
    # Each output pixel reads the input where the inverse transform takes it (y grows downwards).
    source = [(cos * y + sin * x) / scale + (h - 1) / 2, (cos * x - sin * y) / scale + (w - 1) / 2]

    def channel(plane):
        return jax.scipy.ndimage.map_coordinates(plane, source, order=1, mode="constant", cval=0.0)

    out = jax.vmap(channel, in_axes=2, out_axes=2)(image.astype(jnp.float32))
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


def distort(key: chex.PRNGKey, image: chex.Array, config: Config) -> chex.Array:
    """[h, w, C] uint8 `image` through `affine` with an angle uniform in +-`config.train_rotation`
    degrees and a scale uniform in 1 +- `config.train_scale`."""
    angle_key, scale_key = jax.random.split(key)
    r, s = config.train_rotation, config.train_scale
    degrees = jax.random.uniform(angle_key, (), minval=-r, maxval=r)
    scale = jax.random.uniform(scale_key, (), minval=1 - s, maxval=1 + s)
    return affine(image, degrees, scale)


@functools.partial(jax.jit, static_argnames=("config", "batch_size"))
def train_batch(key: chex.PRNGKey, split: DeviceSplit, config: Config, batch_size: int):
    """A fresh batch: digits drawn uniformly (with replacement), rotated and scaled if
    `config.train_rotation` or `config.train_scale` is set, canvases made anew (and shifted by up to
    `config.train_shift` pixels, if set).

    Returns:
      images [B, canvas, canvas, C] float32 (task=mnist: the images' own [B, H, W, C]), labels [B] int32.
    """
    index_key, canvas_key = jax.random.split(key)
    index = jax.random.randint(index_key, (batch_size,), 0, split.labels.shape[0])
    keys = jax.random.split(canvas_key, batch_size)
    distorted = bool(config.train_rotation or config.train_scale)
    images, labels = _compose_batch(keys, split, index, config, distorted)
    if config.train_shift:
        images = jax.vmap(functools.partial(shift, max_shift=config.train_shift))(keys, images)
    return images, labels


def shift(key: chex.PRNGKey, image: chex.Array, max_shift: int) -> chex.Array:
    """[H, W, C] image moved by a uniform integer offset in [-max_shift, max_shift]^2, zero filled.

    `key` is the example's canvas key; `task=mnist` (the only task with a shift) draws nothing else
    from it (`distort` draws from `fold_in(key, 2)`)."""
    m = max_shift
    padded = jnp.pad(image, ((m, m), (m, m), (0, 0)))
    start = jax.random.randint(jax.random.fold_in(key, 1), (2,), 0, 2 * m + 1)
    return jax.lax.dynamic_slice(padded, (start[0], start[1], 0), image.shape)


@functools.partial(jax.jit, static_argnames=("split_name", "config"))
def eval_batch(split_name: str, split: DeviceSplit, index: chex.Array, config: Config, offset: chex.Numeric = 0):
    """The fixed validation/test examples `offset + index` ([B] int): same values on every machine and run.

    `split` holds the whole split (offset 0), or, for a task without clutter (`needs_whole_split`
    false), any slice of it that starts at example `offset` (`index` then counts from the slice's start).

    Returns:
      images [B, canvas, canvas, C] float32 (task=mnist: the images' own [B, H, W, C]), labels [B] int32.
    """
    return _compose_batch(_eval_keys(split_name, index + offset), split, index, config)


def _eval_keys(split_name: str, examples: chex.Array) -> chex.Array:
    """[B] the keys of a split's fixed examples `examples` ([B] int, numbers in the whole split)."""
    base = jax.random.key(EVAL_SEEDS[split_name])
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(examples)


def needs_whole_split(config: Config) -> bool:
    """Whether an example of the task reads other images of its split (clutter), so that the whole
    split must be on the device to make it; otherwise an example is a function of its own image."""
    return config.task == "cluttered"


def spread(n: int, num: int) -> np.ndarray:
    """[min(num, n)] example numbers spread evenly over a split of `n`, first and last included: a
    figure of them shows several classes of a split stored class by class (an image folder's)."""
    return np.unique(np.linspace(0, n - 1, min(num, n)).round().astype(np.int32))


def figure_examples(split_name: str, split, config: Config, num: int) -> tuple[chex.Array, chex.Array]:
    """`(images [k, ...], labels [k])`: the fixed examples `spread(n, num)` of a split (host or
    device), as `eval_batch` makes them from the whole split; only their own images go to the device,
    unless clutter reads the rest of the split."""
    index = spread(len(split.labels), num)
    if needs_whole_split(config):
        return eval_batch(split_name, split if isinstance(split, DeviceSplit) else to_device(split), index, config)
    own = type(split)(split.images[index], split.labels[index])
    own = own if isinstance(own, DeviceSplit) else to_device(own)
    return _compose_batch(_eval_keys(split_name, jnp.asarray(index)), own, jnp.arange(len(index)), config)
