"""The glimpse sensor against crops worked out by hand (tiny synthetic images, not MNIST)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ram import retina


def ramp(h, w, c=1):
    """[1, h, w, c] image whose pixel (r, q, ch) holds 1000 * ch + 100 * r + q + 1 (never 0)."""
    r, q, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return (1000.0 * ch + 100.0 * r + q + 1)[None].astype(np.float32)


def crop(image, top, left, side):
    """Hand crop of image [H, W, C] with zeros outside: pixels top..top+side-1, left..left+side-1."""
    h, w, c = image.shape
    out = np.zeros((side, side, c), np.float32)
    for i in range(side):
        for j in range(side):
            if 0 <= top + i < h and 0 <= left + j < w:
                out[i, j] = image[top + i, left + j]
    return out


def pool(patch, block):
    side = patch.shape[0] // block
    return patch.reshape(side, block, side, block, -1).mean((1, 3))


def run(image, loc, g, k, s=2):
    return np.asarray(retina.glimpse(jnp.asarray(image), jnp.asarray([loc], jnp.float32), g, k, s))[0]


@pytest.mark.parametrize(
    "loc, top, left",
    [
        ((0.0, 0.0), 10, 10),  # centre of 28x28: rows/cols 10..17, exactly centred
        ((-1.0, -1.0), -4, -4),  # top-left corner: half the patch outside
        ((1.0, 1.0), 24, 24),  # bottom-right corner
        ((1.0, -1.0), -4, 24),  # top-right: x is the column
        ((-0.5, 0.25), 14, 3),  # (x, y): col centre 7 -> 3, row centre 17.5 -> floor(14.0) = 14
        ((2.0, 0.0), 10, 38),  # far outside: all zeros
    ],
)
def test_single_scale_matches_hand_crop(loc, top, left):
    image = ramp(28, 28)
    got = run(image, loc, g=8, k=1)
    np.testing.assert_array_equal(got[0], crop(image[0], top, left, 8))


def test_centre_values_by_hand():
    got = run(ramp(28, 28), (0.0, 0.0), g=8, k=1)[0, :, :, 0]
    assert got[0, 0] == 100 * 10 + 10 + 1 and got[7, 7] == 100 * 17 + 17 + 1


def test_corner_zero_padding():
    got = run(ramp(28, 28), (-1.0, -1.0), g=8, k=1)[0, :, :, 0]
    assert np.all(got[:4] == 0) and np.all(got[:, :4] == 0)
    assert got[4, 4] == 1.0  # pixel (0, 0)


def test_multi_scale_is_average_pooled():
    image = ramp(28, 28)
    got = run(image, (0.0, 0.0), g=4, k=3)  # sides 4, 8, 16 -> starts 12, 10, 6
    np.testing.assert_allclose(got[0], crop(image[0], 12, 12, 4))
    np.testing.assert_allclose(got[1], pool(crop(image[0], 10, 10, 8), 2), rtol=1e-6)
    np.testing.assert_allclose(got[2], pool(crop(image[0], 6, 6, 16), 4), rtol=1e-6)
    # Partly outside: zeros count in the average.
    got = run(image, (-1.0, -1.0), g=4, k=2)  # sides 4, 8 -> starts -2, -4
    np.testing.assert_allclose(got[1], pool(crop(image[0], -4, -4, 8), 2), rtol=1e-6)
    assert got[1][0, 0, 0] == 0 and got[1][2, 2, 0] == pytest.approx(np.mean([1, 2, 101, 102]))


def test_rgb_and_non_square():
    image = ramp(20, 30, c=3)
    got = run(image, (0.5, -0.5), g=8, k=1)  # x: 22.5 -> cols 19..26, y: 5 -> rows 1..8
    np.testing.assert_array_equal(got[0], crop(image[0], 1, 19, 8))
    assert got.shape == (1, 8, 8, 3)


def test_batch_is_vectorised_and_independent():
    images = np.concatenate([ramp(28, 28), 2 * ramp(28, 28)])
    locs = jnp.asarray([[0.0, 0.0], [-1.0, -1.0]])
    got = np.asarray(jax.jit(lambda i, loc: retina.glimpse(i, loc, 8, 2))(jnp.asarray(images), locs))
    assert got.shape == (2, 2, 8, 8, 1)
    np.testing.assert_allclose(got[0, 0], crop(images[0], 10, 10, 8))
    np.testing.assert_allclose(got[1, 0], crop(images[1], -4, -4, 8))


@pytest.mark.parametrize("s, k", [(2, 3), (3, 2), (2, 4)])
def test_box_sums_once_then_read_matches_hand_crops(s, k):
    """The episode computes `box_sums` once and reads every glimpse from them: random images,
    locations inside and well outside the canvas, several scale factors, against hand crops."""
    rng = np.random.default_rng(s * 10 + k)
    images = rng.random((3, 30, 26, 2)).astype(np.float32)
    sums = retina.box_sums(jnp.asarray(images), k, s)
    read = jax.jit(lambda sm, loc: retina.read(sm, loc, 5, s))
    for _ in range(4):
        locs = rng.uniform(-1.7, 1.7, (3, 2)).astype(np.float32)
        got = np.asarray(read(sums, jnp.asarray(locs)))
        for b in range(3):
            for i in range(k):
                side = 5 * s**i
                top = int(np.floor((locs[b, 1] + 1) * 15 - side / 2 + 0.5))
                left = int(np.floor((locs[b, 0] + 1) * 13 - side / 2 + 0.5))
                want = pool(crop(images[b], top, left, side), s**i)
                np.testing.assert_allclose(got[b, i], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("s, k", [(2, 4), (3, 3)])
def test_box_sums_are_the_sums_of_every_box(s, k):
    """Each scale's array, built from the scale before, holds at [y, x] the sum of the b x b box whose
    top-left pixel is (y - b + 1, x - b + 1): checked against explicit window sums over a zero-padded
    copy (random images)."""
    images = np.random.default_rng(k).random((2, 11, 7, 3)).astype(np.float32)
    sums = retina.box_sums(jnp.asarray(images), k, s)
    for i, got in enumerate(sums):
        b = s**i
        padded = np.pad(images, ((0, 0), (b - 1, b - 1), (b - 1, b - 1), (0, 0)))
        assert got.shape == (2, 11 + b - 1, 7 + b - 1, 3)
        want = np.zeros(got.shape, np.float64)
        for y in range(got.shape[1]):
            for x in range(got.shape[2]):
                want[:, y, x] = padded[:, y : y + b, x : x + b].sum(axis=(1, 2))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
