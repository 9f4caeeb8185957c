"""Where RAM looked: glimpse-trajectory figures, animations and training curves (host-side only).

* `glimpse_boxes`: the pixel window of every retina scale at a location, the same integer windows
  `ram.retina` reads (so every rectangle drawn sits on the pixels that were sampled).
* `foveated_view`: what the network received at one glimpse: each scale's pooled patch shown at its
  true extent, finer scales on top.
* `plot_glimpses` / `animate_glimpses`: a PNG grid and a GIF (one frame per glimpse); in colour for
  RGB images (the image, the boxes and each foveated view).
* `glimpse_image`: the grid as an [H, W, 3] array (the TensorBoard figure of each validation).
* `plot_curves`: loss parts, reward and errors from a run's metrics.jsonl.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ram import datasets, retina, rundir, tasks
from ram.config import Config
from ram.episode import episode_fn
from ram.errors import RamError


class Glimpses(NamedTuple):
    """A batch of episodes, on the host. N examples, T glimpses, k scales."""

    images: np.ndarray  # [N, H, W, C] in [0, 1]
    labels: np.ndarray  # [N]
    predictions: np.ndarray  # [N]
    locations: np.ndarray  # [T, N, 2] (x, y) in [-1, 1]
    patches: np.ndarray  # [T, N, k, g, g, C] what the retina returned
    class_names: tuple[str, ...] = ()  # label i's name in titles (empty: the label's number)


def glimpse_boxes(location, height: int, width: int, config: Config) -> list[tuple[int, int, int]]:
    """`[(top, left, side), ...]` in pixels, finest scale first, for one (x, y) location."""
    sides = jnp.asarray([config.patch_size * config.scale_factor**k for k in range(config.num_scales)], jnp.float32)
    loc = jnp.asarray(location, jnp.float32)[None]
    tops = np.asarray(retina.patch_starts(loc[:, 1], height, sides))[0]
    lefts = np.asarray(retina.patch_starts(loc[:, 0], width, sides))[0]
    return [(int(t), int(q), int(s)) for t, q, s in zip(tops, lefts, np.asarray(sides), strict=True)]


def foveated_view(patches: np.ndarray, config: Config, boxes: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """[k, g, g, C] pooled patches -> [S, S, C] view, S the widest side, coarse scales upsampled.

    `boxes` (`glimpse_boxes` of the glimpse's location) puts each scale where the retina read it
    within the coarsest; without them the scales are centred, which is the same unless an odd
    `patch_size` meets an even `scale_factor` (then a finer patch may sit one pixel off centre)."""
    k, g = patches.shape[0], patches.shape[1]
    side = g * config.scale_factor ** (k - 1)
    view = np.zeros((side, side, patches.shape[-1]), np.float32)
    for i in reversed(range(k)):  # coarsest first, finest on top
        block = config.scale_factor**i
        up = np.repeat(np.repeat(patches[i], block, 0), block, 1)
        n = up.shape[0]
        if boxes is None:
            top = left = (side - n) // 2
        else:
            top, left = boxes[i][0] - boxes[-1][0], boxes[i][1] - boxes[-1][1]
        view[top : top + n, left : left + n] = up
    return view


def _view(g: Glimpses, step: int, example: int, config: Config) -> np.ndarray:
    """`foveated_view` of one glimpse of one example, each scale where the retina read it."""
    h, w = g.images.shape[1:3]
    return foveated_view(g.patches[step, example], config, glimpse_boxes(g.locations[step, example], h, w, config))


def run_glimpses(
    graphdef,
    params,
    config: Config,
    data,
    num: int = 8,
    seed: int = 0,
    split: str = "test",
    step: int | None = None,
) -> Glimpses:
    """Episodes on `num` fixed examples of a split (of `data`: a `ram.datasets.Dataset` or
    `ram.data.Mnist`) of the run's task, spread over the split (`ram.tasks.figure_examples`), with
    the policy std of train step `step` (default: the end of training)."""
    examples = tasks.figure_examples(split, getattr(data, split), config, num)
    return example_glimpses(graphdef, params, config, examples, seed, step)


@functools.lru_cache(maxsize=8)
def _glimpses_fn(graphdef, config: Config):
    """One jitted program `(params, images, key, std) -> (predictions, locations, patches)` (compiled
    once per run and figure size: op by op, the same work took 3.6 s to compile at every run's first
    validation figure)."""
    episode = episode_fn(graphdef, config)

    def fn(params, images, key, std):
        traj = episode(params, images, key, std)
        sums = retina.box_sums(images, config.num_scales, config.scale_factor)
        patches = jax.vmap(lambda loc: retina.read(sums, loc, config.patch_size, config.scale_factor))(traj.locations)
        return jnp.argmax(traj.logits, -1), traj.locations, patches

    return jax.jit(fn)


def example_glimpses(
    graphdef,
    params,
    config: Config,
    examples: tuple[jax.Array, jax.Array],
    seed: int = 0,
    step: int | None = None,
) -> Glimpses:
    """`run_glimpses` on examples already made (`(images [N, ...], labels [N])`, e.g. by
    `ram.tasks.figure_examples`)."""
    images, labels = examples
    std = config.policy_std(config.train_steps if step is None else step)
    out = _glimpses_fn(graphdef, config)(params, images, jax.random.key(seed), std)
    return Glimpses(np.asarray(images), np.asarray(labels), *(np.asarray(x) for x in out))


def _show(ax, image: np.ndarray) -> None:
    cmap = "gray" if image.shape[-1] == 1 else None
    ax.imshow(
        image[..., 0] if image.shape[-1] == 1 else image,
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def draw_glimpses(
    ax,
    image: np.ndarray,
    locations: np.ndarray,
    config: Config,
    upto: int | None = None,
    color=(1.0, 0.2, 0.2),
) -> None:
    """Draws `image` [H, W, C] with glimpses 1..upto: numbered points joined by a path, and one
    rectangle per scale (finest brightest) at the pixels the retina read."""
    from matplotlib.patches import Rectangle

    h, w = image.shape[:2]
    _show(ax, image)
    locations = locations[: (upto if upto is not None else len(locations))]
    # Pixel-centre coordinates as imshow draws them: pixel j spans [j - 0.5, j + 0.5].
    px = (locations[:, 0] + 1) / 2 * w - 0.5
    py = (locations[:, 1] + 1) / 2 * h - 0.5
    ax.plot(px, py, "-", color=color, lw=1, alpha=0.8)
    for t, loc in enumerate(locations):
        last = t == len(locations) - 1
        for i, (top, left, side) in enumerate(glimpse_boxes(loc, h, w, config)):
            alpha = (1.0 if last else 0.35) * (1.0 - 0.6 * i / max(1, config.num_scales))
            ax.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5),
                    side,
                    side,
                    fill=False,
                    edgecolor=color,
                    alpha=alpha,
                    lw=1.5 if i == 0 else 1.0,
                )
            )
        ax.text(px[t], py[t], str(t + 1), color="yellow", fontsize=7, ha="center", va="center", fontweight="bold")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


def _title(g: Glimpses, n: int) -> tuple[str, str]:
    ok = g.predictions[n] == g.labels[n]
    name = lambda i: g.class_names[i] if i < len(g.class_names) else str(i)  # noqa: E731
    return f"pred {name(g.predictions[n])} / true {name(g.labels[n])} {'✓' if ok else '✗'}", ("green" if ok else "red")


def plot_glimpses(g: Glimpses, config: Config, path: str | os.PathLike | None = None):
    """PNG grid: one row per example, the image with its trajectory, then each foveated view."""
    import matplotlib.pyplot as plt

    n, t = g.images.shape[0], g.locations.shape[0]
    fig, axes = plt.subplots(n, t + 1, figsize=(1.6 * (t + 1), 1.7 * n), squeeze=False)
    for row in range(n):
        draw_glimpses(axes[row, 0], g.images[row], g.locations[:, row], config)
        title, colour = _title(g, row)
        axes[row, 0].set_title(title, fontsize=8, color=colour)
        for step in range(t):
            _show(axes[row, step + 1], _view(g, step, row, config))
            if row == 0:
                axes[row, step + 1].set_title(f"glimpse {step + 1}", fontsize=8)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, Path(path), dpi=100)
    return fig


def glimpse_image(g: Glimpses, config: Config) -> np.ndarray:
    """`plot_glimpses`' figure as an [H, W, 3] uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plot_glimpses(g, config)
    try:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def animate_glimpses(g: Glimpses, config: Config, path: str | os.PathLike, fps: float = 1.5) -> None:
    """GIF with one frame per glimpse: every example's trajectory so far and its current view."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    n, t = g.images.shape[0], g.locations.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 3.8), squeeze=False)

    def frame(step):
        for col in range(n):
            for ax in axes[:, col]:
                ax.clear()
            draw_glimpses(axes[0, col], g.images[col], g.locations[:, col], config, upto=step + 1)
            _show(axes[1, col], _view(g, step, col, config))
            if step == t - 1:
                title, colour = _title(g, col)
                axes[0, col].set_title(title, fontsize=8, color=colour)
            else:
                axes[0, col].set_title(f"glimpse {step + 1}/{t}", fontsize=8)
        return []

    anim = FuncAnimation(fig, frame, frames=t)
    anim.save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)


def check_png_path(path: str | os.PathLike) -> Path:
    """`path` for a figure, or one line saying why it cannot be written there."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RamError(f"--out={path}: the figure is a PNG; give a name ending in .png")
    if not path.parent.is_dir():
        raise RamError(f"--out={path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise RamError(f"--out={path}: cannot write in {path.parent}")
    return path


def save_figure(fig, path: Path, **kw) -> Path:
    """Saves and closes `fig`; a file-system error is one line naming the path."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, **kw)
    except OSError as e:
        raise RamError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return path


def plot_examples(config: Config, data, split: str, num: int, path: str | os.PathLike, title: str = "") -> Path:
    """A PNG grid of `num` examples of a split of the config's task on `data` (a
    `ram.datasets.Dataset` or `ram.data.Mnist`; `ram data show`): fixed examples spread over a
    validation or test split (`ram.tasks.figure_examples`); training examples drawn as the train step
    draws them (key 0)."""
    import matplotlib.pyplot as plt

    info = datasets.info_of(data)
    config = datasets.fit_config(config, info)
    num = min(num, len(getattr(data, split).labels))
    if split == "train":
        images, labels = tasks.train_batch(jax.random.key(0), tasks.to_device(data.train), config, num)
    else:
        images, labels = tasks.figure_examples(split, getattr(data, split), config, num)
    cols = min(8, num)
    rows = -(-num // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    names = info.class_names
    for ax, image, label in zip(axes.flat, np.asarray(images), np.asarray(labels), strict=False):
        _show(ax, image)
        ax.set_title(names[label] if len(names) > label and names[label] != str(label) else str(label), fontsize=8)
    h, w = np.asarray(images).shape[1:3]
    fig.suptitle(f"{title} ({split}, {h}x{w})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=100)


def visualize_run(run_dir: str | os.PathLike, data, num: int = 8, seed: int = 0) -> list[Path]:
    """Writes run_dir/glimpses.png and run_dir/glimpses.gif for the run's best checkpoint (of its
    first seed, for a run of several seeds), on the test split of `data` (the run's dataset)."""
    run = rundir.load_run(run_dir)
    config = datasets.fit_config(run.config, datasets.info_of(data))
    params, best_step = run.seed_params(0)
    g = run_glimpses(run.graphdef, params, config, data, num=num, seed=seed, step=best_step)
    g = g._replace(class_names=datasets.info_of(data).class_names)
    png, gif = (rundir.RunDir(run_dir).figure(name) for name in ("glimpses.png", "glimpses.gif"))
    save_figure(plot_glimpses(g, config), png, dpi=100)
    animate_glimpses(g, config, gif)
    return [png, gif]


def _first_seed(run: rundir.RunDir) -> int:
    """The run's first seed, for the legend; 0 where its config.json is missing or unreadable (the
    curves need only metrics.jsonl)."""
    try:
        return run.config().seed
    except RamError:
        return 0


def plot_curves(run_dir: str | os.PathLike) -> Path:
    """Writes run_dir/curves.png: loss parts, reward, train and validation error against steps."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    run = rundir.RunDir(run_dir)
    if not (run.path / rundir.METRICS).is_file():
        run.config()  # a folder that is not a run says so
        raise RamError(f"{run.path / rundir.METRICS} does not exist: the run has logged no validation yet")
    rows = run.read_metrics()
    if not rows:
        raise RamError(f"{run.path / rundir.METRICS} is empty: no evaluation has been logged yet")
    step = np.asarray([r["step"] for r in rows])

    def col(key: str) -> np.ndarray:  # [S], or [S, N] for a --seeds N run (one line per seed); NaN for null
        return np.asarray([np.nan if r.get(key) is None else r[key] for r in rows], np.float64)

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    marker = "o" if len(rows) < 3 else None  # a line of one point draws nothing
    num_seeds = col("train_reward").reshape(len(rows), -1).shape[1]
    first_seed = _first_seed(run) if num_seeds > 1 else 0
    # A --seeds N run: one colour per quantity, one line style per seed (and a marker from the fifth on).
    styles, markers = ("-", "--", ":", "-."), (None, "x", "+", "^")

    def draw(ax, y: np.ndarray, colour: str, label: str | None = None, per_seed_labels: bool = False):
        for j, y_seed in enumerate(y.reshape(len(rows), -1).T):
            name = label if j == 0 or per_seed_labels else None
            if name and per_seed_labels and num_seeds > 1:
                name = f"{name}, seed {first_seed + j}"
            style, mark = styles[j % len(styles)], marker or markers[j // len(styles) % len(markers)]
            ax.plot(step, y_seed, color=colour, linestyle=style, marker=mark, label=name)

    # Loss parts; `baseline` is the name runs logged before `baseline` became a config field.
    parts = ("train_cross_entropy", "train_reinforce", "train_baseline_mse", "train_baseline", "train_loss")
    for i, key in enumerate(k for k in parts if k in rows[0]):
        draw(axes[0], col(key), f"C{i}", key.removeprefix("train_"))
    axes[0].set_title("loss parts (train)")
    draw(axes[1], col("train_reward"), "C0")
    axes[1].set_title("reward (train accuracy)")
    draw(axes[2], 100 * (1 - col("train_reward")), "C0", "train", per_seed_labels=True)
    draw(axes[2], col("val_error_pct"), "C1", "validation", per_seed_labels=True)
    for ax in (axes[0], axes[2]):
        ax.legend(fontsize=8)
    axes[2].set_yscale("log")

    # Plain percentages (a span within one decade shows only minor ticks, which a log axis labels
    # 6x10^1): every tick of a narrow span; of a wider one, each decade and its 2, 3 and 5.
    low, high = axes[2].get_ylim()
    shown = "123456789" if high < 4 * low else "1235"

    def percent(y, _):
        return f"{y:g}" if y > 0 and f"{y:.0e}"[0] in shown else ""

    axes[2].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(percent))
    axes[2].yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(percent))
    axes[2].tick_params(axis="y", which="minor", labelsize=7)
    axes[2].set_title("error % (single sample)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, run.figure("curves.png"), dpi=100)
