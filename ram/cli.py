"""The `ram` command line.

    ram train PRESET [key=value ...] [--run-dir DIR] [--resume] [--mnist-dir DIR]
    ram eval RUN_DIR [--mc-samples M] [--json] [--mnist-dir DIR]
    ram visualize RUN_DIR [--num N]          glimpses.png + glimpses.gif in the run folder
    ram plot RUN_DIR                         curves.png in the run folder
    ram data show PRESET [key=value ...]     a PNG grid of the task's examples
    ram presets

Bad input ends with one line, `ram: error: ...`, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ram", description="Recurrent Attention Model (Mnih et al., 2014) in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices  # name -> sub-parser (main() parses each command's own arguments)

    p = sub.add_parser("train", help="train a preset; key=value overrides any config field")
    p.add_argument("preset", help="mnist28 | translated60 | cluttered60 | cluttered100 (see `ram presets`)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--run-dir", help="run folder (default runs/PRESET-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seeds", type=int, default=1, help="train N seeds at once (jax.vmap); reports mean and spread")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first (multi-host data parallel)",
    )
    _add_data_args(p)

    p = sub.add_parser("eval", help="test errors of a run's best-on-validation checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--mc-samples", type=int, help="trajectories averaged by the MC error (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_args(p)

    p = sub.add_parser("visualize", help="glimpse trajectories of a run: glimpses.png and glimpses.gif")
    p.add_argument("run_dir")
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

    sub.add_parser("presets", help="list the presets and their settings")
    return parser


def cmd_train(args) -> int:
    from ram import data, rundir, train
    from ram.config import get_config

    config = get_config(args.preset, args.overrides)
    if args.seeds < 1:
        raise RamError(f"--seeds={args.seeds}: must be at least 1")
    if args.distributed:
        import jax

        jax.distributed.initialize()
    run_dir = Path(args.run_dir or f"runs/{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    rundir.RunDir(run_dir)  # fail fast on a file named as the folder
    if args.resume and not args.run_dir:
        raise RamError("--resume needs --run-dir of the run to continue")
    mnist = data.load_mnist(args.mnist_dir, args.data_dir)
    print(f"ram: training {args.preset} in {run_dir}", flush=True)
    command = " ".join(["ram train", args.preset, *args.overrides, "--run-dir", str(run_dir)])
    if args.seeds > 1:
        command += f" --seeds {args.seeds}"
    try:
        results = train.train_and_evaluate(
            config,
            run_dir,
            mnist,
            num_seeds=args.seeds,
            resume=args.resume,
            progress=not args.no_progress,
            command=command,
        )
    except KeyboardInterrupt:
        again = ["ram train", args.preset, *args.overrides, "--run-dir", str(run_dir), "--resume"]
        if args.seeds > 1:
            again += ["--seeds", str(args.seeds)]
        for flag, value in (("--mnist-dir", args.mnist_dir), ("--data-dir", args.data_dir)):
            if value:
                again += [flag, str(value)]
        print(f"\nram: interrupted; continue with: {' '.join(again)}", file=sys.stderr)
        return 130
    print(json.dumps(results, indent=2))
    return 0


def cmd_eval(args) -> int:
    from ram import data, evaluate, rundir

    config = rundir.RunDir(args.run_dir).config()
    if args.mc_samples is not None and args.mc_samples < 1:
        raise RamError(f"--mc-samples={args.mc_samples}: must be at least 1")
    mnist = data.load_mnist(args.mnist_dir, args.data_dir)
    results = evaluate.evaluate_run(args.run_dir, mnist, config=config, mc_samples=args.mc_samples)
    if args.json:
        print(json.dumps(results))
        return 0
    for i, seed in enumerate(results["seeds"]):
        print(
            f"{args.run_dir} (seed {seed}): test error {results['test_error_pct'][i]:.2f}% (single sample), "
            f"{results['test_error_mc_pct'][i]:.2f}% (probabilities averaged over {results['mc_samples']} "
            f"trajectories); best step {results['best_step'][i]}, validation {results['val_error_pct'][i]:.2f}%"
        )
    if results["num_seeds"] > 1:
        s = results["summary"]["test_error_pct"]
        print(f"{args.run_dir}: test error {s['mean']:.2f}% +- {s['std']:.2f} over {results['num_seeds']} seeds")
    return 0


MAX_FIGURE_EXAMPLES = 256


def check_num(num: int) -> None:
    """--num of `ram visualize` / `ram data show`: examples drawn in one figure."""
    if not 1 <= num <= MAX_FIGURE_EXAMPLES:
        raise RamError(f"--num={num}: must be between 1 and {MAX_FIGURE_EXAMPLES} (examples drawn in one figure)")


def cmd_visualize(args) -> int:
    from ram import data, rundir, visualize

    rundir.RunDir(args.run_dir).config()  # fail fast on a wrong folder
    check_num(args.num)
    paths = visualize.visualize_run(
        args.run_dir, data.load_mnist(args.mnist_dir, args.data_dir), num=args.num, seed=args.seed
    )
    print("\n".join(str(p) for p in paths))
    return 0


def cmd_plot(args) -> int:
    from ram import visualize

    print(visualize.plot_curves(args.run_dir))
    return 0


def cmd_data(args) -> int:
    from ram import data, visualize
    from ram.config import get_config

    config = get_config(args.preset, args.overrides)
    check_num(args.num)
    out = visualize.check_png_path(args.out or f"{args.preset}-{args.split}.png")
    mnist = data.load_mnist(args.mnist_dir, args.data_dir)
    print(visualize.plot_examples(config, mnist, args.split, args.num, out, title=args.preset))
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
    for name, cfg in PRESETS.items():
        diff = {k: v for k, v in cfg.to_dict().items() if getattr(default, k) != v}
        print(f"{name}: {diff or '(the defaults)'}")
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
    if args.command in ("visualize", "plot", "data"):
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
    handler = {
        "train": cmd_train,
        "eval": cmd_eval,
        "visualize": cmd_visualize,
        "plot": cmd_plot,
        "data": cmd_data,
        "bench": cmd_bench,
        "presets": cmd_presets,
    }[args.command]
    try:
        return handler(args)
    except RamError as e:
        print(f"ram: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # what no module could name more precisely: say which file, in one line
        if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
            raise
        print(f"ram: error: cannot write {e.filename or 'a file'}: {e.strerror}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
