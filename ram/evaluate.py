"""Evaluation: single-sample error (the paper's number) and, separately, the error of class
probabilities averaged over M sampled trajectories (a trick of public implementations)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ram import checkpoints, tasks
from ram.config import Config
from ram.data import Mnist
from ram.episode import episode_fn
from ram.errors import RamError
from ram.model import RAM


@functools.lru_cache(maxsize=16)
def make_batch_eval(graphdef: nnx.GraphDef, config: Config, split_name: str, mc_samples: int):
    """Jitted `(params, split, index [B], key, std) -> (single_correct [B], mc_correct [B])` (bool).

    Cached: compiled once per (model, config, split, M) in a process."""
    episode = episode_fn(graphdef, config)

    @jax.jit
    def batch_eval(params, split: tasks.DeviceSplit, index: chex.Array, key: chex.PRNGKey, std: chex.Numeric):
        images, labels = tasks.eval_batch(split_name, split, index, config)
        probs = jax.vmap(lambda k: jax.nn.softmax(episode(params, images, k, std).logits))(
            jax.random.split(key, mc_samples)
        )  # [M, B, C]
        single = jnp.argmax(probs[0], -1) == labels
        averaged = jnp.argmax(probs.mean(0), -1) == labels
        return single, averaged

    return batch_eval


def make_evaluator(graphdef: nnx.GraphDef, config: Config, split_name: str, split: tasks.DeviceSplit, mc_samples: int):
    """`evaluate(params, seed, step) -> {"error_pct", "mc_error_pct", "mc_samples", "num_examples"}` over
    a whole fixed split, in batches of `config.eval_batch_size` (the last one padded and masked).

    `step` is the train step the parameters come from: the policy samples with the std it had then
    (`Config.policy_std`); None means the end of training."""
    batch_eval = make_batch_eval(graphdef, config, split_name, mc_samples)
    n, bs = int(split.labels.shape[0]), config.eval_batch_size

    def evaluate(params, seed: int = 0, step: int | None = None) -> dict:
        base = jax.random.key(seed)
        std = config.policy_std(config.train_steps if step is None else step)
        single = mc = 0
        for i, lo in enumerate(range(0, n, bs)):
            index = np.arange(lo, lo + bs)
            valid = index < n
            s, m = batch_eval(params, split, jnp.asarray(np.where(valid, index, 0)), jax.random.fold_in(base, i), std)
            single += int(np.asarray(s)[valid].sum())
            mc += int(np.asarray(m)[valid].sum())
        return {
            "error_pct": 100.0 * (1 - single / n),
            "mc_error_pct": 100.0 * (1 - mc / n),
            "mc_samples": mc_samples,
            "num_examples": n,
        }

    return evaluate


def load_run_config(run_dir: str | os.PathLike) -> Config:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RamError(f"{run_dir} is not a run folder: it has no config.json")
    return Config.from_json_file(path)


def load_best_params(run_dir: str | os.PathLike, config: Config | None = None):
    """(graphdef, best params, step) of a run folder."""
    config = config or load_run_config(run_dir)
    if (Path(run_dir) / checkpoints.SEEDS_FILE).is_file():
        raise RamError(
            f"{run_dir} trained several seeds at once (ram train --seeds): its results.json has each "
            "seed's test error; ram eval and ram visualize read single-seed runs"
        )
    graphdef, like = nnx.split(RAM(config, rngs=nnx.Rngs(0)))
    params, step = checkpoints.restore_best(run_dir, like)
    return graphdef, params, step


def evaluate_run(
    run_dir: str | os.PathLike, data: Mnist, *, config: Config | None = None, mc_samples: int | None = None
) -> dict:
    """Test errors of a run's best-on-validation parameters.

    Returns:
      `{"test_error_pct", "test_error_mc_pct", "mc_samples", "best_step", "val_error_pct", ...}`.
    """
    config = config or load_run_config(run_dir)
    mc_samples = mc_samples or config.mc_samples
    graphdef, params, step = load_best_params(run_dir, config)
    test = make_evaluator(graphdef, config, "test", tasks.to_device(data.test), mc_samples)
    test = test(params, seed=config.seed, step=step)
    val = make_evaluator(graphdef, config, "validation", tasks.to_device(data.validation), 1)
    val = val(params, seed=config.seed, step=step)
    return {
        "test_error_pct": round(test["error_pct"], 4),
        "test_error_mc_pct": round(test["mc_error_pct"], 4),
        "mc_samples": mc_samples,
        "best_step": step,
        "val_error_pct": round(val["error_pct"], 4),
        "task": config.task,
        "num_glimpses": config.num_glimpses,
    }
