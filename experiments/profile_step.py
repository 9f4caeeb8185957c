"""Where the time of one train step goes: data, retina, episode forward, forward+backward, full step.

    python experiments/profile_step.py cluttered60 [key=value ...]

Times each piece alone (jitted, best of 20 calls, batch `batch_size`) on the default device. For a
full timeline use `jax.profiler.trace(dir)` around a few `ram train` chunks and open it in Perfetto.
"""

from __future__ import annotations

import sys
import time

import jax

from ram import retina, step, tasks
from ram.config import get_config
from ram.episode import episode_fn
from ram.losses import make_loss_fn


def best_ms(f, *args, n: int = 20) -> float:
    jax.block_until_ready(f(*args))
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - t)
    return 1000 * best


def main() -> None:
    preset, overrides = sys.argv[1], sys.argv[2:]
    cfg = get_config(preset, overrides)
    data = tasks.synthetic_split(50_000)
    key = jax.random.key(0)
    b = cfg.batch_size
    images, labels = tasks.train_batch(key, data, cfg, b)
    locations = jax.random.uniform(key, (b, 2), minval=-1, maxval=1)
    graphdef, params = step.init_model(cfg)
    episode = episode_fn(graphdef, cfg, train=True)  # as the loss runs it (dropout, if any)
    loss = make_loss_fn(graphdef, cfg)
    grad = jax.jit(jax.grad(lambda p: loss(p, images, labels, key, cfg.location_std)[0]))
    train_step = jax.jit(step.make_train_step(graphdef, cfg))
    state = step.init_state(cfg, params)
    ret = jax.jit(lambda i, loc: retina.glimpse(i, loc, cfg.patch_size, cfg.num_scales, cfg.scale_factor))
    rows = {
        "batch generation": best_ms(lambda k: tasks.train_batch(k, data, cfg, b), key),
        f"retina, one glimpse (x{cfg.num_glimpses} per episode)": best_ms(ret, images, locations),
        "episode forward": best_ms(jax.jit(episode), params, images, key),
        "episode forward + backward": best_ms(grad, params),
        "train step (batch, episode, grads, Adam)": best_ms(lambda s: train_step(s, data, key)[1]["loss"], state),
    }
    print(f"{preset} {' '.join(overrides)} batch {b} on {jax.devices()[0].platform}")
    for name, ms in rows.items():
        print(f"  {name:48s} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
