"""Train images/s of one recipe under JAX's three PRNG implementations, measured in one process.

    python experiments/bench/prng.py mnist28 batch_size=128

The same train chunk runs with seed keys of each implementation (threefry2x32, JAX's default and
the one every recorded run used; rbg; unsafe_rbg), 5 interleaved rounds of 2 s after one warm-up
call each; prints the median and the rounds. Pause training runs first (`kill -STOP`).
"""

import statistics
import sys
import time

import jax
import jax.numpy as jnp

from ram import step, tasks
from ram.config import get_config

IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


def main(preset: str, *overrides: str, rounds: int = 5, seconds: float = 2.0) -> None:
    config = get_config(preset, overrides)
    data = tasks.synthetic_split()
    graphdef, _ = step.init_states(config)
    chunk = step.make_train_chunk(graphdef, config)
    seeds = jnp.arange(config.seed, config.seed + 1)
    keys = {i: jax.vmap(lambda s, i=i: jax.random.key(s, impl=i))(seeds) for i in IMPLS}
    states = {i: jax.block_until_ready(chunk(step.init_states(config)[1], data, keys[i])[0]) for i in IMPLS}
    rates = {i: [] for i in IMPLS}
    for _ in range(rounds):
        for i in IMPLS:
            calls, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds:
                states[i] = jax.block_until_ready(chunk(states[i], data, keys[i])[0])
                calls += 1
            rates[i].append(calls * config.steps_per_call * config.batch_size / (time.perf_counter() - t))
    for i in IMPLS:
        print(f"{i:13s} {statistics.median(rates[i]):9,.0f} img/s  rounds: {', '.join(f'{r:,.0f}' for r in rates[i])}")


if __name__ == "__main__":
    main(*sys.argv[1:])
