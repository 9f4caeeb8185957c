"""Evaluation: single-sample error (the paper's number) and, separately, the error of class
probabilities averaged over M sampled trajectories (a trick of public implementations)."""

from __future__ import annotations

import functools
import os
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ram import datasets, input_pipeline, rundir, tasks
from ram.config import Config
from ram.episode import episode_fn
from ram.errors import RamError


def trajectory_probs(episode, params, images: chex.Array, key: chex.PRNGKey, std, mc_samples: int) -> chex.Array:
    """Class probabilities [M, B, C] of `mc_samples` trajectories of each image [B, H, W, C], the
    keys split from `key`; `episode` is `ram.episode.episode_fn`'s."""
    keys = jax.random.split(key, mc_samples)
    return jax.vmap(lambda k: jax.nn.softmax(episode(params, images, k, std).logits))(keys)


@functools.lru_cache(maxsize=16)
def make_batch_eval(graphdef: nnx.GraphDef, config: Config, split_name: str, mc_samples: int):
    """Jitted `(params, split, index [B], key, std, offset=0) -> (single_correct [B], mc_correct [B], num_correct [B])`
    of the fixed examples `offset + index` (`tasks.eval_batch`).

    `single_correct` (bool): trajectory 0 classifies the image right; `mc_correct` (bool): the class
    probabilities averaged over the M trajectories do; `num_correct` (int32, 0 to M): how many of
    the M trajectories classify it right on their own.

    Cached: compiled once per (model, config, split, M) in a process."""
    episode = episode_fn(graphdef, config)

    @jax.jit
    def batch_eval(params, split: tasks.DeviceSplit, index: chex.Array, key: chex.PRNGKey, std: chex.Numeric, offset=0):
        images, labels = tasks.eval_batch(split_name, split, index, config, offset)
        probs = trajectory_probs(episode, params, images, key, std, mc_samples)  # [M, B, C]
        single = jnp.argmax(probs[0], -1) == labels
        averaged = jnp.argmax(probs.mean(0), -1) == labels
        num_correct = (jnp.argmax(probs, -1) == labels).sum(0, dtype=jnp.int32)
        return single, averaged, num_correct

    return batch_eval


def make_example_evaluator(graphdef: nnx.GraphDef, config: Config, split_name: str, split, mc_samples: int):
    """`outcomes(params, seed, step, std=None) -> (single [n] bool, mc [n] bool, num_correct [n] int)`:
    `make_batch_eval`'s three outcomes for every example of a whole fixed split, in batches of
    `config.eval_batch_size` (the last one padded, its padding dropped).

    `split` is a host split (`ram.data.Split`) or a `tasks.DeviceSplit`. A host split goes on the
    device once when its images take at most `config.device_data_mb` MB or its task draws clutter
    from the whole split; otherwise each batch's images are put there while the batch before it is
    evaluated (the same examples, so the same numbers: `tasks.eval_batch`'s offset).

    `step` is the train step the parameters come from: the policy samples with the std it had then
    (`Config.policy_std`); None means the end of training. `std`, if given, replaces that std. Batch
    i's trajectories use the key `fold_in(key(seed), i)`."""
    batch_eval = make_batch_eval(graphdef, config, split_name, mc_samples)
    n, bs = int(split.labels.shape[0]), config.eval_batch_size
    batches = _batches(split, split_name, config)

    def outcomes(params, seed: int = 0, step: int | None = None, std: float | None = None) -> tuple[np.ndarray, ...]:
        base = jax.random.key(seed)
        if std is None:
            std = config.policy_std(config.train_steps if step is None else step)
        parts = []  # per batch: its three outcomes for its real examples

        def fetch(valid, outputs) -> None:  # waits for the batch's results
            parts.append([np.asarray(x)[valid] for x in outputs])

        pending = None  # the batch in flight: the next one is gathered (and streamed) while it runs
        for i, (lo, device_split, index, offset) in enumerate(batches()):
            outputs = batch_eval(params, device_split, index, jax.random.fold_in(base, i), std, offset)
            if pending is not None:
                fetch(*pending)
            pending = (np.arange(lo, lo + bs) < n, outputs)
        fetch(*pending)
        return tuple(np.concatenate(x) for x in zip(*parts, strict=True))

    return outcomes


def make_evaluator(graphdef: nnx.GraphDef, config: Config, split_name: str, split, mc_samples: int):
    """`evaluate(params, seed, step, std=None) -> {"error_pct", "mc_error_pct", "expected_error_pct",
    "mc_samples", "num_examples"}` over a whole fixed split: `make_example_evaluator`'s outcomes
    (which say how the split is evaluated and what `seed`, `step` and `std` mean), counted.

    `error_pct` is the single-sample error of trajectory 0 (the paper's number); `mc_error_pct` the
    error of the class probabilities averaged over the M trajectories; `expected_error_pct` the mean
    over the M trajectories of each one's single-sample error (tfRAM's protocol; with M = 1 it is
    `error_pct`)."""
    outcomes = make_example_evaluator(graphdef, config, split_name, split, mc_samples)

    def evaluate(params, seed: int = 0, step: int | None = None, std: float | None = None) -> dict:
        single, mc, correct = outcomes(params, seed, step, std)
        n = len(single)
        return {
            "error_pct": 100.0 * (1 - int(single.sum()) / n),
            "mc_error_pct": 100.0 * (1 - int(mc.sum()) / n),
            "expected_error_pct": 100.0 * (1 - int(correct.sum()) / (n * mc_samples)),
            "mc_samples": mc_samples,
            "num_examples": n,
        }

    return evaluate


def streams(split, config: Config) -> bool:
    """Whether `make_evaluator` puts a host split on the device batch by batch rather than whole."""
    return not (
        isinstance(split, tasks.DeviceSplit)
        or tasks.needs_whole_split(config)
        or input_pipeline.fits_on_device(split, config)
    )


def place(split, split_name: str, config: Config):
    """The split as `make_evaluator` reads it: a `tasks.DeviceSplit` of the whole split, or the host
    split itself where it `streams` (put on the device once, so a caller can share it)."""
    if isinstance(split, tasks.DeviceSplit) or streams(split, config):
        return split
    return _whole_on_device(split, split_name, config)


def _batches(split, split_name: str, config: Config):
    """`batches()` yields `(lo, device split, index [B], offset)` for the examples lo..lo+B-1 of a split
    (B = `config.eval_batch_size`; indices past the end repeat example 0 of what is on the device)."""
    n, bs = int(split.labels.shape[0]), config.eval_batch_size
    split = place(split, split_name, config)
    if isinstance(split, tasks.DeviceSplit):
        whole = split

        def on_device():
            for lo in range(0, n, bs):
                index = np.arange(lo, lo + bs)
                yield lo, whole, jnp.asarray(np.where(index < n, index, 0)), 0

        return on_device
    images, labels = np.asarray(split.images), np.asarray(split.labels)

    def streamed():
        for lo in range(0, n, bs):
            take = np.arange(lo, lo + bs)
            take = np.where(take < n, take, lo)  # the padding repeats the batch's first example
            part = tasks.to_device(type(split)(images[take], labels[take]))
            yield lo, part, jnp.arange(bs), lo

    return streamed


def _whole_on_device(split, split_name: str, config: Config) -> tasks.DeviceSplit:
    """A host split on the device, or one line (`RamError`) where it does not fit in its memory."""
    try:
        return tasks.to_device(split)
    except Exception as e:  # XlaRuntimeError RESOURCE_EXHAUSTED, or the host's MemoryError
        if "RESOURCE_EXHAUSTED" not in str(e) and not isinstance(e, MemoryError):
            raise
        what = (
            "cluttered canvases draw clutter from the whole split: use a smaller split"
            if tasks.needs_whole_split(config)
            else f"lower device_data_mb (now {config.device_data_mb}) below its size to evaluate it batch by batch"
        )
        mb = tasks.nbytes(split) / 2**20
        raise RamError(
            f"the {split_name} split ({len(split.labels)} images, {mb:.0f} MB) does not fit in the device's "
            f"memory; {what}"
        ) from None


def evaluate_run(
    run_dir: str | os.PathLike, data, *, config: Config | None = None, mc_samples: int | None = None
) -> dict:
    """Test errors of each seed's best-on-validation parameters in a run folder, on `data` (the run's
    dataset: a `ram.datasets.Dataset` or `ram.data.Mnist`; one line if its classes or channels differ).

    Returns:
      `{"num_seeds", "seeds", "best_step", "val_error_pct", "test_error_pct", "test_error_mc_pct",
      "test_error_expected_pct", "summary", "mc_samples", "task", "num_glimpses"}`, the per-seed
      figures as lists of N and the summary their mean, std, min and max (`ram.rundir.upgrade_results`'
      schema).
    """
    run = rundir.load_run(run_dir, config)
    config = datasets.fit_config(run.config, datasets.info_of(data))
    recorded, compared = rundir.RunDir(run_dir).read_data(), ("validation", "test")
    # Nothing recorded (a run of an older ram): nothing to hash.
    changed = recorded and datasets.changed_splits(recorded, datasets.fingerprint(data, compared), compared)
    if changed and jax.process_index() == 0:
        print(
            f"ram: warning: the data differs from what {run_dir} trained with, in {changed}; "
            "the errors are on today's data",
            file=sys.stderr,
        )
    mc_samples = mc_samples or config.mc_samples
    test = make_evaluator(run.graphdef, config, "test", data.test, mc_samples)
    val = make_evaluator(run.graphdef, config, "validation", data.validation, 1)
    per_seed = []
    for i, seed in enumerate(run.seeds):
        params, step = run.seed_params(i)
        t = test(params, seed=seed, step=step)
        v = val(params, seed=seed, step=step)
        per_seed.append(
            {
                "best_step": int(step),
                "val_error_pct": round(v["error_pct"], 4),
                "test_error_pct": round(t["error_pct"], 4),
                "test_error_mc_pct": round(t["mc_error_pct"], 4),
                "test_error_expected_pct": round(t["expected_error_pct"], 4),
            }
        )
    results = {
        "num_seeds": len(run.seeds),
        "seeds": run.seeds,
        **{k: [s[k] for s in per_seed] for k in per_seed[0]},
        "mc_samples": mc_samples,
        "task": config.task,
        "num_glimpses": config.num_glimpses,
    }
    return rundir.upgrade_results(results)


@functools.lru_cache(maxsize=8)
def _probabilities(graphdef: nnx.GraphDef, config: Config, mc_samples: int):
    episode = episode_fn(graphdef, config)

    @jax.jit
    def probs(params, images, key, std):
        return trajectory_probs(episode, params, images, key, std, mc_samples).mean(0)

    return probs


def check_images(
    shape: tuple[int, ...], config: Config, given: tuple[int, ...], image_shape: tuple[int, ...] | None = None
) -> None:
    """`RamError` unless `shape` [B, H, W, C] is a batch of `config`'s canvases (task=mnist: the
    images as they are, of the run's `image_shape` [H, W, C] if recorded, else any whose longer side is
    the canvas; other tasks: the whole square canvas)."""
    c, n = config.channels or 1, config.canvas
    h, w = image_shape[:2] if config.task == "mnist" and image_shape else (n, n)
    want = f"[B, {h}, {w}, {c}]" if c > 1 else f"[B, {h}, {w}] or [B, {h}, {w}, 1]"
    ok = len(shape) == 4 and shape[3] == c
    if ok:
        unrecorded = config.task == "mnist" and not image_shape
        ok = max(shape[1:3]) == n if unrecorded else tuple(shape[1:3]) == (h, w)
    if not ok:
        where = "" if config.task == "mnist" else f" (task={config.task}: images already placed on the canvas)"
        raise RamError(f"images of shape {tuple(given)} do not fit this run: give {want}{where}")


def predict(run: rundir.Run, images, *, seed_index: int = 0, mc_samples: int = 1, seed: int = 0) -> np.ndarray:
    """Class probabilities [B, num_classes] of a run's best parameters (of seed index `seed_index`) on
    `images` as the model sees them: [B, H, W] or [B, H, W, C], uint8 (0-255) or float in [0, 1], of
    the run's canvas (28x28 for MNIST digits). `mc_samples > 1` averages over that many trajectories.
    Images of another size or number of channels, floats outside [0, 1], a seed index the run does not
    have or `mc_samples < 1` are one line (`RamError`); no images give [0, num_classes]."""
    images = np.asarray(images)
    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    x = x[..., None] if x.ndim == 3 else x
    check_images(x.shape, run.config, images.shape, run.image_shape)
    if x.size and not (np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1):
        raise RamError(
            f"images of dtype {images.dtype} range over [{x.min()}, {x.max()}]: give floats in [0, 1] "
            "(divide 0-255 values by 255) or uint8"
        )
    if mc_samples < 1:
        raise RamError(f"mc_samples={mc_samples}: must be at least 1 trajectory")
    params, step = run.seed_params(seed_index)
    if not len(x):  # no images: no probabilities (a batch of 0 does not reach the model)
        return np.zeros((0, run.config.num_classes), np.float32)
    std = run.config.policy_std(step)
    probs = _probabilities(run.graphdef, run.config, mc_samples)(params, jnp.asarray(x), jax.random.key(seed), std)
    return np.asarray(probs)
