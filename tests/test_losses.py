"""Each term of the hybrid loss against values worked out by hand on a tiny fixed trajectory
(rlax `policy_gradients_test.py` style). T = 3 glimpses, B = 2 images, 2 classes."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ram import losses
from ram.config import Config
from ram.episode import Trajectory, add_sample_axis
from ram.errors import ConfigError

# The first location is not the policy's (mask 0): its row must not count anywhere.
MASK = [0.0, 1.0, 1.0]
LOG_PROBS = [[-1.0, -2.0], [0.5, -1.0], [1.0, 2.0]]  # [T, B]
BASELINES = [[0.5, 0.5], [0.25, 0.75], [0.5, 0.0]]  # [T, B]
PRE_MEANS = [  # [T, B, 2]
    [[3.0, 3.0], [3.0, 3.0]],
    [[0.5, -2.0], [1.0, 0.0]],
    [[-1.5, 0.0], [0.25, 3.0]],
]
MEANS = [  # [T, B, 2]; only the shares |mu| > 0.95 matter here
    [[0.99, 0.99], [0.99, 0.99]],
    [[0.5, -0.96], [0.76, 0.0]],
    [[-0.9, 0.0], [0.2, 0.99]],
]
# softmax = [1/4, 3/4] and [3/4, 1/4]; with labels [1, 1] the rewards are R = [1, 0].
LOGITS = [[0.0, math.log(3.0)], [math.log(3.0), 0.0]]
LABELS = jnp.asarray([1, 1])


def traj() -> Trajectory:
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return Trajectory(
        locations=jnp.zeros((3, 2, 2)),
        means=f(MEANS),
        pre_means=f(PRE_MEANS),
        log_probs=f(LOG_PROBS),
        policy_mask=f(MASK),
        baselines=f(BASELINES),
        logits=f(LOGITS),
    )


def samples() -> Trajectory:
    """The fixed trajectory as M = 1 samples per image: fields [T, 1, B, ...]."""
    return add_sample_axis(traj())


# Advantages R - b (learned):  t0: [0.5, -0.5]   t1: [0.75, -0.75]   t2: [0.5, 0.0]
CROSS_ENTROPY = (-math.log(0.75) - math.log(0.25)) / 2  # = log(16/3) / 2
# -mean_B sum_t mask lp A:  b0: 0.5 * 0.75 + 1.0 * 0.5 = 0.875;  b1: -1.0 * -0.75 + 2.0 * 0.0 = 0.75
REINFORCE = -(0.875 + 0.75) / 2  # -0.8125
# mean_B sum_t mask (R - b)^2 / sum_t mask:  b0: 0.75^2 + 0.5^2 = 0.8125;  b1: 0.75^2 + 0 = 0.5625
BASELINE_MSE = (0.8125 + 0.5625) / 2 / 2  # 0.34375
# margin 0, sum of z^2:  b0: 0.25 + 4 + 2.25 = 6.5;  b1: 1 + 0.0625 + 9 = 10.0625
PRE_MEAN_SQ = (6.5 + 10.0625) / 2  # 8.28125
# margin 1, excess max(|z| - 1, 0):  b0: [0, 1], [0.5, 0] -> 1 + 0.25;  b1: [0, 0], [0, 2] -> 4
PENALTY_MARGIN_1 = (1.25 + 4.0) / 2  # 2.625


def test_reward_is_one_where_the_argmax_is_the_label():
    np.testing.assert_array_equal(losses.reward(jnp.asarray(LOGITS), LABELS), [1.0, 0.0])


def test_cross_entropy():
    t = samples()
    np.testing.assert_allclose(losses.cross_entropy_loss(t.logits, LABELS), CROSS_ENTROPY, rtol=1e-6)


def test_learned_advantages_are_reward_minus_baseline():
    t = samples()
    got = losses.advantages(jnp.asarray([[1.0, 0.0]]), t.baselines, "learned")
    np.testing.assert_allclose(got[:, 0], [[0.5, -0.5], [0.75, -0.75], [0.5, 0.0]])


def test_reinforce():
    t = samples()
    adv = losses.advantages(jnp.asarray([[1.0, 0.0]]), t.baselines)
    got = jax.jit(losses.reinforce_loss)(t.log_probs, adv, t.policy_mask)
    np.testing.assert_allclose(got, REINFORCE, rtol=1e-6)


def test_reinforce_gradient_is_minus_mask_times_advantage_over_m_b():
    """d/d log_prob of -mean_{M,B} sum_t mask log_prob A = -mask * A / (M * B); none reaches A."""
    log_probs = jnp.arange(12.0).reshape(3, 2, 2) / 10  # [T, M, B]
    adv = jnp.asarray([[[1.0, -2.0], [0.5, 0.0]], [[3.0, 1.0], [-1.0, 2.0]], [[0.25, 4.0], [2.0, -0.5]]])
    mask = jnp.asarray(MASK)
    d_log_probs, d_adv = jax.grad(losses.reinforce_loss, argnums=(0, 1))(log_probs, adv, mask)
    np.testing.assert_allclose(d_log_probs, -mask[:, None, None] * adv / 4, rtol=1e-6)
    np.testing.assert_array_equal(d_adv, 0.0)


def test_baseline_squared_error():
    t = samples()
    got = losses.baseline_loss(t.baselines, jnp.asarray([[1.0, 0.0]]), t.policy_mask)
    np.testing.assert_allclose(got, BASELINE_MSE, rtol=1e-6)


@pytest.mark.parametrize("margin, expected", [(0.0, PRE_MEAN_SQ), (1.0, PENALTY_MARGIN_1), (3.5, 0.0)])
def test_mean_penalty(margin, expected):
    t = samples()
    np.testing.assert_allclose(losses.mean_penalty_loss(t.pre_means, t.policy_mask, margin), expected, rtol=1e-6)


def test_metrics():
    t = samples()
    rewards = jnp.asarray([[1.0, 0.0]])
    metrics = losses.loss_metrics(t, rewards, losses.advantages(rewards, t.baselines))
    assert set(metrics) == {"reward", "advantage", "pre_mean_sq", "saturated"}
    np.testing.assert_allclose(metrics["reward"], 0.5)
    # mean |A| over the 2 x 2 policy decisions: (0.75 + 0.75 + 0.5 + 0) / 4
    np.testing.assert_allclose(metrics["advantage"], 0.5)
    np.testing.assert_allclose(metrics["pre_mean_sq"], PRE_MEAN_SQ, rtol=1e-6)
    # policy coordinates with |mu| > 0.95: -0.96 (t1) and 0.99 (t2) of 2 x 2 x 2
    np.testing.assert_allclose(metrics["saturated"], 0.25)


def test_hybrid_loss_is_the_weighted_sum_of_its_parts():
    total, parts = jax.jit(
        lambda t: losses.hybrid_loss(
            t, LABELS, reinforce_weight=2.0, baseline_weight=0.5, mean_penalty=0.1, mean_penalty_margin=1.0
        )
    )(traj())
    expected = {
        "cross_entropy": CROSS_ENTROPY,
        "reinforce": REINFORCE,
        "baseline_mse": BASELINE_MSE,
        "policy_penalty": PENALTY_MARGIN_1,
        "reward": 0.5,
        "advantage": 0.5,
        "pre_mean_sq": PRE_MEAN_SQ,
        "saturated": 0.25,
    }
    assert set(parts) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(parts[name], value, rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        total, CROSS_ENTROPY + 2.0 * REINFORCE + 0.5 * BASELINE_MSE + 0.1 * PENALTY_MARGIN_1, rtol=1e-6
    )


def test_hybrid_loss_takes_one_episode_as_one_sample():
    one, parts_one = losses.hybrid_loss(traj(), LABELS)
    many, parts_many = losses.hybrid_loss(samples(), LABELS)
    np.testing.assert_array_equal(one, many)
    chex.assert_trees_all_equal(parts_one, parts_many)


def _second() -> Trajectory:
    """Another trajectory of the same two images: both classified right, other log-probs."""
    t = traj()
    return t._replace(
        log_probs=t.log_probs[::-1], baselines=t.baselines * 0.5, logits=jnp.asarray([[0.0, 1.0], [0.0, 2.0]])
    )


def _stack(*trajs: Trajectory) -> Trajectory:
    """M trajectories of each image -> fields [T, M, B, ...] (logits [M, B, C], one mask)."""
    fields = zip(*trajs, strict=True)
    axes = Trajectory(1, 1, 1, 1, None, 1, 0)
    return Trajectory(*(x[0] if a is None else jnp.stack(x, a) for x, a in zip(fields, axes, strict=True)))


def test_every_term_is_averaged_over_the_samples_of_an_image():
    (_, a), (_, b) = losses.hybrid_loss(traj(), LABELS), losses.hybrid_loss(_second(), LABELS)
    _, both = losses.hybrid_loss(_stack(traj(), _second()), LABELS)
    for name in both:
        np.testing.assert_allclose(both[name], (a[name] + b[name]) / 2, rtol=1e-6, err_msg=name)


# M = 3 trajectories of B = 2 images, T = 2. Image 0: rewards [1, 0, 1]; image 1: [0, 0, 1].
REWARDS = jnp.asarray([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # [M, B]
BASELINES_3 = jnp.asarray(  # [T, M, B]; image 1's baseline is the same everywhere
    [[[0.5, 0.5], [0.2, 0.5], [0.8, 0.5]], [[0.9, 0.5], [0.3, 0.5], [0.6, 0.5]]]
)


def test_leave_one_out_advantages():
    # Image 0, mean reward of the other two:  (0 + 1) / 2 = 0.5,  (1 + 1) / 2 = 1,  (1 + 0) / 2 = 0.5
    #   -> A = [1 - 0.5, 0 - 1, 1 - 0.5] at every t.
    # Image 1: (0 + 1) / 2 = 0.5,  0.5,  0  -> A = [-0.5, -0.5, 1].
    got = jax.jit(losses.advantages, static_argnums=2)(REWARDS, BASELINES_3, "loo")
    np.testing.assert_allclose(got, [[[0.5, -0.5], [-1.0, -0.5], [0.5, 1.0]]] * 2, rtol=1e-6)


def test_leave_one_out_plus_learned_correction_advantages():
    # Image 0, A = R - [loo mean of R + b - loo mean of b]:
    #   t0: loo b = [(0.2 + 0.8) / 2, (0.5 + 0.8) / 2, (0.5 + 0.2) / 2] = [0.5, 0.65, 0.35]
    #       A = [1 - (0.5 + 0.5 - 0.5), 0 - (1 + 0.2 - 0.65), 1 - (0.5 + 0.8 - 0.35)] = [0.5, -0.55, 0.05]
    #   t1: loo b = [(0.3 + 0.6) / 2, (0.9 + 0.6) / 2, (0.9 + 0.3) / 2] = [0.45, 0.75, 0.6]
    #       A = [1 - (0.5 + 0.9 - 0.45), 0 - (1 + 0.3 - 0.75), 1 - (0.5 + 0.6 - 0.6)] = [0.05, -0.55, 0.5]
    # Image 1: b equals its leave-one-out mean, so A is the leave-one-out one, [-0.5, -0.5, 1].
    got = losses.advantages(REWARDS, BASELINES_3, "both")
    expected = [[[0.5, -0.5], [-0.55, -0.5], [0.05, 1.0]], [[0.05, -0.5], [-0.55, -0.5], [0.5, 1.0]]]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Leave-one-out advantages of an image sum to zero over its samples.
    np.testing.assert_allclose(got.sum(1), 0.0, atol=1e-6)


def test_learned_advantages_of_several_samples():
    got = losses.advantages(REWARDS, BASELINES_3, "learned")
    np.testing.assert_allclose(got[:, :, 0], [[0.5, -0.2, 0.2], [0.1, -0.3, 0.4]], rtol=1e-6)


def test_leave_one_out_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        losses.advantages(REWARDS[:1], BASELINES_3[:, :1], "loo")


def test_leave_one_out_does_not_train_the_baseline():
    """With `loo` the learned baseline is neither used nor trained: its weight counts as zero."""
    t = _stack(traj(), _second())
    total, parts = losses.hybrid_loss(t, LABELS, baseline="loo")
    np.testing.assert_allclose(total, parts["cross_entropy"] + parts["reinforce"], rtol=1e-6)
    grad = jax.grad(lambda b: losses.hybrid_loss(t._replace(baselines=b), LABELS, baseline="loo")[0])(t.baselines)
    np.testing.assert_array_equal(grad, 0.0)
    # `both` keeps the squared error (and no gradient reaches b through the advantage).
    total, parts = losses.hybrid_loss(t, LABELS, baseline="both")
    np.testing.assert_allclose(total, parts["cross_entropy"] + parts["reinforce"] + parts["baseline_mse"], rtol=1e-6)
    grad = jax.grad(lambda b: losses.hybrid_loss(t._replace(baselines=b), LABELS, baseline="both")[0])(t.baselines)
    mse_grad = jax.grad(lambda b: losses.baseline_loss(b, jnp.asarray([[1.0, 0.0], [1.0, 1.0]]), t.policy_mask))
    np.testing.assert_allclose(grad, mse_grad(t.baselines), rtol=1e-6)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"samples_per_image": 0}, "samples_per_image=0: must be at least 1"),
        ({"baseline": "mean"}, "baseline='mean': choose one of"),
        ({"baseline": "loo"}, "set samples_per_image >= 2"),
        ({"baseline": "both", "samples_per_image": 1}, "set samples_per_image >= 2"),
        ({"core_gradients": "all"}, "core_gradients='all': choose one of"),
        ({"policy": "random", "core_gradients": "reinforce"}, "would ignore core_gradients=reinforce"),
    ],
)
def test_config_rejects_loss_options_it_cannot_use(changes, message):
    with pytest.raises(ConfigError, match=message):
        Config(**changes).validate()
    Config(samples_per_image=4, baseline="loo", core_gradients="both").validate()
