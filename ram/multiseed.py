"""Several independent seeds in one program: the train chunk `jax.vmap`-ed over a leading seed axis.

`ram train PRESET --seeds N` trains seeds `seed, seed+1, ..., seed+N-1` together (one compiled
program, one dispatch per chunk). Every `eval_every` steps it validates each seed and keeps, per
seed, the parameters with the lowest validation error (run_dir/best holds them stacked); at the end
it tests each seed's best and reports each seed, the mean and the spread. A small model leaves most
of a GPU or TPU idle; batching seeds fills it (`ram bench --seeds N`; on 2 CPU cores it gained nothing, see
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


def _seed(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


def _select(mask: np.ndarray, new, old):
    """Per seed (leading axis): `new` where `mask`, else `old` (fresh arrays, no aliasing)."""

    def pick(n, o):
        return jnp.where(jnp.asarray(mask).reshape((-1,) + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


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

    Like a single run (`ram.train.train_and_evaluate`): validation every `eval_every` steps, each
    seed's best parameters kept (run_dir/best, stacked [N, ...]), one line per validation in
    run_dir/metrics.jsonl (lists, one entry per seed), the latest stacked state checkpointed at each
    validation (Ctrl-C or SIGTERM lets the last checkpoint finish writing), and `resume=True`
    continues from it. Each seed is tested with its best
    parameters."""
    from tqdm.auto import tqdm

    if num_seeds < 1:
        raise RamError(f"--seeds={num_seeds}: must be at least 1")
    if config.init_from:
        raise RamError(
            f"init_from={config.init_from}: --seeds trains fresh seeds; start from a run with a single-seed ram train"
        )
    run_dir = Path(run_dir).absolute()
    train.prepare_run_dir(config, run_dir, resume, num_seeds)
    seeds = [config.seed + i for i in range(num_seeds)]

    graphdef, states = init_states(config, num_seeds)
    ckpt = checkpoints.RunCheckpoints(run_dir)
    best = [{"val_error_pct": float("inf"), "step": 0} for _ in seeds]
    best_params, wall_before = None, 0.0
    if resume and ckpt.latest_step() is not None:
        states, extra = ckpt.restore_latest(states)
        wall_before = extra["wall_time_s"]
        train.resume_metrics(run_dir, config, int(states.step[0]))
        if "best" in extra:  # folders of older versions kept no best parameters
            best = extra["best"]
            best_params, _ = checkpoints.restore_best(run_dir, states.params)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    train_data = tasks.to_device(data.train)
    validate = evaluate.make_evaluator(graphdef, config, "validation", tasks.to_device(data.validation), 1)
    chunk = make_multi_chunk(graphdef, config)
    t0 = time.perf_counter()
    log = (run_dir / "metrics.jsonl").open("a")
    bar = tqdm(
        total=config.train_steps, initial=int(states.step[0]), disable=not progress, unit="step", dynamic_ncols=True
    )
    sums, count = {}, 0
    try:
        with train.Interrupt():
            while int(states.step[0]) < config.train_steps:
                states, metrics = chunk(states, train_data, keys)
                metrics = jax.device_get(metrics)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64)
                count += 1
                step = int(states.step[0])
                bar.update(step - bar.n)
                bar.set_postfix(reward=" ".join(f"{r:.3f}" for r in np.asarray(metrics["reward"])), refresh=False)
                if step % config.eval_every == 0 or step >= config.train_steps:
                    vals = [
                        validate(_seed(states.params, i), seed=s, step=step)["error_pct"] for i, s in enumerate(seeds)
                    ]
                    improved = np.asarray([v < b["val_error_pct"] for v, b in zip(vals, best, strict=True)])
                    if improved.any():
                        best_params = _select(
                            improved, states.params, states.params if best_params is None else best_params
                        )
                        best = [
                            {"val_error_pct": v, "step": step} if up else b
                            for v, b, up in zip(vals, best, improved, strict=True)
                        ]
                        ckpt.save_best(step, best_params)
                    wall = wall_before + time.perf_counter() - t0
                    record = {
                        "step": step,
                        "images_seen": step * config.batch_size,
                        "wall_time_s": round(wall, 2),
                        "location_std": float(config.policy_std(step)),
                        **{f"train_{k}": [round(float(x), 6) for x in v / count] for k, v in sums.items()},
                        "val_error_pct": vals,
                        "best_val_error_pct": [b["val_error_pct"] for b in best],
                    }
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    ckpt.save_latest(step, states, {"best": best, "wall_time_s": wall})
                    bar.write(f"step {step}: val error " + " ".join(f"{v:.2f}%" for v in vals))
                    sums, count = {}, 0
    finally:  # also on Ctrl-C / SIGTERM: let the last checkpoint finish writing
        bar.close()
        log.close()
        ckpt.wait()
    wall = wall_before + time.perf_counter() - t0

    test = evaluate.make_evaluator(graphdef, config, "test", tasks.to_device(data.test), config.mc_samples)
    per_seed = []
    for i, (s, b) in enumerate(zip(seeds, best, strict=True)):
        t = test(_seed(best_params, i), seed=s, step=b["step"])
        per_seed.append(
            {
                "seed": s,
                "best_step": b["step"],
                "val_error_pct": round(b["val_error_pct"], 4),
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
        "note": "each seed's parameters with the lowest validation error",
        "train_steps": config.train_steps,
        "images_seen_per_seed": config.train_steps * config.batch_size,
        "train_wall_time_s": round(wall, 1),
        "machine": train.machine_info(),
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results
