"""The networks of the Recurrent Attention Model (Mnih et al., 2014, Section 3), as Flax NNX modules.

    glimpse net  g_t = ReLU(Linear(h_g) + Linear(h_l)),  h_g = ReLU(Linear(retina)),  h_l = ReLU(Linear(l))
    core         h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))        (or an LSTM / GRU cell; zero carry at t = 0)
    location     mu_t = tanh(z_t),  z_t = Linear(h_t),  l_{t+1} ~ N(mu_t, sigma^2 I)
                 (with `policy_hidden > 0`, one ReLU layer before the Linear)
    baseline     b_t = Linear(h_t)
    classifier   logits = Linear(h_T)

The modules route no gradients themselves: `ram.episode` feeds the location network and the baseline
`h_t` or `stop_gradient(h_t)` as `Config.core_gradients` says (by default both read
`stop_gradient(h_t)`: REINFORCE trains the location network only, and the squared error the baseline
only; see `ram.losses`).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from ram.config import Config


class GlimpseNetwork(nnx.Module):
    """Fuses what the retina saw with where it looked."""

    def __init__(self, retina_features: int, config: Config, *, rngs: nnx.Rngs):
        linear = functools.partial(nnx.Linear, dtype=compute_dtype(config), rngs=rngs)
        self.what = linear(retina_features, config.glimpse_hidden)
        self.where = linear(2, config.location_hidden)
        self.what_out = linear(config.glimpse_hidden, config.glimpse_features)
        self.where_out = linear(config.location_hidden, config.glimpse_features, use_bias=False)

    def __call__(self, patches: chex.Array, locations: chex.Array) -> chex.Array:
        """[B, k, g, g, C] patches and [B, 2] locations -> [B, glimpse_features]."""
        h_g = jax.nn.relu(self.what(patches.reshape(patches.shape[0], -1)))
        h_l = jax.nn.relu(self.where(locations))
        return jax.nn.relu(self.what_out(h_g) + self.where_out(h_l))


class LocationNetwork(nnx.Module):
    """Mean of the Gaussian policy over the next fixation, bounded to [-1, 1] by tanh."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        width = config.policy_hidden
        self.hidden = nnx.Linear(config.core_hidden, width, rngs=rngs) if width else None
        self.mean = nnx.Linear(width or config.core_hidden, 2, rngs=rngs)
        # Mean of the first fixation, used when `first_location == "learned"`.
        self.first = nnx.Param(jnp.zeros((2,)))

    def __call__(self, hidden: chex.Array) -> tuple[chex.Array, chex.Array]:
        """[B, core_hidden] -> ([B, 2] policy mean, [B, 2] its pre-tanh value)."""
        x = hidden
        if self.hidden is not None:
            x = jax.nn.relu(self.hidden(x))
        z = self.mean(x)
        return jnp.tanh(z), z

    def first_mean(self, batch_size: int) -> tuple[chex.Array, chex.Array]:
        """([B, 2], [B, 2]): policy mean of the first fixation and its pre-tanh value."""
        z = jnp.broadcast_to(self.first[...], (batch_size, 2))
        return jnp.tanh(z), z


class Baseline(nnx.Module):
    """State-dependent estimate of the expected reward; trained by squared error only."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        self.value = nnx.Linear(config.core_hidden, 1, rngs=rngs)

    def __call__(self, hidden: chex.Array) -> chex.Array:
        """[B, core_hidden] -> [B]."""
        return self.value(hidden)[:, 0]


def compute_dtype(config: Config):
    """Dtype of the glimpse network's and the core's matmuls (parameters stay float32)."""
    return jnp.bfloat16 if config.compute_dtype == "bfloat16" else jnp.float32


def make_core(config: Config, *, rngs: nnx.Rngs) -> nnx.Module:
    """The recurrent core: ReLU RNN (paper), LSTM or GRU from Flax's own cells."""
    n_in, n_h, dtype = config.glimpse_features, config.core_hidden, compute_dtype(config)
    if config.core == "rnn":
        return nnx.SimpleCell(n_in, n_h, activation_fn=jax.nn.relu, dtype=dtype, rngs=rngs)
    if config.core == "lstm":
        return nnx.OptimizedLSTMCell(n_in, n_h, dtype=dtype, rngs=rngs)
    return nnx.GRUCell(n_in, n_h, dtype=dtype, rngs=rngs)


def model_io(config: Config) -> tuple[int, int]:
    """`(channels C, num_classes)` the model is built for.

    A config fitted to its data (`ram.datasets.fit_config`, as training does and config.json records)
    names both; 0 (a config not yet fitted, or a run saved before the fields existed) means MNIST's 1
    and 10."""
    return config.channels or 1, config.num_classes or 10


class RAM(nnx.Module):
    """All networks of the model; `ram.episode.run_episode` runs them over one episode."""

    def __init__(self, config: Config, *, rngs: nnx.Rngs):
        channels, num_classes = model_io(config)
        retina_features = config.num_scales * config.patch_size**2 * channels
        self.glimpse_net = GlimpseNetwork(retina_features, config, rngs=rngs)
        self.core = make_core(config, rngs=rngs)
        self.location_net = LocationNetwork(config, rngs=rngs)
        self.baseline = Baseline(config, rngs=rngs)
        self.classifier = nnx.Linear(config.core_hidden, num_classes, rngs=rngs)
        self.carry_dtype = compute_dtype(config)

    def initial_carry(self, batch_size: int):
        """The core's zero carry, from the cell's own `initialize_carry`: [B, H], or (c, h) for the LSTM.

        Cast to the compute dtype: a bfloat16 cell returns bfloat16 carries, and a `lax.scan` carry
        keeps one dtype. The zero initialiser ignores the key it is given."""
        carry = self.core.initialize_carry((batch_size, self.core.in_features), rngs=nnx.Rngs(0))
        return jax.tree.map(lambda x: x.astype(self.carry_dtype), carry)

    @staticmethod
    def hidden(carry) -> chex.Array:
        """[B, H] output h_t of the core given its carry (Flax's LSTM carry is (c, h); the others' is h)."""
        return carry[1] if isinstance(carry, tuple) else carry
