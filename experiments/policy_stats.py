"""Where a recorded run's policy looks: saturation of its tanh mean, and glimpses off the canvas.

    python experiments/policy_stats.py experiments/runs/cluttered60-g8 experiments/runs/cluttered60-g8-penalty
    python experiments/policy_stats.py RUN --images 5000 --json

For each glimpse t of the best checkpoint's episodes on the first `--images` validation images
(one sampled trajectory each, with the policy std of the checkpoint's step, as in evaluation):

- |z| p50 / p90 / p99: percentiles of the pre-tanh policy mean |z_t| over images and both
  coordinates. At |z| = 4 the REINFORCE gradient through tanh (1 - tanh^2 z) is ~1e-3; at 8, ~1e-7.
- saturated: share of glimpses whose mean has a coordinate with |tanh z| > 0.95 (|z| > 1.83).
- off canvas: share of sampled locations with a coordinate outside [-1, 1] (the glimpse centre lies
  off the image; the retina then sees mostly zero padding).

These are the numbers behind the README's account of the policy parking its glimpses at the edge.
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from ram import rundir, tasks
from ram.data import load_mnist
from ram.episode import episode_fn
from ram.errors import RamError


def policy_stats(run_dir: str, data, num_images: int = 2000, seed: int = 0) -> list[dict]:
    """One dict per glimpse: `{"glimpse", "z_p50", "z_p90", "z_p99", "saturated", "off_canvas"}`."""
    run = rundir.load_run(run_dir)
    config, graphdef = run.config, run.graphdef
    params, step = run.seed_params(0)  # the first seed
    split = tasks.to_device(data.validation)
    n = min(num_images, int(split.labels.shape[0]))
    images, _ = tasks.eval_batch("validation", split, jnp.arange(n), config)
    std = config.policy_std(step)
    traj = jax.jit(episode_fn(graphdef, config))(params, images, jax.random.key(seed), std)
    z = np.abs(np.asarray(traj.pre_means, np.float64))  # [T, B, 2]
    locations = np.asarray(traj.locations)  # [T, B, 2]
    rows = []
    for t in range(config.num_glimpses):
        p50, p90, p99 = np.percentile(z[t], [50, 90, 99])
        rows.append(
            {
                "glimpse": t + 1,
                "z_p50": round(float(p50), 3),
                "z_p90": round(float(p90), 3),
                "z_p99": round(float(p99), 3),
                "saturated": round(float((np.tanh(z[t]) > 0.95).any(-1).mean()), 4),
                "off_canvas": round(float((np.abs(locations[t]) > 1).any(-1).mean()), 4),
            }
        )
    return rows


def markdown(run_dir: str, rows: list[dict]) -> str:
    lines = [
        f"{run_dir}",
        "",
        "| glimpse | \\|z\\| p50 | p90 | p99 | saturated | off canvas |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['glimpse']} | {r['z_p50']:.2f} | {r['z_p90']:.2f} | {r['z_p99']:.2f} "
            f"| {100 * r['saturated']:.1f}% | {100 * r['off_canvas']:.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (experiments/runs/NAME)")
    parser.add_argument("--images", type=int, default=2000, help="validation images to roll out (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="key of the sampled trajectories")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown tables")
    parser.add_argument("--mnist-dir", help="folder of the four MNIST *-ubyte.gz files (default $RAM_MNIST_DIR)")
    parser.add_argument("--data-dir", help="tensorflow-datasets data folder (default: its own)")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error(f"--images={args.images}: must be at least 1")
    try:
        data = load_mnist(args.mnist_dir, args.data_dir)
        out = {run: policy_stats(run, data, args.images, args.seed) for run in args.runs}
    except RamError as e:
        print(f"policy_stats: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("\n\n".join(markdown(run, rows) for run, rows in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
