"""The compiled training step: train state, optimiser, schedules, one step, and a fused chunk of steps.

    state, metrics = chunk(state, data, key)     # `steps_per_call` steps in one `lax.scan`

`make_train_chunk(graphdef, config, num_seeds)` is the one program the host loop (`ram.train`)
calls, for one seed or for N: every leaf of the state has a leading seed axis [N, ...], and N seeds
are `jax.vmap`-ed over it (purejaxrl's `jax.jit(jax.vmap(train))(keys)`). With N = 1 the axis is
dropped inside the program instead of vmapped, so a single-seed run computes bit for bit what it
always did (a vmap of one reorders some float sums).

Keys: seed i's key is `key(seed + i)`; step n uses `fold_in(key, n)` inside the compiled step, so
the host never splits keys and a resumed run is the same as an uninterrupted one.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ram import tasks
from ram.config import Config
from ram.errors import RamError
from ram.losses import make_loss_fn
from ram.model import RAM


class TrainState(NamedTuple):
    step: chex.Array  # [] int32, number of steps taken ([N] with a seed axis)
    params: nnx.State
    opt_state: optax.OptState


class Schedules(NamedTuple):
    """What changes over training, both with the horizon `train_steps`."""

    learning_rate: optax.Schedule
    policy_std: optax.Schedule  # the std is part of the policy: checkpoints are evaluated with theirs


def learning_rate_schedule(config: Config) -> optax.Schedule:
    """Linear warm-up, then constant, linear decay to 0 (the paper's) or cosine decay to 0."""
    peak, warm, total = config.learning_rate, config.warmup_steps, config.train_steps
    if config.schedule == "constant":
        main = optax.constant_schedule(peak)
    elif config.schedule == "linear":
        main = optax.linear_schedule(peak, 0.0, max(1, total - warm))
    else:
        main = optax.cosine_decay_schedule(peak, max(1, total - warm))
    if warm == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warm), main], [warm])


def schedules(config: Config) -> Schedules:
    return Schedules(learning_rate_schedule(config), config.policy_std)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam (default) or SGD with momentum (the paper's), after global-norm clipping; with
    `weight_decay > 0`, decoupled weight decay of the weight matrices (AdamW's rule; biases and
    vectors, e.g. the learned first fixation, are left alone). Without it the optimiser state is
    Adam's or SGD's own, as checkpoints written before the option hold it."""
    lr = learning_rate_schedule(config)
    if config.weight_decay:
        matrices = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)  # noqa: E731
        if config.optimizer == "adam":
            opt = optax.adamw(lr, weight_decay=config.weight_decay, mask=matrices)
        else:
            decay = optax.add_decayed_weights(config.weight_decay, mask=matrices)
            opt = optax.chain(optax.trace(decay=config.momentum), decay, optax.scale_by_learning_rate(lr))
    else:
        opt = optax.adam(lr) if config.optimizer == "adam" else optax.sgd(lr, momentum=config.momentum)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), opt) if config.grad_clip else opt


def init_model(config: Config) -> tuple[nnx.GraphDef, nnx.State]:
    """`(graphdef, params)` of a freshly initialised model (initialised from `config.seed`), for images
    of `config.channels` channels (see `ram.model.model_io`)."""
    return nnx.split(RAM(config, rngs=nnx.Rngs(config.seed)))


def init_state(config: Config, params: nnx.State) -> TrainState:
    return TrainState(jnp.zeros((), jnp.int32), params, make_optimizer(config).init(params))


def restart_state(config: Config, params: nnx.State, at_step: int) -> TrainState:
    """A train state at `at_step` holding `params` with the optimiser's moments restarted: Adam's
    (or momentum's) statistics and bias-correction count fresh, the learning-rate schedule's count at
    `at_step`, so the next update uses the rate the run would have used there. For a run whose train
    checkpoint is lost but whose parameters at that step are kept (its best at its last validation):
    it goes on with the same data, keys and schedules, and only the optimiser's memory differs."""
    fresh = make_optimizer(config).init(params)
    scheduled = lambda x: isinstance(x, optax.ScaleByScheduleState)  # noqa: E731
    # Every optimiser of `make_optimizer` keeps its schedule's count in one such state; a schedule
    # kept elsewhere would silently start again from step 0.
    found = [x for x in jax.tree.leaves(fresh, is_leaf=scheduled) if scheduled(x)]
    if len(found) != 1:
        raise RamError(f"the optimiser keeps {len(found)} schedule counts; restart_state knows where one is kept")
    opt_state = jax.tree.map(
        lambda x: x._replace(count=jnp.asarray(at_step, x.count.dtype)) if scheduled(x) else x,
        fresh,
        is_leaf=scheduled,
    )
    return TrainState(jnp.asarray(at_step, jnp.int32), params, opt_state)


def stack(trees: list) -> object:
    """Trees of one seed each -> one tree with a leading seed axis [N, ...]."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def seed_slice(tree, i: int):
    """Seed `i` of a tree with a leading seed axis."""
    return jax.tree.map(lambda x: x[i], tree)


def init_states(config: Config, num_seeds: int = 1, params: nnx.State | None = None):
    """`(graphdef, states [N, ...])` of seeds `config.seed + i`; `params` (stacked [N, ...]), if
    given, replace the fresh parameters (a run started from another run's)."""
    graphdef, states = None, []
    for i in range(num_seeds):
        graphdef, fresh = init_model(config.replace(seed=config.seed + i))
        states.append(init_state(config, fresh if params is None else seed_slice(params, i)))
    return graphdef, stack(states)


def seed_keys(config: Config, num_seeds: int) -> chex.Array:
    """[N] keys: seed i trains with `key(config.seed + i)`."""
    return jax.vmap(jax.random.key)(jnp.arange(config.seed, config.seed + num_seeds))


def make_mesh(devices=None) -> Mesh | None:
    """A 1-D mesh over the batch axis of all (global) devices; None on a single device."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("batch",)) if len(devices) > 1 else None


def replicate(tree, mesh: Mesh | None):
    """Places `tree` on every device of `mesh` (no-op without a mesh). In a multi-process run every
    process passes the same values, which go through the host: an array on one process's device
    (say, restored from a checkpoint) cannot be copied to another process's devices."""
    if mesh is None:
        return tree
    if jax.process_count() > 1:
        tree = jax.device_get(tree)
    return jax.device_put(tree, NamedSharding(mesh, P()))


def local_copy(tree):
    """A replicated `tree` as this process can compute with it on its own device: in a multi-process
    run (`jax.distributed`) its arrays span the devices of every process, and are fetched to the host;
    in one process, it is `tree` itself."""
    return jax.device_get(tree) if jax.process_count() > 1 else tree


def make_train_step(graphdef: nnx.GraphDef, config: Config, mesh: Mesh | None = None):
    """The pure train step `(state, data, key) -> (state, metrics)` of one seed.

    `data` is the training `DeviceSplit` (an argument, not a closed-over constant, so the arrays
    are not baked into the program); `key` is the seed's key, folded with the step number here.
    With a `mesh`, the batch is split over its devices (data parallel): parameters and data are
    replicated, XLA partitions the episode and all-reduces the gradients. The random numbers do
    not depend on the partitioning, so one device and several compute the same step.
    """
    batch_sharding = None if mesh is None else NamedSharding(mesh, P("batch"))
    tx = make_optimizer(config)
    loss_fn = make_loss_fn(graphdef, config)
    policy_std = schedules(config).policy_std

    def train_step(state: TrainState, data: tasks.DeviceSplit, key: chex.PRNGKey):
        data_key, episode_key = jax.random.split(jax.random.fold_in(key, state.step))
        images, labels = tasks.train_batch(data_key, data, config, config.batch_size)
        if batch_sharding is not None:
            images = jax.lax.with_sharding_constraint(images, batch_sharding)
            labels = jax.lax.with_sharding_constraint(labels, batch_sharding)
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, images, labels, episode_key, policy_std(state.step)
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(parts, loss=loss, grad_norm=optax.global_norm(grads))
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def train_chunk_fn(graphdef: nnx.GraphDef, config: Config, steps: int | None = None, mesh: Mesh | None = None):
    """Pure `(state, data, key) -> (state, mean metrics)`: `steps` train steps of one seed in a `lax.scan`."""
    train_step = make_train_step(graphdef, config, mesh)
    steps = steps or config.steps_per_call

    def chunk(state, data, key):
        state, metrics = jax.lax.scan(lambda s, _: train_step(s, data, key), state, None, length=steps)
        return state, jax.tree.map(jnp.mean, metrics)

    return chunk


def make_train_chunk(
    graphdef: nnx.GraphDef,
    config: Config,
    num_seeds: int = 1,
    steps: int | None = None,
    mesh: Mesh | None = None,
):
    """Jitted `(states [N, ...], data, keys [N]) -> (states, metrics [N])`: `steps` fused train
    steps of N seeds in one program (the whole loop on the device, one dispatch)."""
    chunk = train_chunk_fn(graphdef, config, steps, mesh)
    if num_seeds > 1:
        batched = jax.vmap(chunk, in_axes=(0, None, 0))
    else:

        def batched(states, data, keys):
            state, metrics = chunk(seed_slice(states, 0), data, keys[0])
            return jax.tree.map(lambda x: x[None], (state, metrics))

    return jax.jit(batched, donate_argnums=0)
