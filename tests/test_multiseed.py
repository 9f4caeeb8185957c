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
