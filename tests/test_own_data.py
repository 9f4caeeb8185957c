"""Training on your own images from the command line: a folder of real MNIST digits learns, a folder
of colour images trains, evaluates, draws colour glimpses and logs TensorBoard events, a tfds
dataset (mocked) trains."""

import json

import numpy as np
import pytest

from ram import datasets, events
from ram.cli import main

SMALL = [
    "patch_size=4",
    "num_scales=2",
    "num_glimpses=2",
    "glimpse_hidden=8",
    "location_hidden=8",
    "glimpse_features=16",
    "core_hidden=16",
    "batch_size=16",
    "train_steps=40",
    "steps_per_call=10",
    "eval_every=20",
    "eval_batch_size=16",
    "mc_samples=2",
    "warmup_steps=0",
    "--no-progress",
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def colour_folder(root, n_per_class=12, size=16, seed=0):
    """Synthetic RGB images (not real data): a 6x6 square of the class's colour at a random place."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for split, n in (("train", n_per_class), ("test", n_per_class // 2)):
        for name, rgb in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 30, (size, size, 3), dtype=np.uint8)
                top, left = rng.integers(0, size - 6, 2)
                image[top : top + 6, left : left + 6] = rgb
                Image.fromarray(image).save(root / split / name / f"{i}.png")
    return root


def test_colour_folder_trains_evaluates_visualises_and_logs(capsys, tmp_path, monkeypatch):
    """Also: a relative folder path is recorded as an absolute one, and the run's data.json makes
    `ram eval` say when the folder's test images changed since training."""
    import matplotlib

    matplotlib.use("Agg")
    from PIL import Image

    folder = colour_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    out = run(capsys, "train", "mnist28", "dataset=folder:images", *SMALL, "--run-dir", run_dir)
    trained = json.loads(out[out.index("{") :])
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["num_classes"], config["channels"], config["canvas"]) == (3, 3, 16)  # from the data
    assert config["dataset"] == f"folder:{folder}"
    data = json.loads((run_dir / "data.json").read_text())
    assert data["train"]["images"] + data["validation"]["images"] == 36 and data["test"]["images"] == 18
    monkeypatch.chdir(run_dir)  # elsewhere: the recorded path still names the folder
    assert main(["eval", str(run_dir), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["test_error_pct"] == trained["test_error_pct"] and "differs" not in out.err
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "test" / "red" / "new.png")
    assert main(["eval", str(run_dir), "--json"]) == 0
    assert "the data differs from what" in capsys.readouterr().err
    (folder / "test" / "red" / "new.png").unlink()
    assert data["class_names"] == ["blue", "green", "red"]  # label i's name, for ram predict
    # A folder that moved: one line that says how to name it, and --dataset names it.
    moved = folder.rename(tmp_path / "moved")
    assert main(["eval", str(run_dir), "--json"]) == 2
    assert "if the run's folder moved, name it: --dataset folder:PATH" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--json", "--dataset", f"folder:{moved}"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["test_error_pct"] == trained["test_error_pct"] and "differs" not in out.err
    folder = moved.rename(folder)

    # TensorBoard: every number of metrics.jsonl, and the glimpse figure of each validation.
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = events.read_events(run_dir)
    assert logged["scalars"]["val_error_pct"] == [(r["step"], pytest.approx(r["val_error_pct"])) for r in lines]
    assert [s for s, _ in logged["scalars"]["train_loss"]] == [20, 40]
    assert [s for s, _ in logged["images"]["glimpses/validation"]] == [20, 40]

    # Colour glimpses: the figure shows the blue squares of the blue test images in blue.
    png, _ = run(capsys, "visualize", run_dir, "--num", "3").split()
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"), int)
    blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    assert blue.mean() > 1e-3
    grid = tmp_path / "grid.png"
    run(capsys, "data", "show", "cluttered60", f"dataset=folder:{folder}", "--num", "4", "--out", grid)
    assert grid.is_file()


def test_mismatched_settings_and_bad_data_are_one_line(capsys, tmp_path):
    folder = colour_folder(tmp_path / "images", n_per_class=2)
    for argv, message in [
        (["num_classes=10"], "num_classes=10: folder:.* has 3 classes; set num_classes=3"),
        (["dataset=folder:/no/such/folder"], "is not a folder"),
        (["task=translated", "canvas=12", "patch_size=4"], "canvas=12: a translated canvas must hold the 16x16"),
        (["patch_size=20"], "with the 16x16 images of folder:.*: patch_size=20 is larger than the 16x16 canvas"),
    ]:
        code = main(["train", "mnist28", f"dataset=folder:{folder}", *argv, "--run-dir", str(tmp_path / "r")])
        captured = capsys.readouterr()
        err = captured.err
        assert code == 2 and err.count("\n") == 1 and err.startswith("ram: error: "), err
        assert "training" not in captured.out  # said before training is announced
        assert __import__("re").search(message, err), err


def test_tfds_dataset_trains_from_the_command_line(capsys, tmp_path):
    """`dataset=tfds:cifar10` through tensorflow-datasets' mock (random 32x32 RGB images; nothing downloads)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        out = run(capsys, "train", "cluttered60", "dataset=tfds:cifar10", "canvas=40", *SMALL, "--run-dir", tmp_path)
    assert json.loads(out[out.index("{") :])["test_error_pct"][0] <= 100.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["dataset"], config["num_classes"], config["channels"]) == ("tfds:cifar10", 10, 3)


@pytest.mark.slow
def test_training_through_a_folder_of_real_mnist_digits_learns(capsys, tmp_path, mnist_dir):
    """Real MNIST digits exported as PNGs (3,000 training digits), trained through `folder:`: far
    better than chance (90% error). About a minute on 2 CPU cores."""
    mnist = datasets.load_dataset("mnist", mnist_dir=mnist_dir)
    subset = mnist._replace(
        train=datasets.Split(mnist.train.images[:3000], mnist.train.labels[:3000]),
        validation=datasets.Split(mnist.validation.images[:500], mnist.validation.labels[:500]),
        test=datasets.Split(mnist.test.images[:1000], mnist.test.labels[:1000]),
    )
    folder = datasets.write_folder(subset, tmp_path / "digits")
    overrides = ["train_steps=1200", "eval_every=400", "warmup_steps=100", "learning_rate=2e-3", "mc_samples=2"]
    out = run(
        capsys,
        "train",
        "mnist28",
        f"dataset=folder:{folder}",
        *overrides,
        "--no-progress",
        "--run-dir",
        tmp_path / "run",
    )
    results = json.loads(out[out.index("{") :])
    assert results["test_error_pct"][0] < 30.0, results


def test_arrays_of_any_shape_train_from_python_and_say_so_on_the_command_line(capsys, tmp_path):
    """Synthetic colour arrays (not real data), 3 classes of 16x16 RGB images: `from_arrays` trains
    them whatever the config's dataset says (the MNIST-only checks do not apply), the run records
    `dataset=arrays`, `ram eval` says in one line that arrays come from Python, and
    `evaluate_run` with the same arrays gives the run's test error."""
    from ram import evaluate, train
    from ram.config import get_config

    folder = colour_folder(tmp_path / "images")
    loaded = datasets.load_dataset(f"folder:{folder}")
    arrays = datasets.from_arrays(
        (loaded.train.images, loaded.train.labels), test=(loaded.test.images, loaded.test.labels), name="squares"
    )
    run_dir = tmp_path / "run"
    overrides = [a for a in SMALL if not a.startswith("--")]
    results = train.train_and_evaluate(get_config("mnist28", overrides), run_dir, arrays, progress=False)
    config = json.loads((run_dir / "config.json").read_text())
    recorded = (config["dataset"], config["num_classes"], config["channels"], config["canvas"])
    assert recorded == ("arrays:squares", 3, 3, 16)
    # A config that only arrays can satisfy (a canvas smaller than MNIST's digits) says dataset=arrays.
    assert get_config("mnist28", ["dataset=arrays", "task=translated", "canvas=24"]).canvas == 24
    assert evaluate.evaluate_run(run_dir, arrays)["test_error_pct"] == results["test_error_pct"]
    assert main(["eval", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset=arrays:squares: arrays in memory" in err, err
