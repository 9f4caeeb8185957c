"""One episode of RAM over a batch of images: a `lax.scan` over glimpses.

The scan carries `(core carry, l_t, decision_t)`, where `decision_t` holds the policy outputs that
chose `l_t` (mean, pre-tanh mean, log-prob, baseline of the state it was chosen in). At glimpse t it
reads the retina at `l_t`, updates the core, and samples `l_{t+1} ~ N(mu_t, sigma^2 I)` from the
location network; it emits `(l_t, decision_t)` and carries `(core, l_{t+1}, decision_{t+1})`, so every
row of the `Trajectory` is a location together with the decision that chose it. The first fixation and
its decision (from the zero carry) are made before the scan.

The sampled location is `stop_gradient`-ed: no gradient ever flows through a sampled location, and the
policy is trained by REINFORCE on the log-probability of the location that was actually used
(`ram.losses`). `Config.core_gradients` says whether the location network and the baseline read `h_t`
or `stop_gradient(h_t)`, i.e. whether their loss terms reach the core and the glimpse network.

`episode_samples_fn` runs `Config.samples_per_image` independent episodes per image for the loss: one
episode over the batch tiled M times inside the compiled step (never copied on the host). It runs
training episodes: with `Config.dropout > 0` they drop units of g_t and h_T (`dropout`); evaluation
and visualisation run `episode_fn`'s episodes, which never drop.
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
    """What one episode did. T = num_glimpses, B = batch.

    `episode_samples_fn` adds an axis of M samples per image after T (before B): locations
    [T, M, B, 2], log_probs [T, M, B], logits [M, B, C]; policy_mask stays [T].
    """

    locations: chex.Array  # [T, B, 2] where glimpse t looked, (x, y) in [-1, 1]
    means: chex.Array  # [T, B, 2] policy mean that location t was sampled from
    pre_means: chex.Array  # [T, B, 2] the means before tanh (0 where the policy did not choose)
    log_probs: chex.Array  # [T, B] log N(locations[t]; means[t], sigma^2 I)
    policy_mask: chex.Array  # [T] 1.0 where locations[t] came from the learned policy, else 0.0
    baselines: chex.Array  # [T, B] b of the state in which locations[t] was chosen
    logits: chex.Array  # [B, num_classes] classifier output after the last glimpse


class Decision(NamedTuple):
    """The policy outputs that chose one location (carried by the scan beside that location)."""

    mean: chex.Array  # [B, 2]
    pre_mean: chex.Array  # [B, 2] before tanh (0 where the policy did not choose)
    log_prob: chex.Array  # [B]
    baseline: chex.Array  # [B] b of the state the location was chosen in


def gaussian_log_prob(x: chex.Array, mean: chex.Array, std: chex.Numeric) -> chex.Array:
    """[..., 2] -> [...]: log-density of an isotropic 2-D Gaussian."""
    return jax.scipy.stats.norm.logpdf(x, mean, std).sum(-1)


def dropout(key: chex.PRNGKey, x: chex.Array, rate: float) -> chex.Array:
    """[...] -> [...]: inverted dropout. Each entry is zeroed with probability `rate` and the rest
    scaled by 1 / (1 - rate), so the expectation is `x`; `rate` 0 returns `x` itself."""
    if not rate:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def run_episode(
    model: RAM,
    images: chex.Array,
    key: chex.PRNGKey,
    config: Config,
    std: chex.Numeric | None = None,
    train: bool = False,
) -> Trajectory:
    """Runs `config.num_glimpses` glimpses over `images`.

    Args:
      model: the networks (inside `jit`, a module rebuilt by `nnx.merge`).
      images: [B, H, W, C] float images in [0, 1].
      key: PRNG key for the first location and the policy's samples (and, in training with
        `config.dropout > 0`, the dropout masks).
      config: static settings (retina sizes, policy, `core_gradients`, `dropout`).
      std: [] std of the policy (may be traced); default `config.location_std`. Training passes
        `config.policy_std(step)`.
      train: a training episode: drops units of g_t and h_T at `config.dropout`. With dropout 0 a
        training episode is the evaluation episode, bit for bit (the same keys).

    Returns:
      The `Trajectory` of the episode.
    """
    chex.assert_rank(images, 4)
    batch = images.shape[0]
    num_glimpses = config.num_glimpses
    std = config.location_std if std is None else std
    learned_policy = config.policy == "learned"
    rate = config.dropout if train else 0.0
    glimpse_keys = final_key = None  # no masks (and no key split) without dropout
    if rate:  # a key of its own, so that the policy's noise does not depend on the masks
        key, dropout_key = jax.random.split(key)
        keys = jax.random.split(dropout_key, num_glimpses + 1)
        glimpse_keys, final_key = keys[:-1], keys[-1]  # [T] for g_t, one for h_T
    first_key, step_key = jax.random.split(key)

    # What the location network and the baseline read of h_t: with stop_gradient, their loss terms
    # train only themselves; without it, those terms reach the core and the glimpse network.
    detach = jax.lax.stop_gradient
    policy_input = (lambda h: h) if config.core_gradients in ("reinforce", "both") else detach
    baseline_input = (lambda h: h) if config.core_gradients == "both" else detach

    # The first fixation, and the decision that chose it from the zero carry.
    carry = model.initial_carry(batch)
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
    first_baseline = model.baseline(baseline_input(model.hidden(carry)))
    first_decision = Decision(first_mean, first_pre_mean, gaussian_log_prob(first, first_mean, std), first_baseline)

    sums = retina.box_sums(images, config.num_scales, config.scale_factor)  # once per episode

    def step(scan_carry, keys):
        step_key, feature_key = keys
        carry, location, decision = scan_carry
        patches = retina.read(sums, location, config.patch_size, config.scale_factor)
        features = dropout(feature_key, model.glimpse_net(patches, location), rate)
        carry, hidden = model.core(carry, features)
        mean, pre_mean = model.location_net(policy_input(hidden))
        if learned_policy:
            noise = std * jax.random.normal(step_key, mean.shape)
            next_location = jax.lax.stop_gradient(mean + noise)
        else:  # the control: uniform glimpses; the mean is kept only for the record
            next_location = jax.random.uniform(step_key, mean.shape, minval=-1.0, maxval=1.0)
            pre_mean = jnp.zeros_like(pre_mean)
        log_prob = gaussian_log_prob(next_location, mean, std)
        next_decision = Decision(mean, pre_mean, log_prob, model.baseline(baseline_input(hidden)))
        return (carry, next_location, next_decision), (location, decision)

    step_keys = jax.random.split(step_key, num_glimpses)
    (carry, _, _), (locations, decisions) = jax.lax.scan(
        step, (carry, first, first_decision), (step_keys, glimpse_keys), unroll=config.unroll_glimpses
    )
    mask = jnp.full((num_glimpses,), float(learned_policy)).at[0].set(float(first_is_policy))
    logits = model.classifier(dropout(final_key, model.hidden(carry), rate))
    return Trajectory(
        locations, decisions.mean, decisions.pre_mean, decisions.log_prob, mask, decisions.baseline, logits
    )


def episode_fn(graphdef: nnx.GraphDef, config: Config, train: bool = False):
    """A pure `(params, images, key, std=None) -> Trajectory` for use under jit/vmap/grad: an
    evaluation episode, or with `train` a training one (`run_episode`)."""

    def fn(params: nnx.State, images: chex.Array, key: chex.PRNGKey, std: chex.Numeric | None = None) -> Trajectory:
        return run_episode(nnx.merge(graphdef, params), images, key, config, std, train)

    return fn


# Where the sample axis M of each Trajectory field goes: after T, before B (logits: first).
_SAMPLE_AXES = Trajectory(locations=1, means=1, pre_means=1, log_probs=1, policy_mask=None, baselines=1, logits=0)


def add_sample_axis(traj: Trajectory) -> Trajectory:
    """One episode as M = 1 samples per image: [T, B, ...] -> [T, 1, B, ...], logits [1, B, C]."""
    return Trajectory(*(x if a is None else jnp.expand_dims(x, a) for x, a in zip(traj, _SAMPLE_AXES, strict=True)))


def episode_samples_fn(graphdef: nnx.GraphDef, config: Config):
    """A pure `(params, images [B, ...], key, std=None) -> Trajectory` of M = `config.samples_per_image`
    independent training episodes of every image, with fields [T, M, B, ...] (logits [M, B, C], mask [T]).

    The M episodes are one episode over the images tiled M times ([M * B, ...]): every trajectory
    draws its own noise, and the matmuls are M times taller rather than M batched ones (a `jax.vmap`
    over keys ran at 30% of the matmul rate on a 2-core CPU, against 63% for one trajectory measured
    beside it; experiments/BENCH.md). With M = 1 the episode runs on the
    images as they are and computes bit for bit what `episode_fn(graphdef, config, train=True)` does."""
    episode = episode_fn(graphdef, config, train=True)
    num_samples = config.samples_per_image

    def fn(params: nnx.State, images: chex.Array, key: chex.PRNGKey, std: chex.Numeric | None = None) -> Trajectory:
        if num_samples == 1:
            return add_sample_axis(episode(params, images, key, std))
        batch = images.shape[0]
        traj = episode(params, jnp.tile(images, (num_samples,) + (1,) * (images.ndim - 1)), key, std)

        def split_samples(x, axis):  # [..., M * B, ...] -> [..., M, B, ...] (sample-major, as tiled)
            return x if axis is None else x.reshape(x.shape[:axis] + (num_samples, batch) + x.shape[axis + 1 :])

        return Trajectory(*(split_samples(x, a) for x, a in zip(traj, _SAMPLE_AXES, strict=True)))

    return fn
