"""Orbax checkpoints of a run: the latest train state (for --resume) and the best parameters.

    run_dir/checkpoints/<step>/   latest TrainState + {"best", "wall_time_s"}  (one kept)
    run_dir/best/<step>/          parameters with the lowest validation error (one kept)
    run_dir/seeds.json            only in a run of `ram train --seeds N`, N > 1: leaves stacked [N, ...]

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a process
killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx

from ram.errors import RamError

SEEDS_FILE = "seeds.json"


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class RunCheckpoints:
    def __init__(self, run_dir: str | os.PathLike):
        run_dir = Path(run_dir).absolute()
        opts = ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
        self.latest = ocp.CheckpointManager(run_dir / "checkpoints", options=opts, item_names=("state", "extra"))
        self.best = ocp.CheckpointManager(run_dir / "best", options=opts)

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def save_latest(self, step: int, state, extra: dict) -> None:
        self.latest.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), extra=ocp.args.JsonSave(extra))
        )

    def restore_latest(self, like):
        """(state shaped like `like`, extra dict) of the latest checkpoint."""
        step = self.latest.latest_step()
        out = self.latest.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(_abstract(like)), extra=ocp.args.JsonRestore()),
        )
        return out["state"], out["extra"]

    def save_best(self, step: int, params: nnx.State) -> None:
        self.best.save(step, args=ocp.args.StandardSave(params))

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()


def restore_best(run_dir: str | os.PathLike, like: nnx.State) -> tuple[nnx.State, int]:
    """(best parameters, their step) of the run in `run_dir`, shaped like `like`."""
    path = Path(run_dir).absolute() / "best"
    mngr = ocp.CheckpointManager(path) if path.is_dir() else None
    step = mngr.latest_step() if mngr else None
    if step is None:
        raise RamError(f"{path} holds no checkpoint: train the run first (ram train ... --run-dir {run_dir})")
    try:
        params = mngr.restore(step, args=ocp.args.StandardRestore(_abstract(like)))
    except Exception as e:
        raise RamError(f"cannot restore {path}/{step}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return params, step
