"""The training loop: one loop for one seed or N seeds trained at once.

`train_and_evaluate(config, run_dir, data, num_seeds=N)` is the whole job. It calls the compiled
chunk of `steps_per_call` train steps (`ram.step`), validates every seed every `eval_every` steps,
keeps each seed's best parameters on validation and the latest state (for `--resume`) in the run
folder (`ram.rundir`), logs one metrics line per validation, and finally tests each seed's best
parameters. An interrupted run (Ctrl-C, SIGTERM, a killed process) loses at most the steps since
the last checkpoint; `resume=True` continues from it with the data and noise it would have seen. A
non-finite loss stops the run with one line; the last good checkpoint stays the one `--resume` and
`ram eval` use. In a run of several processes (`jax.distributed`, `ram train --distributed`) every
process runs this loop over the mesh of all their devices, on the same data; process 0 writes the
run folder's files (`ram.rundir.RunDir.writes`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ram import datasets, evaluate, input_pipeline, rundir, step, tasks, visualize
from ram.config import Config
from ram.data import NUM_TRAIN
from ram.errors import RamError

FIGURE_EXAMPLES = 4  # validation examples in the glimpse figure of each validation (TensorBoard)


class Best(NamedTuple):
    """Each seed's lowest validation error so far and its step."""

    val_error_pct: list[float]  # [N]
    step: list[int]  # [N]

    @classmethod
    def fresh(cls, num_seeds: int) -> Best:
        return cls([float("inf")] * num_seeds, [0] * num_seeds)

    def to_json(self) -> list[dict]:
        return [{"val_error_pct": v, "step": s} for v, s in zip(self.val_error_pct, self.step, strict=True)]

    @classmethod
    def from_json(cls, records: list[dict] | dict) -> Best:
        records = records if isinstance(records, list) else [records]  # single-seed runs of older versions
        return cls([r["val_error_pct"] for r in records], [r["step"] for r in records])


class TrainSums(NamedTuple):
    """Each train metric summed over the chunks since the last validation ([N] per metric), and how
    many chunks. A checkpoint between validations keeps them (`to_json`), so the next metrics line of
    a resumed run averages the same steps as an uninterrupted one."""

    sums: dict[str, np.ndarray]  # name -> [N] float64
    count: int

    @classmethod
    def fresh(cls) -> TrainSums:
        return cls({}, 0)

    def add(self, metrics: dict) -> TrainSums:
        """These sums with one chunk's metrics (name -> [N]) added."""
        added = {k: self.sums.get(k, 0.0) + np.asarray(v, np.float64) for k, v in metrics.items()}
        return TrainSums({**self.sums, **added}, self.count + 1)

    def means(self) -> dict[str, np.ndarray]:
        return {k: v / self.count for k, v in self.sums.items()}

    def to_json(self) -> dict:
        return {"count": self.count, "sums": {k: v.tolist() for k, v in self.sums.items()}}

    @classmethod
    def from_json(cls, record: dict | None) -> TrainSums:
        """`to_json`'s record; None (a checkpoint taken at a validation) gives fresh sums."""
        if not record:
            return cls.fresh()
        return cls({k: np.asarray(v, np.float64) for k, v in record["sums"].items()}, record["count"])


def update_best(best: Best, val_errors: list[float], at_step: int) -> tuple[Best, np.ndarray]:
    """`(best, improved [N] bool)`: a seed improves on a strictly lower validation error."""
    improved = np.asarray([v < b for v, b in zip(val_errors, best.val_error_pct, strict=True)])
    return (
        Best(
            [v if up else b for v, b, up in zip(val_errors, best.val_error_pct, improved, strict=True)],
            [at_step if up else s for s, up in zip(best.step, improved, strict=True)],
        ),
        improved,
    )


def select_seeds(mask: np.ndarray, new, old):
    """Per seed (leading axis): `new` where `mask`, else `old`."""

    def pick(n, o):
        return jnp.where(jnp.asarray(mask).reshape((-1,) + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


def non_finite_seeds(metrics: dict) -> list[int]:
    """Indices of the seeds whose loss is NaN or Inf in the chunk's metrics ([N] each)."""
    return [int(i) for i in np.flatnonzero(~np.isfinite(np.asarray(metrics["loss"], np.float64)))]


def machine_info() -> dict:
    """Where a run ran, recorded with its results."""
    dev = jax.devices()[0]
    return {
        "platform": dev.platform,
        "device": dev.device_kind,
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


class Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM, turned into a stop at a safe point.

    Inside the `with`, a first signal is only noted (one line says what comes next); the train loop
    asks `requested()` at the top of each turn, checkpoints the steps done and raises
    KeyboardInterrupt. Raised at once, wherever the signal landed (in JAX's compilation or dispatch
    among others), it was followed by a segmentation fault at exit in 5 of 6 SIGTERMs sent 12-15 s
    into a small run; acted on here, in none of 5. A second signal raises at once. After the loop,
    a noted signal lets the test evaluation finish: the run is complete.

    Signals within `SAME_REQUEST_S` of the first are the same request, not a second one: a signal
    sent to a process group (`timeout`, `kill -- -PGID`, a batch system's stop) reaches this process
    and, a moment later, again through a parent that forwards it (experiments/run.py)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    SAME_REQUEST_S = 1.0

    def __init__(self):
        self.pending, self.next_step, self._old = False, "stopping after these steps, with a checkpoint", {}
        self._first = 0.0

    def __enter__(self):
        def handler(signum, frame):
            if self.pending:
                if time.monotonic() - self._first < self.SAME_REQUEST_S:
                    return
                raise KeyboardInterrupt
            self.pending, self._first = True, time.monotonic()
            print(f"\nram: {self.next_step} (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: signals stay as they were
                pass
        return self

    def requested(self) -> bool:
        """Whether a stop was asked for; in a run of several processes, by any of them (all agree, so
        none is left waiting in a collective step)."""
        if jax.process_count() == 1:
            return self.pending
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.asarray(self.pending))))

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _one(values: list, num_seeds: int):
    """A metric as logged: a number for one seed, a list for several."""
    return values[0] if num_seeds == 1 else values


def metrics_record(
    config: Config,
    at_step: int,
    wall: float,
    train_sums: TrainSums,
    val: list[float],
    best: Best,
    num_seeds: int,
    num_train: int = NUM_TRAIN,
) -> dict:
    """One line of metrics.jsonl: the same fields for one seed and for N (then one value per seed)."""
    sched = step.schedules(config)
    return {
        "step": at_step,
        "epoch": at_step * config.batch_size / num_train,
        "images_seen": at_step * config.batch_size,
        "wall_time_s": round(wall, 2),
        "learning_rate": float(sched.learning_rate(at_step)),
        "location_std": float(sched.policy_std(at_step)),
        **{f"train_{k}": _one([round(float(x), 6) for x in v], num_seeds) for k, v in train_sums.means().items()},
        "val_error_pct": _one(val, num_seeds),
        "best_val_error_pct": _one(best.val_error_pct, num_seeds),
    }


def train_and_evaluate(
    config: Config,
    run_dir: str | os.PathLike,
    data,
    *,
    num_seeds: int = 1,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    announce: str | None = None,
) -> dict:
    """Trains seeds `config.seed, ..., config.seed + num_seeds - 1` of `config` in `run_dir` and
    returns the test results of each seed's best validation checkpoint.

    Args:
      config: a validated config; `ram.datasets.fit_config` fills in what it takes from the data.
      run_dir: the run folder (`ram.rundir`).
      data: the splits (`ram.datasets.Dataset`, e.g. `ram.datasets.load(config)`, or `ram.data.Mnist`).
      num_seeds: seeds trained at once in one program (`jax.vmap`).
      resume: continue from the latest checkpoint in `run_dir`.
      progress: show a progress bar.
      command: the command line that started the run, recorded in results.json.
      announce: a line printed once the config, the data, `init_from` and the run folder are checked
        (the CLI's `ram: training PRESET in DIR`): a config the data contradicts, a bad `init_from`, a
        folder that holds another run or a `--resume` the folder's files refuse (`RunDir.prepare`) is
        reported with nothing before it.

    Returns:
      The dict written to `run_dir/results.json` (`ram.rundir.upgrade_results`' schema).
    """
    from tqdm.auto import tqdm

    if num_seeds < 1:
        raise RamError(f"--seeds={num_seeds}: must be at least 1")
    # Classes, channels and an absolute folder path: recorded in config.json.
    config = datasets.fit_config(datasets.absolute_folder(config), datasets.info_of(data))
    num_train = len(data.train.labels)
    data_fingerprint = datasets.fingerprint(data)  # recorded in data.json; `ram eval` checks it
    run = rundir.RunDir(run_dir)
    mesh = step.make_mesh()
    if mesh is not None and config.batch_size % mesh.size:
        raise RamError(f"batch_size={config.batch_size} must be a multiple of the {mesh.size} devices")
    graphdef, states = step.init_states(config, num_seeds)
    origin = None
    if resume and run.is_run() and run.latest_step() is not None:
        origin = run.read_origin()  # its checkpoint holds the parameters
    elif config.init_from:  # checked before the run folder is written
        params, origin = rundir.start_from(config.init_from, config, states.params, num_seeds)
        graphdef, states = step.init_states(config, num_seeds, params)

    # The stack closes what was opened, in reverse order, however the loop ends (Ctrl-C, SIGTERM, a
    # non-finite loss, a full disk): the progress bar, the event file, the feed, and last the
    # checkpoint still being written.
    with run.lock(), Interrupt() as interrupt, contextlib.ExitStack() as opened:
        opened.callback(run.wait)
        continuing = run.prepare(config, resume, num_seeds)  # under the lock: a second process writes nothing
        if announce and run.writes():
            print(announce, flush=True)
        if not continuing:
            run.write_data(data_fingerprint)
        if origin:
            run.write_origin(origin)
        best, best_params, wall_before = Best.fresh(num_seeds), None, 0.0
        if continuing:
            states, extra, best_params = run.restore_latest(states, num_seeds)
            changed = datasets.changed_splits(run.read_data(), data_fingerprint, datasets.SPLITS)
            if changed and run.writes():  # said once the checkpoint restores: a failed resume stays one line
                print(
                    f"ram: warning: {run.path} goes on with other data than it started with: {changed}", file=sys.stderr
                )
            at = int(states.step[0])  # at most train_steps: `run.prepare` checked the latest step
            if run.writes():
                print(f"ram: {run.path}: continuing from step {at} of {config.train_steps}", flush=True)
            best, wall_before = Best.from_json(extra["best"]), extra["wall_time_s"]
            if best_params is None and any(np.isfinite(best.val_error_pct)):  # a checkpoint of an older ram
                best_params, _ = run.restore_best(states.params, num_seeds)
            elif best_params is not None and run.best_step() != max(best.step):
                # Stopped between the two saves of a validation: best/ holds a later step's
                # parameters, which the checkpoint's record does not describe. It gets the checkpoint's.
                run.save_best(max(best.step), best_params, best.to_json(), num_seeds)
            if best_params is not None:
                best_params = step.replicate(best_params, mesh)  # placed as the states' parameters
            run.truncate_metrics(at)

        states = step.replicate(states, mesh)
        feed = input_pipeline.TrainFeed(data.train, config, int(states.step[0]), lambda s: step.replicate(s, mesh))
        opened.callback(feed.close)
        validation = evaluate.place(data.validation, "validation", config)  # shared with the figure
        validate = evaluate.make_evaluator(graphdef, config, "validation", validation, 1)
        figure_examples = tasks.figure_examples("validation", validation, config, FIGURE_EXAMPLES)
        events = run.event_writer(purge_step=int(states.step[0]) + 1 if continuing else None)
        opened.callback(events.close)
        chunk = step.make_train_chunk(graphdef, config, num_seeds, mesh=mesh)
        keys = step.seed_keys(config, num_seeds)
        seeds = list(range(config.seed, config.seed + num_seeds))
        t0 = time.perf_counter()
        bar = tqdm(
            total=config.train_steps,
            initial=int(states.step[0]),
            disable=not progress or not run.writes(),  # one bar for the processes of a multi-process run
            unit="step",
            dynamic_ncols=True,
        )
        opened.callback(bar.close)
        train_sums = TrainSums.from_json(extra.get("train_since_validation") if continuing else None)
        last_val = None  # no validation yet: the bar shows none
        saved_at = int(states.step[0]) if continuing else None  # the step of the latest checkpoint

        def checkpoint(at: int, wall: float, since_validation: dict | None = None) -> int:
            kept = {"best": best.to_json(), "wall_time_s": wall}
            if since_validation:
                kept["train_since_validation"] = since_validation
            run.save_latest(at, states, kept, num_seeds, best_params)
            return at

        while int(states.step[0]) < config.train_steps:
            if interrupt.requested():
                at = int(states.step[0])
                if saved_at != at:  # keep the steps since the last validation
                    checkpoint(at, wall_before + time.perf_counter() - t0, train_sums.to_json())
                raise KeyboardInterrupt
            states, metrics = chunk(states, next(feed), keys)
            metrics = jax.device_get(metrics)
            at = int(states.step[0])
            bad = non_finite_seeds(metrics)
            if bad:
                # A resumed run would take the same steps again (fixed keys and data) and may not change
                # the optimiser, so the way on is a new folder, from this one's best parameters if any.
                start = "" if best_params is None else f", from this run's best parameters with init_from={run.path}"
                raise RamError(
                    f"the loss became non-finite by step {at} (seed {', '.join(str(seeds[i]) for i in bad)}); "
                    f"training stopped; the checkpoint of step {run.latest_step() or 0} is kept. Train again in a "
                    f"new --run-dir with a lower learning_rate or grad_clip{start}"
                )
            train_sums = train_sums.add(metrics)
            loss = " ".join(f"{x:.3f}" for x in metrics["loss"])
            shown = {"val_err": " ".join(f"{x:.2f}%" for x in last_val)} if last_val is not None else {}
            bar.set_postfix(loss=loss, **shown, refresh=False)  # drawn by the update, with this chunk's step
            bar.update(at - bar.n)
            if at % config.eval_every and at < config.train_steps:
                continue
            params = step.local_copy(states.params)  # what validation can take on this process's device
            val = [validate(step.seed_slice(params, i), seed=s, step=at)["error_pct"] for i, s in enumerate(seeds)]
            last_val = val
            bar.set_postfix(loss=loss, val_err=" ".join(f"{x:.2f}%" for x in val))
            best, improved = update_best(best, val, at)
            if improved.any():
                best_params = select_seeds(
                    improved, states.params, states.params if best_params is None else best_params
                )
                run.save_best(at, best_params, best.to_json(), num_seeds)
            wall = wall_before + time.perf_counter() - t0
            record = metrics_record(config, at, wall, train_sums, val, best, num_seeds, num_train)
            run.append_metrics(record)
            events.scalars(record, seeds)
            first = step.seed_slice(params, 0)  # the figure of the first seed
            g = visualize.example_glimpses(graphdef, first, config, figure_examples, step=at)
            events.image("glimpses/validation", at, visualize.glimpse_image(g, config))
            saved_at = checkpoint(at, wall)
            bar.write(
                f"step {at}: val error {' '.join(f'{v:.2f}%' for v in val)} "
                f"(best {' '.join(f'{v:.2f}%' for v in best.val_error_pct)})"
            )
            train_sums = TrainSums.fresh()
        interrupt.next_step = "finishing the test evaluation of the finished run"
        opened.close()
        wall = wall_before + time.perf_counter() - t0

        results = evaluate.evaluate_run(run.path, data, config=config)
        results.update(
            {
                "command": command,
                "train_steps": config.train_steps,
                "images_seen": config.train_steps * config.batch_size,
                "epochs": config.train_steps * config.batch_size / num_train,
                "train_wall_time_s": round(wall, 1),
                **(origin or {}),
                "machine": machine_info(),
            }
        )
        run.write_results(results)
    return results
