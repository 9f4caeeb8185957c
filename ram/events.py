"""TensorBoard event files of a run, beside metrics.jsonl (which stays the source of truth).

`ram.rundir.RunDir.event_writer()` opens an `EventWriter` on the run folder; the training loop gives it
each metrics line (`scalars`) and the glimpse figure of each validation (`image`). Written with
tensorboardX, so `tensorboard --logdir experiments/runs` shows every run. With N seeds trained at
once, each scalar is logged once per seed as `NAME/seedS`. A resumed run purges the events after its
checkpoint's step, as it truncates metrics.jsonl there.

`read_events` reads the files back (with TensorFlow's reader), for tests and tools.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

NOT_SCALARS = ("step",)


class EventWriter:
    """Writes scalars and images into `folder`'s event files."""

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(logdir=str(folder), purge_step=purge_step, flush_secs=30)

    def scalars(self, record: dict, seeds: list[int]) -> None:
        """Every number of a metrics line at its `step`: a number per field, or a list of one per seed."""
        step = int(record["step"])
        for key, value in record.items():
            if key in NOT_SCALARS:
                continue
            values = value if isinstance(value, list) else [value]
            for seed, v in zip(seeds, values, strict=False):
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    continue  # a null (non-finite) metric
                tag = key if len(seeds) == 1 else f"{key}/seed{seed}"
                self._writer.add_scalar(tag, float(v), step)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """An [H, W, 3] uint8 image."""
        self._writer.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_events(folder: str | os.PathLike) -> dict:
    """`{"scalars": {tag: [(step, value), ...]}, "images": {tag: [(step, (height, width)), ...]}}` of
    every event file in `folder`, in file order (a purged step's later values replace it)."""
    import tensorflow as tf

    scalars, images = {}, {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.HasField("image"):
                    images.setdefault(value.tag, []).append((event.step, (value.image.height, value.image.width)))
                elif value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return {"scalars": scalars, "images": images}
