"""Every number of a run lives in one frozen `Config`; presets name the paper's settings.

A preset plus `key=value` overrides gives the config of a run, e.g.::

    ram train mnist28 num_glimpses=4 learning_rate=3e-4

`Config.validate` rejects what the model cannot run with, with a one-line message that says what
to fix, before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import typing
from collections.abc import Iterable
from pathlib import Path

import optax

from ram.errors import ConfigError

TASKS = ("mnist", "translated", "cluttered")
CORES = ("rnn", "lstm", "gru")
FIRST_LOCATIONS = ("random", "centre", "learned")
POLICIES = ("learned", "random")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
DTYPES = ("float32", "bfloat16")
BASELINES = ("learned", "loo", "both")
CORE_GRADIENTS = ("none", "reinforce", "both")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one run. Sizes follow Mnih et al. (2014) unless a field says otherwise."""

    # Data (see `ram.datasets`): mnist | tfds:NAME[:CONFIG] (a tensorflow-datasets image dataset) |
    # folder:PATH (PATH/train/CLASS/*.png, ...). Classes and channels come from the data (0 below).
    dataset: str = "mnist"
    image_size: int = 0  # > 0: resize every image to image_size x image_size on load; 0: as stored
    # Images of a split up to this many MB stay on the device (as MNIST's do); a larger training split
    # streams from the host, a window of steps_per_call * batch_size images per chunk (ram.input_pipeline),
    # and a larger validation or test split one eval batch at a time (ram.evaluate; not a cluttered task's).
    device_data_mb: int = 2048

    # Task: the image the model looks at (see `ram.tasks`).
    task: str = "mnist"  # mnist (the image as it is) | translated | cluttered
    canvas: int = 28  # side of the square canvas in pixels; task=mnist: the image's own size (from the data)
    clutter_pieces: int = 0  # cluttered: number of digit fragments added to the canvas
    clutter_size: int = 8  # cluttered: side of each fragment in pixels
    train_shift: int = 0  # mnist: shift training digits by up to this many px in x and y (zero fill); 0 = none
    # Any task: rotate each training image (the digit, not the clutter) by a uniform angle within
    # +-train_rotation degrees and scale it by a uniform factor within 1 +- train_scale, about its
    # centre, before it goes on the canvas (`ram.tasks.distort`); 0 = none. Never validation or test.
    train_rotation: float = 0.0
    train_scale: float = 0.0

    # Glimpse sensor (retina).
    patch_size: int = 8  # g: side of the finest patch, and of every patch after pooling
    num_scales: int = 1  # k: number of patches, each `scale_factor` times wider than the last
    scale_factor: int = 2  # s

    # Networks.
    num_glimpses: int = 6
    glimpse_hidden: int = 128  # h_g
    location_hidden: int = 128  # h_l
    glimpse_features: int = 256  # g_t
    core: str = "rnn"  # rnn (ReLU, as in the paper) | lstm | gru
    core_hidden: int = 256
    compute_dtype: str = "float32"  # float32 | bfloat16 (glimpse net and core matmuls; heads stay f32)
    num_classes: int = 0  # 0: from the data (set when the data is loaded; 10 for MNIST)
    channels: int = 0  # C of the images: 0 from the data (set when the data is loaded; 1 for MNIST)

    # Policy.
    policy: str = "learned"  # learned | random (control: every location uniform, no REINFORCE)
    first_location: str = "random"  # random (uniform, as in the paper) | centre | learned
    location_std: float = 0.1  # std of the Gaussian policy, in [-1, 1] units (fixed, as in the paper, or the start)
    location_std_final: float = 0.0  # > 0: anneal the std to this by the last step (cosine); 0: keep it fixed
    policy_hidden: int = 0  # 0: linear location network (paper); > 0: one ReLU layer of this width

    # Loss: cross-entropy + reinforce_weight * REINFORCE + baseline_weight * squared error
    # (+ mean_penalty * squared pre-tanh policy mean; see ram.losses).
    reinforce_weight: float = 1.0
    baseline_weight: float = 1.0
    mean_penalty: float = 0.0  # > 0 keeps the policy's tanh out of saturation (glimpses parked at the edge)
    mean_penalty_margin: float = 0.0  # penalise only |z| beyond this (0: all of |z|^2, which also pulls to the centre)
    samples_per_image: int = 1  # M: trajectories per training image inside the loss (every term averaged over M)
    # Advantage R - baseline of REINFORCE: learned (b_t, the paper's) | loo (mean reward of the image's other
    # M-1 trajectories; needs M >= 2) | both (the leave-one-out mean plus b_t's own correction).
    baseline: str = "learned"
    # Which terms train the core and glimpse network besides the cross-entropy: none (location network
    # and baseline read stop_gradient(h_t)) | reinforce (REINFORCE and mean penalty too, as in the paper) |
    # both (also the baseline's squared error).
    core_gradients: str = "none"

    # Optimisation.
    batch_size: int = 64
    train_steps: int = 30_000
    optimizer: str = "adam"  # adam | sgd (momentum, as in the paper)
    learning_rate: float = 1e-3
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # constant | linear (to 0, the paper's) | cosine (to 0)
    warmup_steps: int = 500
    grad_clip: float = 1.0  # global-norm clipping; 0 disables it
    # Decoupled weight decay (AdamW's, or SGD's with the same rule): each step every weight matrix
    # shrinks by learning_rate(step) * weight_decay * W; biases and vectors are not decayed. 0 = off.
    weight_decay: float = 0.0
    # Dropout on the non-recurrent connections (Zaremba et al., 2014): each glimpse's features g_t
    # on their way into the core, and the classifier's input h_T, drop units at this rate in training
    # episodes only (inverted dropout: kept units are scaled by 1 / (1 - rate)). 0 = off.
    dropout: float = 0.0
    # A run folder whose best parameters start this run, under this config's own schedules (a longer
    # budget spread over runs; the optimiser state starts afresh). "": initialise from `seed`.
    init_from: str = ""

    # Bookkeeping.
    seed: int = 0
    unroll_glimpses: bool = False  # unroll the episode's scan (XLA sees every glimpse; counts FLOPs right)
    steps_per_call: int = 100  # train steps fused into one compiled call (one lax.scan)
    eval_every: int = 2_000  # validate, checkpoint and log every this many steps
    # Also part of the evaluation's random stream: the policy's sampled glimpses (not the images) are
    # drawn per batch, so a run re-evaluates to its recorded numbers with its own value (config.json).
    eval_batch_size: int = 1_000
    mc_samples: int = 10  # trajectories averaged by the MC evaluation

    def policy_std(self, step):
        """Std of the location policy after `step` train steps (a Python or traced number).

        `location_std` throughout, or, with `location_std_final > 0`, cosine-annealed from
        `location_std` to `location_std_final` over `train_steps`. The std is part of the policy: a
        checkpoint is evaluated with the std it was trained with at its step."""
        if not self.location_std_final:
            return self.location_std
        alpha = self.location_std_final / self.location_std
        return optax.cosine_decay_schedule(self.location_std, self.train_steps, alpha)(step)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**{k: _from_json(FIELD_TYPES[k], v) for k, v in d.items()}).validate()

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> Config:
        """The config saved in `path` (a run's config.json); `ConfigError` naming the file if it is not one."""
        try:
            d = json.loads(Path(path).read_text())
            if not isinstance(d, dict):
                raise TypeError("not a JSON object")
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path} is not a valid config: {e}") from None
        except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError; TypeError: a wrong-typed value
            raise ConfigError(f"{path} is not a valid config ({e}); restore it or start a new run") from None

    def check_retina(self, canvas: int) -> Config:
        """`self`, or `ConfigError` if the retina's patches do not fit a `canvas` x `canvas` image."""
        largest = self.patch_size * self.scale_factor ** (self.num_scales - 1)
        if self.patch_size > canvas:
            raise ConfigError(
                f"patch_size={self.patch_size} is larger than the {canvas}x{canvas} canvas; use patch_size <= {canvas}"
            )
        if largest > 4 * canvas:
            raise ConfigError(
                f"the widest retina patch ({largest} px = patch_size*scale_factor^(num_scales-1)) is over 4x "
                f"the {canvas}px canvas: lower num_scales or scale_factor"
            )
        return self

    def validate(self) -> Config:
        """Returns self, or raises `ConfigError` naming the field to fix."""

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        for f in dataclasses.fields(self):  # first: the checks below compare numbers and strings
            value, kind = getattr(self, f.name), FIELD_TYPES[f.name]
            need(_has_type(value, kind), f"{f.name}={value!r}: must be {_TYPE_NAMES[kind]}")
        need(
            0 <= self.seed < MAX_SEED,
            f"seed={self.seed}: must be in [0, {MAX_SEED}) (jax.random.key takes 32 bits, and the seeds of "
            "--seeds N count up from it in int32)",
        )
        for name, choices in (
            ("task", TASKS),
            ("core", CORES),
            ("policy", POLICIES),
            ("first_location", FIRST_LOCATIONS),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("compute_dtype", DTYPES),
            ("baseline", BASELINES),
            ("core_gradients", CORE_GRADIENTS),
        ):
            need(getattr(self, name) in choices, f"{name}={getattr(self, name)!r}: choose one of {choices}")
        need(self.num_glimpses >= 1, f"num_glimpses={self.num_glimpses}: the model needs at least 1 glimpse")
        need(self.patch_size >= 1, f"patch_size={self.patch_size}: must be at least 1 pixel")
        need(self.num_scales >= 1, f"num_scales={self.num_scales}: must be at least 1")
        need(self.scale_factor >= 1, f"scale_factor={self.scale_factor}: must be an integer >= 1")
        need(
            self.location_std > 0,
            f"location_std={self.location_std}: the Gaussian policy needs a positive standard deviation",
        )
        need(
            0 <= self.location_std_final <= self.location_std,
            f"location_std_final={self.location_std_final}: must be between 0 (fixed std) and "
            f"location_std={self.location_std}",
        )
        from ram.datasets import parse_dataset  # here: ram.datasets imports this module

        parse_dataset(self.dataset)
        need(self.image_size >= 0, f"image_size={self.image_size}: must be >= 0 (0 keeps the images' size)")
        need(self.device_data_mb >= 0, f"device_data_mb={self.device_data_mb}: must be >= 0 (0 always streams)")
        # The images' side where the config alone tells it (MNIST's 28, or image_size); the data's own
        # size is checked when it is loaded (`ram.datasets.fit_config`, which also sets task=mnist's canvas).
        side = self.image_size or (28 if self.dataset == "mnist" else 0)
        if self.task == "mnist" and self.dataset == "mnist" and not self.image_size:
            need(
                self.canvas == 28,
                f"canvas={self.canvas}: task=mnist uses the 28x28 digits as they are; "
                "use task=translated for a larger canvas",
            )
        elif self.task != "mnist" and side:
            what = "a 28x28 digit" if side == 28 else f"the {side}x{side} images"
            need(self.canvas >= side, f"canvas={self.canvas}: a {self.task} canvas must hold {what}")
        # Another dataset's image size is known once it is loaded: datasets.fit_config checks the shift then.
        need(
            self.train_shift == 0 or (self.task == "mnist" and 0 < self.train_shift < (side or math.inf) / 2),
            f"train_shift={self.train_shift}: a shift augments task=mnist only, by "
            f"{f'1 to {side // 2 - 1}' if side else 'a positive number of'} pixels (translated and cluttered "
            "images already move over the canvas)",
        )
        need(
            0 <= self.train_rotation <= 180,
            f"train_rotation={self.train_rotation}: must be between 0 (none) and 180 degrees",
        )
        need(0 <= self.train_scale < 1, f"train_scale={self.train_scale}: must be >= 0 (none) and below 1")
        need(
            self.task == "cluttered" or self.clutter_pieces == 0,
            f"clutter_pieces={self.clutter_pieces}: clutter is added by task=cluttered only; set clutter_pieces=0 "
            f"for task={self.task}",
        )
        need(
            self.task == "cluttered" or self.clutter_size == Config.clutter_size,
            f"clutter_size={self.clutter_size}: clutter is added by task=cluttered only, task={self.task} "
            "would ignore it",
        )
        if self.task == "cluttered":
            need(self.clutter_pieces >= 1, "task=cluttered needs clutter_pieces >= 1")
            need(
                1 <= self.clutter_size <= (side or self.canvas) and self.clutter_size <= self.canvas,
                f"clutter_size={self.clutter_size}: must be between 1 and {side or self.canvas} and fit the canvas",
            )
        # task=mnist looks at the images as they are: their size is known here for MNIST or image_size,
        # else only once the data is loaded (`ram.datasets.fit_config` checks the retina then).
        canvas = self.canvas if self.task != "mnist" else side
        if canvas:
            self.check_retina(canvas)
        for name in (
            "glimpse_hidden",
            "location_hidden",
            "glimpse_features",
            "core_hidden",
            "batch_size",
            "train_steps",
            "steps_per_call",
            "eval_every",
            "eval_batch_size",
            "mc_samples",
        ):
            need(getattr(self, name) >= 1, f"{name}={getattr(self, name)}: must be at least 1")
        need(
            self.samples_per_image >= 1,
            f"samples_per_image={self.samples_per_image}: must be at least 1 trajectory per image",
        )
        need(
            self.baseline == "learned" or self.samples_per_image >= 2,
            f"baseline={self.baseline} averages the rewards of the other samples of an image: "
            f"set samples_per_image >= 2 (it is {self.samples_per_image})",
        )
        need(self.policy_hidden >= 0, f"policy_hidden={self.policy_hidden}: must be >= 0 (0 = linear)")
        need(
            self.num_classes == 0 or self.num_classes >= 2,
            f"num_classes={self.num_classes}: must be at least 2 (or 0: from the data)",
        )
        need(self.channels >= 0, f"channels={self.channels}: must be >= 1 (or 0: from the data)")
        if self.dataset == "mnist":
            need(
                self.num_classes in (0, 10),
                f"num_classes={self.num_classes}: dataset=mnist's labels are 0-9; use 10 (or 0: from the data)",
            )
            need(self.channels in (0, 1), f"channels={self.channels}: MNIST images have 1 channel")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                need(math.isfinite(value), f"{f.name}={value}: must be a finite number")
        for name in ("reinforce_weight", "baseline_weight"):
            need(getattr(self, name) >= 0, f"{name}={getattr(self, name)}: must be >= 0")
        need(0 <= self.momentum < 1, f"momentum={self.momentum}: must be in [0, 1)")
        need(
            self.optimizer == "sgd" or self.momentum == Config.momentum,
            f"momentum={self.momentum} is SGD's: optimizer={self.optimizer} would ignore it (set optimizer=sgd)",
        )
        need(self.mean_penalty >= 0, f"mean_penalty={self.mean_penalty}: must be >= 0 (0 = off)")
        need(self.mean_penalty_margin >= 0, f"mean_penalty_margin={self.mean_penalty_margin}: must be >= 0")
        need(
            not self.mean_penalty_margin or self.mean_penalty > 0,
            f"mean_penalty_margin={self.mean_penalty_margin} has no effect with mean_penalty=0: set mean_penalty > 0",
        )
        if self.policy == "random":  # every glimpse uniform: no location network to configure
            ignored = [
                f"{name}={getattr(self, name)}"
                for name, off in (
                    ("first_location", "random"),
                    ("policy_hidden", 0),
                    ("mean_penalty", 0.0),
                    ("location_std_final", 0.0),
                    ("baseline", "learned"),
                    ("core_gradients", "none"),
                )
                if getattr(self, name) != off
            ]
            need(not ignored, f"policy=random samples every glimpse uniformly and would ignore {', '.join(ignored)}")
        need(self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be positive")
        need(self.grad_clip >= 0, f"grad_clip={self.grad_clip}: must be >= 0 (0 disables clipping)")
        need(self.weight_decay >= 0, f"weight_decay={self.weight_decay}: must be >= 0 (0 = off)")
        need(0 <= self.dropout < 1, f"dropout={self.dropout}: must be >= 0 (0 = off) and below 1")
        need(
            0 <= self.warmup_steps < self.train_steps,
            f"warmup_steps={self.warmup_steps}: must be >= 0 and below train_steps={self.train_steps} "
            "(for a short run, set warmup_steps=0 or about a tenth of train_steps)",
        )
        need(
            self.train_steps % self.steps_per_call == 0,
            f"train_steps={self.train_steps} must be a multiple of steps_per_call={self.steps_per_call} "
            "(the train step runs steps_per_call steps per call; set steps_per_call too for a short run)",
        )
        need(
            self.eval_every % self.steps_per_call == 0,
            f"eval_every={self.eval_every} must be a multiple of steps_per_call={self.steps_per_call}",
        )
        return self


FIELD_TYPES: dict[str, type] = typing.get_type_hints(Config)  # name -> int | float | str | bool
_TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


# Seeds 0 <= seed < MAX_SEED: `jax.random.key(seed + i)` of seed i of --seeds N is built from an int32
# (`ram.step.seed_keys`), which leaves room for 2**16 seeds trained at once.
MAX_SEED = 2**31 - 2**16


def _has_type(value, kind: type) -> bool:
    """Whether `value` is of a field's type: bool is not a number, an int is a float."""
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, int | float) if kind is float else isinstance(value, kind)


def _from_json(kind: type, value):
    """A JSON value as the field's type where nothing is lost: 6.0 -> 6 for an int, 1 -> 1.0 for a float."""
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# Unrolling the glimpse loop lets XLA fuse across glimpses: on the 2-core CPU it raised mnist28's
# training throughput at batch 128 from 62% to 76% of the matmul rate (experiments/BENCH.md). The
# dataclass default stays False so that configs saved before the field existed load as they ran.
_FAST = {"unroll_glimpses": True}

PRESETS: dict[str, Config] = {
    # 28x28 MNIST, the paper's Table 1 (a): 8x8 patch, 1 scale, 6 glimpses.
    "mnist28": Config(**_FAST),
    # Translated MNIST 60x60, Table 1 (b): 12x12 patches, 3 scales.
    "translated60": Config(**_FAST, task="translated", canvas=60, patch_size=12, num_scales=3, num_glimpses=8),
    # Cluttered MNIST 60x60 with 4 pieces of 8x8, Table 2 (a).
    "cluttered60": Config(
        **_FAST, task="cluttered", canvas=60, clutter_pieces=4, patch_size=12, num_scales=3, num_glimpses=8
    ),
    # Cluttered MNIST 100x100 with 8 pieces of 8x8, Table 2 (b): 4 scales.
    "cluttered100": Config(
        **_FAST, task="cluttered", canvas=100, clutter_pieces=8, patch_size=12, num_scales=4, num_glimpses=8
    ),
}


def _parse_value(name: str, kind: type, text: str):
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError
        if kind is int:
            if "e" not in text.lower():
                return int(text)
            value = float(text)  # 1e5, 1.2e4
            if not value.is_integer():
                raise ValueError
            return int(value)
        return kind(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a value of type {kind.__name__}") from None


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """Applies `key=value` strings to `config`; raises `ConfigError` for unknown keys or bad values."""
    hints = typing.get_type_hints(Config)
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in hints or key.startswith("_"):
            close = difflib.get_close_matches(key, [k for k in hints if not k.startswith("_")], n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"unknown config field {key!r}; {guess}known fields: {sorted(hints)}")
        changes[key] = _parse_value(key, hints[key], text.strip())
    return config.replace(**changes).validate()


def get_config(preset: str, overrides: Iterable[str] = ()) -> Config:
    """The preset's config with `overrides` applied, validated."""
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, PRESETS, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown preset {preset!r}; {guess}choose one of {sorted(PRESETS)}")
    return apply_overrides(PRESETS[preset], overrides)


def overrides_between(base: Config, config: Config) -> list[str]:
    """The `key=value` overrides that turn `base` into `config` (`apply_overrides` reads each one back)."""
    text = lambda v: str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)  # noqa: E731
    return [
        f"{f.name}={text(getattr(config, f.name))}"
        for f in dataclasses.fields(Config)
        if getattr(base, f.name) != getattr(config, f.name)
    ]
