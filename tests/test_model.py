"""Episode shapes, the policy's log-probability, and which term of the hybrid loss trains what.

Inputs are small random arrays (synthetic, not MNIST)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ram import tasks, train
from ram.config import Config
from ram.episode import episode_fn, gaussian_log_prob
from ram.losses import hybrid_loss

SMALL = Config(
    patch_size=4,
    num_scales=2,
    num_glimpses=3,
    glimpse_hidden=8,
    location_hidden=8,
    glimpse_features=16,
    core_hidden=16,
    batch_size=4,
)


def setup(config=SMALL, batch=4, seed=0):
    graphdef, params = train.init_model(config)
    rng = np.random.default_rng(seed)
    images = jnp.asarray(rng.random((batch, 28, 28, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
    return graphdef, params, images, labels


@pytest.mark.parametrize("core, first", [("rnn", "random"), ("lstm", "centre"), ("gru", "learned")])
def test_trajectory_shapes(core, first):
    config = SMALL.replace(core=core, first_location=first)
    graphdef, params, images, _ = setup(config)
    traj = jax.jit(episode_fn(graphdef, config))(params, images, jax.random.key(1))
    t, b = config.num_glimpses, images.shape[0]
    chex.assert_shape([traj.locations, traj.means], (t, b, 2))
    chex.assert_shape([traj.log_probs, traj.baselines], (t, b))
    chex.assert_shape(traj.logits, (b, 10))
    assert np.all(np.abs(np.asarray(traj.means)) <= 1.0)
    assert traj.policy_mask.tolist() == [float(first == "learned")] + [1.0] * (t - 1)
    if first == "centre":
        np.testing.assert_array_equal(traj.locations[0], 0.0)


def test_log_prob_matches_closed_form():
    x, mu, std = jnp.asarray([[0.3, -0.2]]), jnp.asarray([[0.1, 0.4]]), 0.15
    closed = -np.log(2 * np.pi * std**2) - ((0.2**2 + 0.6**2) / (2 * std**2))
    np.testing.assert_allclose(gaussian_log_prob(x, mu, std), [closed], rtol=1e-5)


def test_trajectory_log_probs_are_of_the_locations_used():
    graphdef, params, images, _ = setup()
    traj = episode_fn(graphdef, SMALL)(params, images, jax.random.key(3))
    d2 = ((traj.locations - traj.means) ** 2).sum(-1)
    s = SMALL.location_std
    closed = -np.log(2 * np.pi * s**2) - d2 / (2 * s**2)
    np.testing.assert_allclose(traj.log_probs[1:], closed[1:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("std", [0.02, 0.3])
def test_episode_samples_with_the_std_it_is_given(std):
    """Training passes the (annealed) std of its step; locations and log-probs must both use it."""
    config = SMALL.replace(num_glimpses=6, first_location="learned")
    graphdef, params, images, _ = setup(config, batch=16)
    traj = jax.jit(episode_fn(graphdef, config))(params, images, jax.random.key(4), jnp.float32(std))
    dev = np.asarray(traj.locations - traj.means)  # [T, B, 2], N(0, std^2) by construction
    assert 0.8 * std < dev.std() < 1.2 * std
    closed = -np.log(2 * np.pi * std**2) - (dev**2).sum(-1) / (2 * std**2)
    np.testing.assert_allclose(traj.log_probs, closed, rtol=1e-4, atol=1e-3)


def test_random_policy_control_has_no_policy_term():
    config = SMALL.replace(policy="random")
    graphdef, params, images, labels = setup(config)
    traj = episode_fn(graphdef, config)(params, images, jax.random.key(0))
    assert float(traj.policy_mask.sum()) == 0.0
    assert float(hybrid_loss(traj, labels)[1]["reinforce"]) == 0.0


def _grads_of(term, config=SMALL):
    graphdef, params, images, labels = setup(config)
    episode = episode_fn(graphdef, config)

    def loss(p):
        return hybrid_loss(episode(p, images, jax.random.key(7)), labels)[1][term]

    grads = jax.grad(loss)(params)
    norms = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
        module = str(path[0].key)
        norms[module] = norms.get(module, 0.0) + float(jnp.sum(jnp.abs(leaf)))
    return norms


@pytest.mark.parametrize("first", ["random", "learned"])
def test_cross_entropy_does_not_touch_location_network_or_baseline(first):
    norms = _grads_of("cross_entropy", SMALL.replace(first_location=first))
    assert norms["location_net"] == 0.0 and norms["baseline"] == 0.0
    assert norms["glimpse_net"] > 0 and norms["core"] > 0 and norms["classifier"] > 0


@pytest.mark.parametrize("first", ["random", "learned"])
def test_reinforce_touches_only_location_network(first):
    norms = _grads_of("reinforce", SMALL.replace(first_location=first))
    assert norms["location_net"] > 0
    assert all(v == 0.0 for k, v in norms.items() if k != "location_net"), norms


def test_baseline_term_touches_only_baseline():
    norms = _grads_of("baseline")
    assert norms["baseline"] > 0
    assert all(v == 0.0 for k, v in norms.items() if k != "baseline"), norms


@pytest.mark.parametrize("first", ["random", "learned"])
def test_mean_penalty_touches_only_location_network(first):
    norms = _grads_of("mean_penalty", SMALL.replace(first_location=first))
    assert norms["location_net"] > 0
    assert all(v == 0.0 for k, v in norms.items() if k != "location_net"), norms


@pytest.mark.parametrize("first", ["random", "learned"])
def test_pre_means_are_the_means_before_tanh(first):
    config = SMALL.replace(first_location=first)
    graphdef, params, images, _ = setup(config)
    traj = episode_fn(graphdef, config)(params, images, jax.random.key(2))
    chex.assert_shape(traj.pre_means, traj.means.shape)
    np.testing.assert_allclose(jnp.tanh(traj.pre_means[1:]), traj.means[1:], rtol=1e-6)
    if first == "random":  # not chosen by the policy: no pre-tanh mean, nothing to penalise
        np.testing.assert_array_equal(traj.pre_means[0], 0.0)
    else:
        np.testing.assert_allclose(jnp.tanh(traj.pre_means[0]), traj.means[0], rtol=1e-6)


def _saturate(params, z=9.0):
    """Sets the location network's output bias (and learned first mean) to z: tanh saturates."""

    def f(path, leaf):
        names = [str(getattr(k, "key", k)) for k in path]
        if names[0] == "location_net" and (names[1] == "first" or names[1:3] == ["mean", "bias"]):
            return jnp.full_like(leaf, z)
        return leaf

    return jax.tree_util.tree_map_with_path(f, params)


def test_mean_penalty_pulls_a_saturated_policy_back():
    """In saturation REINFORCE has (almost) no gradient left; the penalty does, and descent on it
    lowers the pre-tanh mean."""
    config = SMALL.replace(first_location="learned")
    graphdef, params, images, labels = setup(config)
    params = _saturate(params)
    episode = episode_fn(graphdef, config)

    def part(p, name):
        return hybrid_loss(episode(p, images, jax.random.key(5)), labels, mean_penalty=0.01)[1][name]

    assert float(part(params, "saturated")) == 1.0
    bias = lambda g: np.asarray(g["location_net"]["mean"]["bias"][...])  # noqa: E731
    reinforce = bias(jax.grad(part)(params, "reinforce"))
    penalty = bias(jax.grad(part)(params, "pre_mean_sq"))
    assert np.all(penalty > 0)  # d|z|^2/dz > 0 at z = 9: a descent step lowers z
    assert np.abs(reinforce).max() < 1e-3 * penalty.min()
    total = hybrid_loss(episode(params, images, jax.random.key(5)), labels, mean_penalty=0.01)[0]
    without = hybrid_loss(episode(params, images, jax.random.key(5)), labels)[0]
    np.testing.assert_allclose(total - without, 0.01 * float(part(params, "pre_mean_sq")), rtol=1e-5)


def test_mean_penalty_margin_spares_means_inside_it():
    """With a margin m the penalty is sum relu(|z| - m)^2: zero, with zero gradient, for means inside
    the margin; with m = 0 it is the plain |z|^2."""
    config = SMALL.replace(first_location="learned")
    graphdef, params, images, labels = setup(config)
    episode = episode_fn(graphdef, config)

    def part(p, margin, name="mean_penalty"):
        traj = episode(p, images, jax.random.key(5))
        return hybrid_loss(traj, labels, mean_penalty=0.01, mean_penalty_margin=margin)[1][name]

    np.testing.assert_allclose(part(params, 0.0), part(params, 0.0, "pre_mean_sq"), rtol=1e-6)
    z = np.abs(np.asarray(episode(params, images, jax.random.key(5)).pre_means))
    inside = float(z.max()) + 0.1
    assert float(part(params, inside)) == 0.0
    grads = jax.grad(part)(params, inside)
    assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(grads))
    # A saturated policy (z = 9) is still pulled back, by 2 (9 - m) per coordinate and decision.
    bias = np.asarray(jax.grad(part)(_saturate(params), 2.0)["location_net"]["mean"]["bias"][...])
    assert np.all(bias > 0)
    z = np.abs(np.asarray(episode(_saturate(params), images, jax.random.key(5)).pre_means, np.float64))
    expected = (np.maximum(z - 2.0, 0) ** 2).sum((0, 2)).mean()  # every glimpse is the policy's here
    np.testing.assert_allclose(float(part(_saturate(params), 2.0)), expected, rtol=1e-5)


def test_no_gradient_through_sampled_locations():
    graphdef, params, images, _ = setup(SMALL.replace(first_location="learned"))
    episode = episode_fn(graphdef, SMALL.replace(first_location="learned"))
    grads = jax.grad(lambda p: episode(p, images, jax.random.key(0)).locations.sum())(params)
    assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(grads))


def test_train_step_compiles_once():
    graphdef, params = train.init_model(SMALL)
    step = chex.assert_max_traces(train.make_train_step(graphdef, SMALL), n=1)
    jitted = jax.jit(step)
    data = tasks.synthetic_split(32, seed=0)
    state = train.init_state(SMALL, params)
    for _ in range(3):
        state, metrics = jitted(state, data, jax.random.key(0))
    assert int(state.step) == 3 and np.isfinite(float(metrics["loss"]))
    chunk = train.make_train_chunk(graphdef, SMALL, steps=2)
    for _ in range(3):
        state, _ = chunk(state, data, jax.random.key(0))
    assert chunk._cache_size() == 1 and int(state.step) == 9


def test_train_step_samples_with_the_annealed_std_of_its_step():
    config = SMALL.replace(location_std=0.5, location_std_final=0.01, train_steps=10)
    graphdef, params = train.init_model(config)
    data, key = tasks.synthetic_split(32, seed=2), jax.random.key(5)
    state = train.init_state(config, params)._replace(step=jnp.asarray(10, jnp.int32))  # the schedule's end
    _, metrics = jax.jit(train.make_train_step(graphdef, config))(state, data, key)
    # The same step by hand, with the std of step 10 (0.01) and with the starting std (0.5).
    data_key, episode_key = jax.random.split(jax.random.fold_in(key, 10))
    images, labels = tasks.train_batch(data_key, data, config, config.batch_size)

    def loss_with(std):
        return float(hybrid_loss(episode_fn(graphdef, config)(params, images, episode_key, std), labels)[0])

    assert float(metrics["loss"]) == pytest.approx(loss_with(0.01), rel=1e-4)
    assert float(metrics["loss"]) != pytest.approx(loss_with(0.5), rel=1e-2)


def test_fused_chunk_equals_step_by_step():
    graphdef, params = train.init_model(SMALL)
    data = tasks.synthetic_split(32, seed=1)
    key = jax.random.key(4)
    step = jax.jit(train.make_train_step(graphdef, SMALL))
    state = train.init_state(SMALL, params)
    for _ in range(4):
        state, _ = step(state, data, key)
    _, params = train.init_model(SMALL)
    fused, _ = train.make_train_chunk(graphdef, SMALL, steps=4)(train.init_state(SMALL, params), data, key)
    for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(fused.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_bfloat16_matmuls_keep_float32_heads():
    config = SMALL.replace(compute_dtype="bfloat16")
    graphdef, params, images, labels = setup(config)
    traj = jax.jit(episode_fn(graphdef, config))(params, images, jax.random.key(2))
    assert traj.logits.dtype == traj.log_probs.dtype == traj.baselines.dtype == jnp.float32
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))  # parameters stay float32
    ref = episode_fn(graphdef, SMALL)(params, images, jax.random.key(2))
    np.testing.assert_allclose(traj.logits, ref.logits, atol=0.1)
    norms = _grads_of("reinforce", config)
    assert all(v == 0.0 for k, v in norms.items() if k != "location_net")
