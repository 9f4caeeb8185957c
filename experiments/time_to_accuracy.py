"""Time to accuracy: the wall time and images a recorded run took to first reach validation errors.

    python experiments/time_to_accuracy.py            # a markdown table, and bench/time-to-accuracy.png

Read from each run's metrics.jsonl (validation every `eval_every` steps, wall time including
validation and checkpoints). A run of several seeds counts each seed; the table gives the median
over its seeds, with the number of seeds that got there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ram.rundir import RunDir

HERE = Path(__file__).resolve().parent
THRESHOLDS = {  # validation error (%) a user of each task waits for
    "mnist": (2.0, 1.5, 1.2, 1.0, 0.8),
    "translated": (2.0, 1.5, 1.2, 1.0, 0.94),
    "cluttered60": (5.0, 4.0, 3.0, 2.63, 2.0),
    "cluttered100": (12.0, 10.0, 8.0, 5.9, 5.0),
}
RUNS = [
    "mnist28-g6",
    "mnist28-g6-3seeds",
    "mnist28-g6-m4-loo-3seeds",
    "mnist28-g6-m4-both-3seeds",
    "mnist28-g6-m4-both-100k-3seeds",
    "mnist28-g6-m4-both-100k-wd-3seeds",
    "mnist28-g6-m4-both-100k-wd03-3seeds",
    "mnist28-g6-m4-both-100k-wd1-3seeds",
    "mnist28-g6-readme-seed0",
    "mnist28-g6-readme-wd03-seed0",
    "mnist28-g6-readme-wd03-seed1",
    "mnist28-g6-readme-wd03-seed3",
    "mnist28-g6-readme-wd03-seed4",
    "translated60-g8-lstm",
    "translated60-g8-lstm-gpu",
    "translated60-g8-lstm-wd",
    "translated60-g8-lstm-gpu-distort-2seeds",
    "translated60-g8-lstm-b1024-30k",
    "translated60-g8-lstm-gpu-b1024",
    "translated60-g8-lstm-m4-both-wd03",
    "translated60-g8-lstm-wd03",
    "translated60-g8-lstm-m4-both-wd03-seed1",
    "translated60-g8-lstm-m4-both-wd03-seed2",
    "translated60-g8-lstm-gpu-m4-both-wd03",
    "cluttered60-g8-lstm",
    "cluttered60-g8-lstm-gpu-180k",
    "cluttered60-g8-lstm-gpu-b1024",
    "cluttered60-g8-lstm-gpu-b1024-seed1",
    "cluttered60-g8-lstm-gpu-b1024-seed2",
    "cluttered60-20k-m1",
    "cluttered60-20k-m4-loo",
    "cluttered60-20k-m4-both",
    "cluttered100-g8-lstm",
    "cluttered100-g8-lstm-gpu-150k",
    "cluttered100-g8-lstm-gpu-b1024",
]


def task_of(run: RunDir) -> str:
    config = run.config()
    return config.task if config.task != "cluttered" else f"cluttered{config.canvas}"


def first_reached(rows: list[dict], threshold: float) -> list[tuple[float, int] | None]:
    """Per seed: (wall seconds, images) at the first validation at or under `threshold`, or None."""
    vals = np.asarray([np.atleast_1d(r["val_error_pct"]) for r in rows], np.float64)  # [S, N]
    out = []
    for seed in range(vals.shape[1]):
        hit = np.flatnonzero(vals[:, seed] <= threshold)
        out.append(None if not len(hit) else (float(rows[hit[0]]["wall_time_s"]), int(rows[hit[0]]["images_seen"])))
    return out


def table() -> tuple[str, list[tuple[str, str, list[float], list[float]]]]:
    lines = [
        "| run | machine | validation error | wall time (median over seeds) | images | seeds there |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    curves = []
    for name in RUNS:
        run = RunDir(HERE / "runs" / name)
        if not run.is_run():
            continue
        rows = run.read_metrics()
        if not rows:  # not validated yet
            continue
        machine = run.read_results().get("machine", {}) if run.has_results() else {}
        where = "2-core CPU" if machine.get("platform", "cpu") == "cpu" else machine.get("device", "GPU")
        thresholds = THRESHOLDS[task_of(run)]
        for thr in thresholds:
            reached = [x for x in first_reached(rows, thr) if x is not None]
            n = len(first_reached(rows, thr))
            if not reached:
                lines.append(f"| {name} | {where} | {thr:g}% | not reached | | 0 of {n} |")
                continue
            wall = float(np.median([w for w, _ in reached]))
            images = float(np.median([i for _, i in reached]))
            lines.append(
                f"| {name} | {where} | {thr:g}% | {wall / 60:.1f} min | {images / 1e6:.1f}M | {len(reached)} of {n} |"
            )
        wall = [float(r["wall_time_s"]) for r in rows]
        val = [float(np.min(np.atleast_1d(r["val_error_pct"]))) for r in rows]
        curves.append((name, task_of(run), wall, val))
    return "\n".join(lines), curves


def plot(curves, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for _, t, _, _ in curves})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for name, t, wall, val in curves:
            if t == task:
                ax.plot(np.asarray(wall) / 60, val, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall time (min)")
        ax.set_ylabel("validation error % (best seed)")
        ax.set_title(task)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    text, curves = table()
    print(text)
    plot(curves, HERE / "bench" / "time-to-accuracy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
