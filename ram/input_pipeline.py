"""The training images of each chunk of train steps: on the device when they fit, else streamed from the host.

The compiled chunk (`ram.step.make_train_chunk`) takes a `DeviceSplit` and draws each of its
`steps_per_call` batches from it (uniformly, with replacement; clutter from the same split).
`TrainFeed` hands it, chunk after chunk:

* the whole training split, put on the device once, when its images take at most
  `config.device_data_mb` MiB. MNIST's 50,000 training digits take 37 MiB, CIFAR-10's 50,000 32x32x3
  images 146 MiB; the default 2048 MiB holds 2.7M MNIST-sized digits or 699k 32x32 colour images (on a
  CPU the device's memory is the host's);
* otherwise, a window of `steps_per_call * batch_size` training images per chunk, drawn uniformly with
  replacement on the host (`window_indices`), gathered and prefetched by a tf.data pipeline while the
  device trains on the previous window. Each chunk's batches and clutter then come from its window.
  Window c depends on (seed, c) alone, so a resumed run sees the windows an uninterrupted one does.
  The N seeds of a `--seeds N` run share the windows of its first seed (each draws its own batches
  from them), so they are not N independent runs' streams as they are for a split on the device.

Validation and test splits larger than `device_data_mb` are evaluated one batch at a time
(`ram.evaluate.make_evaluator`), except a cluttered task's, whose clutter comes from the whole split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ram import tasks
from ram.config import Config
from ram.data import Split

PREFETCH = 2  # windows gathered ahead of the device


def fits_on_device(split, config: Config) -> bool:
    """Whether a split's images take at most `config.device_data_mb` MB."""
    return tasks.nbytes(split) <= config.device_data_mb * 2**20


def window_indices(num_images: int, window: int, seed: int, chunk: int) -> np.ndarray:
    """[window] sorted int64 indices into the training split for chunk `chunk` of the run of `seed`."""
    rng = np.random.default_rng([seed, chunk])
    return np.sort(rng.integers(0, num_images, window))


class TrainFeed:
    """`next(feed)`: the `DeviceSplit` the next chunk of `config.steps_per_call` train steps draws from.

    Args:
      split: the host training split (`ram.data.Split`: images [N, h, w, C] or [N, h, w], labels [N]).
      config: `device_data_mb`, `steps_per_call`, `batch_size`, `seed`.
      start_step: the step the run starts (or resumes) at, a multiple of `steps_per_call`.
      put: places a `DeviceSplit` on the devices (e.g. replicated over a mesh).
    """

    def __init__(self, split, config: Config, start_step: int = 0, put: Callable | None = None):
        self.put = put or (lambda x: x)
        self.streaming = not fits_on_device(split, config)
        self._split = None if self.streaming else self.put(tasks.to_device(split))
        self._iterator = None
        if self.streaming:
            self._iterator = _window_pipeline(split, config, start_step // config.steps_per_call)

    def __iter__(self):
        return self

    def __next__(self) -> tasks.DeviceSplit:
        if not self.streaming:
            return self._split
        return self.put(tasks.to_device(Split(*next(self._iterator))))

    def close(self) -> None:
        self._iterator = None


def _window_pipeline(split, config: Config, first_chunk: int):
    """A tf.data pipeline of (images [W, ...] uint8, labels [W] int32) windows from chunk `first_chunk` on."""
    import tensorflow as tf

    images, labels = np.asarray(split.images), np.asarray(split.labels, np.int32)
    window = config.steps_per_call * config.batch_size

    def gather(chunk):
        index = window_indices(len(labels), window, config.seed, int(chunk))
        return images[index], labels[index]

    last_chunk = first_chunk + 2**40  # as many as training asks for
    ds = tf.data.Dataset.range(first_chunk, last_chunk)
    ds = ds.map(lambda c: tf.numpy_function(gather, [c], (tf.uint8, tf.int32)), deterministic=True)
    return ds.prefetch(PREFETCH).as_numpy_iterator()
