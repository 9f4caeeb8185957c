"""The hybrid loss of Mnih et al. (2014): supervised cross-entropy plus REINFORCE with a baseline.

Each training image is looked at by M = `samples_per_image` trajectories i (M = 1 in the paper).
Every term is averaged over the M trajectories and the B images, and sums over the glimpses t whose
location the learned policy chose (mask_t = 1; 0 for a random or fixed first fixation):

    loss = cross_entropy                     mean_{M,B}[ -log softmax(logits_i)[y] ]
         + reinforce_weight * reinforce      mean_{M,B}[ -sum_t mask_t * log pi(l_{t,i}) * stop_gradient(A_{t,i}) ]
         + baseline_weight  * baseline_mse   mean_{M,B}[  sum_t mask_t * (R_i - b_{t,i})^2 ] / max(1, sum_t mask_t)
         + mean_penalty     * policy_penalty mean_{M,B}[  sum_t mask_t * |max(|z_{t,i}| - margin, 0)|^2 ]

with the reward R_i = 1 if trajectory i classifies its image right, else 0 (no discount), and the
advantage A_{t,i} (`Config.baseline`; the reward and the advantage are constants for the gradient):

    learned  A_{t,i} = R_i - b_{t,i}                                    (the paper's learned baseline)
    loo      A_{t,i} = R_i - mean_{j != i} R_j                          (leave-one-out, needs M >= 2)
    both     A_{t,i} = R_i - [mean_{j != i} R_j + b_{t,i} - mean_{j != i} b_{t,j}]

`loo` is the baseline "for free" of Kool et al. (2019), "Buy 4 REINFORCE samples, get a baseline
for free!" (also VIMCO, Mnih & Rezende 2016): the other samples of the same image estimate the
expected reward. It does not use the learned baseline, and does not train it either (its weight
counts as zero; `baseline_mse` is still reported). `both` adds the learned state-dependent
baseline's correction b_{t,i} - mean_{j != i} b_{t,j} to the leave-one-out mean; the baseline keeps
its squared-error training.

z_t is the location network's output before tanh (mu_t = tanh(z_t)). The penalty keeps tanh out of
saturation: there the REINFORCE gradient (1 - mu_t^2) vanishes, and a policy mean pushed there by
noise stays at the canvas edge for good ("corner parking"). With margin = 0 (`mean_penalty_margin`)
it pulls every mean towards the canvas centre; with margin > 0 only means beyond tanh(margin) are
pulled back, so the policy can still look anywhere inside [-tanh(margin), tanh(margin)] at no cost.
It is 0 in the paper (`mean_penalty = 0`).

Each term trains only its own networks: the sampled locations are constants (stop_gradient in
`ram.episode`), the advantage is a constant in the REINFORCE term, and the reward is a constant
everywhere. With `core_gradients = none` the location network and the baseline read
`stop_gradient(h_t)`, so REINFORCE and the penalty train the location network only and the squared
error the baseline only; `reinforce` lets REINFORCE and the penalty reach the core and the glimpse
network through h_t (as in the paper); `both` lets the squared error reach them too.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax

from ram.config import Config
from ram.episode import Trajectory, add_sample_axis, episode_samples_fn


def reward(logits: chex.Array, labels: chex.Array) -> chex.Array:
    """[..., C], [...] -> [...] float32: 1 where the prediction is right."""
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def advantages(rewards: chex.Array, baselines: chex.Array, mode: str = "learned") -> chex.Array:
    """REINFORCE advantages of M trajectories of each image (see the module docstring).

    Args:
      rewards: [M, B] reward R_i of trajectory i of image b.
      baselines: [T, M, B] learned baseline b_{t,i} of the state in which location t was chosen.
      mode: `learned` (R - b), `loo` (R minus the mean reward of the image's other M - 1
        trajectories) or `both` (the leave-one-out mean plus b's deviation from its own
        leave-one-out mean).

    Returns:
      [T, M, B] advantages (not yet stop_gradient-ed).
    """
    chex.assert_rank([rewards, baselines], [2, 3])
    chex.assert_equal_shape([rewards, baselines[0]])
    if mode == "learned":
        return rewards[None] - baselines
    num_samples = rewards.shape[0]
    if num_samples < 2:
        raise ValueError(f"baseline={mode!r} needs at least 2 trajectories per image, got {num_samples}")
    loo_rewards = (rewards.sum(0, keepdims=True) - rewards) / (num_samples - 1)  # [M, B]
    if mode == "loo":
        return jnp.broadcast_to(rewards - loo_rewards, baselines.shape)
    if mode != "both":
        raise ValueError(f"unknown baseline mode {mode!r}")
    loo_baselines = (baselines.sum(1, keepdims=True) - baselines) / (num_samples - 1)  # [T, M, B]
    return rewards[None] - (loo_rewards[None] + (baselines - loo_baselines))


def cross_entropy_loss(logits: chex.Array, labels: chex.Array) -> chex.Array:
    """Mean softmax cross-entropy of M trajectories' classifications of each image.

    Args:
      logits: [M, B, C] classifier outputs after the last glimpse.
      labels: [B] int class labels.

    Returns:
      [] mean over M and B of -log softmax(logits)[label].
    """
    chex.assert_rank([logits, labels], [3, 1])
    labels = jnp.broadcast_to(labels, logits.shape[:-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def reinforce_loss(log_probs: chex.Array, advantages: chex.Array, mask: chex.Array) -> chex.Array:
    """REINFORCE (Williams, 1992): the policy-gradient surrogate -log pi(l) * A, A a constant.

    Args:
      log_probs: [T, M, B] log pi(l_t) of the locations used.
      advantages: [T, M, B] advantages; stop_gradient-ed here.
      mask: [T] 1 where l_t was chosen by the learned policy, else 0.

    Returns:
      [] -mean over M and B of sum_t mask_t * log_probs_t * advantages_t. Its gradient with respect
      to log_probs is -mask * advantages / (M * B).
    """
    chex.assert_rank([log_probs, mask], [3, 1])
    chex.assert_equal_shape([log_probs, advantages])
    chex.assert_equal_shape_prefix([log_probs, mask], 1)
    advantages = jax.lax.stop_gradient(advantages)
    return -(mask[:, None, None] * log_probs * advantages).sum(0).mean()


def baseline_loss(baselines: chex.Array, rewards: chex.Array, mask: chex.Array) -> chex.Array:
    """Squared error of the learned baseline, per policy decision.

    Args:
      baselines: [T, M, B] b_t of the state in which location t was chosen.
      rewards: [M, B] rewards (constants).
      mask: [T] 1 where l_t was chosen by the learned policy, else 0.

    Returns:
      [] mean over M and B of sum_t mask_t * (R - b_t)^2, divided by max(1, sum_t mask_t).
    """
    chex.assert_rank([baselines, rewards, mask], [3, 2, 1])
    chex.assert_equal_shape([rewards, baselines[0]])
    chex.assert_equal_shape_prefix([baselines, mask], 1)
    squared = mask[:, None, None] * (rewards[None] - baselines) ** 2
    return squared.sum(0).mean() / jnp.maximum(1.0, mask.sum())


def mean_penalty_loss(pre_means: chex.Array, mask: chex.Array, margin: chex.Numeric = 0.0) -> chex.Array:
    """Squared excess of the pre-tanh policy means over a margin (keeps tanh out of saturation).

    Args:
      pre_means: [T, M, B, 2] z_t, the location network's output before tanh.
      mask: [T] 1 where l_t was chosen by the learned policy, else 0.
      margin: the |z| up to which the penalty is zero (0 = all of |z|^2).

    Returns:
      [] mean over M and B of sum_t mask_t * sum_xy max(|z_t| - margin, 0)^2.
    """
    chex.assert_rank([pre_means, mask], [4, 1])
    chex.assert_equal_shape_prefix([pre_means, mask], 1)
    excess = jnp.maximum(jnp.abs(pre_means) - margin, 0.0)  # [T, M, B, 2]
    return (mask[:, None, None] * (excess**2).sum(-1)).sum(0).mean()


def loss_metrics(traj: Trajectory, rewards: chex.Array, advantages: chex.Array) -> dict[str, chex.Array]:
    """Diagnostics of the policy (not losses).

    Args:
      traj: M trajectories of each image, fields [T, M, B, ...].
      rewards: [M, B] rewards.
      advantages: [T, M, B] advantages.

    Returns:
      Scalars `reward` (the accuracy over M and B), `advantage` (mean |A| over policy decisions),
      `pre_mean_sq` (sum over decisions of |z_t|^2, mean over M and B) and `saturated` (share of
      policy-mean coordinates with |mu| > 0.95).
    """
    chex.assert_rank([rewards, advantages], [2, 3])
    mask = traj.policy_mask[:, None, None]  # [T, 1, 1]
    samples = rewards.size  # M * B
    decisions = jnp.maximum(1.0, mask.sum() * samples * 2)
    return {
        "reward": rewards.mean(),
        "advantage": (mask * jnp.abs(advantages)).sum() / jnp.maximum(1.0, mask.sum() * samples),
        "pre_mean_sq": (mask * (traj.pre_means**2).sum(-1)).sum(0).mean(),
        "saturated": (mask[..., None] * (jnp.abs(traj.means) > 0.95)).sum() / decisions,
    }


def hybrid_loss(
    traj: Trajectory,
    labels: chex.Array,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
    mean_penalty: float = 0.0,
    mean_penalty_margin: float = 0.0,
    baseline: str = "learned",
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Total loss and its parts (see the module docstring).

    Args:
      traj: M trajectories of each image (`ram.episode.episode_samples_fn`, fields [T, M, B, ...]),
        or one episode (`ram.episode.episode_fn`, fields [T, B, ...]), taken as M = 1.
      labels: [B] int class labels.
      reinforce_weight: scale of the REINFORCE term.
      baseline_weight: scale of the baseline's squared error (counts as 0 with `baseline="loo"`).
      mean_penalty: scale of the penalty on the pre-tanh policy mean (0 = off, as in the paper).
      mean_penalty_margin: the |z| up to which the penalty is zero (0 = all of |z|^2).
      baseline: advantage mode, `learned`, `loo` or `both` (`advantages`).

    Returns:
      `(total, metrics)` with the scalar terms `cross_entropy`, `reinforce`, `baseline_mse`,
      `policy_penalty` (unweighted) and the diagnostics of `loss_metrics`: `reward`, `advantage`,
      `pre_mean_sq`, `saturated`.
    """
    if traj.log_probs.ndim == 2:
        traj = add_sample_axis(traj)
    chex.assert_rank([traj.log_probs, traj.logits, labels], [3, 3, 1])
    rewards = jax.lax.stop_gradient(reward(traj.logits, labels))  # [M, B]
    advantage = advantages(rewards, traj.baselines, baseline)  # [T, M, B]
    terms = {
        "cross_entropy": cross_entropy_loss(traj.logits, labels),
        "reinforce": reinforce_loss(traj.log_probs, advantage, traj.policy_mask),
        "baseline_mse": baseline_loss(traj.baselines, rewards, traj.policy_mask),
        "policy_penalty": mean_penalty_loss(traj.pre_means, traj.policy_mask, mean_penalty_margin),
    }
    baseline_weight = 0.0 if baseline == "loo" else baseline_weight
    total = (
        terms["cross_entropy"]
        + reinforce_weight * terms["reinforce"]
        + baseline_weight * terms["baseline_mse"]
        + mean_penalty * terms["policy_penalty"]
    )
    return total, terms | loss_metrics(traj, rewards, jax.lax.stop_gradient(advantage))


def make_loss_fn(graphdef, config: Config):
    """The pure training loss `(params, images [B, H, W, C], labels [B], key, std) -> (total, metrics)`.

    Each image is looked at by `config.samples_per_image` trajectories (`episode_samples_fn`). `std`
    is the policy std of the current step (`Config.policy_std`); `metrics` are the scalars of
    `hybrid_loss`."""
    episodes = episode_samples_fn(graphdef, config)

    def loss(params, images: chex.Array, labels: chex.Array, key: chex.PRNGKey, std: chex.Numeric):
        return hybrid_loss(
            episodes(params, images, key, std),
            labels,
            config.reinforce_weight,
            config.baseline_weight,
            config.mean_penalty,
            config.mean_penalty_margin,
            config.baseline,
        )

    return loss
