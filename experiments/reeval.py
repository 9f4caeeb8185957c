"""Re-evaluate recorded runs with today's code: the same numbers, or a list of what moved.

    python experiments/reeval.py [ROW ...] [--mnist-dir DIR] [--add-expected]

For each run folder with a results.json, `ram.evaluate.evaluate_run` recomputes every seed's
validation, single-sample and MC-averaged test errors from the best checkpoint and compares them
with the recorded ones. Runs trained on a GPU are compared with their CPU re-evaluation
(eval-cpu.json), since float32 arithmetic differs between the two. `--add-expected` writes the
expected single-sample error (tfRAM's protocol) into results.json where the recorded numbers were
reproduced exactly on this machine kind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ram import data, evaluate, rundir

RUNS = Path(__file__).resolve().parent / "runs"
COMPARED = ("best_step", "val_error_pct", "test_error_pct", "test_error_mc_pct")


def recorded(folder: Path) -> dict:
    """What the run recorded, from a CPU where it has one."""
    run = rundir.RunDir(folder)
    return run.read_cpu_evaluation() or run.read_results()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", nargs="*", help="run folder names under experiments/runs (default: all)")
    p.add_argument("--mnist-dir")
    p.add_argument("--add-expected", action="store_true")
    args = p.parse_args(argv)
    mnist = data.load_mnist(args.mnist_dir)
    folders = [RUNS / r for r in args.rows] or sorted(f for f in RUNS.iterdir() if rundir.RunDir(f).has_results())
    moved = 0
    for folder in folders:
        t = time.perf_counter()
        want = recorded(folder)
        got = evaluate.evaluate_run(folder, mnist, mc_samples=want["mc_samples"])
        diff = {k: (want[k], got[k]) for k in COMPARED if k in want and want[k] != got[k]}
        on_gpu = want.get("machine", {}).get("platform", "cpu") != "cpu"
        if on_gpu:  # no CPU record to compare with: float32 arithmetic differs from the GPU's
            print(f"{folder.name}: recorded on a GPU; here {diff or 'the same'}", flush=True)
            continue
        moved += bool(diff)
        print(f"{folder.name}: {'same' if not diff else f'MOVED {diff}'} ({time.perf_counter() - t:.0f} s)", flush=True)
        run = rundir.RunDir(folder)
        if args.add_expected and not diff and run.read_cpu_evaluation() is None:
            results = run.read_results()
            results["test_error_expected_pct"] = got["test_error_expected_pct"]
            run.write_results(rundir.upgrade_results({k: v for k, v in results.items() if k != "summary"}))
    print(f"{len(folders) - moved} of {len(folders)} runs evaluate to their recorded numbers")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
