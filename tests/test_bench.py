"""The benchmark tool reports what it promises (a functional check on a tiny model, not a speed test)."""

import json

import pytest

from ram import bench, tasks
from ram.cli import main
from ram.config import Config


def test_bench_json_records(capsys):
    code = main(
        [
            "bench",
            "mnist28",
            "num_glimpses=2",
            "glimpse_features=32",
            "core_hidden=32",
            "steps_per_call=2",
            "samples_per_image=2",
            "--batch-sizes",
            "16",
            "--seconds",
            "0.05",
            "--json",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["batch_size"] for r in records] == [16]
    for r in records:
        assert r["preset"] == "mnist28"
        assert r["train_images_per_s"] > 0 and r["eval_images_per_s"] > 0 and r["matmul_flops_per_s"] > 0
        assert r["train_trajectories_per_s"] == pytest.approx(2 * r["train_images_per_s"], abs=0.2)  # M = 2
        # XLA's count covers every glimpse: more than 2 glimpses' worth of the two 32x32 core matmuls.
        assert r["flops_per_image"] > 2 * 3 * 2 * 32 * 32
        assert (
            0
            < r["matmul_fraction"]
            == round(r["flops_per_image"] * r["train_images_per_s"] / r["matmul_flops_per_s"], 4)
        )


def test_bench_times_the_images_the_config_trains_on(capsys):
    """Colour images resized to 20x20 on a translated 32x32 canvas: the model and the random images
    (synthetic) have 3 channels."""
    argv = ["bench", "translated60", "dataset=tfds:cifar10", "image_size=20", "channels=3", "canvas=32"]
    argv += ["patch_size=8", "num_glimpses=2", "steps_per_call=2", "--batch-sizes", "8", "--seconds", "0.05", "--json"]
    assert main(argv) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["image_shape"] == [20, 20, 3] and record["train_images_per_s"] > 0


def test_flops_count_grows_with_glimpses():
    data = tasks.synthetic_split(64)
    small = Config(glimpse_features=32, core_hidden=32, batch_size=8)
    one, four = (bench.train_flops_per_image(small.replace(num_glimpses=n), data) for n in (1, 4))
    assert four > 2.5 * one  # the scan's body is counted once per glimpse, not once


def test_matmul_rate_grows_the_product_until_it_is_long_enough_to_time(monkeypatch):
    sizes = []

    def fake(n, repeats, dtype):  # a device where every product takes 0.1 ms
        sizes.append(n)
        return 2.0 * n**3 / 1e-4, 1e-4

    monkeypatch.setattr(bench, "_matmul_rate_at", fake)
    assert bench.matmul_rate(start=64, largest=512) == 2.0 * 512**3 / 1e-4
    assert sizes == [64, 128, 256, 512]
    sizes.clear()
    bench.matmul_rate(start=64, min_seconds=1e-5)  # long enough at once: one size only
    assert sizes == [64]
    sizes.clear()
    bench.matmul_rate(start=96, largest=512)  # never past `largest`
    assert sizes == [96, 192, 384, 512]
    sizes.clear()
    bench.matmul_rate(n=100)
    assert sizes == [100]


def test_matmul_rate_is_that_of_a_timed_product(monkeypatch):
    """The rate is 2 n^3 / (the time of the fastest product): with a clock that advances 10 ms per
    reading, exactly 2 n^3 / 10 ms; with the real clock, within what any CPU or GPU does."""
    import itertools

    n = 96
    real = bench.matmul_rate(n=n, repeats=3)
    assert 1e8 < real < 1e16  # 0.1 GFLOP/s to 10 PFLOP/s
    ticks = itertools.count()
    monkeypatch.setattr(bench.time, "perf_counter", lambda: 0.01 * next(ticks))
    assert bench.matmul_rate(n=n, repeats=3) == pytest.approx(2 * n**3 / 0.01)


def test_bench_of_another_dataset_needs_its_shape(capsys):
    assert main(["bench", "mnist28", "dataset=folder:/nowhere", "--batch-sizes", "16"]) == 2
    assert "ram bench times random images" in capsys.readouterr().err
