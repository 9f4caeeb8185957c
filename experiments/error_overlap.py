"""Which validation digits two recorded runs get wrong, and whether their trajectories agree on them.

    python experiments/error_overlap.py experiments/runs/translated60-g8-lstm-m4-both-wd03-drop1 \\
        experiments/runs/mnist28-g6-m4-both-100k --mc-samples 10

Both runs must train on MNIST: their validation digits are then the same 10,000 digits, in the same
order, whatever the task places them on. Each run's best parameters (of its first seed) are
evaluated on them as validation evaluated them (the seed's key, the std of the best step), with
`--mc-samples` trajectories per digit. Per run it prints how many digits trajectory 0 gets wrong
(the recorded validation error) and, of those, how many every trajectory gets wrong ("all M") and
how many some other trajectory gets right: an error that depends on where the glimpses went. Then,
of the first run's errors, how many the second run gets right with every trajectory.

A translated run's errors that the 28x28 run gets right are digits that can be recognised from
glimpses on the digit; errors that no trajectory of either run gets right are digits hard for both.
"""

from __future__ import annotations

import argparse
import sys

from ram import evaluate, rundir
from ram.data import load_mnist
from ram.errors import RamError


def validation_outcomes(run_dir: str, mnist, mc_samples: int) -> dict:
    """`{"single" [n] bool, "num_correct" [n] int, "mc_samples"}` of the run's first seed's best
    parameters on MNIST's validation digits (`ram.evaluate.make_example_evaluator`)."""
    run = rundir.load_run(run_dir)
    if run.config.dataset != "mnist":
        raise RamError(f"{run_dir} trained on {run.config.dataset}; this script compares MNIST runs only")
    outcomes = evaluate.make_example_evaluator(run.graphdef, run.config, "validation", mnist.validation, mc_samples)
    params, step = run.seed_params(0)
    # Trajectory 0 is validation's single trajectory for any M: its key, split(key, M)[0], does not
    # depend on M (jax_threefry_partitionable); the test of the recorded validation error checks it.
    single, _, num_correct = outcomes(params, seed=run.seeds[0], step=step)
    return {"single": single, "num_correct": num_correct, "mc_samples": mc_samples}


def summary(a: dict, b: dict) -> dict:
    """Counts over the digits of two runs' `validation_outcomes` (the same digits, in the same order):
    each run's errors of trajectory 0 (`errors_a`, `errors_b`), those of them every trajectory gets
    wrong (`all_wrong_a`, `all_wrong_b`), the digits both runs' trajectory 0 gets wrong (`both`), and
    `a`'s errors that every trajectory of `b` gets right (`a_only_b_sure`)."""
    if len(a["single"]) != len(b["single"]):
        raise RamError(f"the runs were evaluated on {len(a['single'])} and {len(b['single'])} digits")
    wrong_a, wrong_b = ~a["single"], ~b["single"]
    return {
        "digits": len(wrong_a),
        "errors_a": int(wrong_a.sum()),
        "all_wrong_a": int((wrong_a & (a["num_correct"] == 0)).sum()),
        "errors_b": int(wrong_b.sum()),
        "all_wrong_b": int((wrong_b & (b["num_correct"] == 0)).sum()),
        "both": int((wrong_a & wrong_b).sum()),
        "a_only_b_sure": int((wrong_a & (b["num_correct"] == b["mc_samples"])).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--mc-samples", type=int, default=10)
    p.add_argument("--mnist-dir", help="folder of the four MNIST files (default $RAM_MNIST_DIR)")
    args = p.parse_args(argv)
    try:
        if args.mc_samples < 1:
            raise RamError(f"--mc-samples={args.mc_samples}: must be at least 1")
        mnist = load_mnist(args.mnist_dir)
        a, b = (validation_outcomes(r, mnist, args.mc_samples) for r in (args.run_a, args.run_b))
        s = summary(a, b)
    except RamError as e:
        print(f"error_overlap: error: {e}", file=sys.stderr)
        return 2
    m = args.mc_samples
    print(f"| run | validation errors (of {s['digits']}) | of them, wrong in all {m} trajectories |")
    print("| --- | --- | --- |")
    print(f"| {args.run_a} | {s['errors_a']} | {s['all_wrong_a']} |")
    print(f"| {args.run_b} | {s['errors_b']} | {s['all_wrong_b']} |")
    print(
        f"\nBoth wrong: {s['both']}. Of the first run's {s['errors_a']} errors, the second run gets "
        f"{s['a_only_b_sure']} right in all {m} trajectories."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
