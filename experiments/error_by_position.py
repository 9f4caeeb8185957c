"""Translated MNIST runs' validation errors by where the digit sits on the canvas.

    python experiments/error_by_position.py experiments/runs/translated60-g8-lstm-m4-both-wd03-drop1-std05 \\
        experiments/runs/translated60-g8-lstm-gpu-m4-both-wd03 --mc-samples 10

Each validation canvas of task=translated holds one digit on a zero background; its place is the
centre of the box around its ink, and its distance from the canvas centre the larger of the two
offsets (pixels). Per distance band, each run's single-sample error (trajectory 0: the recorded
validation error), the share of digits every trajectory gets wrong, and the expected single-sample
error over `--mc-samples` trajectories, evaluated as `error_overlap.py` does (the seed's key, the
std of the best step). If the errors came from digits the first glimpses cannot see (near the
edges, outside the coarsest scale of a centred fixation), they would rise with the distance.
"""

from __future__ import annotations

import argparse
import sys

import jax.numpy as jnp
import numpy as np
from error_overlap import validation_outcomes

from ram import tasks
from ram.data import load_mnist
from ram.errors import RamError
from ram.rundir import load_run

BANDS = (0, 5, 10, 13, 16, 100)  # distance bands, pixels


def digit_offsets(split, config, batch: int = 1000) -> np.ndarray:
    """[n] the larger of the row and column offsets (pixels) of each validation digit's ink box
    centre from the canvas centre, on the canvases validation evaluates."""
    device, n, out = tasks.to_device(split), len(split.labels), []
    for lo in range(0, n, batch):
        images, _ = tasks.eval_batch("validation", device, jnp.arange(lo, min(n, lo + batch)), config)
        ink = np.asarray(images)[..., 0] > 0  # [b, W, W]
        centre = [[np.flatnonzero(x)[[0, -1]].mean() for x in ink.any(axis)] for axis in (2, 1)]
        out.append(np.abs(np.asarray(centre).T - (config.canvas - 1) / 2).max(1))
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--mc-samples", type=int, default=10)
    p.add_argument("--mnist-dir", help="folder of the four MNIST files (default $RAM_MNIST_DIR)")
    args = p.parse_args(argv)
    try:
        configs = [load_run(r).config for r in args.runs]
        if any(c.task != "translated" or c.canvas != configs[0].canvas for c in configs):
            raise RamError("the runs must all be task=translated runs of one canvas size")
        mnist = load_mnist(args.mnist_dir)
        offsets = digit_offsets(mnist.validation, configs[0])
        m = args.mc_samples
        print(f"| run | offset (px) | digits | error | wrong in all {m} | expected |")
        print("| --- | --- | --- | --- | --- | --- |")
        for run in args.runs:
            o = validation_outcomes(run, mnist, m)
            for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
                band = (offsets >= lo) & (offsets < hi)
                wrong, none_right = ~o["single"][band], o["num_correct"][band] == 0
                expected = 1 - o["num_correct"][band].mean() / m
                print(
                    f"| {run.rstrip('/').split('/')[-1]} | {lo}-{hi} | {band.sum()} | {100 * wrong.mean():.2f}% "
                    f"| {100 * none_right.mean():.2f}% | {100 * expected:.2f}% |"
                )
    except RamError as e:
        print(f"error_by_position: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
