"""Glimpse figures draw at the pixels the retina sampled; files come out of a real (tiny) run."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ram import visualize  # noqa: E402
from ram.config import Config  # noqa: E402

SCALE = 10  # screen pixels per image pixel


def render(image, locations, config):
    """Draws on a figure whose axes fill it exactly, SCALE screen pixels per image pixel."""
    h, w = image.shape[:2]
    fig = plt.figure(figsize=(w * SCALE / 100, h * SCALE / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    visualize.draw_glimpses(ax, image, np.asarray(locations, np.float32), config)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    plt.close(fig)
    return rgba


def is_red(pixel):
    r, g, b = pixel
    return r > 100 and r > g + 50 and r > b + 50


def test_rectangles_sit_on_the_sampled_pixels():
    config = Config(patch_size=8, num_scales=2)
    # Location (0, 0) on 28x28: the 8x8 patch covers pixels 10..17, the 16x16 one 6..21.
    assert visualize.glimpse_boxes((0.0, 0.0), 28, 28, config) == [(10, 10, 8), (6, 6, 16)]
    rgba = render(np.zeros((28, 28, 1), np.float32), [[0.0, 0.0]], config)
    for first, side in ((10, 8), (6, 16)):
        lo, hi = first * SCALE, (first + side) * SCALE  # edges between pixels, in screen pixels
        mid = (lo + hi) // 2 + 25  # away from the numbered point at the centre
        for r, c in ((mid, lo), (mid, hi - 1), (lo, mid), (hi - 1, mid)):
            window = rgba[r - 2 : r + 3, c - 2 : c + 3].reshape(-1, 3)
            assert any(is_red(p) for p in window), (first, side, r, c)
    # Just inside the fine box and between the two boxes: untouched black.
    assert rgba[120, 105].max() < 40 and rgba[120, 85].max() < 40
    # Off-centre location, non-square image: the box moves with the retina's window.
    config = Config(patch_size=4, num_scales=1, canvas=28)
    [(top, left, side)] = visualize.glimpse_boxes((0.5, -0.5), 20, 30, config)
    assert (top, left, side) == (3, 21, 4)  # x: 22.5 - 2 + 0.5 -> 21; y: 5 - 2 + 0.5 -> 3
    rgba = render(np.zeros((20, 30, 1), np.float32), [[0.5, -0.5]], config)
    assert any(is_red(p) for p in rgba[top * SCALE + 15, left * SCALE - 2 : left * SCALE + 3])
    assert rgba[top * SCALE + 15, (left - 2) * SCALE].max() < 40


def test_foveated_view_places_scales():
    config = Config(patch_size=2, num_scales=2)
    patches = np.stack([np.full((2, 2, 1), 1.0), np.full((2, 2, 1), 0.5)])
    view = visualize.foveated_view(patches, config)[..., 0]
    expected = np.full((4, 4), 0.5)
    expected[1:3, 1:3] = 1.0
    np.testing.assert_array_equal(view, expected)


def test_foveated_view_puts_each_scale_where_the_retina_read_it():
    """Synthetic image: with an odd patch and scale factor 2 the fine patch is not always centred in
    the coarse one; given the glimpse's boxes, the view's fine region is the image's pixels there."""
    from ram import retina

    config = Config(patch_size=5, num_scales=2)
    image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    gaps = set()
    for x in (0.0, 0.03, 0.05, 0.1):
        loc = np.array([[x, x]], np.float32)
        patches = np.asarray(retina.glimpse(image[None], loc, 5, 2, 2))[0]
        (ft, fl, fs), (ct, cl, _) = boxes = visualize.glimpse_boxes(loc[0], 28, 28, config)
        view = visualize.foveated_view(patches, config, boxes)
        fine = view[ft - ct : ft - ct + fs, fl - cl : fl - cl + fs]
        np.testing.assert_allclose(fine, image[ft : ft + fs, fl : fl + fs])
        gaps.add(ft - ct)
    assert gaps == {2, 3}  # both occur: centring alone would misplace some


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist):
    from ram import train

    run = tmp_path_factory.mktemp("run")
    config = Config(train_steps=20, warmup_steps=0, steps_per_call=10, eval_every=10, batch_size=16, mc_samples=1)
    train.train_and_evaluate(config, run, mnist, progress=False)
    return run


def colour_share(image, rgb, tol=40) -> float:
    """Share of the pixels of a PIL image within `tol` of the colour `rgb` (0-255)."""
    pixels = np.asarray(image.convert("RGB"), int)
    return float((np.abs(pixels - np.asarray(rgb)).max(-1) < tol).mean())


def test_visualize_and_plot_draw_glimpses_and_curves(tiny_run, mnist):
    from PIL import Image

    red, blue, orange = (255, 51, 51), (31, 119, 180), (255, 127, 14)  # glimpse boxes; matplotlib's C0, C1
    png, gif = visualize.visualize_run(tiny_run, mnist, num=3)
    with Image.open(png) as im:
        assert colour_share(im, red) > 1e-4  # the glimpse rectangles are drawn
    with Image.open(gif) as im:
        assert im.n_frames == Config().num_glimpses
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), int))
    # Each frame adds a glimpse: the frames differ, and more of the last is drawn in red than of the first.
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:], strict=False))
    share = [float((np.abs(f - np.asarray(red)).max(-1) < 40).mean()) for f in (frames[0], frames[-1])]
    assert share[1] > share[0]
    with Image.open(visualize.plot_curves(tiny_run)) as im:  # train (C0) and validation (C1) curves
        assert colour_share(im, blue) > 1e-3 and colour_share(im, orange) > 1e-4
    assert len((tiny_run / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((tiny_run / "results.json").read_text())["num_glimpses"] == 6


def test_plot_draws_a_multi_seed_run(tmp_path, monkeypatch):
    """`ram train --seeds N` logs one value per seed; the curves get one line per seed.

    The metrics here are made-up numbers in the format of a 2-seed run (no training)."""
    keys = ("train_cross_entropy", "train_reinforce", "train_baseline", "train_loss", "train_reward")
    rows = [
        {"step": s, **{k: [0.5 / s, 0.6 / s] for k in keys}, "val_error_pct": [50.0 / s, 40.0 / s]} for s in (1, 2, 3)
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from PIL import Image

    figures = []
    real = visualize.save_figure
    monkeypatch.setattr(visualize, "save_figure", lambda fig, *a, **kw: figures.append(fig) or real(fig, *a, **kw))
    with Image.open(visualize.plot_curves(tmp_path)) as im:
        for colour in ((31, 119, 180), (255, 127, 14)):  # train (C0) and validation (C1), a line per seed
            assert colour_share(im, colour) > 1e-3
    errors = figures[0].axes[2]  # the seeds are told apart by line style, and named in the legend
    assert [line.get_linestyle() for line in errors.get_lines()] == ["-", "--", "-", "--"]
    legend = [t.get_text() for t in errors.get_legend().get_texts()]
    assert legend == ["train, seed 0", "train, seed 1", "validation, seed 0", "validation, seed 1"]
    np.testing.assert_allclose(errors.get_lines()[3].get_ydata(), [40.0, 20.0, 40.0 / 3])
    # A run folder names its own seeds; a config.json that no longer reads still plots (seeds from 0).
    (tmp_path / "config.json").write_text(json.dumps({"seed": 3}))
    visualize.plot_curves(tmp_path)
    assert [t.get_text() for t in figures[1].axes[2].get_legend().get_texts()][:2] == ["train, seed 3", "train, seed 4"]
    (tmp_path / "config.json").write_text(json.dumps({"seed": 3, "colour": "red"}))
    visualize.plot_curves(tmp_path)
    assert figures[2].axes[2].get_legend().get_texts()[0].get_text() == "train, seed 0"


def test_plot_of_a_single_validation_shows_its_points(tmp_path, monkeypatch):
    """One validation so far (made-up numbers, no training): the curves mark their single points
    rather than draw lines of one point, which show nothing."""
    keys = ("train_cross_entropy", "train_reinforce", "train_loss", "train_reward")
    row = {"step": 100, **{k: 0.5 for k in keys}, "val_error_pct": 20.0}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    figures = []
    real = visualize.save_figure
    monkeypatch.setattr(visualize, "save_figure", lambda fig, *a, **kw: figures.append(fig) or real(fig, *a, **kw))
    assert visualize.plot_curves(tmp_path).is_file()
    lines = [line for ax in figures[0].axes for line in ax.get_lines()]
    assert len(lines) == 6 and all(line.get_marker() == "o" for line in lines)
