"""The `ram` command line.

    ram train PRESET [key=value ...] [--run-dir DIR] [--resume] [--seeds N] [--no-progress]
              [--mnist-dir DIR] [--data-dir DIR] [--distributed ...]
              (dataset=mnist | tfds:NAME[:CONFIG] | folder:PATH, a key=value like any other)
    ram eval RUN_DIR [--mc-samples M] [--json] [--dataset NAME] [--mnist-dir DIR] [--data-dir DIR]
    ram predict RUN_DIR IMAGE_OR_FOLDER ... [--mc-samples M] [--seed-index I] [--json]
                                             each image's class and its probability
    ram visualize RUN_DIR [--num N] [--seed S] [--dataset NAME] [--mnist-dir DIR] [--data-dir DIR]
                                             glimpses.png + glimpses.gif in the run folder
    ram plot RUN_DIR                         curves.png in the run folder
    ram data show PRESET [key=value ...] [--split SPLIT] [--num N] [--out PNG] [--mnist-dir DIR] [--data-dir DIR]
                                             a PNG grid of the task's examples (PRESET-SPLIT.png)
    ram bench PRESET [key=value ...] [--batch-sizes B,B] [--seconds S] [--seeds N] [--json]
                                             images/s, matmul fraction
    ram presets

Bad input ends with one line, `ram: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

from ram.errors import RamError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mnist-dir",
        help="folder of the four original MNIST *-ubyte.gz files (offline); "
        "default $RAM_MNIST_DIR, else tensorflow-datasets downloads MNIST",
    )
    p.add_argument("--data-dir", help="tensorflow-datasets data folder (default: its own)")


def _add_moved_dataset_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="the run's data from elsewhere, e.g. folder:NEWPATH for a folder that moved (default: the run's own; "
        "data.json's digest says if it differs)",
    )


def run_dataset(config, args):
    """`(config, data)`: the run's dataset, or the one `--dataset` names in its place."""
    from ram import datasets

    if args.dataset:
        config = config.replace(dataset=args.dataset)
    try:
        return config, datasets.load(config, args.mnist_dir, args.data_dir)
    except RamError as e:
        if not args.dataset and datasets.parse_dataset_kind(config.dataset) == "folder":
            raise RamError(f"{e}; if the run's folder moved, name it: --dataset folder:PATH") from None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ram", description="Recurrent Attention Model (Mnih et al., 2014) in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices  # name -> sub-parser (main() parses each command's own arguments)

    p = sub.add_parser("train", help="train a preset; key=value overrides any config field")
    p.add_argument("preset", help="mnist28 | translated60 | cluttered60 | cluttered100 (see `ram presets`)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--run-dir", help="run folder (default runs/PRESET-YYYYmmdd-HHMMSS)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its latest checkpoint (a folder holding no run yet starts one)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seeds", type=int, default=1, help="train N seeds at once (jax.vmap); reports mean and spread")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a run over several hosts (data parallel): calls jax.distributed.initialize() first, "
        "which detects SLURM, Open MPI, Kubernetes and TPU pods; elsewhere give the three options below",
    )
    p.add_argument("--coordinator", metavar="HOST:PORT", help="--distributed: address of process 0's coordinator")
    p.add_argument("--num-processes", type=int, help="--distributed: number of processes")
    p.add_argument("--process-id", type=int, help="--distributed: this process's index, 0 to N-1")
    _add_data_args(p)

    p = sub.add_parser("eval", help="test errors of a run's best-on-validation checkpoint")
    p.add_argument("run_dir")
    _add_moved_dataset_arg(p)
    p.add_argument("--mc-samples", type=int, help="trajectories averaged by the MC error (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_args(p)

    p = sub.add_parser("predict", help="classify image files with a run's best parameters")
    p.add_argument("run_dir")
    p.add_argument("images", nargs="+", help="image files, or folders of them (PNG, JPEG, ...)")
    p.add_argument(
        "--mc-samples",
        type=int,
        default=1,
        help="average the class probabilities over M trajectories (one trajectory is one draw of the policy's noise)",
    )
    p.add_argument("--seed-index", type=int, default=0, help="which seed of a run of several")
    p.add_argument("--json", action="store_true", help="one JSON object per image, with every class's probability")

    p = sub.add_parser("visualize", help="glimpse trajectories of a run: glimpses.png and glimpses.gif")
    p.add_argument("run_dir")
    _add_moved_dataset_arg(p)
    p.add_argument("--num", type=int, default=8, help="test examples to show")
    p.add_argument("--seed", type=int, default=0)
    _add_data_args(p)

    p = sub.add_parser("plot", help="training curves of a run: curves.png")
    p.add_argument("run_dir")

    p = sub.add_parser("data", help="look at a task's data")
    p.add_argument("action", choices=["show"])
    p.add_argument("preset")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    p.add_argument("--num", type=int, default=32)
    p.add_argument("--out", help="PNG path (default PRESET-SPLIT.png)")
    _add_data_args(p)

    p = sub.add_parser("bench", help="training/eval throughput and the fraction of the matmul rate achieved")
    p.add_argument("preset")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--batch-sizes", default="128", help="comma-separated, e.g. 64,128,256")
    p.add_argument("--seconds", type=float, default=3.0, help="steady-state timing per batch size")
    p.add_argument("--seeds", type=int, default=1, help="also time N vmapped seeds against one")
    p.add_argument("--json", action="store_true", help="one JSON record per batch size")

    sub.add_parser("presets", help="list the presets and what each sets beyond the defaults of `Config`")
    return parser


def cmd_train(args) -> int:
    from ram import datasets, rundir, train
    from ram.config import PRESETS, get_config, overrides_between

    config = get_config(args.preset, args.overrides)
    if args.seeds < 1:
        raise RamError(f"--seeds={args.seeds}: must be at least 1")
    if args.distributed or args.coordinator or args.num_processes is not None or args.process_id is not None:
        start_distributed(args)
    run_dir = Path(args.run_dir or f"runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    rundir.RunDir(run_dir)  # fail fast on a file named as the folder
    if args.resume and not args.run_dir:
        raise RamError("--resume needs --run-dir of the run to continue")
    dataset = datasets.load(config, args.mnist_dir, args.data_dir)
    # As run, quoted for a shell; without --mnist-dir/--data-dir, this machine's paths (data.json
    # records the data's digest instead).
    seeds = ["--seeds", str(args.seeds)] if args.seeds > 1 else []
    command = f"ram train {shlex.join([args.preset, *args.overrides, '--run-dir', str(run_dir), *seeds])}"
    try:
        results = train.train_and_evaluate(
            config,
            run_dir,
            dataset,
            num_seeds=args.seeds,
            resume=args.resume,
            progress=not args.no_progress,
            command=command,
            announce=f"ram: training {args.preset} in {run_dir}",
        )
    except KeyboardInterrupt:
        print(f"\nram: interrupted; continue with: {resume_command(args, run_dir, args.overrides)}", file=sys.stderr)
        return 130
    except rundir.ConfigMismatch as e:  # name the command that continues the run as it was
        # From the preset closest to the run (the one given, on a tie), without what the data sets
        # again on resume: from another task's preset, a field left to the data (task=mnist's canvas)
        # would keep that preset's value.
        saved = e.saved
        from_data = datasets.fields_from_data(saved.task)

        def overrides_from(preset: str) -> list[str]:
            return overrides_between(PRESETS[preset].replace(**{k: getattr(saved, k) for k in from_data}), saved)

        preset = min(PRESETS, key=lambda p: (len(overrides_from(p)), p != args.preset))
        again = resume_command(args, run_dir, overrides_from(preset), preset)
        raise RamError(f"{e}; to continue the run as it was: {again}") from None
    print(json.dumps(results, indent=2))
    return 0


def start_distributed(args) -> None:
    """`jax.distributed.initialize` for `ram train --distributed`: cluster settings JAX detects, or
    those given. Every process trains the same config into the same --run-dir."""
    import jax

    if not args.run_dir:
        raise RamError("--distributed needs --run-dir: every process must name the same run folder")
    if jax.distributed.is_initialized():  # a second command in the same process
        return
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
        )
    except (RuntimeError, ValueError) as e:
        raise RamError(
            f"--distributed: jax.distributed.initialize failed ({str(e).strip().splitlines()[0][:200]}); outside "
            "SLURM, Open MPI, Kubernetes and TPU pods give --coordinator HOST:PORT --num-processes N --process-id I"
        ) from None


def resume_command(args, run_dir: Path, overrides: list[str], preset: str | None = None) -> str:
    """The `ram train PRESET ... --resume` (the preset given, by default) that continues the run in
    `run_dir` with `overrides`."""
    again = [preset or args.preset, *overrides, "--run-dir", str(run_dir), "--resume"]
    if args.seeds > 1:
        again += ["--seeds", str(args.seeds)]
    for flag, value in (("--mnist-dir", args.mnist_dir), ("--data-dir", args.data_dir)):
        if value:
            again += [flag, str(value)]
    return f"ram train {shlex.join(again)}"


def cmd_eval(args) -> int:
    from ram import evaluate, rundir

    config = rundir.RunDir(args.run_dir).config()
    if args.mc_samples is not None and args.mc_samples < 1:
        raise RamError(f"--mc-samples={args.mc_samples}: must be at least 1")
    config, dataset = run_dataset(config, args)
    results = evaluate.evaluate_run(args.run_dir, dataset, config=config, mc_samples=args.mc_samples)
    if args.json:
        print(json.dumps(results))
        return 0
    for i, seed in enumerate(results["seeds"]):
        print(
            f"{args.run_dir} (seed {seed}): test error {results['test_error_pct'][i]:.2f}% (single sample), "
            f"{results['test_error_mc_pct'][i]:.2f}% (probabilities averaged over {results['mc_samples']} "
            f"trajectories), {results['test_error_expected_pct'][i]:.2f}% (expected single sample: the mean "
            f"over those trajectories); best step {results['best_step'][i]}, validation "
            f"{results['val_error_pct'][i]:.2f}%"
        )
    if results["num_seeds"] > 1:
        s = results["summary"]["test_error_pct"]
        print(f"{args.run_dir}: test error {s['mean']:.2f}% +- {s['std']:.2f} over {results['num_seeds']} seeds")
    return 0


def image_files(given: list[str]) -> list[Path]:
    """The files named, a folder standing for its image files (sorted; not its sub-folders)."""
    from ram.datasets import IMAGE_SUFFIXES

    files = []
    for name in given:
        path = Path(name).expanduser()
        if path.is_dir():  # hidden files (macOS's ._NAME among them) left out, as a folder dataset does
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.name[0] != "."
            )
            if not found:
                raise RamError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise RamError(f"{path}: no such file or folder")
    return files


def cmd_predict(args) -> int:
    import numpy as np

    from ram import datasets, evaluate, rundir

    run = rundir.load_run(args.run_dir)
    files = image_files(args.images)
    # Read as the run's images were: resized to its image_size (task=mnist: the images themselves; other
    # tasks take whole canvases, as they are), greyscale files in colour for a colour run.
    size = run.config.image_size if run.config.task == "mnist" else 0
    images = datasets.stack_images(
        datasets.read_images(files, size),
        [str(f) for f in files],
        "predict",
        colour=run.config.channels == 3,
        fix="give images of the size this run takes",
    )
    step = run.config.eval_batch_size  # a batch at a time, as evaluation goes
    probs = np.concatenate(
        [
            evaluate.predict(run, images[i : i + step], seed_index=args.seed_index, mc_samples=args.mc_samples)
            for i in range(0, len(images), step)
        ]
    )
    for path, p in zip(files, probs, strict=True):
        label = int(p.argmax())
        name = run.class_names[label] if label < len(run.class_names) else str(label)
        if args.json:
            print(json.dumps({"image": str(path), "class": label, "name": name, "probabilities": p.tolist()}))
        else:
            print(f"{path}\t{name}\t{p[label]:.3f}")
    return 0


MAX_FIGURE_EXAMPLES = 256


def check_num(num: int) -> None:
    """--num of `ram visualize` / `ram data show`: examples drawn in one figure."""
    if not 1 <= num <= MAX_FIGURE_EXAMPLES:
        raise RamError(f"--num={num}: must be between 1 and {MAX_FIGURE_EXAMPLES} (examples drawn in one figure)")


def cmd_visualize(args) -> int:
    from ram import rundir, visualize
    from ram.config import MAX_SEED

    config = rundir.RunDir(args.run_dir).config()  # fail fast on a wrong folder
    check_num(args.num)
    if not 0 <= args.seed < MAX_SEED:
        raise RamError(f"--seed={args.seed}: must be in [0, {MAX_SEED}) (jax.random.key takes 32 bits)")
    _, dataset = run_dataset(config, args)
    paths = visualize.visualize_run(args.run_dir, dataset, num=args.num, seed=args.seed)
    print("\n".join(str(p) for p in paths))
    return 0


def cmd_plot(args) -> int:
    from ram import visualize

    print(visualize.plot_curves(args.run_dir))
    return 0


def cmd_data(args) -> int:
    from ram import datasets, visualize
    from ram.config import get_config

    config = get_config(args.preset, args.overrides)
    check_num(args.num)
    out = visualize.check_png_path(args.out or f"{args.preset}-{args.split}.png")
    dataset = datasets.load(config, args.mnist_dir, args.data_dir)
    print(visualize.plot_examples(config, dataset, args.split, args.num, out, title=args.preset))
    return 0


def cmd_bench(args) -> int:
    from ram import bench
    from ram.config import get_config

    config = get_config(args.preset, args.overrides)
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise RamError(f"--batch-sizes={args.batch_sizes!r}: expected integers like 64,128") from None
    if not sizes or min(sizes) < 1:
        raise RamError(f"--batch-sizes={args.batch_sizes!r}: give positive batch sizes")
    if args.seeds < 1:
        raise RamError(f"--seeds={args.seeds}: must be at least 1")
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise RamError(f"--seconds={args.seconds}: give a positive number of seconds to time each batch size")
    if config.dataset != "mnist" and not (config.image_size and config.channels):
        raise RamError(
            f"dataset={config.dataset}: ram bench times random images of the shape the config names, and "
            "another dataset's shape is known only once it is loaded: give image_size=S channels=C too"
        )
    records = bench.run_bench(args.preset, config, sizes, args.seconds, seeds=args.seeds)
    if args.json:
        for r in records:
            print(json.dumps(r))
    else:
        print(bench.format_table(records))
    return 0


def cmd_presets(args) -> int:
    from ram.config import PRESETS, Config

    default = Config()
    for name, c in PRESETS.items():
        task = {"mnist": "the 28x28 digits as they are", "translated": f"a digit on a {c.canvas}x{c.canvas} canvas"}
        clutter = (
            f"a digit and {c.clutter_pieces} {c.clutter_size}x{c.clutter_size} clutter pieces on {c.canvas}x{c.canvas}"
        )
        sensor = f"{c.num_glimpses} glimpses of {c.num_scales} scale(s) of {c.patch_size}x{c.patch_size} px"
        print(
            f"{name}: {task.get(c.task, clutter)}; {sensor}; {c.train_steps:,} steps of {c.batch_size}, {c.core} core"
        )
        diff = " ".join(f"{k}={v}" for k, v in c.to_dict().items() if getattr(default, k) != v)
        print(f"    beyond the defaults of Config: {diff or '(none)'}")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses `argv`; `key=value` overrides may come before, between or after the flags."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in parser.commands:
        args = parser.commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
        return args
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command in ("train", "visualize", "plot", "data"):  # train: each validation's TensorBoard figure
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
    handler = {
        "train": cmd_train,
        "eval": cmd_eval,
        "predict": cmd_predict,
        "visualize": cmd_visualize,
        "plot": cmd_plot,
        "data": cmd_data,
        "bench": cmd_bench,
        "presets": cmd_presets,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:  # outside a training loop (which names the command that resumes it)
        print("\nram: interrupted", file=sys.stderr)
        return 130
    except RamError as e:
        print(f"ram: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # what no module could name more precisely: say which file, in one line
        if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise
        what = "read or write" if e.errno == errno.EACCES else "write"  # EACCES: either, and errno says not which
        print(f"ram: error: cannot {what} {e.filename or 'a file'}: {e.strerror}", file=sys.stderr)
        return 2
    except Exception as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        print(
            f"ram: error: the device ran out of memory ({str(e).splitlines()[0][:160]}); lower batch_size, "
            "eval_batch_size or --seeds",
            file=sys.stderr,
        )
        return 2


def entry() -> None:
    """The `ram` command: `main`, then exit with its code. After an interrupt (130) the process ends
    at once, once the run's files are written (the train loop has waited for its checkpoints and let
    go of the lock): the interpreter's own teardown, with JAX's compiler threads stopped mid-work by
    a second Ctrl-C, ended in a segmentation fault."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
