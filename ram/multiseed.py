"""Several independent seeds in one program: the train chunk `jax.vmap`-ed over a leading seed axis.

`ram train PRESET --seeds N` trains seeds `seed, seed+1, ..., seed+N-1` together (one compiled
program, one dispatch per chunk), then evaluates each seed's final parameters on validation and
test and reports each seed, the mean and the spread. A small model leaves most of a GPU or TPU idle;
batching seeds fills it (`ram bench --seeds N`; on 2 CPU cores it gained nothing, see
experiments/BENCH.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ram import checkpoints, evaluate, tasks, train
from ram.config import Config
from ram.data import Mnist
from ram.errors import RamError


def init_states(config: Config, num_seeds: int) -> tuple[nnx.GraphDef, train.TrainState]:
    """GraphDef and the stacked train states of seeds `config.seed + i` ([N, ...] leaves)."""
    states = []
    for i in range(num_seeds):
        graphdef, params = train.init_model(config.replace(seed=config.seed + i))
        states.append(train.init_state(config, params))
    return graphdef, jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def make_multi_chunk(graphdef: nnx.GraphDef, config: Config, steps: int | None = None):
    """Jitted `(states [N], data, keys [N]) -> (states, metrics [N])`: N seeds in one program."""
    chunk = train.train_chunk_fn(graphdef, config, steps)
    return jax.jit(jax.vmap(chunk, in_axes=(0, None, 0)), donate_argnums=0)


def train_seeds(
    config: Config,
    run_dir: str | os.PathLike,
    data: Mnist,
    num_seeds: int,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Trains `num_seeds` seeds of `config` together and writes run_dir/results.json.

    The stacked state is checkpointed every `eval_every` steps; `resume=True` continues from it."""
    from tqdm.auto import tqdm

    if num_seeds < 1:
        raise RamError(f"--seeds={num_seeds}: must be at least 1")
    run_dir = Path(run_dir).absolute()
    train.prepare_run_dir(config, run_dir, resume)

    graphdef, states = init_states(config, num_seeds)
    ckpt = checkpoints.RunCheckpoints(run_dir)
    wall_before = 0.0
    if resume and ckpt.latest_step() is not None:
        states, extra = ckpt.restore_latest(states)
        wall_before = extra["wall_time_s"]
    keys = jax.vmap(jax.random.key)(jnp.arange(config.seed, config.seed + num_seeds))
    train_data = tasks.to_device(data.train)
    chunk = make_multi_chunk(graphdef, config)
    t0 = time.perf_counter()
    with tqdm(
        total=config.train_steps,
        initial=int(states.step[0]),
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
    ) as bar:
        while int(states.step[0]) < config.train_steps:
            states, metrics = chunk(states, train_data, keys)
            step = int(states.step[0])
            bar.update(step - bar.n)
            bar.set_postfix(reward=" ".join(f"{r:.3f}" for r in np.asarray(metrics["reward"])), refresh=False)
            if step % config.eval_every == 0:
                ckpt.save_latest(step, states, {"wall_time_s": wall_before + time.perf_counter() - t0})
    ckpt.wait()
    wall = wall_before + time.perf_counter() - t0

    per_seed = []
    val = tasks.to_device(data.validation)
    test = tasks.to_device(data.test)
    for i in range(num_seeds):
        params = jax.tree.map(lambda x, i=i: x[i], states.params)
        seed = config.seed + i
        v = evaluate.make_evaluator(graphdef, config, "validation", val, 1)(params, seed=seed)
        t = evaluate.make_evaluator(graphdef, config, "test", test, config.mc_samples)(params, seed=seed)
        per_seed.append(
            {
                "seed": seed,
                "val_error_pct": round(v["error_pct"], 4),
                "test_error_pct": round(t["error_pct"], 4),
                "test_error_mc_pct": round(t["mc_error_pct"], 4),
            }
        )

    def stats(key):
        values = np.asarray([s[key] for s in per_seed])
        return {
            "mean": round(float(values.mean()), 4),
            "std": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4),
        }

    results = {
        "command": command,
        "num_seeds": num_seeds,
        "seeds": per_seed,
        "test_error_pct": stats("test_error_pct"),
        "test_error_mc_pct": stats("test_error_mc_pct"),
        "val_error_pct": stats("val_error_pct"),
        "mc_samples": config.mc_samples,
        "note": "final parameters of each seed (no checkpoint selection)",
        "train_steps": config.train_steps,
        "images_seen_per_seed": config.train_steps * config.batch_size,
        "train_wall_time_s": round(wall, 1),
        "machine": train.machine_info(),
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results
