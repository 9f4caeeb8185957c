"""Throughput benchmark: images/second, XLA's FLOPs per image, and the fraction of the device's own
dense matrix-multiply rate that training achieves (measured in the same process, so the figure is
a ratio that travels across machines).

    ram bench mnist28 --batch-sizes 64,128,256 [--json]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from ram import evaluate, step, tasks
from ram.config import Config


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0]
    return float(cost.get("flops", 0.0)) if cost else 0.0


def matmul_rate(
    n: int | None = None,
    repeats: int = 5,
    dtype=jnp.float32,
    min_seconds: float = 2e-3,
    start: int = 2048,
    largest: int = 16384,
) -> float:
    """Measured dense matmul FLOP/s of the default device: the best of `repeats` n x n products.

    Without `n`, starts at `start` and doubles (up to `largest`) while one product takes under
    `min_seconds`: on a GPU a 2048 product lasts about 0.2 ms, too short to time (an H100 gave
    51-96 TFLOP/s across four processes), while on a CPU 2048 already takes a quarter of a second.
    """
    if n is not None:  # that size only
        start = largest = n
    n = start
    while True:
        rate, seconds = _matmul_rate_at(n, repeats, dtype)
        if seconds >= min_seconds or n >= largest:
            return rate
        n = min(2 * n, largest)


def _matmul_rate_at(n: int, repeats: int, dtype) -> tuple[float, float]:
    """(FLOP/s, seconds) of the fastest of `repeats` n x n products."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best, best


def _steady(fn, state, min_seconds: float):
    """Calls `state = fn(state)` until `min_seconds` passed (after one warm-up); returns (calls/s, compile s)."""
    t = time.perf_counter()
    state = jax.block_until_ready(fn(state))
    compile_s = time.perf_counter() - t
    calls, t = 0, time.perf_counter()
    while time.perf_counter() - t < min_seconds or calls < 2:
        state = jax.block_until_ready(fn(state))
        calls += 1
    return calls / (time.perf_counter() - t), compile_s


def train_flops_per_image(config: Config, data: tasks.DeviceSplit) -> float:
    """FLOPs of one train step per image, from XLA's cost analysis of the compiled step.

    XLA counts a loop's body once, so the count uses the unrolled episode (the same arithmetic)."""
    graphdef, params = step.init_model(config)
    train_step = jax.jit(step.make_train_step(graphdef, config.replace(unroll_glimpses=True)))
    lowered = train_step.lower(step.init_state(config, params), data, jax.random.key(0))
    return _flops(lowered.compile()) / config.batch_size


def bench_one(
    config: Config,
    batch_size: int,
    data: tasks.DeviceSplit,
    min_seconds: float = 3.0,
    matmul_flops_per_s: float | None = None,
) -> dict:
    """Training and evaluation throughput of `config` at `batch_size`."""
    config = config.replace(batch_size=batch_size, eval_batch_size=batch_size)
    graphdef, states = step.init_states(config)
    keys, key = step.seed_keys(config, 1), jax.random.key(0)

    flops_per_image = train_flops_per_image(config, data)

    chunk = step.make_train_chunk(graphdef, config)
    calls_per_s, compile_s = _steady(lambda s: chunk(s, data, keys)[0], states, min_seconds)
    train_ips = calls_per_s * config.steps_per_call * batch_size

    _, params = step.init_model(config)  # the first params were donated to the train chunk
    batch_eval = evaluate.make_batch_eval(graphdef, config, "validation", 1)
    index = jnp.arange(batch_size) % data.labels.shape[0]
    calls_per_s, eval_compile_s = _steady(
        lambda _: batch_eval(params, data, index, key, config.location_std), None, min_seconds / 2
    )
    eval_ips = calls_per_s * batch_size

    rate = matmul_flops_per_s or matmul_rate()
    dev = jax.devices()[0]
    return {
        "preset": None,
        "batch_size": batch_size,
        "train_images_per_s": round(train_ips, 1),
        "samples_per_image": config.samples_per_image,
        "train_trajectories_per_s": round(train_ips * config.samples_per_image, 1),
        "eval_images_per_s": round(eval_ips, 1),
        "train_compile_s": round(compile_s, 2),
        "eval_compile_s": round(eval_compile_s, 2),
        "flops_per_image": flops_per_image,
        "achieved_flops_per_s": flops_per_image * train_ips,
        "matmul_flops_per_s": rate,
        "matmul_fraction": round(flops_per_image * train_ips / rate, 4),
        "steps_per_call": config.steps_per_call,
        "device": f"{dev.platform}:{dev.device_kind}",
        "num_devices": jax.device_count(),
    }


def bench_seeds(
    config: Config, batch_size: int, num_seeds: int, data: tasks.DeviceSplit, min_seconds: float = 3.0
) -> dict:
    """Total training images/s of `num_seeds` vmapped seeds against one seed alone."""
    config = config.replace(batch_size=batch_size)
    graphdef, states = step.init_states(config, num_seeds)
    keys = step.seed_keys(config, num_seeds)
    chunk = step.make_train_chunk(graphdef, config, num_seeds)
    rate, compile_s = _steady(lambda s: chunk(s, data, keys)[0], states, min_seconds)
    vmapped = rate * config.steps_per_call * batch_size * num_seeds
    graphdef, states = step.init_states(config)
    single_chunk = step.make_train_chunk(graphdef, config)
    rate1, _ = _steady(lambda s: single_chunk(s, data, keys[:1])[0], states, min_seconds)
    single = rate1 * config.steps_per_call * batch_size
    return {
        "batch_size": batch_size,
        "seeds": num_seeds,
        "vmapped_train_images_per_s": round(vmapped, 1),
        "single_seed_train_images_per_s": round(single, 1),
        "gain_over_separate_runs": round(vmapped / single, 3),
        "compile_s": round(compile_s, 2),
    }


def run_bench(
    preset: str, config: Config, batch_sizes: list[int], min_seconds: float = 3.0, seeds: int = 1
) -> list[dict]:
    """`bench_one` (and `bench_seeds`) of `config` at each batch size, on random images of the size
    and channels the config trains on (synthetic: only the shapes matter): `image_size`, else the
    canvas on task=mnist and MNIST's 28 on the others (another dataset's size is known only once it
    is loaded: give image_size=)."""
    rate = matmul_rate()
    side = config.image_size or (config.canvas if config.task == "mnist" else 28)
    shape = (side, side, config.channels or 1)
    data = tasks.synthetic_split(shape=shape)
    out = []
    for b in batch_sizes:
        rec = bench_one(config, b, data, min_seconds, rate)
        if seeds > 1:
            rec["multiseed"] = bench_seeds(config, b, seeds, data, min_seconds)
        rec["preset"] = preset
        rec["image_shape"] = list(shape)
        out.append(rec)
    return out


def format_table(records: list[dict]) -> str:
    head = (
        f"{'preset':14s} {'batch':>6s} {'train img/s':>12s} {'traj/s':>9s} {'eval img/s':>11s} {'compile s':>9s} "
        f"{'MFLOP/img':>10s} {'GFLOP/s':>8s} {'matmul GFLOP/s':>15s} {'fraction':>8s}"
    )
    rows = [head]
    for r in records:
        rows.append(
            f"{r['preset']:14s} {r['batch_size']:6d} {r['train_images_per_s']:12.0f} "
            f"{r['train_trajectories_per_s']:9.0f} {r['eval_images_per_s']:11.0f} "
            f"{r['train_compile_s']:9.1f} {r['flops_per_image'] / 1e6:10.2f} {r['achieved_flops_per_s'] / 1e9:8.1f} "
            f"{r['matmul_flops_per_s'] / 1e9:15.1f} {100 * r['matmul_fraction']:7.1f}%"
        )
        if "multiseed" in r:
            m = r["multiseed"]
            rows.append(
                f"{'':14s} {m['seeds']} seeds vmapped: {m['vmapped_train_images_per_s']:.0f} img/s in all, "
                f"{m['gain_over_separate_runs']:.2f}x one seed's {m['single_seed_train_images_per_s']:.0f}"
            )
    return "\n".join(rows)
