"""The training loop, for one seed and for several: checkpoints, interruption and --resume, results,
the non-finite guard, init_from.

Uses a tiny model on small random arrays shaped like MNIST (synthetic; not MNIST)."""

import json
import os
import re
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY

from ram import evaluate, rundir, step, tasks, train
from ram.config import Config
from ram.data import Mnist, Split
from ram.errors import RamError


def params_of(run_dir, seed_index=0):
    return rundir.load_run(run_dir).seed_params(seed_index)


def assert_same_best(run_a, run_b, seed_index=0):
    """The two runs chose the same step and (up to float rounding) the same best parameters."""
    (a, step_a), (b, step_b) = params_of(run_a, seed_index), params_of(run_b, seed_index)
    assert step_a == step_b
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def at_the_third_chunk(monkeypatch, action) -> None:
    """Calls `action()` as the third chunk of train steps starts (steps 20-30 with TINY's 10 per chunk)."""
    real_chunk = step.make_train_chunk

    def make_train_chunk(*args, **kwargs):
        chunk, calls = real_chunk(*args, **kwargs), []

        def wrapped(states, data, keys):
            calls.append(1)
            if len(calls) == 3:
                action()
            return chunk(states, data, keys)

        return wrapped

    monkeypatch.setattr(step, "make_train_chunk", make_train_chunk)


def test_run_folder_contents(tmp_path, synthetic):
    results = train.train_and_evaluate(TINY, tmp_path / "run", synthetic, progress=False)
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40]
    assert {"train_loss", "train_reward", "val_error_pct", "wall_time_s"} <= set(lines[0])
    assert json.loads((run / "results.json").read_text()) == results
    assert {"test_error_pct", "test_error_mc_pct", "mc_samples", "train_wall_time_s", "machine"} <= set(results)
    assert results["num_seeds"] == 1 and results["seeds"] == [0] and len(results["test_error_pct"]) == 1
    assert results["summary"]["test_error_pct"]["mean"] == results["test_error_pct"][0]
    assert results["best_step"][0] in (20, 40)
    assert Config.from_dict(json.loads((run / "config.json").read_text())) == TINY.replace(num_classes=10, channels=1)
    with pytest.raises(RamError, match="already holds a run"):
        train.train_and_evaluate(TINY, run, synthetic, progress=False)
    # Leftover checkpoints without a config would be skipped by orbax and evaluated as the new run's.
    (run / "config.json").unlink()
    with pytest.raises(RamError, match="already holds a run"):
        train.train_and_evaluate(TINY, run, synthetic, progress=False)


def test_interrupted_run_resumes_to_the_same_parameters(tmp_path, synthetic, monkeypatch):
    config = TINY.replace(eval_every=10)
    train.train_and_evaluate(config, tmp_path / "straight", synthetic, progress=False)

    def interrupt():  # after two chunks (and the checkpoint at step 20)
        raise KeyboardInterrupt

    with monkeypatch.context() as interrupting:
        at_the_third_chunk(interrupting, interrupt)
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(config, tmp_path / "cut", synthetic, progress=False)
    assert rundir.RunDir(tmp_path / "cut").latest_step() == 20
    assert not (tmp_path / "cut" / "lock").exists()  # released on the way out
    # As if killed after logging step 30 but before its checkpoint was written: resuming from step
    # 20 logs step 30 again, so the stale line must go.
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 30, "val_error_pct": -1.0}) + "\n")
    train.train_and_evaluate(config, tmp_path / "cut", synthetic, resume=True, progress=False)

    assert_same_best(tmp_path / "straight", tmp_path / "cut")
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


def test_checkpoints_in_small_files_and_those_written_before_resume_to_the_same_parameters(
    tmp_path, synthetic, monkeypatch
):
    """Orbax's data files are cut once they pass `CHECKPOINT_FILE_BYTES` (here 16 KB, for an LSTM of
    130 KB of weights), so none is over twice that and a run folder goes into git in small files.
    A run interrupted while its checkpoints were written by `ocp.args.StandardSave` (as every run
    before session 14, one file per tree) resumes from them and ends as the uninterrupted run."""
    import orbax.checkpoint as ocp

    config = TINY.replace(eval_every=10, core="lstm", core_hidden=64)

    def interrupt():
        raise KeyboardInterrupt

    def orbax_file_sizes(folder):
        return [p.stat().st_size for name in ("checkpoints", "best") for p in (folder / name).rglob("*") if p.is_file()]

    monkeypatch.setattr(rundir, "CHECKPOINT_FILE_BYTES", 16 << 10)
    train.train_and_evaluate(config, tmp_path / "straight", synthetic, progress=False)
    sizes = orbax_file_sizes(tmp_path / "straight")
    assert sum(sizes) > 500_000 and max(sizes) <= 32 << 10  # two train states with Adam's moments, best
    with monkeypatch.context() as older:
        older.setattr(rundir, "_save_args", ocp.args.StandardSave)
        at_the_third_chunk(older, interrupt)
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(config, tmp_path / "cut", synthetic, progress=False)
    assert max(orbax_file_sizes(tmp_path / "cut")) > 32 << 10
    train.train_and_evaluate(config, tmp_path / "cut", synthetic, resume=True, progress=False)
    assert_same_best(tmp_path / "straight", tmp_path / "cut")


@pytest.mark.parametrize(
    "signals, same_request_s, stopped_at",
    [(1, 1.0, 30), (2, 0.0, 20), (2, 60.0, 30)],
    ids=["one", "two", "two-as-one-request"],
)
def test_a_signal_stops_the_run_at_the_next_turn_of_the_loop(
    tmp_path, synthetic, monkeypatch, capsys, signals, same_request_s, stopped_at
):
    """SIGTERM (as Ctrl-C) during the chunk of steps 20-30 (validations at 20 and 40): one signal lets
    the chunk finish, checkpoints step 30 and stops, and the resumed run ends as an uninterrupted
    one; a second signal stops at once, at the checkpoint of step 20, unless it comes within
    `Interrupt.SAME_REQUEST_S` of the first (a process group's signal, also forwarded by a parent)."""
    train.train_and_evaluate(TINY, tmp_path / "straight", synthetic, progress=False)
    monkeypatch.setattr(train.Interrupt, "SAME_REQUEST_S", same_request_s)

    def signal_self():
        for _ in range(signals):
            os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as signalling:
        at_the_third_chunk(signalling, signal_self)
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(TINY, tmp_path / "cut", synthetic, progress=False)
    assert rundir.RunDir(tmp_path / "cut").latest_step() == stopped_at
    assert "stopping after these steps, with a checkpoint" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    train.train_and_evaluate(TINY, tmp_path / "cut", synthetic, resume=True, progress=False)
    assert_same_best(tmp_path / "straight", tmp_path / "cut")
    lines = [
        [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("straight", "cut")
    ]
    assert [r["step"] for r in lines[1]] == [20, 40]
    # The line of step 40 averages steps 21-40 in both, also when the run stopped at step 30.
    np.testing.assert_allclose(lines[1][1]["train_loss"], lines[0][1]["train_loss"], rtol=1e-5)


def stop_at_checkpoint(monkeypatch, at_step: int) -> None:
    """Ctrl-C at step `at_step`'s validation after its best parameters were saved, before its train
    checkpoint was: the window of the figure, the events and the asynchronous checkpoint write."""
    real = rundir.RunDir.save_latest

    def save_latest(self, at, *args, **kwargs):
        if at == at_step:
            raise KeyboardInterrupt
        return real(self, at, *args, **kwargs)

    monkeypatch.setattr(rundir.RunDir, "save_latest", save_latest)


def validation_errors(monkeypatch, error_at) -> None:
    """Validation errors `error_at(step, seed)` in place of the measured ones, to fix which steps are best."""
    real = evaluate.make_evaluator

    def make_evaluator(*args, **kwargs):
        validate = real(*args, **kwargs)
        return lambda params, seed=0, step=None: {**validate(params, seed, step), "error_pct": error_at(step, seed)}

    monkeypatch.setattr(evaluate, "make_evaluator", make_evaluator)


@pytest.mark.parametrize(
    "stopped_at, seeds",
    [(20, 1), (10, 1), (20, 2)],
    ids=["after-a-checkpoint", "before-the-first-checkpoint", "after-a-checkpoint-2-seeds"],
)
def test_a_run_stopped_between_the_saves_of_a_validation_resumes(
    tmp_path, synthetic, monkeypatch, stopped_at, seeds, capsys
):
    """best/ then holds step `stopped_at`, the train checkpoints only the step before (or none): the
    resumed run trains on, and its best parameters and record are those of an uninterrupted run.
    Seed 0 improves at every validation; seed 1 (of 2) only at steps 10 and 30."""
    config = TINY.replace(eval_every=10)
    validation_errors(
        monkeypatch, lambda step, seed: 100.0 - step if seed == 0 else {10: 50.0, 30: 40.0}.get(step, 60.0)
    )
    train.train_and_evaluate(config, tmp_path / "straight", synthetic, num_seeds=seeds, progress=False)
    with monkeypatch.context() as stop:
        stop_at_checkpoint(stop, stopped_at)
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(config, tmp_path / "cut", synthetic, num_seeds=seeds, progress=False)
    cut = rundir.RunDir(tmp_path / "cut")
    assert cut.best_step() == stopped_at and cut.latest_step() == (stopped_at - 10 or None)

    results = train.train_and_evaluate(
        config, tmp_path / "cut", synthetic, num_seeds=seeds, resume=True, progress=False
    )
    assert ("has no checkpoint yet; starting afresh" in capsys.readouterr().err) == (stopped_at == 10)
    assert results["best_step"] == [40, 30][:seeds]
    for i in range(seeds):
        assert_same_best(tmp_path / "straight", tmp_path / "cut", i)
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


def test_resume_clears_a_run_without_checkpoints_only_for_its_own_config(tmp_path, synthetic, monkeypatch):
    config = TINY.replace(eval_every=10)
    with monkeypatch.context() as stop:
        stop_at_checkpoint(stop, 10)
        with pytest.raises(KeyboardInterrupt):
            train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert {"best", "best.json", "metrics.jsonl"} <= set(kept)
    with pytest.raises(RamError, match="core='gru' \\(the run has 'rnn'\\)"):
        train.train_and_evaluate(config.replace(core="gru"), tmp_path, synthetic, resume=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept


def test_a_checkpoint_without_best_parameters_still_resumes(tmp_path, synthetic, monkeypatch):
    """Checkpoints of runs trained before they held the best parameters: those come from best/."""
    config = TINY.replace(schedule="constant", warmup_steps=0, eval_every=10, train_steps=20)
    validation_errors(monkeypatch, lambda step, seed: float(step))  # the best parameters stay those of step 10
    real = rundir.RunDir.save_latest
    with monkeypatch.context() as older:
        older.setattr(
            rundir.RunDir, "save_latest", lambda self, at, states, extra, n, best=None: real(self, at, states, extra, n)
        )
        train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    assert not (tmp_path / "checkpoints" / "20" / "best").exists()
    before, _ = params_of(tmp_path)
    (tmp_path / "results.json").unlink()
    results = train.train_and_evaluate(config.replace(train_steps=40), tmp_path, synthetic, resume=True, progress=False)
    assert results["best_step"] == [10]
    assert (tmp_path / "checkpoints" / "40" / "best").is_dir()  # read from best/ on resume, then kept
    for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(params_of(tmp_path)[0]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_run_that_lost_its_checkpoints_goes_on_from_its_last_best(tmp_path, synthetic, monkeypatch):
    """A run copied without checkpoints/ whose best parameters are its last validation's: a train
    checkpoint is rebuilt from them (optimiser moments restarted), and --resume goes on from there."""
    config = TINY.replace(schedule="constant", warmup_steps=0, eval_every=10, train_steps=20)
    validation_errors(monkeypatch, lambda step, seed: 100.0 - step)  # every validation is the best so far
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    shutil.rmtree(tmp_path / "checkpoints")
    (tmp_path / "results.json").unlink()
    with pytest.raises(RamError, match="no train checkpoint.*init_from=.*; or, .*restart_from_best.py"):
        train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    run = rundir.RunDir(tmp_path)
    assert run.restart_from_best() == 20
    with pytest.raises(RamError, match="holds a train checkpoint \\(step 20\\)"):
        run.restart_from_best()
    _, like = step.init_states(config)
    states, extra, best = run.restore_latest(like, 1)
    assert int(states.step[0]) == 20 and extra == {
        "best": [{"val_error_pct": 80.0, "step": 20}],
        "wall_time_s": extra["wall_time_s"],
    }
    assert extra["wall_time_s"] == run.wall_time_at(20)
    kinds = (optax.ScaleByAdamState, optax.ScaleByScheduleState)
    adam, schedule = (
        s for s in jax.tree.leaves(states.opt_state, is_leaf=lambda x: isinstance(x, kinds)) if isinstance(s, kinds)
    )
    assert int(adam.count[0]) == 0 and int(schedule.count[0]) == 20  # fresh moments, the schedule where it was
    assert all(not np.any(m) for m in jax.tree.leaves(adam.mu))
    for x, y in zip(jax.tree.leaves(states.params), jax.tree.leaves(params_of(tmp_path)[0]), strict=True):
        np.testing.assert_array_equal(x[0], y)
    assert jax.tree.leaves(best) and all(
        np.array_equal(a, b) for a, b in zip(jax.tree.leaves(best), jax.tree.leaves(states.params), strict=True)
    )
    results = train.train_and_evaluate(config.replace(train_steps=30), tmp_path, synthetic, resume=True, progress=False)
    assert results["best_step"] == [30] and [r["step"] for r in run.read_metrics()] == [10, 20, 30]


def test_a_run_whose_best_is_older_than_its_last_validation_is_not_rebuilt(tmp_path, synthetic, monkeypatch):
    config = TINY.replace(eval_every=10, train_steps=20)
    validation_errors(monkeypatch, lambda step, seed: float(step))  # the best stays step 10's
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    shutil.rmtree(tmp_path / "checkpoints")
    (tmp_path / "results.json").unlink()
    with pytest.raises(RamError, match="no train checkpoint") as refused:
        train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    assert "restart_from_best" not in str(refused.value)  # the way on it names is init_from alone
    with pytest.raises(
        RamError, match="best parameters \\(seed 0\\) are not those of its last metrics line \\(step 20\\).*init_from="
    ):
        rundir.RunDir(tmp_path).restart_from_best()
    (tmp_path / "best.json").unlink()
    with pytest.raises(RamError, match="no best.json, so no train state can be rebuilt"):
        rundir.RunDir(tmp_path).restart_from_best()
    with pytest.raises(RamError, match="is not a run folder"):
        rundir.RunDir(tmp_path / "nothing").restart_from_best()
    assert not (tmp_path / "checkpoints").exists()


def test_a_run_of_two_seeds_is_rebuilt_only_when_each_seeds_best_is_its_last_validation(
    tmp_path, synthetic, monkeypatch
):
    config = TINY.replace(schedule="constant", warmup_steps=0, eval_every=10, train_steps=20)
    # Seed 0 improves at every validation, seed 1's best stays step 10's.
    validation_errors(monkeypatch, lambda step, seed: 100.0 - step if seed == 0 else float(step))
    train.train_and_evaluate(config, tmp_path / "a", synthetic, num_seeds=2, progress=False)
    validation_errors(monkeypatch, lambda step, seed: 100.0 - step)  # both improve
    train.train_and_evaluate(config, tmp_path / "b", synthetic, num_seeds=2, progress=False)
    for name in ("a", "b"):
        shutil.rmtree(tmp_path / name / "checkpoints")
        (tmp_path / name / "results.json").unlink()
    with pytest.raises(RamError, match="no train checkpoint") as refused:
        train.train_and_evaluate(config, tmp_path / "a", synthetic, num_seeds=2, resume=True, progress=False)
    assert "restart_from_best" not in str(refused.value)
    with pytest.raises(RamError, match="best parameters \\(seed 1\\) are not those of its last metrics line"):
        rundir.RunDir(tmp_path / "a").restart_from_best()
    assert rundir.RunDir(tmp_path / "b").restart_from_best() == 20
    longer = config.replace(train_steps=30)
    results = train.train_and_evaluate(longer, tmp_path / "b", synthetic, num_seeds=2, resume=True, progress=False)
    assert results["best_step"] == [30, 30]


@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adam", 0.1), ("sgd", 0.0), ("sgd", 0.1)], ids=str)
def test_a_restarted_state_takes_the_scheduled_rate_in_its_first_update(optimizer, weight_decay):
    """`restart_state`: at step S, the first update after a restart is, worked out by hand, Adam's
    lr(S) * g / (|g| + eps) (bias-corrected moments of one gradient) or momentum SGD's lr(S) * g (a
    fresh trace), with or without weight decay (of matrices only: this vector has none); the schedule
    does not restart."""
    config = TINY.replace(
        train_steps=100,
        warmup_steps=10,
        learning_rate=1e-2,
        grad_clip=0.0,
        optimizer=optimizer,
        weight_decay=weight_decay,
    )
    params = {"w": jnp.asarray([1.0, -2.0, 3.0])}
    state = step.restart_state(config, params, 60)
    grads = {"w": jnp.asarray([0.5, -4.0, 0.0])}
    updates, _ = step.make_optimizer(config).update(grads, state.opt_state, params)
    lr = float(step.learning_rate_schedule(config)(60))
    assert lr < 0.7 * config.learning_rate  # well into the cosine decay: a restarted schedule would differ
    g = np.asarray(grads["w"])
    expected = -lr * g / (np.abs(g) + 1e-8) if optimizer == "adam" else -lr * g
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-5)
    assert int(state.step) == 60


def test_a_second_trainer_in_a_busy_folder_changes_nothing(tmp_path, synthetic):
    """The lock is taken before the folder is checked or written: a second `ram train` into a run
    being trained (here: this process holds its lock) stops without touching its config."""
    run = rundir.RunDir(tmp_path / "run")
    with run.lock():
        run.prepare(TINY, resume=False, num_seeds=3)
        before = {p.name: p.read_text() for p in (tmp_path / "run").iterdir() if p.is_file()}
        with pytest.raises(RamError, match="being trained by process"):
            train.train_and_evaluate(TINY.replace(learning_rate=0.5), tmp_path / "run", synthetic, progress=False)
        assert {p.name: p.read_text() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


def test_resume_refuses_a_different_config(tmp_path, synthetic):
    train.train_and_evaluate(TINY, tmp_path, synthetic, progress=False)
    # The message names each differing field with both values.
    with pytest.raises(
        RamError, match="core='gru' \\(the run has 'rnn'\\); seed=3 \\(the run has 0\\); only train_steps"
    ):
        train.train_and_evaluate(TINY.replace(core="gru", seed=3), tmp_path, synthetic, resume=True, progress=False)
    # train_steps is the cosine learning-rate schedule's horizon: a longer run would jump back up.
    with pytest.raises(RamError, match="horizon of its cosine learning-rate schedule"):
        train.train_and_evaluate(TINY.replace(train_steps=80), tmp_path, synthetic, resume=True, progress=False)


def test_constant_schedule_run_can_be_extended_but_not_shortened(tmp_path, synthetic):
    config = TINY.replace(schedule="constant", warmup_steps=0)
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    with pytest.raises(RamError, match="already at step 40, past train_steps=20"):
        train.train_and_evaluate(config.replace(train_steps=20), tmp_path, synthetic, resume=True, progress=False)
    assert rundir.RunDir(tmp_path).config().train_steps == 40  # the refused resume left config.json as it was
    (tmp_path / "results.json").unlink()
    results = train.train_and_evaluate(config.replace(train_steps=60), tmp_path, synthetic, resume=True, progress=False)
    assert results["train_steps"] == 60 and results["images_seen"] == 60 * config.batch_size
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 40, 60]


def test_annealed_std_is_logged_and_checkpoints_are_evaluated_with_their_own(tmp_path, synthetic):
    config = TINY.replace(eval_every=10, location_std=0.5, location_std_final=0.01)
    results = train.train_and_evaluate(config, tmp_path / "run", synthetic, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    stds = [r["location_std"] for r in lines]
    np.testing.assert_allclose(stds, [float(config.policy_std(r["step"])) for r in lines], rtol=1e-6)
    assert stds == sorted(stds, reverse=True) and stds[-1] == pytest.approx(0.01)
    # The validation error logged at the best step (std of that step) is what evaluating the saved
    # checkpoint gives again.
    logged = {r["step"]: r["val_error_pct"] for r in lines}
    [best_step], [val_error] = results["best_step"], results["val_error_pct"]
    assert best_step < config.train_steps  # else the end-of-training std would do as well
    assert val_error == pytest.approx(logged[best_step], abs=1e-3)
    # A resumed run may not move the horizon of its std schedule.
    with pytest.raises(RamError, match="horizon of its annealed policy std"):
        train.train_and_evaluate(config.replace(train_steps=80), tmp_path / "run", synthetic, resume=True)


def test_train_sums_average_the_chunks_since_validation_and_survive_json():
    sums = train.TrainSums.fresh()
    for loss in ([1.0, 4.0], [3.0, 2.0]):  # two chunks of two seeds
        sums = sums.add({"loss": np.asarray(loss, np.float32)})
    np.testing.assert_allclose(sums.means()["loss"], [2.0, 3.0])
    back = train.TrainSums.from_json(json.loads(json.dumps(sums.to_json())))
    assert back.count == 2 and back.sums["loss"].dtype == np.float64
    np.testing.assert_allclose(back.means()["loss"], [2.0, 3.0])
    # The format checkpoints have held since it was introduced (a committed run's extra/metadata).
    older = {"count": 7, "sums": {"loss": [0.628], "reward": [6.84]}}
    assert train.TrainSums.from_json(older).to_json() == older
    assert train.TrainSums.from_json(None) == train.TrainSums.fresh()


def test_init_from_starts_from_the_parents_best_parameters(tmp_path, synthetic):
    parent = train.train_and_evaluate(TINY, tmp_path / "parent", synthetic, progress=False)
    fresh = train.train_and_evaluate(TINY.replace(learning_rate=1e-12), tmp_path / "fresh", synthetic, progress=False)
    # A learning rate of 1e-12 leaves the starting parameters as they are: the parent's, not the seed's.
    child_config = TINY.replace(learning_rate=1e-12, init_from=str(tmp_path / "parent"))
    child = train.train_and_evaluate(child_config, tmp_path / "child", synthetic, progress=False)
    (p, _), (f, _), (c, _) = (params_of(tmp_path / name) for name in ("parent", "fresh", "child"))
    for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(c), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)
    assert any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(f), jax.tree.leaves(c), strict=True))
    assert "init_from" not in fresh
    # results.json counts what producing the starting point cost, along the chain of runs.
    parent_wall = {
        r["step"]: r["wall_time_s"]
        for r in map(json.loads, (tmp_path / "parent" / "metrics.jsonl").read_text().splitlines())
    }[parent["best_step"][0]]
    origin_keys = ("init_from", "init_step", "images_seen_before", "wall_time_before_s")
    assert child["init_from"] == str(tmp_path / "parent") and child["init_step"] == parent["best_step"]
    assert child["images_seen_before"] == [parent["best_step"][0] * TINY.batch_size]
    assert child["wall_time_before_s"][0] == pytest.approx(parent_wall, abs=0.1)
    grandchild = train.train_and_evaluate(
        TINY.replace(init_from=str(tmp_path / "child")), tmp_path / "grandchild", synthetic, progress=False
    )
    assert grandchild["images_seen_before"] == [(parent["best_step"][0] + child["best_step"][0]) * TINY.batch_size]

    # Resuming reads where it started from its own init_from.json: the parent may have moved.
    (tmp_path / "parent").rename(tmp_path / "moved")
    (tmp_path / "child" / "results.json").unlink()
    resumed = train.train_and_evaluate(child_config, tmp_path / "child", synthetic, resume=True, progress=False)
    assert {k: resumed[k] for k in origin_keys} == {k: child[k] for k in origin_keys}
    (tmp_path / "moved").rename(tmp_path / "parent")

    # Two seeds start from a single-seed parent: both from its parameters.
    both = train.train_and_evaluate(child_config, tmp_path / "two", synthetic, num_seeds=2, progress=False)
    assert both["init_step"] == parent["best_step"] * 2
    for i in (0, 1):
        for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(params_of(tmp_path / "two", i)[0]), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)
    # ... but a parent of two seeds starts two seeds, not one or three.
    with pytest.raises(RamError, match="trained 2 seeds at once; start 2 seeds"):
        train.train_and_evaluate(TINY.replace(init_from=str(tmp_path / "two")), tmp_path / "y", synthetic)
    with pytest.raises(RamError, match="model differs from this config's .*core='rnn'"):
        train.train_and_evaluate(child_config.replace(core="gru"), tmp_path / "gru", synthetic, progress=False)
    with pytest.raises(RamError, match="is not a run folder"):
        train.train_and_evaluate(TINY.replace(init_from=str(tmp_path / "nowhere")), tmp_path / "x", synthetic)
    assert not (tmp_path / "x").exists()  # nothing written: the corrected command can use the same folder


def test_fields_named_as_not_shaping_the_model_are_config_fields():
    import dataclasses

    assert rundir.MODEL_FIELDS <= {f.name for f in dataclasses.fields(Config)}


SEEDED = TINY.replace(warmup_steps=0, seed=5)


def test_one_seed_is_the_unbatched_step_bit_for_bit():
    """N = 1 drops the seed axis instead of vmapping it: a single-seed run computes what it always did."""
    data = tasks.synthetic_split(32, seed=0)
    graphdef, states = step.init_states(SEEDED)
    states, _ = step.make_train_chunk(graphdef, SEEDED, steps=4)(states, data, step.seed_keys(SEEDED, 1))
    g, params = step.init_model(SEEDED)
    state, _ = jax.jit(step.train_chunk_fn(g, SEEDED, steps=4))(
        step.init_state(SEEDED, params), data, jax.random.key(5)
    )
    for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(states.params), strict=True):
        np.testing.assert_array_equal(x, y[0])


def test_vmapped_seeds_match_separate_runs():
    data = tasks.synthetic_split(32, seed=0)
    graphdef, states = step.init_states(SEEDED, 2)
    states, metrics = step.make_train_chunk(graphdef, SEEDED, 2, steps=4)(states, data, step.seed_keys(SEEDED, 2))
    assert metrics["loss"].shape == (2,)
    for i, seed in enumerate((5, 6)):
        one = SEEDED.replace(seed=seed)
        g, single = step.init_states(one)
        single, _ = step.make_train_chunk(g, one, steps=4)(single, data, step.seed_keys(one, 1))
        for x, y in zip(jax.tree.leaves(single.params), jax.tree.leaves(states.params), strict=True):
            np.testing.assert_allclose(x[0], y[i], rtol=1e-5, atol=1e-6)
    a, b = (step.seed_slice(states.params, i) for i in (0, 1))
    assert not np.allclose(a["classifier"]["kernel"][...], b["classifier"]["kernel"][...])


def learnable(seed=1):
    """Synthetic arrays (not MNIST) whose brightness gives the label: learnable, so validation errors move."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.int32)
        images = np.clip(labels[:, None, None] * 25 + rng.integers(0, 20, (n, 28, 28)), 0, 255)
        return Split(images.astype(np.uint8), labels)

    return Mnist(split(64), split(40), split(40))


def test_several_seeds_keep_and_test_each_seeds_best(tmp_path):
    data = learnable()
    config = TINY.replace(train_steps=100, learning_rate=1e-2)
    results = train.train_and_evaluate(config, tmp_path, data, num_seeds=2, progress=False)
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40, 60, 80, 100]
    # Every metric of a single-seed run is logged, one value per seed.
    assert {"epoch", "learning_rate", "location_std", "train_loss", "train_grad_norm"} <= set(log[0])
    assert len(log[0]["train_loss"]) == 2 and isinstance(log[0]["learning_rate"], float)
    assert results["seeds"] == [0, 1] and results["num_seeds"] == 2
    # Not vacuous: some seed's best is not its final state.
    assert any(s < config.train_steps for s in results["best_step"]), results
    test = evaluate.make_evaluator(rundir.load_run(tmp_path).graphdef, config, "test", tasks.to_device(data.test), 2)
    for i, seed in enumerate(results["seeds"]):
        vals = [r["val_error_pct"][i] for r in log]
        assert results["val_error_pct"][i] == pytest.approx(min(vals), abs=1e-4)
        assert results["best_step"][i] == log[vals.index(min(vals))]["step"]  # the first minimum
        params, best_step = params_of(tmp_path, i)
        assert best_step == results["best_step"][i]
        again = test(params, seed=seed, step=best_step)
        assert results["test_error_pct"][i] == pytest.approx(again["error_pct"], abs=1e-4)
    # ram eval reads the same schema back.
    assert evaluate.evaluate_run(tmp_path, data) == {k: results[k] for k in evaluate.evaluate_run(tmp_path, data)}
    np.testing.assert_allclose(results["summary"]["test_error_pct"]["mean"], np.mean(results["test_error_pct"]))


def test_resume_must_keep_the_number_of_seeds(tmp_path, synthetic):
    train.train_and_evaluate(TINY, tmp_path / "one", synthetic, progress=False)
    with pytest.raises(RamError, match="trained 1 seed\\(s\\) at once; resume it with --seeds 1"):
        train.train_and_evaluate(TINY, tmp_path / "one", synthetic, num_seeds=2, resume=True)
    assert not (tmp_path / "one" / "seeds.json").exists()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, synthetic, monkeypatch):
    config = TINY.replace(eval_every=10)
    real_chunk = step.make_train_chunk

    def diverging_chunk(*args, **kwargs):
        chunk, calls = real_chunk(*args, **kwargs), []

        def wrapped(states, data, keys):
            calls.append(1)
            states, metrics = chunk(states, data, keys)
            if len(calls) == 3:  # the third chunk (steps 21-30) diverges
                metrics = dict(metrics, loss=np.full_like(np.asarray(metrics["loss"]), np.nan))
            return states, metrics

        return wrapped

    monkeypatch.setattr(step, "make_train_chunk", diverging_chunk)
    said = "non-finite by step 30 \\(seed 0\\).*checkpoint of step 20 is kept.*new --run-dir.*init_from="
    with pytest.raises(RamError, match=said):
        train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    run = rundir.RunDir(tmp_path)
    assert run.latest_step() == 20 and [r["step"] for r in run.read_metrics()] == [10, 20]
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "lock").exists()
    monkeypatch.setattr(step, "make_train_chunk", real_chunk)
    results = train.train_and_evaluate(config, tmp_path, synthetic, resume=True, progress=False)
    assert [r["step"] for r in run.read_metrics()] == [10, 20, 30, 40] and results["num_seeds"] == 1


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_shrinks_the_weight_matrices_only(optimizer):
    """With zero gradients, one step of weight_decay=0.5 at learning rate 0.1 multiplies every weight
    matrix by 1 - 0.05 and leaves biases and the learned first fixation where they were."""
    config = TINY.replace(
        optimizer=optimizer, weight_decay=0.5, learning_rate=0.1, schedule="constant", warmup_steps=0, grad_clip=0
    )
    _, params = step.init_model(config)
    tx = step.make_optimizer(config)
    zeros = jax.tree.map(np.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    kinds = set()
    for p, u in zip(jax.tree.leaves(params), jax.tree.leaves(updates), strict=True):
        kinds.add(p.ndim >= 2)
        np.testing.assert_allclose(u, -0.05 * p if p.ndim >= 2 else 0 * p, rtol=1e-6, atol=1e-8)
    assert kinds == {True, False}


def test_without_weight_decay_the_optimiser_state_is_unchanged():
    """weight_decay=0 keeps Adam's own state, so checkpoints written before the option restore."""
    import optax

    _, params = step.init_model(TINY)
    adam = optax.adam(step.learning_rate_schedule(TINY))
    before = optax.chain(optax.clip_by_global_norm(TINY.grad_clip), adam).init(params)
    assert jax.tree.structure(step.make_optimizer(TINY).init(params)) == jax.tree.structure(before)


def test_a_run_records_its_data_and_says_when_it_goes_on_with_other_data(tmp_path, synthetic, capsys):
    """Synthetic arrays: data.json holds each split's size and digest; resuming with other training
    images says so in one line, and the record stays that of the data the run started with."""
    from ram import datasets

    config = TINY.replace(schedule="constant", warmup_steps=0, eval_every=10, train_steps=20)
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    recorded = json.loads((tmp_path / "data.json").read_text())
    assert recorded == datasets.fingerprint(synthetic) and recorded["train"]["images"] == 64
    capsys.readouterr()
    (tmp_path / "results.json").unlink()
    other = synthetic._replace(train=Split(255 - synthetic.train.images, synthetic.train.labels))
    train.train_and_evaluate(config.replace(train_steps=30), tmp_path, other, resume=True, progress=False)
    err = capsys.readouterr().err
    assert "goes on with other data than it started with: train (64 images then, 64 now)" in err
    assert json.loads((tmp_path / "data.json").read_text()) == recorded


def test_predict_gives_probabilities_of_the_runs_canvases_and_one_line_for_other_shapes(tmp_path, synthetic):
    train.train_and_evaluate(TINY, tmp_path, synthetic, progress=False)
    run = rundir.load_run(tmp_path)
    digits = synthetic.test.images[:5]  # [5, 28, 28] uint8
    probs = evaluate.predict(run, digits, mc_samples=2)
    assert probs.shape == (5, 10) and np.allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(evaluate.predict(run, digits[..., None] / 255.0, mc_samples=2), probs, atol=1e-6)
    none = evaluate.predict(run, digits[:0])  # no images: no probabilities (a reshape inside JAX failed)
    assert none.shape == (0, 10) and none.dtype == probs.dtype
    for bad in (digits[0], digits[:, :20, :20], np.repeat(digits[..., None], 3, -1), digits[None]):
        with pytest.raises(RamError, match=f"images of shape {re.escape(str(bad.shape))} do not fit this run: give "):
            evaluate.predict(run, bad)
    with pytest.raises(RamError, match="range over \\[0.0, 255.0\\]: give floats in \\[0, 1\\]"):
        evaluate.predict(run, digits.astype(np.float32))  # 0-255 as floats: silently wrong before
    with pytest.raises(RamError, match="mc_samples=0: must be at least 1"):
        evaluate.predict(run, digits, mc_samples=0)
    for index in (-1, 1):
        with pytest.raises(RamError, match=f"seed index {index}: this run has 1 seed"):
            evaluate.predict(run, digits, seed_index=index)
    assert run.image_shape == (28, 28, 1)  # recorded in data.json: a run of another size refuses 28x9 too
    with pytest.raises(RamError, match=r"images of shape \(5, 28, 9\) do not fit this run: give \[B, 28, 28\]"):
        evaluate.check_images((5, 28, 9, 1), run.config, (5, 28, 9), run.image_shape)
    evaluate.check_images((5, 28, 9, 1), run.config, (5, 28, 9), None)  # unrecorded (older runs): the longer side
    wide = run.config.replace(canvas=24)  # a run on 20x24 images: 24x20 is refused
    with pytest.raises(RamError, match=r"give \[B, 20, 24\] or \[B, 20, 24, 1\]"):
        evaluate.check_images((5, 24, 20, 1), wide, (5, 24, 20), (20, 24, 1))
    translated = rundir.load_run(tmp_path).config.replace(task="translated", canvas=40)
    with pytest.raises(RamError, match="give \\[B, 40, 40\\].*task=translated: images already placed"):
        evaluate.check_images((5, 28, 28, 1), translated, (5, 28, 28))
