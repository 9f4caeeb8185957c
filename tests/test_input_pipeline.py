"""Training data larger than `device_data_mb` streams from the host in prefetched windows; smaller
data stays on the device. Synthetic arrays (not MNIST); the threshold is forced to 0 to stream."""

import time

import numpy as np
from conftest import TINY

from ram import input_pipeline, tasks, train
from ram.data import Mnist, Split


def synthetic(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = np.clip(labels[:, None, None] * 25 + rng.integers(0, 20, (n, 28, 28)), 0, 255).astype(np.uint8)
    return Split(images, labels)


def test_window_indices_are_fixed_by_seed_and_chunk():
    a = input_pipeline.window_indices(1000, 50, seed=3, chunk=7)
    assert a.shape == (50,) and a.min() >= 0 and a.max() < 1000 and np.all(np.diff(a) >= 0)
    np.testing.assert_array_equal(a, input_pipeline.window_indices(1000, 50, seed=3, chunk=7))
    assert not np.array_equal(a, input_pipeline.window_indices(1000, 50, seed=3, chunk=8))
    assert not np.array_equal(a, input_pipeline.window_indices(1000, 50, seed=4, chunk=7))


def test_small_data_stays_on_the_device():
    split = synthetic()
    assert tasks.nbytes(split) == 64 * 28 * 28
    feed = input_pipeline.TrainFeed(split, TINY)
    assert not feed.streaming and next(feed) is next(feed)
    np.testing.assert_array_equal(next(feed).images[..., 0], split.images)


def test_large_data_streams_prefetched_windows(monkeypatch):
    split = synthetic()
    config = TINY.replace(device_data_mb=0)  # every split is "too large": stream it
    calls = []
    real = input_pipeline.window_indices

    def counting(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(input_pipeline, "window_indices", counting)
    window = config.steps_per_call * config.batch_size
    feed = input_pipeline.TrainFeed(split, config)
    first = next(feed)
    assert feed.streaming and first.images.shape == (window, 28, 28, 1) and first.labels.shape == (window,)
    index = real(64, window, config.seed, 0)
    np.testing.assert_array_equal(first.images[..., 0], split.images[index])
    np.testing.assert_array_equal(first.labels, split.labels[index])
    deadline = time.time() + 10
    while len(calls) < 2 and time.time() < deadline:  # the next window is gathered before it is asked for
        time.sleep(0.05)
    assert len(calls) >= 2
    second, third = next(feed), next(feed)
    # A run resumed at step 2 * steps_per_call sees the windows an uninterrupted one does.
    resumed = input_pipeline.TrainFeed(split, config, start_step=2 * config.steps_per_call)
    np.testing.assert_array_equal(next(resumed).images, third.images)
    assert not np.array_equal(second.images, third.images)
    feed.close()


def test_training_from_streamed_windows(tmp_path):
    data = Mnist(synthetic(64), synthetic(40, seed=1), synthetic(40, seed=2))
    config = TINY.replace(device_data_mb=0, train_steps=60, learning_rate=1e-2)
    results = train.train_and_evaluate(config, tmp_path, data, progress=False)
    assert results["num_seeds"] == 1 and 0.0 <= results["test_error_pct"][0] <= 100.0
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
