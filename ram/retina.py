"""The glimpse sensor: multi-resolution patches around a location, for a whole batch at once.

Conventions (Mnih et al., 2014):

* A location is `(x, y)` in [-1, 1]^2: `(0, 0)` is the image centre, `(-1, -1)` the top-left
  corner, `(1, 1)` the bottom-right corner; `x` runs along columns (width), `y` along rows.
* Location `l` maps to the continuous pixel coordinate `c = (l + 1) / 2 * size` (so -1 is the left
  edge of pixel 0 and +1 the right edge of the last pixel). Patch `i` of the retina has side
  `p_i = g * s**i` and covers the pixels `start_i, ..., start_i + p_i - 1` with
  `start_i = floor(c - p_i / 2 + 1/2)`: the integer window whose centre is nearest to `c`.
  At `l = 0` on an even-sided image, an even patch is exactly centred.
* Every patch is average-pooled to `g x g` over blocks of `s**i x s**i` pixels. Pixels outside the
  image read as zero (and count in the average).

How: the image is the same for every glimpse of an episode, so `box_sums` first computes, once per
episode and scale, the sum of every `s**i x s**i` box of the image (a box filter: each scale's
boxes are `s x s` boxes of the scale before, added with shifts). Reading a glimpse (`read`) is
then two gathers per scale: the patch's `g` block rows, then its `g` block columns, strided by the
block size, with indices outside the image masked to zero. No per-example loop, and the finest
patch is the pixels themselves. Earlier versions, kept in experiments/BENCH.md, pooled every glimpse
from scratch (pooling-matrix products, then row/column gathers of the whole patch); the last of
them took about 10x longer for the 8 glimpses of a cluttered60 episode on a 2-core CPU.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def patch_starts(locations: chex.Array, size: int, patch_sides: chex.Array) -> chex.Array:
    """First pixel of each patch along one axis.

    Args:
      locations: [B] coordinates in [-1, 1] along this axis.
      size: image size along this axis, in pixels.
      patch_sides: [K] side of each patch, in pixels.

    Returns:
      [B, K] int32 index of the first pixel of each patch (may be negative or past the edge).
    """
    centre = (locations[:, None] + 1.0) * (size / 2.0)
    return jnp.floor(centre - patch_sides[None, :] / 2.0 + 0.5).astype(jnp.int32)


def box_sums(images: chex.Array, num_scales: int, scale_factor: int = 2) -> tuple[chex.Array, ...]:
    """Sums of every box of each scale's block size, once per episode.

    Args:
      images: [B, H, W, C] float images.
      num_scales: k.
      scale_factor: s; scale i pools blocks of `b = s**i` pixels.

    Returns:
      k arrays; the i-th is [B, H + b - 1, W + b - 1, C] with element `[y, x]` the sum of the
      `b x b` box whose top-left pixel is `(y - b + 1, x - b + 1)` (pixels outside the image are 0).

    Each scale is built from the one before: a box of `b = s * c` pixels is `s` boxes of `c` side by
    side, so every scale costs `s - 1` shifted adds per axis whatever its size (summing the `b`
    pixels of each box from scratch cost `b - 1`: 7 per axis for the coarsest scale of cluttered100).
    """
    chex.assert_rank(images, 4)
    x = images.astype(jnp.float32)
    sums = [x]
    for i in range(1, num_scales):
        c = scale_factor ** (i - 1)  # the side of the boxes of the scale before
        x = _widen(_widen(x, 1, c, scale_factor), 2, c, scale_factor)
        sums.append(x)
    return tuple(sums)


def _widen(box: chex.Array, axis: int, c: int, s: int) -> chex.Array:
    """Box sums of side `c` along `axis` (length `n + c - 1`) -> of side `s * c` (length `n + s*c - 1`):
    `out[y] = sum_j box[y - j*c]` over `j < s`, reading zeros outside `box`."""
    pad = [(0, 0)] * box.ndim
    pad[axis] = ((s - 1) * c, (s - 1) * c)
    padded = jnp.pad(box, pad)
    out = box.shape[axis] + (s - 1) * c
    total = None
    for m in range(s):
        part = jax.lax.slice_in_dim(padded, m * c, m * c + out, axis=axis)
        total = part if total is None else total + part
    return total


def _take_strided(x: chex.Array, starts: chex.Array, axis: int, count: int, stride: int) -> chex.Array:
    """`x[b, starts[b] + stride * j]` along `axis` for j < count; indices outside `x` read 0.

    x: [B, ...]; starts: [B] int. Returns `x` with `axis` of length `count`."""
    size = x.shape[axis]
    index = starts[:, None] + stride * jnp.arange(count)  # [B, count]
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[axis] = count
    taken = jnp.take_along_axis(x, jnp.clip(index, 0, size - 1).reshape(shape), axis=axis)
    return jnp.where(((index >= 0) & (index < size)).reshape(shape), taken, 0.0)


def read(sums: tuple[chex.Array, ...], locations: chex.Array, patch_size: int, scale_factor: int = 2) -> chex.Array:
    """The retina's patches at `locations`, from the episode's `box_sums`.

    Args:
      sums: `box_sums(images, k, scale_factor)` of [B, H, W, C] images.
      locations: [B, 2] `(x, y)` in [-1, 1] (values outside read zeros past the edge).
      patch_size: g.
      scale_factor: s (the one `sums` was made with).

    Returns:
      [B, k, g, g, C] patches, finest first, each average-pooled over its `s**i x s**i` blocks.
    """
    _, height, width, _ = sums[0].shape
    chex.assert_shape(locations, (sums[0].shape[0], 2))
    blocks = [scale_factor**i for i in range(len(sums))]
    sides = jnp.asarray([patch_size * b for b in blocks], jnp.float32)
    tops = patch_starts(locations[:, 1], height, sides)  # [B, k]
    lefts = patch_starts(locations[:, 0], width, sides)
    patches = []
    for i, (box, b) in enumerate(zip(sums, blocks, strict=True)):
        # The box starting at image pixel r is at index r + b - 1 of `box`.
        rows = _take_strided(box, tops[:, i] + b - 1, 1, patch_size, b)  # [B, g, W + b - 1, C]
        patch = _take_strided(rows, lefts[:, i] + b - 1, 2, patch_size, b)  # [B, g, g, C]
        patches.append(patch / float(b * b) if b > 1 else patch)
    return jnp.stack(patches, axis=1)


def glimpse(
    images: chex.Array, locations: chex.Array, patch_size: int, num_scales: int, scale_factor: int = 2
) -> chex.Array:
    """Extracts the retina's patches for every image of a batch (`read` of `box_sums`).

    For several glimpses of the same images, compute `box_sums` once and `read` each glimpse.

    Args:
      images: [B, H, W, C] float images (any H, W and channel count).
      locations: [B, 2] `(x, y)` in [-1, 1] (values outside read zeros past the edge).
      patch_size: g, the side of the finest patch and of every pooled patch.
      num_scales: k, the number of patches.
      scale_factor: s, each patch is `s` times wider than the previous one.

    Returns:
      [B, k, g, g, C] patches, finest first.
    """
    chex.assert_rank(images, 4)
    chex.assert_shape(locations, (images.shape[0], 2))
    return read(box_sums(images, num_scales, scale_factor), locations, patch_size, scale_factor)
