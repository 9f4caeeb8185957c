"""Faults a demanding user runs into: each ends in one line `ram: error: ...` and exit status 2, or
recovers by itself with at most a one-line warning. Never a traceback.

The cases run the command line in-process on copies of one tiny trained run (a tiny model trained on
small random arrays shaped like MNIST; synthetic, not MNIST), with `ram.datasets.load` returning
those arrays. Where only a real process shows the noise (orbax's threads print at exit), the real
`python -m ram.cli` runs in a subprocess on real MNIST ($RAM_MNIST_DIR).
"""

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import TINY

from ram import datasets, rundir, step, train
from ram.cli import main
from ram.config import PRESETS, overrides_between
from ram.data import Mnist, Split

CONFIG = TINY.replace(eval_every=10, train_steps=30)  # checkpoints at steps 20 and 30 (two kept), a best


def synthetic_mnist() -> Mnist:
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32))

    return Mnist(split(64), split(40), split(40))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "trained"
    train.train_and_evaluate(CONFIG, path, synthetic_mnist(), progress=False)
    return path


@pytest.fixture
def run(trained, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the trained run; every command reads the synthetic arrays as its data."""
    monkeypatch.setattr(datasets, "load", lambda *args, **kwargs: synthetic_mnist())
    return Path(shutil.copytree(trained, tmp_path / "run"))


def run_overrides(run_dir: Path) -> list[str]:
    """The overrides of mnist28 that give the config of the run in `run_dir` (or of `CONFIG`)."""
    config = rundir.RunDir(run_dir).config() if (run_dir / "config.json").exists() else CONFIG
    return overrides_between(PRESETS["mnist28"], config)


def train_argv(run_dir: Path, *extra: str) -> list[str]:
    """`ram train` of the trained run's config in `run_dir`."""
    return ["train", "mnist28", *run_overrides(run_dir), *extra, "--run-dir", str(run_dir), "--no-progress"]


def cli(capsys, argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_error_line(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert err.startswith("ram: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in err


def edit_config(run_dir: Path, **changes) -> None:
    path = run_dir / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


def damage(folder: Path, how: str, pattern: str = "*") -> None:
    """Truncates, empties or garbles every file under `folder` matching `pattern`."""
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
        data = path.read_bytes()
        if how == "truncate":
            path.write_bytes(data[: len(data) // 3])
        elif how == "empty":
            path.write_bytes(b"")
        else:
            path.write_bytes(bytes((b * 31 + 7) % 256 for b in data))


def read_only(monkeypatch, folder: Path) -> None:
    """Makes `folder` read-only. Not as root, with chmod. As root (chmod does not stop root) every write
    under `folder` fails as on a read-only file system: opening a file to write, creating a folder,
    renaming into it, and `os.access(..., W_OK)`, which see `OSError(EROFS)` or False."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return
    folder = folder.absolute()

    def inside(path) -> bool:
        return isinstance(path, str | os.PathLike) and Path(os.path.abspath(path)).is_relative_to(folder)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    real_open, real_os_open, real_mkdir, real_replace, real_access = (
        builtins.open,
        os.open,
        os.mkdir,
        os.replace,
        os.access,
    )

    def fake_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: refuse(path) if inside(path) else real_mkdir(path, *a, **k))
    monkeypatch.setattr(os, "replace", lambda src, dst: refuse(dst) if inside(dst) else real_replace(src, dst))
    monkeypatch.setattr(
        os, "access", lambda path, mode, **k: False if inside(path) and mode & os.W_OK else real_access(path, mode, **k)
    )


@pytest.fixture
def writable_again(tmp_path):
    yield
    for path in [tmp_path, *tmp_path.rglob("*")]:  # let pytest clean up after a chmod
        path.chmod(path.stat().st_mode | 0o200)


# -- one line and exit status 2 ----------------------------------------------------------------------


def float_for_an_int(run, monkeypatch):
    edit_config(run, num_glimpses=6.5)
    return ["eval", run], "config.json is not a valid config: num_glimpses=6.5: must be a whole number"


def float_for_an_int_visualize(run, monkeypatch):
    edit_config(run, num_glimpses=6.5)
    return ["visualize", run], "config.json is not a valid config: num_glimpses=6.5: must be a whole number"


def bool_for_an_int(run, monkeypatch):
    edit_config(run, batch_size=True)
    return ["eval", run], "batch_size=True: must be a whole number"


def string_for_a_float(run, monkeypatch):
    edit_config(run, learning_rate="fast")
    return ["visualize", run], "learning_rate='fast': must be a number"


def seed_out_of_range_in_config_json(run, monkeypatch):
    edit_config(run, seed=2**40)
    return ["eval", run], f"seed={2**40}: must be in [0, 2147418112)"


def huge_seed_on_the_command_line(run, monkeypatch):
    return ["train", "mnist28", "seed=99999999999999999999"], "seed=99999999999999999999: must be in [0, 2147418112)"


def negative_seed(run, monkeypatch):
    return ["train", "mnist28", "seed=-1"], "seed=-1: must be in [0, 2147418112)"


def huge_seed_of_visualize(run, monkeypatch):
    return ["visualize", run, "--seed", "99999999999999999999"], "--seed=99999999999999999999: must be in [0, "


def model_changed_in_config_json(run, monkeypatch):
    edit_config(run, core_hidden=32)
    return ["eval", run], "no longer describes its model"


def best_files_truncated(run, monkeypatch):
    damage(run / "best", "truncate")
    return ["visualize", run], f"the checkpoint {run / 'best'}"


def read_only_visualize(run, monkeypatch):
    read_only(monkeypatch, run)
    return ["visualize", run], f"cannot write {run / 'glimpses.png'}"


def read_only_plot(run, monkeypatch):
    read_only(monkeypatch, run)
    return ["plot", run], f"cannot write {run / 'curves.png'}"


def read_only_resume(run, monkeypatch):
    read_only(monkeypatch, run)
    return [*train_argv(run), "--resume"], f"cannot write in the run folder {run}: Read-only"  # its lock first


def read_only_new_run_under_it(run, monkeypatch):
    read_only(monkeypatch, run)
    return train_argv(run / "new"), f"cannot create the run folder {run / 'new'}"


def read_only_data_show_out(run, monkeypatch):
    read_only(monkeypatch, run)
    return ["data", "show", "mnist28", "--out", run / "grid.png"], f"--out={run / 'grid.png'}: cannot write in {run}"


def full_disk_writing_a_checkpoint(run, monkeypatch):
    """TensorStore reports a full disk as a ValueError naming RESOURCE_EXHAUSTED: not the device's memory."""

    def full(*args, **kwargs):
        raise ValueError(
            'RESOURCE_EXHAUSTED: Error writing local file "x/_sharding": Failed to write 1967 bytes to file 12: '
            "No space left on device [os_error_code='28']"
        )

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    return train_argv(run.parent / "new"), f"cannot write a checkpoint in {run.parent / 'new' / 'best'}: No space left"


def full_disk_writing_metrics(run, monkeypatch):
    def full(self, record):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "metrics.jsonl"))

    monkeypatch.setattr(rundir.RunDir, "append_metrics", full)
    return train_argv(run.parent / "new"), f"cannot write {run.parent / 'new' / 'metrics.jsonl'}: No space left"


def full_disk_writing_events(run, monkeypatch):
    """The disk fills up after the event file was opened: the first validation's events cannot be flushed
    (tensorboardX's own writer thread would print a traceback per event and let training go on)."""
    from tensorboardX import record_writer

    def full(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record_writer.RecordWriter, "flush", full)
    return train_argv(run.parent / "new"), f"cannot write TensorBoard events in {run.parent / 'new'}: No space left"


def device_out_of_memory(run, monkeypatch):
    """batch_size=100000000 on a real device: XLA cannot allocate the batch (simulated: on this shared
    CPU the real allocation could exhaust the machine instead)."""

    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 313600000000 bytes.")

    monkeypatch.setattr(step, "make_train_chunk", exhausted)
    return train_argv(run.parent / "new", "batch_size=100000000"), "the device ran out of memory"


def resume_with_other_overrides(run, monkeypatch):
    """The command it names leaves out what the data sets (num_classes=10, channels=1)."""
    named = [o for o in run_overrides(run) if not o.startswith(("num_classes=", "channels="))]
    assert len(named) < len(run_overrides(run))
    return [*train_argv(run, "core=gru"), "--resume"], (
        f"core='gru' (the run has 'rnn'); only train_steps may change; to continue the run as it was: "
        f"ram train mnist28 {' '.join(named)} --run-dir {run} --resume\n"
    )


def resume_with_another_preset(run, monkeypatch):
    """An mnist28 run resumed from cluttered60: the command named starts from mnist28, the preset
    closest to the run (from cluttered60, task=mnist's canvas left to the data would stay 60)."""
    named = [o for o in run_overrides(run) if not o.startswith(("num_classes=", "channels="))]
    argv = ["train", "cluttered60", *run_overrides(run), "--run-dir", str(run), "--no-progress", "--resume"]
    return argv, f"to continue the run as it was: ram train mnist28 {' '.join(named)} --run-dir {run} --resume\n"


def resume_with_every_checkpoint_truncated(run, monkeypatch):
    damage(run / "checkpoints", "truncate")
    return [*train_argv(run), "--resume"], f"every checkpoint in {run / 'checkpoints'} is corrupt"


def resume_with_every_state_emptied(run, monkeypatch):
    damage(run / "checkpoints", "empty", "state/*")
    return [*train_argv(run), "--resume"], "steps 30, 20 tried); start the run again in a new folder"


@pytest.mark.parametrize(
    "case",
    [
        float_for_an_int,
        float_for_an_int_visualize,
        bool_for_an_int,
        string_for_a_float,
        seed_out_of_range_in_config_json,
        huge_seed_on_the_command_line,
        negative_seed,
        huge_seed_of_visualize,
        model_changed_in_config_json,
        best_files_truncated,
        read_only_visualize,
        read_only_plot,
        read_only_resume,
        read_only_new_run_under_it,
        read_only_data_show_out,
        full_disk_writing_a_checkpoint,
        full_disk_writing_metrics,
        full_disk_writing_events,
        device_out_of_memory,
        resume_with_other_overrides,
        resume_with_another_preset,
        resume_with_every_checkpoint_truncated,
        resume_with_every_state_emptied,
    ],
    ids=lambda case: case.__name__,
)
def test_a_fault_ends_in_one_line(case, run, monkeypatch, capsys, writable_again):
    argv, message = case(run, monkeypatch)
    code, _, err = cli(capsys, argv)
    monkeypatch.undo()
    assert_one_error_line(code, err, message)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_ctrl_c_while_the_data_loads_is_one_line(run, monkeypatch, capsys, command):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "load", interrupted)
    argv = train_argv(run.parent / "new") if command == "train" else ["eval", str(run)]
    code, _, err = cli(capsys, argv)
    assert code == 130 and err == "\nram: interrupted\n"


def test_a_fault_before_the_first_step_closes_what_was_opened(run, monkeypatch, capsys):
    """The event file cannot be opened on resume (a full disk while the purge marker is written): the
    error is one line, and the training feed opened before it is closed too."""
    from ram import input_pipeline
    from ram.errors import RamError

    closed = []
    monkeypatch.setattr(input_pipeline.TrainFeed, "close", lambda self: closed.append(self))

    def full(self, purge_step=None):
        raise RamError(f"cannot write TensorBoard events in {self.path}: No space left on device")

    monkeypatch.setattr(rundir.RunDir, "event_writer", full)
    code, _, err = cli(capsys, [*train_argv(run), "--resume"])
    monkeypatch.undo()
    assert_one_error_line(code, err, f"cannot write TensorBoard events in {run}")
    assert len(closed) == 1


# -- recovers by itself, with at most one line of warning -------------------------------------------------


def torn_metrics_line_plot(run):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "train_lo')
    return ["plot", run], "ignoring the torn last line"


def torn_metrics_line_resume(run):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "train_lo')
    (run / "results.json").unlink()
    return [*train_argv(run), "--resume"], "ignoring the torn last line"


def resume_with_the_latest_checkpoint_truncated(run):
    damage(run / "checkpoints" / "30", "truncate", "state/*")
    return [*train_argv(run), "--resume"], "the checkpoint of step 30 is corrupt"


def resume_with_the_latest_metadata_garbled(run):
    damage(run / "checkpoints" / "30", "garble", "extra/*")
    return [*train_argv(run), "--resume"], "the checkpoint of step 30 is corrupt"


def resume_with_the_latest_state_emptied(run):
    damage(run / "checkpoints" / "30", "empty", "state/*")
    return [*train_argv(run), "--resume"], "the checkpoint of step 30 is corrupt"


@pytest.mark.parametrize(
    "case",
    [
        torn_metrics_line_plot,
        torn_metrics_line_resume,
        resume_with_the_latest_checkpoint_truncated,
        resume_with_the_latest_metadata_garbled,
        resume_with_the_latest_state_emptied,
    ],
    ids=lambda case: case.__name__,
)
def test_a_fault_is_recovered_with_one_warning(case, run, capsys):
    argv, warning = case(run)
    code, _, err = cli(capsys, argv)
    assert code == 0, err
    assert err.startswith("ram: ") and err.count("\n") == 1 and warning in err, err
    if "checkpoint" in warning:  # the resumed run wrote step 30 again, in place of the corrupt one
        _, states = step.init_states(CONFIG, 1)
        restored, _, _ = rundir.RunDir(run).restore_latest(states, 1)
        assert int(restored.step[0]) == 30 and not capsys.readouterr().err


def test_eval_reads_the_best_checkpoint_that_replaced_the_one_it_listed(run):
    """`ram eval` while the run saves a new best: orbax (one best kept) deletes the step eval listed
    before eval reads it; eval reads the step that replaced it."""
    reader = rundir.RunDir(run)
    listed = reader._best().latest_step()  # listed (and cached) before the training run replaces it
    like = rundir.load_run(run).params
    replaced = jax.tree.map(lambda x: x + 1.0, like)
    rundir.RunDir(run).save_best(listed + 100, replaced, [{"val_error_pct": 1.0, "step": listed + 100}], 1)
    assert not (run / "best" / str(listed)).exists()
    params, steps = reader.restore_best(like, 1)
    assert steps == [listed + 100]
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(replaced), strict=True):
        np.testing.assert_array_equal(x, y)


def test_eval_of_a_run_stopped_between_the_best_checkpoint_and_best_json_says_so(run, capsys):
    """A validation saves best/ and then best.json: a run killed between the two has best.json naming
    an older step than the parameters in best/. Reading them uses the checkpoint's step, with one line."""
    old_json = (run / "best.json").read_text()
    listed = rundir.RunDir(run)._best().latest_step()
    like = rundir.load_run(run).params
    rundir.RunDir(run).save_best(listed + 100, like, [{"val_error_pct": 1.0, "step": listed + 100}], 1)
    (run / "best.json").write_text(old_json)  # as if killed before best.json was written
    capsys.readouterr()
    _, steps = rundir.RunDir(run).restore_best(like, 1)
    err = capsys.readouterr().err
    assert steps == [listed + 100]
    assert err.startswith("ram: warning:") and err.count("\n") == 1 and "--resume" in err, err


# -- the real command line: nothing printed after the one line, also at exit --------------------------


def real_cli(*argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "ram.cli", *map(str, argv)], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_truncated_best_files_are_one_line_at_exit_too(trained, tmp_path, mnist_dir):
    """Truncated array files of best/: orbax abandons TensorStore's other reads, which used to print
    ~200 lines of `RuntimeError: Event loop is closed` at exit."""
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    damage(run / "best", "truncate", "d/*")
    proc = real_cli("eval", run, "--mnist-dir", mnist_dir)
    assert_one_error_line(proc.returncode, proc.stderr, f"the checkpoint {run / 'best'}")


def test_resume_with_every_checkpoint_truncated_is_one_line_at_exit_too(trained, tmp_path, mnist_dir):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    damage(run / "checkpoints", "truncate", "d/*")  # the arrays: TensorStore's reads fail, as in best/ above
    proc = real_cli(*train_argv(run), "--resume", "--no-progress", "--mnist-dir", mnist_dir)
    assert_one_error_line(proc.returncode, proc.stderr, f"every checkpoint in {run / 'checkpoints'} is corrupt")
