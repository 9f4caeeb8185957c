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

How: cropping-and-pooling is linear, so each patch is `R_y @ image @ R_x^T` with `R_y[j, r] =
1 / s**i` when row `r` falls in output row `j`'s block, else 0 (and likewise for columns). The
whole batch and all scales are two batched matrix products: no per-example loop, no gather, exact,
and fast on accelerators (it is matmul work).
"""

from __future__ import annotations

import chex
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


def pooling_matrices(starts: chex.Array, size: int, patch_size: int, scale_factor: int) -> chex.Array:
    """Crop-and-average-pool matrices along one axis.

    Args:
      starts: [B, K] first pixel of each patch (from `patch_starts`).
      size: image size along this axis.
      patch_size: g, the pooled side.
      scale_factor: s; patch `k` pools blocks of `s**k` pixels.

    Returns:
      [B, K, g, size] float32 with entry `1 / s**k` where pixel `r` belongs to output cell `j`.
    """
    num_scales = starts.shape[1]
    block = jnp.asarray([scale_factor**k for k in range(num_scales)], jnp.int32)  # [K]
    offset = jnp.arange(size, dtype=jnp.int32)[None, None, :] - starts[:, :, None]  # [B, K, size]
    cell = jnp.floor_divide(offset, block[None, :, None])  # [B, K, size]; negative before the patch
    hit = cell[:, :, None, :] == jnp.arange(patch_size, dtype=jnp.int32)[None, None, :, None]
    return hit.astype(jnp.float32) / block[None, :, None, None].astype(jnp.float32)


def glimpse(
    images: chex.Array, locations: chex.Array, patch_size: int, num_scales: int, scale_factor: int = 2
) -> chex.Array:
    """Extracts the retina's patches for every image of a batch.

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
    _, height, width, _ = images.shape
    sides = jnp.asarray([patch_size * scale_factor**k for k in range(num_scales)], jnp.float32)
    rows = pooling_matrices(patch_starts(locations[:, 1], height, sides), height, patch_size, scale_factor)
    cols = pooling_matrices(patch_starts(locations[:, 0], width, sides), width, patch_size, scale_factor)
    images = images.astype(jnp.float32)
    # [B, K, g, H] x [B, H, W, C] -> [B, K, g, W, C], then x [B, K, g', W] -> [B, K, g, g', C].
    tmp = jnp.einsum("bkjh,bhwc->bkjwc", rows, images, precision="highest")
    return jnp.einsum("bkjwc,bkiw->bkjic", tmp, cols, precision="highest")
