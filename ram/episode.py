"""One episode of RAM over a batch of images: a `lax.scan` over glimpses.

The scan carries `(core state, location)`. At glimpse t it reads the retina at `l_t`, updates the
core, and samples `l_{t+1} ~ N(mu_t, sigma^2 I)` from the location network. The sampled location is
`stop_gradient`-ed: no gradient ever flows through a sampled location, and the policy is trained by
REINFORCE on the log-probability of the location that was actually used (`ram.losses`).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from ram import retina
from ram.config import Config
from ram.model import RAM


class Trajectory(NamedTuple):
    """What one episode did. T = num_glimpses, B = batch."""

    locations: chex.Array  # [T, B, 2] where glimpse t looked, (x, y) in [-1, 1]
    means: chex.Array  # [T, B, 2] policy mean that location t was sampled from
    pre_means: chex.Array  # [T, B, 2] the means before tanh (0 where the policy did not choose)
    log_probs: chex.Array  # [T, B] log N(locations[t]; means[t], sigma^2 I)
    policy_mask: chex.Array  # [T] 1.0 where locations[t] came from the learned policy, else 0.0
    baselines: chex.Array  # [T, B] b of the state in which locations[t] was chosen
    logits: chex.Array  # [B, num_classes] classifier output after the last glimpse


def gaussian_log_prob(x: chex.Array, mean: chex.Array, std: chex.Numeric) -> chex.Array:
    """[..., 2] -> [...]: log-density of an isotropic 2-D Gaussian."""
    return jax.scipy.stats.norm.logpdf(x, mean, std).sum(-1)


def run_episode(
    model: RAM, images: chex.Array, key: chex.PRNGKey, config: Config, std: chex.Numeric | None = None
) -> Trajectory:
    """Runs `config.num_glimpses` glimpses over `images`.

    Args:
      model: the networks (inside `jit`, a module rebuilt by `nnx.merge`).
      images: [B, H, W, C] float images in [0, 1].
      key: PRNG key for the first location and the policy's samples.
      config: static settings (retina sizes, policy).
      std: [] std of the policy (may be traced); default `config.location_std`. Training passes
        `config.policy_std(step)`.

    Returns:
      The `Trajectory` of the episode.
    """
    chex.assert_rank(images, 4)
    batch = images.shape[0]
    num_glimpses = config.num_glimpses
    std = config.location_std if std is None else std
    learned_policy = config.policy == "learned"
    first_key, step_key = jax.random.split(key)

    # The first fixation, and the baseline of the (zero) state it is chosen from.
    state = model.initial_state(batch)
    first_is_policy = learned_policy and config.first_location == "learned"
    first_pre_mean = jnp.zeros((batch, 2))
    if config.policy == "random" or config.first_location == "random":
        first_mean = jnp.zeros((batch, 2))
        first = jax.random.uniform(first_key, (batch, 2), minval=-1.0, maxval=1.0)
    elif config.first_location == "centre":
        first_mean = first = jnp.zeros((batch, 2))
    else:
        first_mean, first_pre_mean = model.location_net.first_mean(batch)
        first = jax.lax.stop_gradient(first_mean + std * jax.random.normal(first_key, (batch, 2)))
    first_log_prob = gaussian_log_prob(first, first_mean, std)
    first_baseline = model.baseline(model.hidden(state))

    sums = retina.box_sums(images, config.num_scales, config.scale_factor)  # once per episode

    def step(carry, step_key):
        state, location = carry
        patches = retina.read(sums, location, config.patch_size, config.scale_factor)
        state, hidden = model.core(state, model.glimpse_net(patches, location))
        mean, pre_mean = model.location_net(hidden)
        if learned_policy:
            noise = std * jax.random.normal(step_key, mean.shape)
            next_location = jax.lax.stop_gradient(mean + noise)
        else:
            next_location = jax.random.uniform(step_key, mean.shape, minval=-1.0, maxval=1.0)
        log_prob = gaussian_log_prob(next_location, mean, std)
        out = (location, mean, pre_mean, log_prob, model.baseline(hidden))
        return (state, next_location), out

    step_keys = jax.random.split(step_key, num_glimpses)
    (state, _), (locations, means, pre_means, log_probs, baselines) = jax.lax.scan(
        step, (state, first), step_keys, unroll=config.unroll_glimpses
    )
    hidden = model.hidden(state)
    # Location t+1 was chosen at step t: shift the policy outputs by one, prepend the first's.
    means = jnp.concatenate([first_mean[None], means[:-1]])
    pre_means = jnp.concatenate([first_pre_mean[None], pre_means[:-1]])
    log_probs = jnp.concatenate([first_log_prob[None], log_probs[:-1]])
    baselines = jnp.concatenate([first_baseline[None], baselines[:-1]])
    mask = jnp.full((num_glimpses,), float(learned_policy)).at[0].set(float(first_is_policy))
    if not learned_policy:
        pre_means = jnp.zeros_like(pre_means)
    return Trajectory(locations, means, pre_means, log_probs, mask, baselines, model.classifier(hidden))


def episode_fn(graphdef: nnx.GraphDef, config: Config):
    """A pure `(params, images, key, std=None) -> Trajectory` for use under jit/vmap/grad."""

    def fn(params: nnx.State, images: chex.Array, key: chex.PRNGKey, std: chex.Numeric | None = None) -> Trajectory:
        return run_episode(nnx.merge(graphdef, params), images, key, config, std)

    return fn
