"""The command line: one-line errors for bad input, and train -> eval on real MNIST."""

import json
import shlex

import pytest

from ram.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mnist29"], "unknown preset 'mnist29'"),
        (["train", "mnist28", "colour=red"], "unknown config field 'colour'"),
        (["train", "mnist28", "patch_size=64"], "larger than the 28x28 canvas"),
        (["train", "mnist28", "num_glimpses=0"], "at least 1 glimpse"),
        (["train", "mnist28", "location_std=-0.1"], "positive standard deviation"),
        (["train", "mnist28", "--mnist-dir", "/no/such/folder"], "does not exist"),
        (["train", "mnist28", "--resume"], "--resume needs --run-dir"),
        (["eval", "/no/such/run"], "not a run folder"),
        (["data", "show", "cluttered60", "--num", "20000"], "--num=20000: must be between 1 and 256"),
        (["plot", "/no/such/run"], "not a run folder"),
        (["plot", "/"], "/ is not a run folder"),
        (["bench", "mnist28", "--seconds", "-1"], "--seconds=-1.0: give a positive number"),
        (["bench", "mnist28", "--seconds", "nan"], "--seconds=nan: give a positive number"),
        (["data", "show", "mnist28", "--out", "/no/such/folder/x.png"], "the folder /no/such/folder does not exist"),
        (["data", "show", "mnist28", "--out", "grid.txt"], "the figure is a PNG"),
        (["train", "mnist28", "--run-dir", "/etc/hostname"], "is a file, not a run folder"),
    ],
)
def test_bad_input_fails_fast_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("ram: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_train_then_eval_json(capsys, tmp_path, mnist, mnist_dir):
    run_dir = tmp_path / "a run"  # the recorded command quotes it
    code, out, _ = run(
        capsys,
        "train",
        "mnist28",
        "train_steps=20",
        "warmup_steps=0",
        "steps_per_call=10",
        "eval_every=10",
        "batch_size=16",
        "mc_samples=2",
        "--run-dir",
        str(run_dir),
        "--mnist-dir",
        mnist_dir,
        "--no-progress",
    )
    assert code == 0
    assert out.startswith(f"ram: training mnist28 in {run_dir}\n") and out.count("ram: training") == 1
    argv = ("train", "mnist28", "train_steps=20", "warmup_steps=0", "steps_per_call=10", "--run-dir", str(run_dir),
            "--mnist-dir", mnist_dir)  # fmt: skip
    code, again, err = run(capsys, *argv)  # the folder holds a run: one line, and no start line before it
    assert code == 2 and "already holds a run: pass --resume" in err and "ram: training" not in again
    trained = json.loads(out[out.index("{") :])
    assert shlex.split(trained["command"]) == ["ram", "train", "mnist28", "train_steps=20", "warmup_steps=0",
        "steps_per_call=10", "eval_every=10", "batch_size=16", "mc_samples=2", "--run-dir", str(run_dir)]  # fmt: skip
    code, out, _ = run(capsys, "eval", str(run_dir), "--json", "--mnist-dir", mnist_dir)
    assert code == 0
    result = json.loads(out)
    assert result["mc_samples"] == 2 and result["seeds"] == [0]
    # eval reproduces the numbers recorded at the end of training exactly.
    for key in ("test_error_pct", "test_error_mc_pct", "val_error_pct", "best_step"):
        assert result[key] == trained[key]
    code, out, _ = run(capsys, "eval", str(run_dir), "--mc-samples", "3", "--mnist-dir", mnist_dir)
    assert code == 0 and "averaged over 3 trajectories" in out


def test_a_bad_init_from_is_one_line_before_training_starts(capsys, tmp_path, mnist_dir):
    code, out, err = run(
        capsys, "train", "mnist28", f"init_from={tmp_path / 'nowhere'}", "--run-dir", str(tmp_path / "run"),
        "--mnist-dir", mnist_dir,
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "is not a run folder" in err
    assert "ram: training" not in out  # the start line comes once the run can start
    assert not (tmp_path / "run").exists()


def test_interrupted_train_prints_the_command_that_resumes_it(capsys, tmp_path, mnist_dir, monkeypatch):
    from ram import train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_and_evaluate", interrupted)
    run_dir = tmp_path / "run"
    # key=value overrides may come anywhere, also after the flags.
    argv = ["train", "mnist28", "--run-dir", str(run_dir), "--seeds", "2", "num_glimpses=4", "--mnist-dir", mnist_dir]
    code, _, err = run(capsys, *argv)
    assert code == 130
    hint = err.strip().split("continue with: ")[1]
    assert hint == f"ram train mnist28 num_glimpses=4 --run-dir {run_dir} --resume --seeds 2 --mnist-dir {mnist_dir}"


@pytest.mark.parametrize("text", ["{not json", '{"num_glimpses": "eight"}', "[1, 2]"])
def test_broken_config_json_fails_in_one_line(capsys, tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    code, _, err = run(capsys, "eval", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{tmp_path / 'config.json'} is not a valid config" in err


def test_the_command_ends_an_interrupted_process_at_once(monkeypatch):
    """`ram` (cli.entry) exits 130 with os._exit after an interrupt (the interpreter's teardown, with
    JAX's compiler threads stopped by a second Ctrl-C, could segfault), and through sys.exit otherwise."""
    from ram import cli

    class Exited(Exception):
        pass

    def hard_exit(code):
        raise Exited(code)

    monkeypatch.setattr(cli.os, "_exit", hard_exit)
    for code in (130, 0, 2):
        monkeypatch.setattr(cli, "main", lambda code=code: code)
        with pytest.raises(Exited if code == 130 else SystemExit) as ended:
            cli.entry()
        assert ended.value.args[0] == code if code == 130 else ended.value.code == code


def test_predict_classifies_image_files_as_evaluate_predict_does(capsys, tmp_path, synthetic):
    """`ram predict RUN IMAGES/FOLDERS`: one line per image (its class's name and probability), or
    JSON with every probability, equal to `evaluate.predict` on the same pixels. Synthetic arrays
    shaped like MNIST digits, written as PNGs (not MNIST)."""
    import numpy as np
    from conftest import TINY
    from PIL import Image

    from ram import datasets, evaluate, rundir, train

    arrays = datasets.from_arrays(*((s.images, s.labels) for s in synthetic), num_classes=10)
    named = arrays._replace(info=arrays.info._replace(class_names=tuple("abcdefghij")))
    train.train_and_evaluate(TINY, tmp_path / "run", named, progress=False)
    capsys.readouterr()  # what training said
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(synthetic.test.images[:3]):
        Image.fromarray(image).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    run_dir = str(tmp_path / "run")
    code, out, _ = run(capsys, "predict", run_dir, str(folder / "2.png"), str(folder), "--mc-samples", "2", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == [str(folder / f"{i}.png") for i in (2, 0, 1, 2)]
    expected = evaluate.predict(rundir.load_run(run_dir), synthetic.test.images[[2, 0, 1, 2]], mc_samples=2)
    np.testing.assert_allclose([line["probabilities"] for line in lines], expected, atol=1e-6)
    assert [line["name"] for line in lines] == ["abcdefghij"[c] for c in expected.argmax(1)]  # data.json's names
    code, out, _ = run(capsys, "predict", run_dir, str(folder / "0.png"))
    one = evaluate.predict(rundir.load_run(run_dir), synthetic.test.images[:1])[0]  # a single trajectory
    assert code == 0 and out == f"{folder / '0.png'}\t{'abcdefghij'[one.argmax()]}\t{one.max():.3f}\n"
    Image.fromarray(synthetic.test.images[0][:20]).save(folder / "small.png")
    for argv, message in (
        ([str(tmp_path / "nowhere.png")], "nowhere.png: no such file or folder"),
        ([str(tmp_path)], f"{tmp_path} holds no image files"),
        ([str(folder)], "images of mixed sizes (" + str(folder / "0.png") + " is 28x28, "),
        ([str(folder / "small.png")], "images of shape (1, 20, 28, 1) do not fit this run: give [B, 28, 28]"),
        ([str(folder / "notes.txt")], "cannot read the image"),
    ):
        code, _, err = run(capsys, "predict", run_dir, *argv)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    # A colour run reads greyscale files in colour, as a folder of both trains; hidden files are skipped.
    colour = datasets.from_arrays(*((np.repeat(s.images[..., None], 3, -1), s.labels) for s in synthetic))
    train.train_and_evaluate(TINY, tmp_path / "colour", colour, progress=False)
    capsys.readouterr()
    (folder / "small.png").unlink()
    (folder / "._0.png").write_bytes(b"macOS metadata, not an image")
    code, out, _ = run(capsys, "predict", str(tmp_path / "colour"), str(folder), "--json")
    greys = np.repeat(synthetic.test.images[:3, ..., None], 3, -1)
    expected = evaluate.predict(rundir.load_run(tmp_path / "colour"), greys)
    assert code == 0
    np.testing.assert_allclose([json.loads(line)["probabilities"] for line in out.splitlines()], expected, atol=1e-6)


def test_presets_say_what_each_task_is(capsys):
    code, out, _ = run(capsys, "presets")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 8
    assert lines[0].startswith(
        "mnist28: the 28x28 digits as they are; 6 glimpses of 1 scale(s) of 8x8 px; 30,000 steps"
    )
    assert lines[6].startswith("cluttered100: a digit and 8 8x8 clutter pieces on 100x100; 8 glimpses of 4 scale(s)")
    assert lines[7] == (
        "    beyond the defaults of Config: task=cluttered canvas=100 clutter_pieces=8 patch_size=12 num_scales=4 "
        "num_glimpses=8 unroll_glimpses=True"
    )
