"""Rebuild the train checkpoint of a run that lost it, so that `--resume` continues the run.

    python experiments/restart_from_best.py experiments/runs/cluttered100-g8-lstm-gpu-b1024-seed1

A run folder copied without `checkpoints/` (left out of git unless added with `git add -f`) cannot
be resumed. When its best parameters are those of its last validation, this writes a checkpoint of
that step from them (`ram.rundir.RunDir.restart_from_best`): the same parameters, data, keys,
learning rate and policy std, with the optimiser's moments restarted. Say so where the run is
recorded: from that step on it is not bit for bit the run it would have been.
"""

from __future__ import annotations

import argparse
import sys

from ram.errors import RamError
from ram.rundir import RunDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    try:
        with run.lock():
            at = run.restart_from_best()
    except RamError as e:
        print(f"restart_from_best: {e}", file=sys.stderr)
        return 2
    print(f"{run.path}: train checkpoint of step {at} written (optimiser moments restarted); continue it with --resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
