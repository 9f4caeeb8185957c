"""TensorBoard event files of a run, beside metrics.jsonl (which stays the source of truth).

`ram.rundir.RunDir.event_writer()` opens an `EventWriter` on the run folder; the training loop gives it
each metrics line (`scalars`) and the glimpse figure of each validation (`image`). Written with
tensorboardX's record writer, synchronously (see `EventWriter`), so `tensorboard --logdir
experiments/runs` shows every run. With N seeds trained at once, each scalar is logged once per
seed as `NAME/seedS`. A resumed run purges the events after its checkpoint's step, as it truncates
metrics.jsonl there.

`read_events` reads the files back (with TensorFlow's reader), for tests and tools.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from pathlib import Path

import numpy as np

from ram.errors import RamError

NOT_SCALARS = ("step",)
_WRITERS = itertools.count()  # numbers the event files this process opens


class EventWriter:
    """Writes scalars and images into an event file in `folder`, synchronously.

    tensorboardX's `SummaryWriter` writes from a background thread: a full disk under a running job
    then prints a thread's traceback for every event, and training goes on as if nothing happened.
    Here each call writes its events and flushes them to disk (`fsync`) before it returns (a few
    records per validation: nothing to gain from a thread), and any `OSError` becomes one `RamError`
    naming the folder, as a failed metrics line does."""

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self._event = Event
        self._folder = Path(folder)
        with self._errors():
            # events.out.tfevents.<time>.<host>.<pid>.<n>: writers opened within one second (a run
            # resumed at once, in one process or another) get files of their own
            suffix = f".{os.getpid()}.{next(_WRITERS)}"
            self._writer = EventsWriter(str(self._folder / "events"), filename_suffix=suffix)
            if purge_step is not None:
                # What SummaryWriter(purge_step=...) writes: TensorBoard drops the events logged at or
                # after `purge_step` before this one (those of an interrupted run's lost steps).
                self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except OSError as e:
            raise RamError(f"cannot write TensorBoard events in {self._folder}: {e.strerror or e}") from None

    def _write(self, *events) -> None:
        with self._errors():
            for event in events:
                self._writer.write_event(event)
            self._writer.flush()

    def scalars(self, record: dict, seeds: list[int]) -> None:
        """Every number of a metrics line at its `step`: a number per field, or a list of one per seed."""
        from tensorboardX import summary

        step, now = int(record["step"]), time.time()
        events = []
        for key, value in record.items():
            if key in NOT_SCALARS:
                continue
            values = value if isinstance(value, list) else [value]
            for seed, v in zip(seeds, values, strict=False):
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    continue  # a null (non-finite) metric
                tag = key if len(seeds) == 1 else f"{key}/seed{seed}"
                events.append(self._event(summary=summary.scalar(tag, float(v)), step=step, wall_time=now))
        self._write(*events)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """An [H, W, 3] uint8 image."""
        from tensorboardX import summary

        self._write(self._event(summary=summary.image(tag, image, dataformats="HWC"), step=step, wall_time=time.time()))

    def close(self) -> None:
        """Closes the file; quietly, as it runs in the training loop's `finally`: every event was
        flushed when written, and an error there (a full disk) was reported then."""
        with contextlib.suppress(OSError):
            self._writer.close()


def read_events(folder: str | os.PathLike) -> dict:
    """`{"scalars": {tag: [(step, value), ...]}, "images": {tag: [(step, (height, width)), ...]}}` of
    every event file in `folder`, oldest file first, as TensorBoard shows them: a file's purge marker
    (a resumed run's) drops the values logged at or after its step before it."""
    import tensorflow as tf

    files = [list(tf.compat.v1.train.summary_iterator(str(p))) for p in Path(folder).glob("events.out.tfevents.*")]
    scalars, images = {}, {}
    for records in sorted((r for r in files if r), key=lambda records: records[0].wall_time):
        for event in records:
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                for logged in (scalars, images):
                    for tag, values in logged.items():
                        logged[tag] = [v for v in values if v[0] < event.step]
            for value in event.summary.value:
                if value.HasField("image"):
                    images.setdefault(value.tag, []).append((event.step, (value.image.height, value.image.width)))
                elif value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return {"scalars": scalars, "images": images}
