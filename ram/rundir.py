"""A run folder, and the only module that reads or writes one.

    run_dir/config.json       the run's `Config`
    run_dir/seeds.json        {"num_seeds", "first_seed"}: only for N > 1 seeds trained at once
    run_dir/init_from.json    where a run started with `init_from` began, and what that cost
    run_dir/metrics.jsonl     one JSON line per validation (per-seed lists when N > 1)
    run_dir/results.json      test errors of each seed's best parameters (one schema for every N)
    run_dir/best.json         each seed's best validation error and its step
    run_dir/checkpoints/<s>/  orbax: the latest train state, {"best", "wall_time_s", "train_since_validation"}
                              and the best parameters (two kept)
    run_dir/best/<s>/         orbax: the parameters with the lowest validation error
    run_dir/lock              the PID of the process training in the folder
    run_dir/eval-cpu.json     a GPU-trained run's `ram eval --json` on a CPU (recorded runs only)
    run_dir/data.json         the dataset it trained on (`ram.datasets.fingerprint`): its images' shape,
                              class names, each split's size and digest
    run_dir/events.out.tfevents.*   TensorBoard: the metrics and each validation's glimpse figure (`ram.events`)
    run_dir/glimpses.png, glimpses.gif, curves.png   figures `ram.visualize` draws, at `RunDir.figure`'s paths

In memory every train state and parameter tree has a leading seed axis [N, ...]. On disk a
single-seed run stores its trees without that axis (as every run recorded before the axis
existed), a multi-seed run with it. Orbax writes each checkpoint to a temporary folder and renames
it when complete, so a process killed mid-write leaves the previous checkpoint intact; `--resume`
falls back to the older of the two kept if the newest does not restore. In a run of several
processes (`ram train --distributed`) every process checks the folder and takes part in the orbax
checkpoints; process 0 alone writes the other files and holds the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import math
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from ram.config import Config
from ram.datasets import absolute_folder
from ram.errors import RamError
from ram.step import init_model, init_states, restart_state, seed_slice, stack

CONFIG, SEEDS, INIT_FROM, METRICS, RESULTS, BEST_JSON, LOCK = (
    "config.json",
    "seeds.json",
    "init_from.json",
    "metrics.jsonl",
    "results.json",
    "best.json",
    "lock",
)
CHECKPOINTS, BEST = "checkpoints", "best"
EVAL_CPU = "eval-cpu.json"  # a GPU run's re-evaluation on a CPU (experiments/ keeps it for the cited runs)
DATA = "data.json"  # the dataset a run trained on (runs from before session 13 lack it)
FIGURES = ("glimpses.png", "glimpses.gif", "curves.png")  # `ram visualize`, `ram plot`

# Per-seed figures of results.json; each is a list with one entry per seed.
PER_SEED = ("best_step", "val_error_pct", "test_error_pct", "test_error_mc_pct", "test_error_expected_pct")


# Orbax starts a new data file once one passes this size (its default is 2 GB), so no file of a
# checkpoint is over twice it: a run folder's checkpoint goes into git as files of at most 4 MB (an
# LSTM train state with its Adam moments is about 8 MB).
CHECKPOINT_FILE_BYTES = 2 << 20


def _save_args(tree) -> ocp.args.PyTreeSave:
    """Orbax's save of a tree of arrays, in data files cut at `CHECKPOINT_FILE_BYTES`."""
    return ocp.args.PyTreeSave(tree, ocdbt_target_data_file_size=CHECKPOINT_FILE_BYTES)


def _restore_args(like) -> ocp.args.PyTreeRestore:
    """Orbax's restore of a tree shaped like `like` (arrays or their shapes); it reads checkpoints of
    `_save_args` and of `ocp.args.StandardSave` (every run recorded before session 14), one format."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return ocp.args.PyTreeRestore(abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        raise RamError(f"cannot write {path}: {e.strerror or e}") from None


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RamError(f"{path} is not valid JSON ({e}); {what}") from None
    except OSError as e:
        raise RamError(f"cannot read {path}: {e.strerror or e}") from None


def _quiet_orbax() -> None:
    """Keeps orbax's own reports of a failed checkpoint off stderr: this module reports each failure
    in one line (a `RamError`) instead. Called when a checkpoint manager is made; idempotent.

    Orbax logs a damaged metadata file or a failed write (a full disk) at ERROR, with tracebacks from
    its background threads: its records on the `absl` logger are dropped. And when one read of a
    restore fails, orbax stops waiting for TensorStore's other reads and closes its event loop; each
    of those that finishes later reports `RuntimeError: Event loop is closed` to
    `sys.unraisablehook` (a traceback on stderr, dozens at exit): those are dropped too, and so are
    the asyncio logger's records of those tasks. Every other log record and unraisable error is
    reported as before."""
    if getattr(sys.unraisablehook, "drops_closed_loop", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    hook.drops_closed_loop = True
    sys.unraisablehook = hook
    orbax_dir = os.path.dirname(ocp.__file__).removesuffix("checkpoint")
    logging.getLogger("absl").addFilter(lambda record: not record.pathname.startswith(orbax_dir))
    # The abandoned reads' asyncio tasks, when garbage-collected (at exit), also log "Task exception
    # was never retrieved" with the whole TensorStore spec: asyncio's logger keeps to CRITICAL.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _create_with(path: Path, text: str) -> None:
    """Creates `path` holding `text` (FileExistsError if it exists). `text` is written to a file of
    this process first and hard-linked into place, so no reader sees it empty; on a filesystem
    without hard links, the file is created exclusively and then written."""
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            raise
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _write_error(folder: Path, e: Exception) -> RamError:
    """A failed checkpoint write (OSError, or TensorStore's ValueError naming the OS error) in one line."""
    if isinstance(e, OSError) and e.strerror:
        why = e.strerror
    elif "No space left on device" in str(e) or "Read-only file system" in str(e):
        why = "No space left on device" if "No space left" in str(e) else "Read-only file system"
    else:
        why = _one_line(e)
    return RamError(f"cannot write a checkpoint in {folder}: {why}")


def finite_or_none(value):
    """JSON has no NaN or Inf: they are written as null (a diverged metric stays valid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


class RunDir:
    """The files of one run folder. `num_seeds` is read from the folder when it holds a run."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().absolute()
        if self.path.exists() and not self.path.is_dir():
            raise RamError(f"{self.path} is a file, not a run folder")

    # -- config and seeds ---------------------------------------------------------------------

    def is_run(self) -> bool:
        return (self.path / CONFIG).is_file()

    @staticmethod
    def writes() -> bool:
        """Whether this process writes the folder's files. Every process of a multi-process run
        (`ram train --distributed`) takes part in its checkpoints, which orbax coordinates; the other
        files (config, metrics, results, lock, events) are written by process 0 alone."""
        return jax.process_index() == 0

    def config(self) -> Config:
        if not self.is_run():
            raise RamError(f"{self.path} is not a run folder: it has no {CONFIG}")
        config = Config.from_json_file(self.path / CONFIG)
        # A config.json saved before runs recorded their channels is an MNIST run's: 1 channel.
        return config.replace(channels=1) if config.dataset == "mnist" and not config.channels else config

    def num_seeds(self) -> int:
        path = self.path / SEEDS
        return int(_read_json(path, "restore it or start a new run")["num_seeds"]) if path.is_file() else 1

    def seeds(self) -> list[int]:
        first = self.config().seed
        return list(range(first, first + self.num_seeds()))

    def has_progress(self) -> bool:
        """Whether a run trained here: a checkpoint, best parameters or a metrics line."""
        metrics = self.path / METRICS
        return (
            ((self.path / CHECKPOINTS).is_dir() and self._latest().latest_step() is not None)
            or (self.path / BEST).exists()
            or (metrics.is_file() and metrics.stat().st_size > 0)
        )

    def prepare(self, config: Config, resume: bool, num_seeds: int) -> bool:
        """Checks the folder for a fresh or resumed run of `config` and writes config.json (and
        seeds.json for N > 1). Returns whether training continues from a checkpoint.

        A resumed run may only change `train_steps`, and only when nothing is scheduled over it: it
        is the horizon of the learning-rate schedule (a longer run would jump back to a high rate)
        and of an annealed policy std (the saved checkpoints' std would change with it). A folder
        holding only a config (a run stopped before its first checkpoint) starts afresh. Called
        under `lock()`, which creates the folder."""
        config = config.validate()
        progress = self.path.is_dir() and self.has_progress()
        if resume and progress and self.is_run() and self.latest_step() is None:
            # Stopped at its first validation, before the first checkpoint was written: the best
            # parameters and the metrics line of that step have no train state to go on from. Only a
            # run of this config is cleared (a folder of something else fails to parse, or differs),
            # and only one that got no further (a recorded run copied without its checkpoints is kept).
            check_resumable(self.config(), config, self.path / CONFIG)
            logged = self.read_metrics()
            if self.has_results() or len(logged) > 1:
                done = "finished" if self.has_results() else f"logged up to step {logged[-1]['step']}"
                rebuild = ""
                if not self.has_results() and self._rebuild_refusal() is None:
                    rebuild = (
                        f"; or, as its best parameters are those of that step, rebuild a checkpoint from them "
                        f"(the optimiser's moments restarted: `RunDir('{self.path}').restart_from_best()` from "
                        f"ram.rundir, or experiments/restart_from_best.py in a clone of ram) and --resume"
                    )
                raise RamError(
                    f"--resume: {self.path} {done} but holds no train checkpoint ({CHECKPOINTS}/ is left "
                    f"out of git and of copies made without it), so it cannot continue; train on from its "
                    f"best parameters in a new folder: init_from={self.path}{rebuild}"
                )
            if self.writes():
                print(f"ram: --resume: {self.path} has no checkpoint yet; starting afresh", file=sys.stderr)
            self._clear_progress()
            progress = False
        elif resume and not progress and self.writes():
            print(f"ram: --resume: {self.path} holds no run yet; starting one", file=sys.stderr)
        if resume and progress:
            if not self.is_run():
                raise RamError(f"--resume: {self.path} holds checkpoints but no {CONFIG}; it is not a run to continue")
            recorded = self.num_seeds()
            if recorded != num_seeds:
                raise RamError(
                    f"--resume: {self.path} trained {recorded} seed(s) at once; resume it with --seeds {recorded}"
                )
            check_resumable(self.config(), config, self.path / CONFIG)
            latest = self.latest_step()
            if latest is not None and latest > config.train_steps:  # before config.json is written
                raise RamError(f"--resume: the run is already at step {latest}, past train_steps={config.train_steps}")
        elif progress:
            raise RamError(
                f"{self.path} already holds a run: pass --resume to continue it, or choose another --run-dir"
            )
        if not self.writes():  # every process checks the folder; process 0 writes it
            return resume and progress
        _atomic_write(self.path / CONFIG, config.to_json())
        if num_seeds > 1:
            _atomic_write(self.path / SEEDS, json.dumps({"num_seeds": num_seeds, "first_seed": config.seed}))
        elif (self.path / SEEDS).exists() and not progress:
            (self.path / SEEDS).unlink()
        return resume and progress

    def _clear_progress(self) -> None:
        """Removes what a run stopped before its first checkpoint logged: best parameters, metrics, events."""
        if not self.writes():
            return
        if (self.path / BEST).is_dir():
            shutil.rmtree(self.path / BEST, ignore_errors=True)
        for path in [self.path / BEST_JSON, self.path / METRICS, *self.path.glob("events.out.tfevents.*")]:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self):
        """Keeps a second process from training into the folder. Held by process 0 of a multi-process run.

        The lock file names its holder (pid, host) and is held with `flock`, which the OS releases
        when the process ends, however it ends: a lock file left by a dead process is taken over, by
        one process only, even when several start at once. A file naming another host is never taken
        over (its holder may be alive on a filesystem that does not pass locks between hosts). On a
        filesystem without `flock`, the file alone is the lock, and a dead holder is told by its pid."""
        if not self.writes():
            yield self
            return
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RamError(f"cannot create the run folder {self.path}: {e.strerror or e}") from None
        path = self.path / LOCK
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        fd = self._flock(path, me)
        if fd is None:
            self._lock_by_pid(path, me)
        try:
            yield self
        finally:
            if fd is None:
                path.unlink(missing_ok=True)
            else:  # before the release (a process that opened this file retries), and only our own file
                with contextlib.suppress(OSError):
                    if os.path.samestat(os.fstat(fd), os.stat(path)):
                        path.unlink()
                os.close(fd)
            if created:  # nothing written in a folder made for the lock: leave no empty folder
                with contextlib.suppress(OSError):
                    self.path.rmdir()

    def _flock(self, path: Path, me: dict) -> int | None:
        """The descriptor of `path`, locked with `flock` and holding `me` (None: no `flock` here)."""
        for _ in range(100):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RamError(f"cannot write in the run folder {self.path}: {e.strerror or e}") from None
            try:
                claimed = self._claim(fd, path, me)
            except OSError as e:
                os.close(fd)
                raise RamError(f"cannot lock {path}: {e.strerror or e}") from None
            except BaseException:
                os.close(fd)
                raise
            if claimed:
                return fd
            os.close(fd)
            if claimed is None:
                return None
        raise RamError(f"cannot lock {path}: it keeps being replaced; is another ram starting in {self.path}?")

    def _claim(self, fd: int, path: Path, me: dict) -> bool | None:
        """Locks the open lock file `fd` and writes `me` in it: True when done, False when `path` was
        replaced meanwhile (open it again), None on a filesystem without `flock`."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            who = f"process {owner['pid']}" if "pid" in owner else "another process"
            raise RamError(f"{self.path} is being trained by {who}; wait for it or stop it") from None
        except OSError:  # ENOSYS, ENOLCK, EOPNOTSUPP...: the pid-based lock decides (it reads an empty file as stale)
            return None
        try:  # the holder may have removed the file between our open and our lock
            if not os.path.samestat(os.fstat(fd), os.stat(path)):
                return False
        except FileNotFoundError:
            return False
        # Not holding the flock but alive: a ram of before flock, or of the pid-based lock (not us:
        # our own pid in a file whose flock we got is a leftover).
        self._take_over(_read_owner(fd), path, me, own_pid_alive=False)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return True

    def _take_over(self, owner: dict, path: Path, me: dict, own_pid_alive: bool) -> None:
        """Refuses (`RamError`) the lock file of `owner` (`{"pid", "host"}`, or {}) where its holder may
        be alive: another host's, or a live process of this host (this process too where
        `own_pid_alive`); else says that the stale lock is taken over."""
        if owner.get("host") not in (None, me["host"]):
            raise RamError(
                f"{self.path} is locked by process {owner.get('pid')} on {owner['host']}; "
                f"if that run has ended, delete {path}"
            )
        pid = owner.get("pid")
        if (own_pid_alive or pid != me["pid"]) and _alive(pid):
            raise RamError(
                f"{self.path} is being trained by process {pid}; wait for it or stop it "
                f"(if no such run is going on, delete {path})"
            )
        if owner:
            print(f"ram: taking over the stale lock {path} (process {pid} has ended)", file=sys.stderr)

    def _lock_by_pid(self, path: Path, me: dict) -> None:
        """The lock on a filesystem without `flock`: the file created exclusively; one left by a dead
        process of this host is replaced."""
        for _ in range(2):
            try:
                _create_with(path, json.dumps(me))  # never seen empty by a second process
            except FileExistsError:
                try:
                    owner = json.loads(path.read_text())
                except (OSError, ValueError):
                    owner = {}
                self._take_over(owner if isinstance(owner, dict) else {}, path, me, own_pid_alive=True)
                path.unlink(missing_ok=True)
                continue
            except OSError as e:
                raise RamError(f"cannot write in the run folder {self.path}: {e.strerror or e}") from None
            return
        raise RamError(f"cannot lock {path}: another process took it over first; is another ram starting?")

    # -- metrics -------------------------------------------------------------------------------

    def append_metrics(self, record: dict) -> None:
        if not self.writes():
            return
        line = json.dumps({k: finite_or_none(v) for k, v in record.items()}, allow_nan=False)
        try:
            with (self.path / METRICS).open("a") as f:
                f.write(line + "\n")
        except OSError as e:
            raise RamError(f"cannot write {self.path / METRICS}: {e.strerror or e}") from None

    def event_writer(self, purge_step: int | None = None):
        """A TensorBoard `ram.events.EventWriter` on the folder; a resumed run passes the step after its
        checkpoint's, so the events logged after it before the interruption are dropped."""
        from ram.events import EventWriter

        return EventWriter(self.path, purge_step) if self.writes() else _NoEvents()

    def read_metrics(self) -> list[dict]:
        """The lines of metrics.jsonl; a torn last line (a process killed mid-write) is skipped
        with a warning, any other malformed line is an error naming it."""
        path = self.path / METRICS
        if not path.is_file():
            return []
        lines = path.read_text().splitlines()
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "step" not in row:
                    raise ValueError("not a metrics record")
            except ValueError:
                if i == len(lines) - 1:
                    print(f"ram: ignoring the torn last line of {path}", file=sys.stderr)
                    continue
                raise RamError(f"{path} line {i + 1} is not a metrics record: {line[:80]!r}") from None
            rows.append(row)
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Keeps the metrics lines up to `step` (a resumed run logs the later steps again)."""
        rows = self.read_metrics()
        kept = [r for r in rows if r["step"] <= step]
        path = self.path / METRICS
        if self.writes() and path.is_file() and (len(kept) != len(rows) or not path.read_text().endswith("\n")):
            _atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))

    def wall_time_at(self, step: int) -> float:
        for row in self.read_metrics():
            if row["step"] == step:
                return float(np.mean(row["wall_time_s"]))
        raise RamError(f"{self.path / METRICS} has no line for step {step}")

    # -- results and lineage --------------------------------------------------------------------

    def write_results(self, results: dict) -> None:
        if self.writes():
            _atomic_write(self.path / RESULTS, json.dumps(results, indent=2))

    def has_results(self) -> bool:
        return (self.path / RESULTS).is_file()

    def read_cpu_evaluation(self) -> dict | None:
        """`ram eval --json` of a GPU-trained run, re-run on a CPU (eval-cpu.json), if recorded."""
        path = self.path / EVAL_CPU
        return upgrade_results(_read_json(path, "restore it from git")) if path.is_file() else None

    def read_results(self) -> dict:
        path = self.path / RESULTS
        if not path.is_file():
            raise RamError(f"{path} does not exist: the run has not finished")
        return upgrade_results(_read_json(path, "evaluate the run again with ram eval"))

    def write_data(self, fingerprint: dict) -> None:
        if self.writes():
            _atomic_write(self.path / DATA, json.dumps(fingerprint, indent=2))

    def read_data(self) -> dict | None:
        """The fingerprint of the dataset the run trained on; None for a run that did not record one."""
        path = self.path / DATA
        return _read_json(path, "delete it to skip the check of the data") if path.is_file() else None

    def write_origin(self, origin: dict) -> None:
        if self.writes():
            _atomic_write(self.path / INIT_FROM, json.dumps(origin, indent=2))

    def read_origin(self) -> dict | None:
        path = self.path / INIT_FROM
        if not path.is_file():
            return None
        return _per_seed_origin(_read_json(path, "restore it or start a new run"))

    def cost_before(self) -> dict:
        """`{"images_seen_before": [N], "wall_time_before_s": [N]}` of this run's own starting
        point: 0 for a run initialised from its seed, else what it records."""
        n = self.num_seeds()
        if not self.config().init_from:
            return {"images_seen_before": [0] * n, "wall_time_before_s": [0.0] * n}
        origin = self.read_origin()
        if origin is None and (self.path / RESULTS).is_file():
            origin = self.read_results()
        if not origin or "images_seen_before" not in origin:
            raise RamError(
                f"init_from={self.path}: that run started from {self.config().init_from}, but neither its "
                f"{INIT_FROM} nor its {RESULTS} says what that cost"
            )
        return {k: origin[k] for k in ("images_seen_before", "wall_time_before_s")}

    # -- checkpoints -----------------------------------------------------------------------------

    def _latest(self) -> ocp.CheckpointManager:
        if not hasattr(self, "_latest_mngr"):
            opts = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
            _quiet_orbax()
            self._latest_mngr = ocp.CheckpointManager(
                self.path / CHECKPOINTS, options=opts, item_names=("state", "extra", "best")
            )
        return self._latest_mngr

    def _best(self) -> ocp.CheckpointManager:
        if not hasattr(self, "_best_mngr"):
            _quiet_orbax()
            self._best_mngr = ocp.CheckpointManager(
                self.path / BEST, options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
            )
        return self._best_mngr

    def latest_step(self) -> int | None:
        return self._latest().latest_step() if (self.path / CHECKPOINTS).is_dir() else None

    def _to_disk(self, tree, num_seeds: int):
        return seed_slice(tree, 0) if num_seeds == 1 else tree

    def _from_disk(self, tree, num_seeds: int):
        """The inverse of `_to_disk`: a single-seed tree gets its seed axis back (None stays None)."""
        return stack([tree]) if num_seeds == 1 and tree is not None else tree

    def save_latest(self, step: int, states, extra: dict, num_seeds: int, best_params=None) -> None:
        """Checkpoints the train states [N, ...], `extra` (JSON) and the best parameters so far [N, ...]
        at `step`: one checkpoint holds all three, so a resumed run's best parameters are those its
        `extra["best"]` describes, whenever the process was stopped."""
        items = {"state": _save_args(self._to_disk(states, num_seeds)), "extra": ocp.args.JsonSave(extra)}
        if best_params is not None:
            items["best"] = _save_args(self._to_disk(best_params, num_seeds))
        try:
            saved = self._latest().save(step, args=ocp.args.Composite(**items))
        except Exception as e:  # also the failure of the previous (asynchronous) save
            raise _write_error(self.path / CHECKPOINTS, e) from None
        if not saved:  # orbax skips a step at or before its latest one, without an error
            raise RamError(
                f"the checkpoint of step {step} was not written: {self.path / CHECKPOINTS} already holds step "
                f"{self._latest().latest_step()}"
            )

    def restore_latest(self, like, num_seeds: int):
        """`(states [N, ...], extra, best parameters [N, ...] or None)` of the newest checkpoint that
        restores; an older one is used (and said) when the newest is corrupt, which is deleted. The best
        parameters are None in a checkpoint written before checkpoints held them (then read `best/`)."""
        steps = sorted(self._latest().all_steps(), reverse=True)
        on_disk = self._to_disk(like, num_seeds)
        corrupt = []  # (step, why) of the newer checkpoints that did not restore
        for step in steps:
            items = {"state": _restore_args(on_disk), "extra": ocp.args.JsonRestore()}
            if (self.path / CHECKPOINTS / str(step) / "best").is_dir():
                items["best"] = _restore_args(self._to_disk(like.params, num_seeds))
            try:
                out = self._latest().restore(step, args=ocp.args.Composite(**items))
                state, extra, best = out["state"], dict(out["extra"]), out.get("best")
            except Exception as e:  # orbax and TensorStore raise many kinds for a damaged file
                corrupt.append((step, _one_line(e)))
                continue
            for bad, why in corrupt:
                print(
                    f"ram: the checkpoint of step {bad} is corrupt ({why}); resuming from step {step}", file=sys.stderr
                )
                # Deleted, so the resumed run writes that step again (orbax skips a step it holds).
                self._latest().delete(bad)
            return self._from_disk(state, num_seeds), extra, self._from_disk(best, num_seeds)
        if corrupt:
            raise RamError(
                f"every checkpoint in {self.path / CHECKPOINTS} is corrupt (step {corrupt[0][0]}: {corrupt[0][1]}; "
                f"steps {', '.join(str(s) for s, _ in corrupt)} tried); start the run again in a new folder"
            )
        raise RamError(f"{self.path / CHECKPOINTS} holds no checkpoint")

    def figure(self, name: str) -> Path:
        """The path of figure `name` (one of FIGURES) in the run folder, or one line if it cannot be
        written there."""
        assert name in FIGURES, name
        path = self.path / name
        if not os.access(self.path, os.W_OK):
            raise RamError(f"cannot write {path}: the run folder is read-only")
        return path

    def save_best(self, step: int, params, best: list[dict], num_seeds: int) -> None:
        """Saves the best parameters [N, ...] and each seed's `{"val_error_pct", "step"}`. A checkpoint
        of this step or a later one (left by a run stopped before its next train checkpoint, which a
        resumed run replaces) is deleted first."""
        try:
            for stale in [s for s in self._best().all_steps() if s >= step]:
                self._best().delete(stale)
            self._best().save(step, args=_save_args(self._to_disk(params, num_seeds)), force=True)
            self._best().wait_until_finished()
        except Exception as e:
            raise _write_error(self.path / BEST, e) from None
        if self.writes():
            _atomic_write(self.path / BEST_JSON, json.dumps({"best": best}))

    def read_best(self, fix: str) -> list[dict] | None:
        """best.json's record, each seed's `{"val_error_pct", "step"}` (`save_best`; `ram.train.Best`
        is its schema), or None without the file; `fix` says what to do with a damaged one."""
        path = self.path / BEST_JSON
        return _read_json(path, fix)["best"] if path.is_file() else None

    def best_step(self) -> int | None:
        """The step of the parameters in best/ (None if there are none)."""
        return self._best().latest_step() if (self.path / BEST).is_dir() else None

    def restore_best(self, like, num_seeds: int) -> tuple[nnx.State, list[int]]:
        """`(params [N, ...], each seed's best step)`.

        A run still training replaces its best checkpoint (one kept): a step deleted while it was
        being read is read again at the step that replaced it."""
        path = self.path / BEST
        step = self._best().latest_step() if path.is_dir() else None
        if step is None:
            raise RamError(
                f"{path} holds no checkpoint: the run has no best parameters yet (train it: ram train ... "
                f"--run-dir {self.path}, with --resume to continue it)"
            )
        restore = _restore_args(self._to_disk(like, num_seeds))
        for attempt in range(4):
            try:
                params = self._best().restore(step, args=restore)
                break
            except Exception as e:
                time.sleep(0.2 * attempt)
                self._best_mngr.close()  # a fresh manager: this one's item layout was guessed from the missing step
                del self._best_mngr
                replaced = self._best().latest_step()
                if attempt < 3 and replaced is not None and (replaced != step or not (path / str(step)).is_dir()):
                    step = replaced
                    continue
                raise RamError(
                    f"the checkpoint {path / str(step)} does not restore ({_one_line(e)}): it is corrupt, or "
                    f"{self.path / CONFIG} no longer describes its model"
                ) from None
        steps = [step] * num_seeds
        records = self.read_best("delete it to use the checkpoint's step")
        if records:
            recorded = [b["step"] for b in records]
            if max(recorded) == step:
                steps = recorded
            else:  # stopped between a validation's two writes; resuming the run rewrites best.json
                print(
                    f"ram: warning: {self.path / BEST_JSON} names step {max(recorded)}, {path} holds step "
                    f"{step} (the run stopped between the two writes; --resume repairs it): using step {step}",
                    file=sys.stderr,
                )
        return self._from_disk(params, num_seeds), steps

    def restart_from_best(self) -> int:
        """Writes a train checkpoint for a run whose checkpoints are lost (left out of a copy, or of git)
        but whose best parameters are those of its last validation: those parameters, the optimiser's
        moments restarted (`ram.step.restart_state`), its best record and wall time as logged. Returns
        the step; `--resume` then continues from it, with the data and keys of the run. Anything else
        (a checkpoint present, no best.json, a seed's best parameters older than the last metrics line)
        is refused (`_rebuild_refusal`)."""
        config, num_seeds = self.config(), self.num_seeds()  # "not a run folder" first
        if self.latest_step() is not None:
            raise RamError(f"{self.path} holds a train checkpoint (step {self.latest_step()}): resume it with --resume")
        refusal = self._rebuild_refusal()
        if refusal:
            raise RamError(
                f"{self.path}: {refusal}, so no train state can be rebuilt; train on from its best parameters in a "
                f"new folder: init_from={self.path}"
            )
        at, best = self.read_metrics()[-1]["step"], self.read_best("restore it")
        _, like = init_states(config, num_seeds)
        params, _ = self.restore_best(like.params, num_seeds)
        states = stack([restart_state(config, seed_slice(params, i), at) for i in range(num_seeds)])
        self.save_latest(at, states, {"best": best, "wall_time_s": self.wall_time_at(at)}, num_seeds, params)
        self.wait()
        return at

    def _rebuild_refusal(self) -> str | None:
        """Why `restart_from_best` cannot rebuild this run's train state, or None: every seed's best
        parameters (best/ and best.json) must be those of the last metrics line."""
        logged, best = self.read_metrics(), self.read_best("restore it") or []
        if not logged or not best:
            return "it has no metrics line or no best.json"
        at = logged[-1]["step"]
        older = [s for s, b in zip(self.seeds(), best, strict=False) if b["step"] != at]
        if len(best) != self.num_seeds() or self.best_step() != at or older:
            which = f" (seed {', '.join(map(str, older))})" if older else ""
            return f"its best parameters{which} are not those of its last metrics line (step {at})"
        return None

    def wait(self) -> None:
        """Waits for the checkpoints being written; a failed write is a `RamError` naming the folder."""
        for name, folder in (("_latest_mngr", CHECKPOINTS), ("_best_mngr", BEST)):
            if hasattr(self, name):
                try:
                    getattr(self, name).wait_until_finished()
                except Exception as e:
                    raise _write_error(self.path / folder, e) from None


class _NoEvents:
    """The event writer of a process other than 0 of a multi-process run: writes nothing."""

    def scalars(self, *args, **kwargs) -> None:
        pass

    image = close = scalars


def _read_owner(fd: int) -> dict:
    """The `{"pid", "host"}` a lock file holds ({} if empty or unreadable: being written, or left so)."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ConfigMismatch(RamError):
    """`--resume` with a config the run cannot continue under; `saved` is the run's own (the command
    line adds the command that matches it)."""

    def __init__(self, message: str, saved: Config):
        super().__init__(message)
        self.saved = saved


# Config fields a resumed run may not change without saying so; `train_steps` has its own rules.
def check_resumable(saved: Config, config: Config, path: Path) -> None:
    """Raises `ConfigMismatch` naming every field in which `config` differs from the saved one (a
    relative folder path saved by an older ram is compared as the current directory resolves it)."""
    saved = absolute_folder(saved)
    differ = [
        f"{f.name}={getattr(config, f.name)!r} (the run has {getattr(saved, f.name)!r})"
        for f in dataclasses.fields(Config)
        if f.name != "train_steps" and getattr(saved, f.name) != getattr(config, f.name)
    ]
    if differ:
        raise ConfigMismatch(
            f"--resume: the config differs from {path} in {'; '.join(differ)}; only train_steps may change", saved
        )
    if saved.train_steps != config.train_steps and config.location_std_final:
        raise ConfigMismatch(
            f"--resume: train_steps={config.train_steps} differs from the run's {saved.train_steps}, the horizon "
            f"of its annealed policy std (location_std_final); train on from its best parameters in a new folder "
            f"instead (init_from={path.parent})",
            saved,
        )
    if saved.train_steps != config.train_steps and config.schedule != "constant":
        raise ConfigMismatch(
            f"--resume: train_steps={config.train_steps} differs from the run's {saved.train_steps}, the horizon "
            f"of its {config.schedule} learning-rate schedule; train on from its best parameters in a new folder "
            f"instead (init_from={path.parent})",
            saved,
        )


class Run(NamedTuple):
    """A trained run, as evaluation and visualisation read it."""

    config: Config
    graphdef: nnx.GraphDef
    params: nnx.State  # best parameters on validation, [N, ...]
    best_steps: list[int]  # [N] the step each seed's best parameters come from
    seeds: list[int]  # [N]
    image_shape: tuple[int, ...] | None = None  # [H, W, C] of the images it trained on (data.json; None: unrecorded)
    class_names: tuple[str, ...] = ()  # label i's name (data.json; empty: unnamed or unrecorded)

    def seed_params(self, i: int = 0) -> tuple[nnx.State, int]:
        """`(best parameters, their step)` of seed index `i` (0 to the number of seeds - 1)."""
        if not 0 <= i < len(self.best_steps):
            raise RamError(
                f"seed index {i}: this run has {len(self.best_steps)} seed(s) ({self.seeds}), indexed 0 to "
                f"{len(self.best_steps) - 1}"
            )
        return seed_slice(self.params, i), self.best_steps[i]


def load_run(path: str | os.PathLike, config: Config | None = None) -> Run:
    """The best parameters of every seed of the run in `path`."""
    run = RunDir(path)
    config = config or run.config()
    graphdef, params = init_model(config)
    n = run.num_seeds()
    params, steps = run.restore_best(jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), params), n)
    data = run.read_data() or {}
    shape = data.get("image_shape")
    return Run(
        config,
        graphdef,
        params,
        steps,
        run.seeds(),
        tuple(shape) if shape else None,
        tuple(data.get("class_names", ())),
    )


def start_from(parent_path: str | os.PathLike, config: Config, like, num_seeds: int) -> tuple[nnx.State, dict]:
    """The best parameters [N, ...] of the run `parent_path`, in place of the fresh `like` [N, ...].

    A single-seed parent starts every seed; a parent of N seeds starts seed i from its seed i.
    Returns `(params, origin)`: `origin` says where they come from and what producing them cost
    (per seed, along the chain of runs up to the parent's best step). Raises `RamError` when the
    parent's model differs."""
    parent_dir = RunDir(parent_path)
    parent = parent_dir.config()
    n = parent_dir.num_seeds()
    if n not in (1, num_seeds):
        raise RamError(
            f"init_from={parent_path}: that run trained {n} seeds at once; start {n} seeds (--seeds {n}), "
            "each from its own seed"
        )
    run = load_run(parent_path, parent)
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape[1:]), tree)  # noqa: E731
    if shapes(run.params) != shapes(like):
        differ = [
            f"{f.name}={getattr(parent, f.name)!r}"
            for f in dataclasses.fields(Config)
            if f.name in MODEL_FIELDS and getattr(parent, f.name) != getattr(config, f.name)
        ]
        raise RamError(
            f"init_from={config.init_from}: that run's model differs from this config's "
            f"(it has {', '.join(differ) or 'other parameter shapes'}); its parameters cannot start this run"
        )
    before = parent_dir.cost_before()
    pick = (lambda xs: [xs[0]] * num_seeds) if n == 1 else (lambda xs: list(xs))  # noqa: E731
    steps, images_before, wall_before = (
        pick(run.best_steps),
        pick(before["images_seen_before"]),
        pick(before["wall_time_before_s"]),
    )
    params = run.params if n == num_seeds else jax.tree.map(lambda x: jnp.repeat(x, num_seeds, 0), run.params)
    origin = {
        "init_from": str(parent_path),
        "init_step": [int(s) for s in steps],
        "images_seen_before": [int(b + s * parent.batch_size) for b, s in zip(images_before, steps, strict=True)],
        "wall_time_before_s": [
            round(w + parent_dir.wall_time_at(s), 1) for w, s in zip(wall_before, steps, strict=True)
        ],
    }
    return params, origin


# Config fields that shape the model's parameters (named by `start_from`'s error when they differ;
# the check itself compares parameter shapes).
MODEL_FIELDS = {
    "patch_size", "num_scales", "num_glimpses", "glimpse_hidden", "location_hidden", "glimpse_features",
    "core", "core_hidden", "num_classes", "policy_hidden", "channels",
}  # fmt: skip


def _listify(value, n: int) -> list:
    return list(value) if isinstance(value, list) else [value] * n


def _per_seed_origin(origin: dict) -> dict:
    """An init_from record of any version, with its per-seed figures as lists."""
    n = len(origin["init_step"]) if isinstance(origin.get("init_step"), list) else 1
    out = dict(origin)
    for k in ("init_step", "images_seen_before", "wall_time_before_s"):
        if k in out:
            out[k] = _listify(out[k], n)
    return out


def summarize(values: list[float]) -> dict:
    x = np.asarray(values, np.float64)
    return {
        "mean": round(float(x.mean()), 4),
        "std": round(float(x.std(ddof=1)) if len(x) > 1 else 0.0, 4),
        "min": round(float(x.min()), 4),
        "max": round(float(x.max()), 4),
    }


def upgrade_results(r: dict) -> dict:
    """A results.json of any version in today's schema: per-seed lists plus a `summary`."""
    r = dict(r)
    if "num_seeds" in r and isinstance(r.get("test_error_pct"), list):
        r.setdefault("summary", {k: summarize(r[k]) for k in PER_SEED if k in r and k != "best_step"})
        return _ordered(r)
    if isinstance(r.get("seeds"), list) and r["seeds"] and isinstance(r["seeds"][0], dict):  # the old --seeds N
        per = r.pop("seeds")
        r.update({k: [s[k] for s in per] for k in PER_SEED if k in per[0]})
        r["seeds"] = [s["seed"] for s in per]
        r["images_seen"] = r.pop("images_seen_per_seed", r.get("images_seen"))
    else:
        r["seeds"] = [r.pop("seed", 0)]
        for k in PER_SEED:
            if k in r:
                r[k] = [r[k]]
    r["num_seeds"] = len(r["seeds"])
    r.pop("note", None)
    r.update(_per_seed_origin(r) if "init_from" in r else {})
    r["summary"] = {k: summarize(r[k]) for k in PER_SEED if k in r and k != "best_step"}
    return _ordered(r)


def _ordered(r: dict) -> dict:
    """Seeds, then the per-seed figures and their summary first, the rest as it was."""
    first = ["num_seeds", "seeds", *PER_SEED, "summary"]
    return {**{k: r[k] for k in first if k in r}, **{k: v for k, v in r.items() if k not in first}}
