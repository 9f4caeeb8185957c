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


def test_a_resumed_run_purges_the_steps_after_its_checkpoint(tmp_path):
    """A resumed run opens a second file (within the same second here) that starts with a SessionLog
    START at the step after its checkpoint: the first file's later values are dropped, as TensorBoard
    drops them."""
    first = events.EventWriter(tmp_path)
    for step in (10, 20, 30):
        first.scalars({"step": step, "train_loss": float(step)}, seeds=[0])
    first.close()
    resumed = events.EventWriter(tmp_path, purge_step=21)  # the checkpoint was at step 20
    resumed.scalars({"step": 30, "train_loss": 3.5}, seeds=[0])
    resumed.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert events.read_events(tmp_path)["scalars"] == {"train_loss": [(10, 10.0), (20, 20.0), (30, 3.5)]}
    newest = max(tmp_path.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns)
    records = list(tf.compat.v1.train.summary_iterator(str(newest)))
    assert records[0].file_version == "brain.Event:2"
    assert [r.step for r in records if r.HasField("session_log")] == [21]
