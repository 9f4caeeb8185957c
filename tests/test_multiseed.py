"""N seeds in one vmapped program train exactly like N separate runs (small synthetic arrays)."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import TINY

from ram import multiseed, tasks, train

SMALL = TINY.replace(warmup_steps=0, seed=5)


def test_vmapped_seeds_match_separate_runs():
    data = tasks.synthetic_split(32, seed=0)
    graphdef, states = multiseed.init_states(SMALL, 2)
    keys = jax.vmap(jax.random.key)(jnp.arange(5, 7))
    states, metrics = multiseed.make_multi_chunk(graphdef, SMALL, steps=4)(states, data, keys)
    assert metrics["loss"].shape == (2,)
    for i, seed in enumerate((5, 6)):
        g, params = train.init_model(SMALL.replace(seed=seed))
        state, _ = train.make_train_chunk(g, SMALL, steps=4)(
            train.init_state(SMALL, params), data, jax.random.key(seed)
        )
        for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(states.params), strict=True):
            np.testing.assert_allclose(x, y[i], rtol=1e-5, atol=1e-6)
    a, b = (jax.tree.map(lambda x, i=i: x[i], states.params) for i in (0, 1))
    assert not np.allclose(a["classifier"]["kernel"][...], b["classifier"]["kernel"][...])


def test_train_seeds_keeps_and_tests_each_seeds_best(tmp_path):
    """End to end on synthetic arrays (not MNIST): per-seed validation log, per-seed best
    parameters, and each seed's test error is that of its best parameters."""
    import json

    import pytest

    from ram import checkpoints, evaluate
    from ram.data import Mnist, Split
    from ram.errors import RamError

    rng = np.random.default_rng(1)

    def split(n):  # the label sets the brightness: learnable, so validation errors move
        labels = rng.integers(0, 10, n).astype(np.int32)
        images = np.clip(labels[:, None, None] * 25 + rng.integers(0, 20, (n, 28, 28)), 0, 255)
        return Split(images.astype(np.uint8), labels)

    data = Mnist(split(64), split(40), split(40))
    config = TINY.replace(train_steps=100, learning_rate=1e-2)
    results = multiseed.train_seeds(config, tmp_path, data, 2, progress=False)

    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40, 60, 80, 100]
    # Not vacuous: some seed's best is not its final state.
    assert any(s["best_step"] < config.train_steps for s in results["seeds"]), results["seeds"]
    graphdef, states = multiseed.init_states(config, 2)
    best_params, _ = checkpoints.restore_best(tmp_path, states.params)
    test = evaluate.make_evaluator(graphdef, config, "test", tasks.to_device(data.test), config.mc_samples)
    for i, seed_result in enumerate(results["seeds"]):
        vals = [r["val_error_pct"][i] for r in log]
        assert seed_result["val_error_pct"] == pytest.approx(min(vals), abs=1e-4)
        assert seed_result["best_step"] == log[vals.index(min(vals))]["step"]  # the first minimum
        params = jax.tree.map(lambda x, i=i: x[i], best_params)
        again = test(params, seed=seed_result["seed"], step=seed_result["best_step"])
        assert seed_result["test_error_pct"] == pytest.approx(again["error_pct"], abs=1e-4)
    with pytest.raises(RamError, match="several seeds at once"):
        evaluate.load_best_params(tmp_path)


def test_resume_must_keep_the_number_of_seeds(tmp_path):
    """A folder records how many seeds it trained; resuming with another count fails in one line
    before anything is loaded, and leaves the folder as it was."""
    import pytest

    from ram.errors import RamError

    single, multi = tmp_path / "single", tmp_path / "multi"
    train.prepare_run_dir(TINY, single, resume=False)
    train.prepare_run_dir(TINY, multi, resume=False, num_seeds=3)
    with pytest.raises(RamError, match="trained 1 seed\\(s\\) at once; resume it with --seeds 1"):
        train.prepare_run_dir(TINY, single, resume=True, num_seeds=2)
    with pytest.raises(RamError, match="trained 3 seed\\(s\\) at once; resume it with --seeds 3"):
        train.prepare_run_dir(TINY, multi, resume=True)
    assert not (single / "seeds.json").exists()
    train.prepare_run_dir(TINY, multi, resume=True, num_seeds=3)  # the same count is fine
