"""The hybrid loss of Mnih et al. (2014): supervised cross-entropy plus REINFORCE with a baseline.

    loss = cross_entropy(logits, y)
         + reinforce_weight * mean_B[ -sum_t mask_t * log pi(l_t) * stop_gradient(R - b_t) ]
         + baseline_weight  * mean_B[  sum_t mask_t * (R - b_t)^2 ] / max(1, sum_t mask_t)
         + mean_penalty     * mean_B[  sum_t mask_t * |max(|z_t| - m, 0)|^2 ]   (optional; 0 in the paper)

with the reward R = 1 if the final classification is right, else 0 (no discount), and z_t the location
network's output before tanh (mu_t = tanh(z_t)). The last term keeps tanh out of saturation: there
the REINFORCE gradient (1 - mu_t^2) vanishes, and a policy mean pushed there by noise stays at the
canvas edge for good ("corner parking"). With the margin m = 0 it pulls every mean towards the
canvas centre; with m > 0 (`mean_penalty_margin`) only means beyond tanh(m) are pulled back, so the
policy can still look anywhere inside [-tanh(m), tanh(m)] at no cost.

Each term trains only its own networks: the sampled locations are constants (stop_gradient in
`ram.episode`), the location network and the baseline read `stop_gradient(h_t)`, the advantage is a
constant in the REINFORCE term, and the reward is a constant everywhere; the penalty on z_t reaches
the location network only.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax

from ram.episode import Trajectory


def reward(logits: chex.Array, labels: chex.Array) -> chex.Array:
    """[B, C], [B] -> [B] float32: 1 where the prediction is right."""
    return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def hybrid_loss(
    traj: Trajectory,
    labels: chex.Array,
    reinforce_weight: float = 1.0,
    baseline_weight: float = 1.0,
    mean_penalty: float = 0.0,
    mean_penalty_margin: float = 0.0,
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Total loss and its parts.

    Args:
      traj: the episode (`ram.episode.run_episode`).
      labels: [B] int class labels.
      reinforce_weight: scale of the REINFORCE term.
      baseline_weight: scale of the baseline's squared error.
      mean_penalty: scale of the squared pre-tanh policy mean (0 = off, as in the paper).
      mean_penalty_margin: m, the |z| up to which the penalty is zero (0 = all of |z|^2).

    Returns:
      `(total, parts)` with scalar parts `cross_entropy`, `reinforce`, `baseline`, `reward`,
      `reward` (the batch accuracy), `advantage` (mean |R - b| over policy decisions),
      `pre_mean_sq` (sum over decisions of |z_t|^2, batch mean), `mean_penalty` (the same of the
      excess over the margin, the term that `mean_penalty` scales) and `saturated` (share of
      policy-mean coordinates with |mu| > 0.95).
    """
    chex.assert_rank(labels, 1)
    r = jax.lax.stop_gradient(reward(traj.logits, labels))  # [B]
    mask = traj.policy_mask[:, None]  # [T, 1]
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(traj.logits, labels).mean()
    advantage = jax.lax.stop_gradient(r[None] - traj.baselines)  # [T, B]
    reinforce = -(mask * traj.log_probs * advantage).sum(0).mean()
    baseline = (mask * (r[None] - traj.baselines) ** 2).sum(0).mean() / jnp.maximum(1.0, mask.sum())
    pre_mean_sq = (mask * (traj.pre_means**2).sum(-1)).sum(0).mean()
    excess = jnp.maximum(jnp.abs(traj.pre_means) - mean_penalty_margin, 0.0)  # [T, B, 2]
    penalty = (mask * (excess**2).sum(-1)).sum(0).mean()
    total = cross_entropy + reinforce_weight * reinforce + baseline_weight * baseline + mean_penalty * penalty
    decisions = jnp.maximum(1.0, mask.sum() * r.shape[0] * 2)
    parts = {
        "cross_entropy": cross_entropy,
        "reinforce": reinforce,
        "baseline": baseline,
        "reward": r.mean(),
        "advantage": (mask * jnp.abs(advantage)).sum() / jnp.maximum(1.0, mask.sum() * r.shape[0]),
        "pre_mean_sq": pre_mean_sq,
        "mean_penalty": penalty,
        "saturated": (mask[..., None] * (jnp.abs(traj.means) > 0.95)).sum() / decisions,
    }
    return total, parts
