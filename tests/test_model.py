"""Episode shapes, the policy's log-probability, and which term of the hybrid loss trains what.

Inputs are small random arrays (synthetic, not MNIST)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ram import evaluate, step, tasks
from ram.config import Config
from ram.data import Split
from ram.episode import dropout, episode_fn, episode_samples_fn, gaussian_log_prob
from ram.losses import hybrid_loss, make_loss_fn
from ram.model import RAM

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
    graphdef, params = nnx.split(RAM(config, rngs=nnx.Rngs(config.seed)))
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
    noise = np.asarray(traj.locations - traj.means)[1:]  # each sampled location is its mean + N(0, std^2)
    assert 0 < np.abs(noise).max() < 6 * config.location_std
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


def test_one_sample_per_image_is_the_single_episode_loss_bit_for_bit():
    config = SMALL.replace(first_location="learned")
    graphdef, params, images, labels = setup(config)
    key, std = jax.random.key(3), 0.07

    def single(p):
        return hybrid_loss(episode_fn(graphdef, config)(p, images, key, std), labels)

    (total, metrics), grads = jax.value_and_grad(make_loss_fn(graphdef, config), has_aux=True)(
        params, images, labels, key, std
    )
    (ref_total, ref_metrics), ref_grads = jax.value_and_grad(single, has_aux=True)(params)
    np.testing.assert_array_equal(total, ref_total)
    chex.assert_trees_all_equal(metrics, ref_metrics)
    chex.assert_trees_all_equal(grads, ref_grads)


def test_samples_per_image_are_independent_episodes_of_the_same_images():
    """M trajectories of each image are one episode over the batch tiled M times inside the compiled
    step (each copy samples its own glimpses); the loss averages every term over them."""
    config = SMALL.replace(samples_per_image=3, first_location="learned")
    graphdef, params, images, labels = setup(config)
    key = jax.random.key(4)
    traj = jax.jit(episode_samples_fn(graphdef, config))(params, images, key)
    t, m, b = config.num_glimpses, 3, images.shape[0]
    chex.assert_shape([traj.locations, traj.means, traj.pre_means], (t, m, b, 2))
    chex.assert_shape([traj.log_probs, traj.baselines], (t, m, b))
    chex.assert_shape(traj.logits, (m, b, 10))
    chex.assert_shape(traj.policy_mask, (t,))
    tiled = jax.jit(episode_fn(graphdef, config))(params, jnp.tile(images, (m, 1, 1, 1)), key)
    for i in range(m):
        rows = slice(i * b, (i + 1) * b)
        np.testing.assert_allclose(traj.locations[:, i], tiled.locations[:, rows], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(traj.logits[i], tiled.logits[rows], rtol=1e-5, atol=1e-6)
    assert not np.allclose(traj.locations[:, 0], traj.locations[:, 1])  # different samples
    # With the learned baseline every term is a mean over the M * B trajectories.
    _, metrics = make_loss_fn(graphdef, config)(params, images, labels, key, config.location_std)
    _, whole = hybrid_loss(tiled, jnp.tile(labels, m))
    for name in ("cross_entropy", "reinforce", "baseline_mse", "reward"):
        np.testing.assert_allclose(metrics[name], whole[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_dropout_zeroes_at_its_rate_and_keeps_the_mean():
    x = jnp.ones((100_000,), jnp.bfloat16)
    assert dropout(jax.random.key(0), x, 0.0) is x
    y = np.asarray(dropout(jax.random.key(0), x, 0.25).astype(jnp.float32))
    assert dropout(jax.random.key(0), x, 0.25).dtype == jnp.bfloat16
    assert set(np.unique(y).tolist()) == {0.0, float(jnp.bfloat16(1 / 0.75))}
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert abs(y.mean() - 1.0) < 0.01


def test_dropout_acts_in_training_episodes_only():
    """Evaluation never drops; a training episode with dropout 0 is the evaluation episode bit for bit."""
    config = SMALL.replace(core="lstm", first_location="learned", dropout=0.5)
    graphdef, params, images, _ = setup(config)
    key = jax.random.key(2)
    evaluation = episode_fn(graphdef, config)(params, images, key)
    chex.assert_trees_all_equal(evaluation, episode_fn(graphdef, config.replace(dropout=0.0))(params, images, key))
    chex.assert_trees_all_equal(
        evaluation, episode_fn(graphdef, config.replace(dropout=0.0), train=True)(params, images, key)
    )
    train = episode_fn(graphdef, config, train=True)
    chex.assert_trees_all_equal(train(params, images, key), train(params, images, key))  # a function of the key
    # g_t is dropped: with a (nearly) noiseless policy the first glimpse is the same, and the mean
    # chosen from h_1 = core(g_1) differs (dropout of h_T cannot move it).
    dropped, kept = (train(params, images, key, 1e-6), episode_fn(graphdef, config)(params, images, key, 1e-6))
    np.testing.assert_allclose(dropped.locations[0], kept.locations[0], atol=1e-5)
    assert np.abs(np.asarray(dropped.means[1] - kept.means[1])).max() > 1e-3


def test_dropout_drops_units_of_the_classifiers_input():
    """With one image, the classifier's weight rows of dropped units of h_T get no gradient (the LSTM's
    h_T has no zeros of its own): about half of them at rate 0.5, none without dropout."""

    def zero_rows(rate):
        config = SMALL.replace(core="lstm", dropout=rate)
        graphdef, params, images, labels = setup(config, batch=1)
        loss = make_loss_fn(graphdef, config)
        grads = jax.grad(lambda p: loss(p, images, labels, jax.random.key(5), 0.1)[1]["cross_entropy"])(params)
        return int((np.abs(np.asarray(grads["classifier"]["kernel"][...])).sum(1) == 0).sum())

    assert zero_rows(0.0) == 0
    assert 3 <= zero_rows(0.5) <= 13  # of 16


def _grads_of(term, config=SMALL):
    """Sum of |d term / d params| per network, `term` a metric of the training loss or "total"."""
    graphdef, params, images, labels = setup(config)
    loss = make_loss_fn(graphdef, config)

    def part(p):
        total, metrics = loss(p, images, labels, jax.random.key(7), config.location_std)
        return total if term == "total" else metrics[term]

    grads = jax.grad(part)(params)
    norms = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
        module = str(path[0].key)
        norms[module] = norms.get(module, 0.0) + float(jnp.sum(jnp.abs(leaf)))
    return norms


def _reaches(norms):
    return {k for k, v in norms.items() if v > 0}


NETS = {"glimpse_net", "core", "location_net", "baseline", "classifier"}
THROUGH_CORE = {"glimpse_net", "core"}  # what a term reaches through h_t


@pytest.mark.parametrize("core_gradients", ["none", "reinforce", "both"])
@pytest.mark.parametrize("first", ["random", "learned"])
def test_cross_entropy_trains_classifier_core_and_glimpse_net_only(core_gradients, first):
    norms = _grads_of("cross_entropy", SMALL.replace(first_location=first, core_gradients=core_gradients))
    assert _reaches(norms) == THROUGH_CORE | {"classifier"}, norms


# Which networks each term reaches, per `core_gradients`: the location network and the baseline read
# stop_gradient(h_t) (none), or h_t for REINFORCE and the penalty (reinforce), or for all (both).
REACHES = {
    ("reinforce", "none"): {"location_net"},
    ("reinforce", "reinforce"): {"location_net"} | THROUGH_CORE,
    ("reinforce", "both"): {"location_net"} | THROUGH_CORE,
    ("policy_penalty", "none"): {"location_net"},
    ("policy_penalty", "reinforce"): {"location_net"} | THROUGH_CORE,
    ("policy_penalty", "both"): {"location_net"} | THROUGH_CORE,
    ("baseline_mse", "none"): {"baseline"},
    ("baseline_mse", "reinforce"): {"baseline"},
    ("baseline_mse", "both"): {"baseline"} | THROUGH_CORE,
}


@pytest.mark.parametrize("term, core_gradients", sorted(REACHES))
@pytest.mark.parametrize("first", ["random", "learned"])
def test_each_term_trains_only_its_networks(term, core_gradients, first):
    config = SMALL.replace(first_location=first, core_gradients=core_gradients)
    assert _reaches(_grads_of(term, config)) == REACHES[term, core_gradients]


@pytest.mark.parametrize("baseline", ["learned", "loo", "both"])
def test_baseline_modes_decide_what_trains_the_baseline(baseline):
    """REINFORCE never trains the baseline (the advantage is a constant); the total trains it by
    its squared error, except with `loo`, which neither uses nor trains it."""
    config = SMALL.replace(samples_per_image=2, baseline=baseline)
    assert _reaches(_grads_of("reinforce", config)) == {"location_net"}
    assert _reaches(_grads_of("baseline_mse", config)) == {"baseline"}
    total = _reaches(_grads_of("total", config))
    assert total == NETS - ({"baseline"} if baseline == "loo" else set()), total


def test_random_policy_trains_no_policy_and_no_baseline():
    norms = _grads_of("total", SMALL.replace(policy="random"))
    assert _reaches(norms) == THROUGH_CORE | {"classifier"}, norms


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

    def part(p, margin, name="policy_penalty"):
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
    graphdef, params = step.init_model(SMALL)
    train_step = chex.assert_max_traces(step.make_train_step(graphdef, SMALL), n=1)
    jitted = jax.jit(train_step)
    data = tasks.synthetic_split(32, seed=0)
    state = step.init_state(SMALL, params)
    for _ in range(3):
        state, metrics = jitted(state, data, jax.random.key(0))
    assert int(state.step) == 3 and np.isfinite(float(metrics["loss"]))
    chunk = jax.jit(step.train_chunk_fn(graphdef, SMALL, steps=2))
    for _ in range(3):
        state, _ = chunk(state, data, jax.random.key(0))
    assert chunk._cache_size() == 1 and int(state.step) == 9


def test_train_step_samples_with_the_annealed_std_of_its_step():
    config = SMALL.replace(location_std=0.5, location_std_final=0.01, train_steps=10)
    graphdef, params = step.init_model(config)
    data, key = tasks.synthetic_split(32, seed=2), jax.random.key(5)
    state = step.init_state(config, params)._replace(step=jnp.asarray(10, jnp.int32))  # the schedule's end
    _, metrics = jax.jit(step.make_train_step(graphdef, config))(state, data, key)
    # The same step by hand, with the std of step 10 (0.01) and with the starting std (0.5).
    data_key, episode_key = jax.random.split(jax.random.fold_in(key, 10))
    images, labels = tasks.train_batch(data_key, data, config, config.batch_size)

    def loss_with(std):
        return float(hybrid_loss(episode_fn(graphdef, config)(params, images, episode_key, std), labels)[0])

    assert float(metrics["loss"]) == pytest.approx(loss_with(0.01), rel=1e-4)
    assert float(metrics["loss"]) != pytest.approx(loss_with(0.5), rel=1e-2)


def test_fused_chunk_equals_step_by_step():
    graphdef, params = step.init_model(SMALL)
    data = tasks.synthetic_split(32, seed=1)
    key = jax.random.key(4)
    train_step = jax.jit(step.make_train_step(graphdef, SMALL))
    state = step.init_state(SMALL, params)
    for _ in range(4):
        state, _ = train_step(state, data, key)
    _, params = step.init_model(SMALL)
    fused, _ = jax.jit(step.train_chunk_fn(graphdef, SMALL, steps=4))(step.init_state(SMALL, params), data, key)
    for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(fused.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("core", ["rnn", "lstm", "gru"])
def test_bfloat16_matmuls_keep_float32_heads(core):
    config = SMALL.replace(compute_dtype="bfloat16", core=core, first_location="learned")
    graphdef, params, images, labels = setup(config)
    # The cell's own zero carry, in the compute dtype (a lax.scan carry keeps one dtype).
    carry = nnx.merge(graphdef, params).initial_carry(4)
    assert all(x.dtype == jnp.bfloat16 and not x.any() for x in jax.tree.leaves(carry))
    assert len(jax.tree.leaves(carry)) == (2 if core == "lstm" else 1)
    traj = jax.jit(episode_fn(graphdef, config))(params, images, jax.random.key(2))
    assert traj.logits.dtype == traj.log_probs.dtype == traj.baselines.dtype == jnp.float32
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))  # parameters stay float32
    f32 = config.replace(compute_dtype="float32")
    ref = episode_fn(nnx.split(RAM(f32, rngs=nnx.Rngs(0)))[0], f32)(params, images, jax.random.key(2))
    np.testing.assert_allclose(traj.logits, ref.logits, atol=0.1)
    assert _reaches(_grads_of("reinforce", config)) == {"location_net"}
    reinforce = _grads_of("reinforce", config.replace(core_gradients="reinforce"))
    assert _reaches(reinforce) == {"location_net"} | THROUGH_CORE


def test_evaluator_counts_each_trajectory_for_the_expected_error():
    """`expected_error_pct` is the mean over the M trajectories of each one's single-sample error
    (tfRAM's protocol); with M = 1 it is the single-sample error."""
    config = SMALL.replace(eval_batch_size=8)
    graphdef, params = step.init_model(config)
    split = tasks.synthetic_split(12, seed=3)
    batch_eval = evaluate.make_batch_eval(graphdef, config, "validation", 5)
    index, key = jnp.arange(8), jax.random.key(1)
    single, _, num_correct = batch_eval(params, split, index, key, config.location_std)
    images, labels = tasks.eval_batch("validation", split, index, config)
    episode = episode_fn(graphdef, config)
    logits = jax.vmap(lambda k: episode(params, images, k).logits)(jax.random.split(key, 5))  # [M, B, C]
    np.testing.assert_array_equal(num_correct, (jnp.argmax(logits, -1) == labels).sum(0))
    assert num_correct.dtype == jnp.int32 and np.all(num_correct >= single)
    one = evaluate.make_evaluator(graphdef, config, "validation", split, 1)(params, seed=2)
    assert one["expected_error_pct"] == one["error_pct"]
    five = evaluate.make_evaluator(graphdef, config, "validation", split, 5)(params, seed=2)
    assert 0.0 <= five["expected_error_pct"] <= 100.0 and five["num_examples"] == 12
    # Per example, in the split's order: batch i (examples 8i..8i+7, key fold_in(key(seed), i)),
    # the padding of the last batch dropped; the same whole on the device or streamed from the host.
    base = jax.random.key(2)
    by_hand = [
        np.concatenate([np.asarray(x) for x in parts])[:12]
        for parts in zip(
            *(batch_eval(params, split, jnp.arange(8 * i, 8 * i + 8) % 12, jax.random.fold_in(base, i),
                         config.location_std) for i in (0, 1)),
            strict=True,
        )
    ]  # fmt: skip
    host = Split(np.asarray(split.images), np.asarray(split.labels))
    for where, cfg in ((split, config), (host, config.replace(device_data_mb=0))):
        outcomes = evaluate.make_example_evaluator(graphdef, cfg, "validation", where, 5)(params, seed=2)
        for got, want in zip(outcomes, by_hand, strict=True):
            np.testing.assert_array_equal(got, want)


def test_evaluator_std_override():
    """Synthetic data: `std=None` samples with the policy's std at `step`; an explicit `std` replaces
    it (experiments/std_scan.py), and std 0 makes every trajectory follow the policy's mean (from a
    learned first location: a random one would still differ between trajectories)."""
    config = SMALL.replace(eval_batch_size=8, first_location="learned")
    graphdef, params = step.init_model(config)
    split = tasks.synthetic_split(12, seed=3)
    evaluator = evaluate.make_evaluator(graphdef, config, "validation", split, 4)
    assert evaluator(params, seed=2) == evaluator(params, seed=2, std=float(config.policy_std(config.train_steps)))
    greedy = evaluator(params, seed=2, std=0.0)
    assert greedy["error_pct"] == greedy["mc_error_pct"] == greedy["expected_error_pct"]  # one path, M times


@pytest.mark.parametrize(
    "task",
    [
        dict(task="mnist"),
        dict(task="translated", canvas=40),
        dict(task="cluttered", canvas=40, clutter_pieces=3, clutter_size=8),
    ],
    ids=["mnist", "translated", "cluttered"],
)
def test_evaluator_streams_a_split_too_big_for_the_device(task):
    """Synthetic data: a host split larger than `device_data_mb` is evaluated batch by batch (each
    batch's images put on the device as it comes) to exactly the numbers of the whole split on the
    device, last batch padded; a cluttered task, whose canvases read the whole split, keeps it whole."""
    config = SMALL.replace(eval_batch_size=8, **task)
    graphdef, params = step.init_model(config)
    device = tasks.synthetic_split(21, seed=5)
    host = Split(np.asarray(device.images), np.asarray(device.labels))
    whole = evaluate.make_evaluator(graphdef, config, "test", device, 3)(params, seed=1)
    streamed = config.replace(device_data_mb=0)
    assert evaluate.streams(host, streamed) == (task["task"] != "cluttered")
    assert not evaluate.streams(host, config) and not evaluate.streams(device, streamed)
    assert evaluate.make_evaluator(graphdef, streamed, "test", host, 3)(params, seed=1) == whole
    # Examples 8-15 from a slice that starts at example 8 are examples 8-15 of the whole split.
    if task["task"] != "cluttered":
        part = tasks.DeviceSplit(device.images[8:16], device.labels[8:16])
        np.testing.assert_array_equal(
            tasks.eval_batch("test", part, jnp.arange(8), config, 8)[0],
            tasks.eval_batch("test", device, jnp.arange(8, 16), config)[0],
        )
    # A figure's examples, spread over the split, are those examples of the whole split, from a host
    # split (only their own images on the device, unless clutter reads the rest) or a device one.
    index = tasks.spread(len(host.labels), 5)
    np.testing.assert_array_equal(index, [0, 5, 10, 15, 20])
    of_whole = tasks.eval_batch("test", device, jnp.asarray(index), config)
    for split in (host, device):
        for made, expected in zip(tasks.figure_examples("test", split, config, 5), of_whole, strict=True):
            np.testing.assert_array_equal(made, expected)
