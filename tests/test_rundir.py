"""The run folder (`ram.rundir`): whole JSON lines, locks, restartable and corrupt folders, one results schema.

Training runs use a tiny model on small random arrays shaped like MNIST (synthetic; not MNIST)."""

import errno
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import TINY

from ram import rundir, train
from ram.errors import RamError


def test_metrics_lines_are_whole_json_with_null_for_nan(tmp_path, capsys):
    run = rundir.RunDir(tmp_path)
    run.append_metrics({"step": 10, "train_loss": float("nan"), "val_error_pct": [1.0, float("inf")]})
    run.append_metrics({"step": 20, "train_loss": 0.5})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 10, "train_loss": None, "val_error_pct": [1.0, None]}
    # A process killed mid-write leaves a torn last line: skipped, with a warning.
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 30, "train_lo')
    assert [r["step"] for r in run.read_metrics()] == [10, 20]
    assert "torn last line" in capsys.readouterr().err
    run.truncate_metrics(20)  # resuming rewrites the file without it
    assert (tmp_path / "metrics.jsonl").read_text().endswith('"train_loss": 0.5}\n')
    # A malformed line before the end is not a torn write: one line naming it.
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(RamError, match="line 2 is not a metrics record"):
        run.read_metrics()


def test_a_second_writer_is_locked_out_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    run = rundir.RunDir(tmp_path)
    with run.lock():
        with pytest.raises(RamError, match=f"being trained by process {os.getpid()}"):
            with rundir.RunDir(tmp_path).lock():
                pass
    assert not (tmp_path / "lock").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    with run.lock():
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert "stale lock" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file of the lock's left behind


HOLD_LOCK = """
import sys, time
from ram import rundir
from ram.errors import RamError
try:
    with rundir.RunDir(sys.argv[1]).lock():
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
except RamError as e:
    print("refused:", e, flush=True)
"""


def test_a_stale_lock_goes_to_one_of_several_processes_starting_at_once(tmp_path):
    """A lock file left by a dead process: of four processes started together, one takes it over and
    the others are refused while it holds it (the OS's flock, not the file's pid, decides)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path), "4"], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sorted(o.split(":")[0].strip() for o in outs) == ["held", "refused", "refused", "refused"], outs
    assert not (tmp_path / "lock").exists()


def test_a_killed_holder_releases_the_lock(tmp_path):
    """SIGKILL leaves the lock file behind, but not the OS lock: the next run takes it over."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RamError, match=f"being trained by process {holder.pid}"):
        with rundir.RunDir(tmp_path).lock():
            pass
    holder.kill()
    holder.wait()
    assert json.loads((tmp_path / "lock").read_text())["pid"] == holder.pid
    with rundir.RunDir(tmp_path).lock():
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


def test_a_live_holder_without_flock_is_not_taken_over(tmp_path):
    """A lock file naming a live process of this host that holds no flock (a ram of before flock,
    or one on the pid-based lock) is respected."""
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "lock").write_text(json.dumps({"pid": alive.pid, "host": os.uname().nodename}))
        with pytest.raises(RamError, match=f"being trained by process {alive.pid}.*delete"):
            with rundir.RunDir(tmp_path).lock():
                pass
        assert json.loads((tmp_path / "lock").read_text())["pid"] == alive.pid  # left as it was
    finally:
        alive.kill()
        alive.wait()


def test_a_lock_file_replaced_while_being_locked_is_opened_again(tmp_path, monkeypatch):
    """Between our open and our flock, the holder releases the lock (removing its file) and a third
    process makes a new one: we must lock the file at the path, not the removed one."""
    real, calls = rundir.fcntl.flock, []

    def flock(fd, op):
        if not calls:  # the first attempt: the file we opened is replaced before we lock it
            (tmp_path / "lock").unlink()
            (tmp_path / "lock").write_text("")
        calls.append(os.fstat(fd).st_ino)
        return real(fd, op)

    monkeypatch.setattr(rundir.fcntl, "flock", flock)
    (tmp_path / "lock").write_text("")
    with rundir.RunDir(tmp_path).lock():
        assert len(calls) == 2 and calls[0] != calls[1]
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "lock").exists()


def test_without_flock_the_lock_file_and_its_pid_decide(tmp_path, monkeypatch, capsys):
    """On a filesystem without flock (simulated: flock fails with ENOSYS), the lock is the file."""

    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(rundir.fcntl, "flock", no_flock)
    with rundir.RunDir(tmp_path).lock():
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
        with pytest.raises(RamError, match=f"being trained by process {os.getpid()}"):
            with rundir.RunDir(tmp_path).lock():
                pass
    assert not (tmp_path / "lock").exists()
    (tmp_path / "lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    with rundir.RunDir(tmp_path).lock():
        pass
    assert "stale lock" in capsys.readouterr().err


def test_the_lock_creates_its_folder_and_removes_it_if_nothing_was_written(tmp_path):
    with rundir.RunDir(tmp_path / "new").lock():
        assert json.loads((tmp_path / "new" / "lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "new").exists()
    with rundir.RunDir(tmp_path / "kept").lock():
        (tmp_path / "kept" / "config.json").write_text("{}")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["config.json"]


def test_a_folder_with_only_a_config_starts_afresh(tmp_path, synthetic):
    """A run stopped before its first checkpoint leaves config.json: the same command, fresh or
    with --resume, trains; a folder with progress still refuses a fresh start."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(TINY.replace(core="gru").to_json())
    train.train_and_evaluate(TINY, tmp_path / "a", synthetic, progress=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(TINY.to_json())
    train.train_and_evaluate(TINY, tmp_path / "b", synthetic, resume=True, progress=False)
    with pytest.raises(RamError, match="already holds a run"):
        train.train_and_evaluate(TINY, tmp_path / "b", synthetic, progress=False)
    with pytest.raises(RamError, match="is a file, not a run folder"):
        train.train_and_evaluate(TINY, tmp_path / "b" / "config.json", synthetic, progress=False)


def test_resume_keeps_a_run_copied_without_its_checkpoints(tmp_path, synthetic):
    """A recorded run in git has no checkpoints/: --resume refuses it in one line and deletes
    nothing, finished or not (only a run stopped at its first validation starts afresh)."""
    config = TINY.replace(eval_every=10, train_steps=30)
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    shutil.rmtree(tmp_path / "checkpoints")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(RamError, match="finished but holds no train checkpoint .* init_from="):
        train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    (tmp_path / "results.json").unlink()
    with pytest.raises(RamError, match="logged up to step 30 but holds no train checkpoint"):
        train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [
        p for p in before if p.name != "results.json"
    ]


def test_resume_falls_back_to_the_older_checkpoint_when_the_newest_is_corrupt(tmp_path, synthetic, capsys):
    config = TINY.replace(eval_every=10, train_steps=30)
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    run = rundir.RunDir(tmp_path)
    assert sorted(run._latest().all_steps()) == [20, 30]  # two kept
    for root, _, files in os.walk(tmp_path / "checkpoints" / "30" / "state"):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "r+b") as f:
                f.truncate(max(0, os.path.getsize(path) // 3))
    (tmp_path / "results.json").unlink()
    results = train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "checkpoint of step 30 is corrupt" in err and "resuming from step 20" in err
    assert results["num_seeds"] == 1 and [r["step"] for r in run.read_metrics()] == [10, 20, 30]


def test_best_parameters_that_no_longer_fit_the_config_are_one_line(tmp_path, synthetic):
    train.train_and_evaluate(TINY, tmp_path, synthetic, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, core_hidden=32)))
    with pytest.raises(RamError, match="does not restore .* no longer describes its model"):
        rundir.load_run(tmp_path)


def test_results_of_every_version_read_as_one_schema():
    single = {"test_error_pct": 1.0, "test_error_mc_pct": 0.6, "best_step": 40, "val_error_pct": 0.9, "seed": 3}
    r = rundir.upgrade_results(single)
    assert r["num_seeds"] == 1 and r["seeds"] == [3] and r["test_error_pct"] == [1.0] and r["best_step"] == [40]
    assert r["summary"]["test_error_pct"] == {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    several = {  # the schema of the former multi-seed module
        "num_seeds": 2,
        "seeds": [
            {"seed": 0, "best_step": 20, "val_error_pct": 2.0, "test_error_pct": 1.0, "test_error_mc_pct": 0.5},
            {"seed": 1, "best_step": 40, "val_error_pct": 3.0, "test_error_pct": 2.0, "test_error_mc_pct": 1.5},
        ],
        "test_error_pct": {"mean": 1.5, "std": 0.7071},
        "images_seen_per_seed": 640,
    }
    r = rundir.upgrade_results(several)
    assert r["seeds"] == [0, 1] and r["test_error_pct"] == [1.0, 2.0] and r["images_seen"] == 640
    assert r["summary"]["test_error_pct"] == {"mean": 1.5, "std": 0.7071, "min": 1.0, "max": 2.0}
    assert rundir.upgrade_results(r) == r
    chained = rundir.upgrade_results(dict(single, init_from="x", init_step=4, images_seen_before=8))
    assert chained["init_step"] == [4] and chained["images_seen_before"] == [8]


def test_recorded_runs_load_as_runs():
    """Every recorded run folder reads with today's code: config, results and best parameters."""
    from pathlib import Path

    runs = Path(__file__).resolve().parents[1] / "experiments" / "runs"
    checked = 0
    for folder in sorted(runs.iterdir()):
        run = rundir.RunDir(folder)
        if not (folder / "results.json").is_file():
            continue
        results = run.read_results()
        loaded = rundir.load_run(folder)
        assert loaded.best_steps == results["best_step"], folder.name
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(loaded.params))
        checked += 1
    assert checked >= 25
