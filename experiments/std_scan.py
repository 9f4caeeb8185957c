"""Validation errors of a recorded run's best parameters when its policy samples with other stds.

    python experiments/std_scan.py experiments/runs/translated60-g8-lstm-gpu-distort-2seeds --stds 0.03,0.02,0.01,0

For each seed, at the std its best checkpoint had (`Config.policy_std` of its step: what the run's
validation measured) and at each of `--stds`: the single-sample error (trajectory 0), the MC-averaged error and the
expected single-sample error over `--mc-samples` trajectories, on the validation set with one
fixed key (key 0), so the stds are compared on the same draws. Std 0 follows the policy's mean.
Validation only: a std chosen here is chosen without the test set. MNIST-based runs only.
"""

from __future__ import annotations

import argparse

from ram import data, evaluate, rundir, tasks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--stds", default="0.03,0.02,0.01,0", help="comma-separated policy stds")
    p.add_argument("--mc-samples", type=int, default=10)
    p.add_argument("--mnist-dir", help="folder of the four MNIST files (default $RAM_MNIST_DIR)")
    args = p.parse_args()
    run = rundir.load_run(args.run_dir)
    if run.config.dataset != "mnist":
        raise SystemExit(f"std_scan.py: {args.run_dir} trained on {run.config.dataset}; this script reads MNIST only")
    validation = tasks.to_device(data.load_mnist(args.mnist_dir).validation)
    evaluate_at = evaluate.make_evaluator(run.graphdef, run.config, "validation", validation, args.mc_samples)
    print("| seed | std | single | MC | expected |\n| --- | --- | --- | --- | --- |")
    for i, seed in enumerate(run.seeds):
        params, step = run.seed_params(i)
        own = float(run.config.policy_std(step))
        for std in [own, *(float(s) for s in args.stds.split(","))]:
            e = evaluate_at(params, seed=0, std=std)  # one key for every std: the same draws
            label = f"{std:.4f} (step {step})" if std == own else f"{std:g}"
            errors = f"{e['error_pct']:.2f} | {e['mc_error_pct']:.2f} | {e['expected_error_pct']:.3f}"
            print(f"| {seed} | {label} | {errors} |", flush=True)


if __name__ == "__main__":
    main()
