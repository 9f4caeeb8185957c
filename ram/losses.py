"""The hybrid loss of Mnih et al. (2014): supervised cross-entropy plus REINFORCE with a baseline.

    loss = cross_entropy(logits, y)
         + reinforce_weight * mean_B[ -sum_t mask_t * log pi(l_t) * stop_gradient(R - b_t) ]
         + baseline_weight  * mean_B[  sum_t mask_t * (R - b_t)^2 ] / max(1, sum_t mask_t)

with the reward R = 1 if the final classification is right, else 0 (no discount). Each term trains
only its own networks: the sampled locations are constants (stop_gradient in `ram.episode`), the
location network and the baseline read `stop_gradient(h_t)`, the advantage is a constant in the
REINFORCE term, and the reward is a constant everywhere.
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
    traj: Trajectory, labels: chex.Array, reinforce_weight: float = 1.0, baseline_weight: float = 1.0
) -> tuple[chex.Array, dict[str, chex.Array]]:
    """Total loss and its parts.

    Args:
      traj: the episode (`ram.episode.run_episode`).
      labels: [B] int class labels.
      reinforce_weight: scale of the REINFORCE term.
      baseline_weight: scale of the baseline's squared error.

    Returns:
      `(total, parts)` with scalar parts `cross_entropy`, `reinforce`, `baseline`, `reward`,
      `reward` (the batch accuracy) and `advantage` (mean |R - b| over policy decisions).
    """
    chex.assert_rank(labels, 1)
    r = jax.lax.stop_gradient(reward(traj.logits, labels))  # [B]
    mask = traj.policy_mask[:, None]  # [T, 1]
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(traj.logits, labels).mean()
    advantage = jax.lax.stop_gradient(r[None] - traj.baselines)  # [T, B]
    reinforce = -(mask * traj.log_probs * advantage).sum(0).mean()
    baseline = (mask * (r[None] - traj.baselines) ** 2).sum(0).mean() / jnp.maximum(1.0, mask.sum())
    total = cross_entropy + reinforce_weight * reinforce + baseline_weight * baseline
    parts = {
        "cross_entropy": cross_entropy,
        "reinforce": reinforce,
        "baseline": baseline,
        "reward": r.mean(),
        "advantage": (mask * jnp.abs(advantage)).sum() / jnp.maximum(1.0, mask.sum() * r.shape[0]),
    }
    return total, parts
