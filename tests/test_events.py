"""TensorBoard events: what `ram.events.EventWriter` writes, read back with TensorFlow's reader."""

import numpy as np
import tensorflow as tf

from ram import events


def test_scalars_per_seed_images_and_nulls(tmp_path):
    writer = events.EventWriter(tmp_path)
    writer.scalars({"step": 10, "train_loss": [0.5, 0.25], "val_error_pct": [None, 3.0]}, seeds=[4, 5])
    writer.scalars({"step": 20, "train_loss": 0.125, "flag": True}, seeds=[0])
    writer.image("glimpses/validation", 20, np.zeros((6, 9, 3), np.uint8))
    writer.close()
    logged = events.read_events(tmp_path)
    assert logged["scalars"] == {
        "train_loss/seed4": [(10, 0.5)],
        "train_loss/seed5": [(10, 0.25)],
        "val_error_pct/seed5": [(10, 3.0)],  # seed 4's null (a non-finite metric) is not logged
        "train_loss": [(20, 0.125)],
    }
    assert logged["images"] == {"glimpses/validation": [(20, (6, 9))]}


def test_a_resumed_writer_marks_the_purge_step(tmp_path):
    """A resumed run opens a second file that starts with a SessionLog START at the step after its
    checkpoint: TensorBoard then drops the first file's events from that step on."""
    events.EventWriter(tmp_path).close()
    (first,) = tmp_path.glob("events.out.tfevents.*")
    first.rename(tmp_path / "events.out.tfevents.0000000000.first")  # two files in one second
    writer = events.EventWriter(tmp_path, purge_step=21)
    writer.scalars({"step": 30, "train_loss": 1.0}, seeds=[0])
    writer.close()
    second = max(tmp_path.glob("events.out.tfevents.*"))
    records = list(tf.compat.v1.train.summary_iterator(str(second)))
    starts = [r.step for r in records if r.HasField("session_log")]
    assert starts == [21]
    assert records[0].file_version == "brain.Event:2"
