"""Error of a recorded run's best parameters on training digits, measured as validation is: the gap
between the two is how much the run overfits.

    python experiments/train_error.py experiments/runs/translated60-g8-lstm-m4-both-wd03 --num 10000

The train error in metrics.jsonl is the mean over the steps since the last validation, of parameters
still moving, with the training episode's dropout (if any). This one evaluates the best parameters
(the checkpoint chosen on validation) without dropout, on the first `--num` training digits, each
placed on its canvas once with fixed keys (the validation set's placement seed: only the digits
differ). The policy samples with the std of the best step and the key of the seed, as validation
did. Prints a Markdown row per seed: single-sample, expected single-sample and MC-averaged error on
those training digits, and the same three on the validation set. MNIST-based runs only.
"""

from __future__ import annotations

import argparse
import sys

from ram import evaluate, rundir
from ram.data import Split, load_mnist
from ram.errors import RamError

KINDS = ("error_pct", "expected_error_pct", "mc_error_pct")  # single, expected single, MC-averaged


def train_and_validation_errors(run_dir: str, mnist, num: int, mc_samples: int) -> list[dict]:
    """Per seed of the run in `run_dir`: `{"seed", "best_step", "train": {...}, "validation": {...}}`,
    each of the two `ram.evaluate.make_evaluator`'s dict (KINDS are its errors). `mnist`: the splits
    (`ram.data.load_mnist`); `num`: how many training digits, from the first."""
    run = rundir.load_run(run_dir)
    if run.config.dataset != "mnist":
        raise RamError(f"{run_dir} trained on {run.config.dataset}; this script reads MNIST only")
    if not 1 <= num <= len(mnist.train.labels):
        raise RamError(f"--num={num}: must be between 1 and {len(mnist.train.labels)}")
    head = Split(mnist.train.images[:num], mnist.train.labels[:num])
    # The split name chooses the seed of the canvases' placement only; the digits are training digits.
    on_train = evaluate.make_evaluator(run.graphdef, run.config, "validation", head, mc_samples)
    on_validation = evaluate.make_evaluator(run.graphdef, run.config, "validation", mnist.validation, mc_samples)
    rows = []
    for i, seed in enumerate(run.seeds):
        params, step = run.seed_params(i)  # the std of its step and the key of its seed, as validation's
        errors = {
            "train": on_train(params, seed=seed, step=step),
            "validation": on_validation(params, seed=seed, step=step),
        }
        rows.append({"seed": seed, "best_step": step, **errors})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--num", type=int, default=10_000, help="training digits to evaluate (the first ones)")
    p.add_argument("--mc-samples", type=int, default=10)
    p.add_argument("--mnist-dir", help="folder of the four MNIST files (default $RAM_MNIST_DIR)")
    args = p.parse_args(argv)
    try:
        rows = train_and_validation_errors(args.run_dir, load_mnist(args.mnist_dir), args.num, args.mc_samples)
    except RamError as e:
        print(f"train_error: error: {e}", file=sys.stderr)
        return 2
    m = args.mc_samples
    heads = [f"{split} {kind}" for split in ("train", "val") for kind in ("single", "expected", f"MC-{m}")]
    print(f"| seed | best step | {' | '.join(heads)} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [f"{r[split][k]:.2f}" for split in ("train", "validation") for k in KINDS]
        print(f"| {r['seed']} | {r['best_step']} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
