"""Training loop behaviour: checkpoints, interruption and --resume, results files.

Uses a tiny model on small random arrays shaped like MNIST (synthetic; not MNIST)."""

import json

import jax
import numpy as np
import pytest
from conftest import TINY

from ram import evaluate, train
from ram.config import Config
from ram.data import Mnist, Split
from ram.errors import RamError


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32))

    return Mnist(split(64), split(40), split(40))


def params_of(run_dir):
    _, params, step = evaluate.load_best_params(run_dir)
    return params, step


def test_run_folder_contents(tmp_path, synthetic):
    results = train.train_and_evaluate(TINY, tmp_path / "run", synthetic, progress=False)
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [20, 40]
    assert {"train_loss", "train_reward", "val_error_pct", "wall_time_s"} <= set(lines[0])
    assert json.loads((run / "results.json").read_text()) == results
    assert {"test_error_pct", "test_error_mc_pct", "mc_samples", "train_wall_time_s", "machine"} <= set(results)
    assert Config.from_dict(json.loads((run / "config.json").read_text())) == TINY
    with pytest.raises(RamError, match="already holds a run"):
        train.train_and_evaluate(TINY, run, synthetic, progress=False)
    # Leftover checkpoints without a config would be skipped by orbax and evaluated as the new run's.
    (run / "config.json").unlink()
    with pytest.raises(RamError, match="already holds a run"):
        train.train_and_evaluate(TINY, run, synthetic, progress=False)


def test_interrupted_run_resumes_to_the_same_parameters(tmp_path, synthetic, monkeypatch):
    config = TINY.replace(eval_every=10)
    train.train_and_evaluate(config, tmp_path / "straight", synthetic, progress=False)

    real_chunk = train.make_train_chunk

    def interrupting_chunk(*args, **kwargs):
        chunk, calls = real_chunk(*args, **kwargs), []

        def wrapped(state, data, key):
            calls.append(1)
            if len(calls) == 3:  # after two chunks (and the checkpoint at step 20)
                raise KeyboardInterrupt
            return chunk(state, data, key)

        return wrapped

    monkeypatch.setattr(train, "make_train_chunk", interrupting_chunk)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, tmp_path / "cut", synthetic, progress=False)
    monkeypatch.setattr(train, "make_train_chunk", real_chunk)
    assert train.checkpoints.RunCheckpoints(tmp_path / "cut").latest_step() == 20
    # As if killed after logging step 30 but before its checkpoint was written: resuming from step
    # 20 logs step 30 again, so the stale line must go.
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 30, "val_error_pct": -1.0}) + "\n")
    train.train_and_evaluate(config, tmp_path / "cut", synthetic, resume=True, progress=False)

    (a, step_a), (b, step_b) = params_of(tmp_path / "straight"), params_of(tmp_path / "cut")
    assert step_a == step_b
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


def test_resume_refuses_a_different_config(tmp_path, synthetic):
    train.train_and_evaluate(TINY, tmp_path, synthetic, progress=False)
    with pytest.raises(RamError, match="only train_steps may change"):
        train.train_and_evaluate(TINY.replace(core="gru"), tmp_path, synthetic, resume=True, progress=False)
    # train_steps is the cosine learning-rate schedule's horizon: a longer run would jump back up.
    with pytest.raises(RamError, match="horizon of its cosine learning-rate schedule"):
        train.train_and_evaluate(TINY.replace(train_steps=80), tmp_path, synthetic, resume=True, progress=False)


def test_constant_schedule_run_can_be_extended_but_not_shortened(tmp_path, synthetic):
    config = TINY.replace(schedule="constant", warmup_steps=0)
    train.train_and_evaluate(config, tmp_path, synthetic, progress=False)
    with pytest.raises(RamError, match="already at step 40, past train_steps=20"):
        train.train_and_evaluate(config.replace(train_steps=20), tmp_path, synthetic, resume=True, progress=False)
    (tmp_path / "results.json").unlink()
    results = train.train_and_evaluate(config.replace(train_steps=60), tmp_path, synthetic, resume=True, progress=False)
    assert results["train_steps"] == 60
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
    assert results["best_step"] < config.train_steps  # else the end-of-training std would do as well
    assert results["val_error_pct"] == pytest.approx(logged[results["best_step"]], abs=1e-3)
    # A resumed run may not move the horizon of its std schedule.
    with pytest.raises(RamError, match="horizon of its annealed policy std"):
        train.train_and_evaluate(config.replace(train_steps=80), tmp_path / "run", synthetic, resume=True)


def test_init_from_starts_from_the_parents_best_parameters(tmp_path, synthetic):
    from ram import multiseed

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
    }[parent["best_step"]]
    origin_keys = ("init_from", "init_step", "images_seen_before", "wall_time_before_s")
    assert child["init_from"] == str(tmp_path / "parent") and child["init_step"] == parent["best_step"]
    assert child["images_seen_before"] == parent["best_step"] * TINY.batch_size
    assert child["wall_time_before_s"] == pytest.approx(parent_wall, abs=0.1)
    grandchild = train.train_and_evaluate(
        TINY.replace(init_from=str(tmp_path / "child")), tmp_path / "grandchild", synthetic, progress=False
    )
    assert grandchild["images_seen_before"] == (parent["best_step"] + child["best_step"]) * TINY.batch_size

    # Resuming reads where it started from its own init_from.json: the parent may have moved.
    (tmp_path / "parent").rename(tmp_path / "moved")
    (tmp_path / "child" / "results.json").unlink()
    resumed = train.train_and_evaluate(child_config, tmp_path / "child", synthetic, resume=True, progress=False)
    assert {k: resumed[k] for k in origin_keys} == {k: child[k] for k in origin_keys}
    (tmp_path / "moved").rename(tmp_path / "parent")

    several = tmp_path / "several"
    several.mkdir()
    (several / "config.json").write_text(TINY.to_json())
    (several / "seeds.json").write_text(json.dumps({"num_seeds": 2, "first_seed": 0}))
    with pytest.raises(RamError, match="trained several seeds at once"):
        train.train_and_evaluate(TINY.replace(init_from=str(several)), tmp_path / "y", synthetic)
    with pytest.raises(RamError, match="model differs from this config's .*core='rnn'"):
        train.train_and_evaluate(child_config.replace(core="gru"), tmp_path / "gru", synthetic, progress=False)
    with pytest.raises(RamError, match="is not a run folder"):
        train.train_and_evaluate(TINY.replace(init_from=str(tmp_path / "nowhere")), tmp_path / "x", synthetic)
    assert not (tmp_path / "x").exists()  # nothing written: the corrected command can use the same folder
    with pytest.raises(RamError, match="--seeds trains fresh seeds"):
        multiseed.train_seeds(child_config, tmp_path / "seeds", synthetic, 2, progress=False)


def test_fields_named_as_not_shaping_the_model_are_config_fields():
    import dataclasses

    assert train._NOT_MODEL <= {f.name for f in dataclasses.fields(Config)}
