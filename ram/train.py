"""Training: one jitted train step, fused `steps_per_call` at a time in a `lax.scan`.

`train_and_evaluate(config, run_dir, data)` is the whole job: it trains, validates every
`eval_every` steps, keeps orbax checkpoints of the latest state and of the best parameters on
validation, appends metrics to `run_dir/metrics.jsonl`, and finally evaluates the best parameters on
the test set. An interrupted run (Ctrl-C, a killed process) loses at most the steps since the last
checkpoint; `resume=True` continues from it with the same data and noise it would have seen.

Keys: the run's key is `key(seed)`; step `n` uses `fold_in(key, n)` inside the compiled step, so the
host never splits keys and a resumed run is the same as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import signal
import time
from pathlib import Path
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ram import checkpoints, evaluate, tasks
from ram.config import Config
from ram.data import NUM_TRAIN, Mnist
from ram.episode import episode_fn
from ram.errors import RamError
from ram.losses import hybrid_loss
from ram.model import RAM


class TrainState(NamedTuple):
    step: chex.Array  # [] int32, number of steps taken
    params: nnx.State
    opt_state: optax.OptState


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


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam (default) or SGD with momentum (the paper's), after global-norm clipping."""
    lr = learning_rate_schedule(config)
    opt = optax.adam(lr) if config.optimizer == "adam" else optax.sgd(lr, momentum=config.momentum)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), opt) if config.grad_clip else opt


def init_model(config: Config, channels: int = 1) -> tuple[nnx.GraphDef, nnx.State]:
    """`(graphdef, params)` of a freshly initialised model (initialised from `config.seed`)."""
    model = RAM(config, channels, rngs=nnx.Rngs(config.seed))
    return nnx.split(model)


INIT_FILE = "init_from.json"  # in a run started with init_from: where it started, and what that cost


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RamError(f"{path} is not valid JSON ({e}); cannot count {what}") from None


def _cost_before(parent_dir: Path, parent: Config) -> dict:
    """`{"images_seen_before", "wall_time_before_s"}` of the parent's own starting point: 0 for a
    run initialised from its seed, else what its `init_from.json` (or its results.json) records."""
    zero = {"images_seen_before": 0, "wall_time_before_s": 0.0}
    if not parent.init_from:
        return zero
    for name in (INIT_FILE, "results.json"):
        path = parent_dir / name
        if path.is_file():
            record = _read_json(path, "what the runs before it cost")
            if all(k in record for k in zero):
                return {k: record[k] for k in zero}
    raise RamError(
        f"init_from={parent_dir}: that run started from {parent.init_from}, but neither its {INIT_FILE} "
        "nor its results.json says what that cost"
    )


def load_init_params(config: Config, params: nnx.State) -> tuple[nnx.State, dict]:
    """The best parameters of the run `config.init_from`, in place of the fresh `params`.

    Returns `(params, origin)`: `origin` says where they come from and what producing them cost,
    `{"init_from", "init_step", "images_seen_before", "wall_time_before_s"}`, counted along the
    chain of runs up to the parent's best step. Raises `RamError` when the parent's model differs."""
    parent_dir = Path(config.init_from)
    parent = evaluate.load_run_config(parent_dir)
    _, loaded, step = evaluate.load_best_params(parent_dir, parent)  # refuses a multi-seed run
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)  # noqa: E731
    if shapes(loaded) != shapes(params):
        differ = [
            f"{f.name}={getattr(parent, f.name)!r}"
            for f in dataclasses.fields(Config)
            if f.name not in _NOT_MODEL and getattr(parent, f.name) != getattr(config, f.name)
        ]
        raise RamError(
            f"init_from={config.init_from}: that run's model differs from this config's "
            f"(it has {', '.join(differ) or 'other parameter shapes'}); its parameters cannot start this run"
        )
    before = _cost_before(parent_dir, parent)
    wall = None
    metrics = parent_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                record = json.loads(line) if line.strip() else {}
                if record.get("step") == step:
                    wall = float(np.mean(record["wall_time_s"]))
            except (ValueError, KeyError, TypeError):
                raise RamError(f"{metrics} has a malformed line: {line[:80]!r}") from None
    if wall is None:
        raise RamError(f"init_from={config.init_from}: its metrics.jsonl has no line for its best step {step}")
    origin = {
        "init_from": str(config.init_from),
        "init_step": int(step),
        "images_seen_before": int(before["images_seen_before"] + step * parent.batch_size),
        "wall_time_before_s": round(before["wall_time_before_s"] + wall, 1),
    }
    return loaded, origin


# Config fields that do not shape the model's parameters (listed by load_init_params' error only
# when they differ; the check itself compares parameter shapes).
_NOT_MODEL = {
    "task", "canvas", "clutter_pieces", "clutter_size", "train_shift", "compute_dtype", "location_std",
    "location_std_final", "reinforce_weight", "baseline_weight", "mean_penalty", "mean_penalty_margin",
    "batch_size", "train_steps", "optimizer", "learning_rate", "momentum", "schedule", "warmup_steps",
    "grad_clip", "init_from", "seed", "unroll_glimpses", "steps_per_call", "eval_every", "eval_batch_size",
    "mc_samples", "scale_factor",
}  # fmt: skip


def init_state(config: Config, params: nnx.State) -> TrainState:
    return TrainState(jnp.zeros((), jnp.int32), params, make_optimizer(config).init(params))


def make_mesh(devices=None) -> Mesh | None:
    """A 1-D mesh over the batch axis of all (global) devices; None on a single device."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("batch",)) if len(devices) > 1 else None


def replicate(tree, mesh: Mesh | None):
    """Places `tree` on every device of `mesh` (no-op without a mesh)."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, P()))


def make_train_step(graphdef: nnx.GraphDef, config: Config, mesh: Mesh | None = None):
    """The pure train step `(state, data, key) -> (state, metrics)`.

    `data` is the training `DeviceSplit` (an argument, not a closed-over constant, so the arrays
    are not baked into the program); `key` is the run's key, folded with the step number here.
    With a `mesh`, the batch is split over its devices (data parallel): parameters and data are
    replicated, XLA partitions the episode and all-reduces the gradients. The random numbers do
    not depend on the partitioning, so one device and several compute the same step.
    """
    batch_sharding = None if mesh is None else NamedSharding(mesh, P("batch"))
    tx = make_optimizer(config)
    episode = episode_fn(graphdef, config)

    def loss_fn(params, images, labels, key, std):
        traj = episode(params, images, key, std)
        return hybrid_loss(
            traj,
            labels,
            config.reinforce_weight,
            config.baseline_weight,
            config.mean_penalty,
            config.mean_penalty_margin,
        )

    def train_step(state: TrainState, data: tasks.DeviceSplit, key: chex.PRNGKey):
        data_key, episode_key = jax.random.split(jax.random.fold_in(key, state.step))
        images, labels = tasks.train_batch(data_key, data, config, config.batch_size)
        if batch_sharding is not None:
            images = jax.lax.with_sharding_constraint(images, batch_sharding)
            labels = jax.lax.with_sharding_constraint(labels, batch_sharding)
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, images, labels, episode_key, config.policy_std(state.step)
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(parts, loss=loss, grad_norm=optax.global_norm(grads))
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def train_chunk_fn(graphdef: nnx.GraphDef, config: Config, steps: int | None = None, mesh: Mesh | None = None):
    """Pure `(state, data, key) -> (state, mean metrics)` running `steps` train steps in a `lax.scan`."""
    train_step = make_train_step(graphdef, config, mesh)
    steps = steps or config.steps_per_call

    def chunk(state, data, key):
        state, metrics = jax.lax.scan(lambda s, _: train_step(s, data, key), state, None, length=steps)
        return state, jax.tree.map(jnp.mean, metrics)

    return chunk


def make_train_chunk(graphdef: nnx.GraphDef, config: Config, steps: int | None = None, mesh: Mesh | None = None):
    """`steps` fused train steps, jitted (the whole loop on the device, one dispatch)."""
    return jax.jit(train_chunk_fn(graphdef, config, steps, mesh), donate_argnums=0)


def machine_info() -> dict:
    """Where a run ran, recorded with its results."""
    dev = jax.devices()[0]
    return {
        "platform": dev.platform,
        "device": dev.device_kind,
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


class Interrupt:
    """Turns SIGTERM into KeyboardInterrupt so a killed run still checkpoints."""

    def __enter__(self):
        self._old = signal.getsignal(signal.SIGTERM)

        def handler(signum, frame):
            raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
        return False


def prepare_run_dir(config: Config, run_dir: Path, resume: bool, num_seeds: int = 1) -> None:
    """Writes `run_dir/config.json` (and `seeds.json` for several seeds), after checking that a
    resumed run keeps its config and its number of seeds.

    A resumed run may only change `train_steps`, and only when nothing is scheduled over it: it is
    the horizon of the learning-rate schedule (a longer run would jump back to a high rate) and of
    an annealed policy std (the saved checkpoints' std would change with it)."""
    config = config.validate()
    config_path, seeds_path = run_dir / "config.json", run_dir / checkpoints.SEEDS_FILE
    if resume:
        if not config_path.is_file():
            raise RamError(f"--resume: {run_dir} holds no config.json; start a run there first")
        recorded = json.loads(seeds_path.read_text())["num_seeds"] if seeds_path.is_file() else 1
        if recorded != num_seeds:
            raise RamError(f"--resume: {run_dir} trained {recorded} seed(s) at once; resume it with --seeds {recorded}")
        saved = Config.from_json_file(config_path)
        if saved.replace(train_steps=config.train_steps) != config.replace(train_steps=config.train_steps):
            raise RamError(f"--resume: the config differs from {config_path}; only train_steps may change")
        if saved.train_steps != config.train_steps and config.location_std_final:
            raise RamError(
                f"--resume: train_steps={config.train_steps} differs from the run's {saved.train_steps}, the horizon "
                "of its annealed policy std (location_std_final); start a new run instead"
            )
        if saved.train_steps != config.train_steps and config.schedule != "constant":
            raise RamError(
                f"--resume: train_steps={config.train_steps} differs from the run's {saved.train_steps}, the horizon "
                f"of its {config.schedule} learning-rate schedule; start a new run instead (or use schedule=constant)"
            )
    elif config_path.exists() or (run_dir / "checkpoints").exists() or (run_dir / "best").exists():
        raise RamError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config.to_json())
    if num_seeds > 1:
        seeds_path.write_text(json.dumps({"num_seeds": num_seeds, "first_seed": config.seed}))


def resume_metrics(run_dir: Path, config: Config, step: int) -> None:
    """Before training resumes from the checkpoint of `step`: refuses a `train_steps` below it, and
    drops the lines of metrics.jsonl logged after it (a run killed after logging a validation but
    before its checkpoint was written logs that step again)."""
    if step > config.train_steps:
        raise RamError(f"--resume: the run is already at step {step}, past train_steps={config.train_steps}")
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
        if len(kept) != len(lines):
            path.write_text("".join(kept))


def train_and_evaluate(
    config: Config,
    run_dir: str | os.PathLike,
    data: Mnist,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Trains `config` in `run_dir` and returns the test results of the best validation checkpoint.

    Args:
      config: a validated config.
      run_dir: folder for config.json, metrics.jsonl, checkpoints/ and results.json.
      data: MNIST splits (`ram.data.load_mnist`).
      resume: continue from the latest checkpoint in `run_dir`.
      progress: show a progress bar.
      command: the command line that started the run, recorded in results.json.

    Returns:
      The dict written to `run_dir/results.json`.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir).absolute()
    mesh = make_mesh()
    if mesh is not None and config.batch_size % mesh.size:
        raise RamError(f"batch_size={config.batch_size} must be a multiple of the {mesh.size} devices")
    graphdef, params = init_model(config)
    origin, init_file = {}, run_dir / INIT_FILE
    if resume and init_file.is_file() and checkpoints.RunCheckpoints(run_dir).latest_step() is not None:
        origin = _read_json(init_file, "where the run started")  # its checkpoint holds the rest
    elif config.init_from:  # checked before the run folder is made
        params, origin = load_init_params(config, params)
    prepare_run_dir(config, run_dir, resume)
    if origin:
        init_file.write_text(json.dumps(origin, indent=2))
    ckpt = checkpoints.RunCheckpoints(run_dir)
    state = init_state(config, params)
    best = {"val_error_pct": float("inf"), "step": 0}
    wall_before = 0.0
    if resume and ckpt.latest_step() is not None:
        state, extra = ckpt.restore_latest(state)
        best, wall_before = extra["best"], extra["wall_time_s"]
        resume_metrics(run_dir, config, int(state.step))

    state = replicate(state, mesh)
    train_data = replicate(tasks.to_device(data.train), mesh)
    val_data = tasks.to_device(data.validation)
    chunk = make_train_chunk(graphdef, config, mesh=mesh)
    validate = evaluate.make_evaluator(graphdef, config, "validation", val_data, mc_samples=1)
    key = jax.random.key(config.seed)
    start = int(state.step)
    t0 = time.perf_counter()
    log = (run_dir / "metrics.jsonl").open("a")
    bar = tqdm(total=config.train_steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    sums, count, last_val = {}, 0, float("nan")
    try:
        with Interrupt():
            while int(state.step) < config.train_steps:
                state, metrics = chunk(state, train_data, key)
                metrics = jax.device_get(metrics)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                step = int(state.step)
                bar.update(step - bar.n)
                bar.set_postfix(
                    loss=f"{metrics['loss']:.3f}",
                    reward=f"{metrics['reward']:.3f}",
                    val_err=f"{last_val:.2f}%",
                    refresh=False,
                )
                if step % config.eval_every == 0 or step >= config.train_steps:
                    val = validate(state.params, seed=config.seed, step=step)
                    last_val = val["error_pct"]
                    wall = wall_before + time.perf_counter() - t0
                    if val["error_pct"] < best["val_error_pct"]:
                        best = {"val_error_pct": val["error_pct"], "step": step}
                        ckpt.save_best(step, state.params)
                    record = {
                        "step": step,
                        "epoch": step * config.batch_size / NUM_TRAIN,
                        "images_seen": step * config.batch_size,
                        "wall_time_s": round(wall, 2),
                        "learning_rate": float(learning_rate_schedule(config)(step)),
                        "location_std": float(config.policy_std(step)),
                        **{f"train_{k}": v / count for k, v in sums.items()},
                        "val_error_pct": val["error_pct"],
                        "best_val_error_pct": best["val_error_pct"],
                    }
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    ckpt.save_latest(step, state, {"best": best, "wall_time_s": wall})
                    bar.write(
                        f"step {step}: train error {100 * (1 - record['train_reward']):.2f}%  "
                        f"val error {val['error_pct']:.2f}%  (best {best['val_error_pct']:.2f}%)"
                    )
                    sums, count = {}, 0
    finally:  # also on Ctrl-C / SIGTERM: let the last checkpoint finish writing
        bar.close()
        log.close()
        ckpt.wait()
    wall = wall_before + time.perf_counter() - t0

    results = evaluate.evaluate_run(run_dir, data, config=config)
    results.update(
        {
            "command": command,
            "seed": config.seed,
            "train_steps": config.train_steps,
            "images_seen": config.train_steps * config.batch_size,
            "epochs": config.train_steps * config.batch_size / NUM_TRAIN,
            "train_wall_time_s": round(wall, 1),
            **origin,
            "machine": machine_info(),
        }
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results
