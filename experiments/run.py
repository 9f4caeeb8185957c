"""Run rows of the paper's tables and regenerate the results table.

    python experiments/run.py mnist28-g6            # train one row into experiments/runs/mnist28-g6
    python experiments/run.py all                   # every row, one after the other
    python experiments/run.py --list                # rows, their commands and paper numbers
    python experiments/run.py --table               # rewrite experiments/RESULTS.md and the README's tables

A row whose run folder already exists is resumed (`--resume`), so an interrupted sweep continues
where it stopped. Extra arguments after `--` go to `ram train` (e.g. `-- --mnist-dir DIR`).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from rows import ROWS, seed_names  # noqa: E402

from ram.rundir import RunDir, summarize  # noqa: E402

RUNS = HERE / "runs"
README = HERE.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"
# The README summary's tasks: (label, preset, glimpses). Each shows its run best on validation.
TASKS = (
    ("28x28 MNIST, 6 glimpses", "mnist28", 6),
    ("translated 60x60, 8 glimpses", "translated60", 8),
    ("cluttered 60x60, 8 glimpses", "cluttered60", 8),
    ("cluttered 100x100, 8 glimpses", "cluttered100", 8),
)
RECIPES_START, RECIPES_END = "<!-- recipes:start -->", "<!-- recipes:end -->"


def _seeds(name: str) -> tuple[str, ...]:
    return (name, *seed_names(name))


# The README's recipes over seeds: (task, recipe, rows). The rows of a recipe differ only in their
# seed (a test checks), and each seed of each recorded row is one run of it.
RECIPES = (
    (
        "28x28",
        "this README's command",
        ("mnist28-g6-m4-both-100k-wd03-3seeds", *(f"mnist28-g6-readme-wd03-seed{s}" for s in (0, 1, 3, 4))),
    ),
    (
        "translated 60x60",
        "LSTM, 4 trajectories, `baseline=both`, weight decay 0.03",
        _seeds("translated60-g8-lstm-m4-both-wd03"),
    ),
    ("translated 60x60", "the same with `dropout=0.1`", _seeds("translated60-g8-lstm-m4-both-wd03-drop1")),
    (
        "translated 60x60",
        "the same with the policy std annealed to 0.05",
        _seeds("translated60-g8-lstm-m4-both-wd03-drop1-std05"),
    ),
    (
        "translated 60x60",
        "the first translated recipe with 256 images per step (not 64) and 120k steps (not 100k), on a GPU",
        _seeds("translated60-g8-lstm-gpu-m4-both-wd03"),
    ),
    ("cluttered 60x60", "the GPU recipe at batch 1024, command below", _seeds("cluttered60-g8-lstm-gpu-b1024")),
    (
        "cluttered 100x100",
        "the same; seed 1 on the CPU, its Adam moments restarted at step 86k (a lost checkpoint rebuilt)",
        _seeds("cluttered100-g8-lstm-gpu-b1024"),
    ),
)


def command(name: str) -> list[str]:
    row = ROWS[name]
    seeds = ["--seeds", str(row.seeds)] if row.seeds > 1 else []
    return ["ram", "train", row.preset, *row.overrides, *seeds, "--run-dir", f"experiments/runs/{name}"]


def run_row(name: str, extra: list[str]) -> int:
    cmd = command(name) + extra
    if RunDir(RUNS / name).is_run():
        if RunDir(RUNS / name).has_results():
            print(f"{name}: already recorded, skipping")
            return 0
        cmd.append("--resume")
    print("+", " ".join(cmd), flush=True)
    return call(cmd, cwd=HERE.parent)


def call(cmd: list[str], **kw) -> int:
    """Runs `cmd` and waits, handing interruptions to it rather than killing it.

    `kill -TERM` of this script is forwarded to the training process, which then writes its last
    checkpoint (a plain subprocess.call would leave it running, orphaned). Ctrl-C already reaches the
    child through the terminal; this script ignores it and waits for the child to finish saving.
    """
    proc = subprocess.Popen(cmd, **kw)
    old_term = signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum))
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def budget(r: dict) -> str:
    """Images seen (epochs) and wall time; a run started from another's parameters (init_from) adds
    what producing them cost: "5.1M (102) + 7.7M before | 100 min + 138 min before"."""
    epochs = r.get("epochs", r["images_seen"] / 50_000)  # runs of the former --seeds module did not record it
    images = f"{r['images_seen'] / 1e6:.1f}M ({epochs:.0f})"
    wall = f"{r['train_wall_time_s'] / 60:.0f} min"
    if r.get("init_from"):
        first = lambda x: x[0] if isinstance(x, list) else x  # noqa: E731 (seed 0's lineage)
        images += f" + {first(r['images_seen_before']) / 1e6:.1f}M before"
        wall += f" + {first(r['wall_time_before_s']) / 60:.0f} min before"
    return f"{images} | {wall}"


def errors(r: dict, key: str) -> str:
    """A per-seed figure of results.json: the value for one seed, mean +- std for several."""
    if r["num_seeds"] == 1:
        return f"{r[key][0]:.2f}"
    s = r["summary"][key]
    return f"{s['mean']:.2f} +- {s['std']:.2f} ({r['num_seeds']} seeds)"


def table(link: str = "runs") -> str:
    """Markdown table of the recorded rows; `link` is the runs folder relative to the document."""
    lines = [
        "| row | paper (NIPS) | best public | target | ours: single sample | ours: MC-averaged (M) "
        "| images seen (epochs) | wall time | machine | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in ROWS.items():
        run = RunDir(RUNS / name)
        if not run.has_results():
            continue
        r = run.read_results()
        lines.append(
            f"| [{name}]({link}/{name}) | {fmt(row.paper)} | {fmt(row.public)} | {fmt(row.target)} "
            f"| **{errors(r, 'test_error_pct')}** | {errors(r, 'test_error_mc_pct')} ({r['mc_samples']}) "
            f"| {budget(r)} "
            f"| {machine(r, full=True)} | {row.note} |"
        )
    return "\n".join(lines)


INTRO = """# Recorded results

Generated by `python experiments/run.py --table` from `experiments/runs/*/results.json`; do not edit
by hand. Test error (%) of the checkpoint with the best validation error. Single sample is the
paper's measure; the error of class probabilities averaged over M trajectories is reported
separately. Each run folder holds the config, the metrics, the command, the seed, the wall time,
the machine and the best checkpoint: `ram eval experiments/runs/ROW` reproduces the numbers. For the
runs trained on an H100 it was run on the 2-core CPU only, where the errors come out within a few
test images of the recorded ones (float32 arithmetic differs and moves some sampled glimpses; see
`eval-cpu.json` in those folders and experiments/README.md).
"""


def best_on_validation(runs: list[tuple[str, dict]]) -> tuple[str, int] | None:
    """(row, seed index) of the lowest validation error among `runs` ((row, results.json) pairs, each
    seed of a several-seed run a candidate of its own; a missing error, JSON's null, is none); a tie
    goes to the earlier pair. None if there is no candidate."""
    candidates = [
        (v, k, name, i) for k, (name, r) in enumerate(runs) for i, v in enumerate(r["val_error_pct"]) if v is not None
    ]
    return min(candidates)[2:] if candidates else None


def machine(r: dict, full: bool = False) -> str:
    """The machine: "2-core CPU", or the accelerator's name ("H100 80GB HBM3"; with `full`, as JAX reports it)."""
    m = r.get("machine", {})
    if m.get("platform") == "cpu":
        return f"{m.get('cpu_count', '?')}-core CPU"
    device = m.get("device", "?")
    return device if full else device.removeprefix("NVIDIA ")


def summary(link: str = "experiments/runs") -> str:
    """The README's summary: per task of TASKS, the recorded run best on validation (any row, any seed)."""
    lines = [
        "| task | target (best public) | paper | **ours** | expected | MC-10 | validation | run (best on validation) "
        "| training |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, preset, glimpses in TASKS:
        rows = [n for n, row in ROWS.items() if row.preset == preset and row.config.num_glimpses == glimpses]
        runs = [(n, RunDir(RUNS / n).read_results()) for n in rows if RunDir(RUNS / n).has_results()]
        best = best_on_validation(runs)
        if best is None:
            continue
        name, i = best
        r, row = dict(runs)[name], ROWS[name]
        seed = f", seed {r['seeds'][i]}" if r["num_seeds"] > 1 else ""
        m = row.config.samples_per_image
        images = f"{r['images_seen'] / 1e6:.1f}M images" + (f" x {m} trajectories" if m > 1 else "")
        wall = f"{r['train_wall_time_s'] / 60:.0f} min" + (f" for {r['num_seeds']} seeds" if seed else "")
        lines.append(
            f"| {label} | {fmt(row.public)} | {fmt(row.paper)} | **{r['test_error_pct'][i]:.2f}** "
            f"| {fmt(r.get('test_error_expected_pct', [None] * r['num_seeds'])[i])} "
            f"| {r['test_error_mc_pct'][i]:.2f} | {r['val_error_pct'][i]:.2f} | [{name}]({link}/{name}){seed} "
            f"| {images}, {wall}, {machine(r)} |"
        )
    return "\n".join(lines)


def short_names(names: tuple[str, ...]) -> list[str]:
    """Row names, each `X-seedN` after a row `X` or `X-seedM` shortened to `-seedN`."""
    out = []
    for k, name in enumerate(names):
        base, _, seed = name.rpartition("-seed")
        prev = names[k - 1] if k else ""
        short = k > 0 and seed.isdigit() and base in (prev, prev.rpartition("-seed")[0])
        out.append(f"-seed{seed}" if short else name)
    return out


def over_runs(results: list[dict], key: str) -> str:
    """`key` over every seed of every results.json: "0.69 +- 0.04" (sample std), or the one value;
    empty if a run lacks it (older runs have no expected error), rather than a mean over some."""
    if any(key not in r for r in results):
        return ""
    values = [v for r in results for v in r[key]]
    if len(values) == 1:
        return f"{values[0]:.2f}"
    s = summarize(values)
    return f"{s['mean']:.2f} +- {s['std']:.2f}"


def recipes() -> str:
    """The README's recipes over seeds: per recipe of RECIPES, mean +- std of every recorded run."""
    lines = [
        "| task | recipe (rows) | runs | **test** | validation | expected | MC-10 | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, recipe, names in RECIPES:
        done = [n for n in names if RunDir(RUNS / n).has_results()]
        if not done:
            continue
        results = [RunDir(RUNS / n).read_results() for n in done]
        short = dict(zip(names, short_names(names), strict=True))
        rows = ", ".join(short[n] for n in done)
        missing = [short[n] for n in names if n not in done]
        if missing:
            rows += f"; not yet recorded: {', '.join(missing)}"
        machines = ", ".join(dict.fromkeys(machine(r) for r in results))
        lines.append(
            f"| {task} | {recipe} ({rows}) | {sum(r['num_seeds'] for r in results)} "
            f"| **{over_runs(results, 'test_error_pct')}** | {over_runs(results, 'val_error_pct')} "
            f"| {over_runs(results, 'test_error_expected_pct')} | {over_runs(results, 'test_error_mc_pct')} "
            f"| {machines} |"
        )
    return "\n".join(lines)


def results_md() -> str:
    """experiments/RESULTS.md: the table and each row's command."""
    commands = "\n".join(f"- `{name}`: `{' '.join(command(name))}`" for name in ROWS)
    return f"{INTRO}\n{table()}\n\n## Commands\n\n{commands}\n"


def write_table() -> None:
    (HERE / "RESULTS.md").write_text(results_md())
    text = README.read_text()
    text = between(text, START, END, table("experiments/runs"))
    text = between(text, SUMMARY_START, SUMMARY_END, summary())
    README.write_text(between(text, RECIPES_START, RECIPES_END, recipes()))
    print(table())


def between(text: str, start: str, end: str, body: str) -> str:
    """`text` with what lies between the markers `start` and `end` replaced by `body` (unchanged
    if a marker is missing)."""
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(run.py's arguments, the arguments after `--` for `ram train`). Split by hand: argparse would
    give `--mnist-dir DIR` after `--` to the row names."""
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", nargs="*", help="row names, or 'all'")
    p.add_argument("--list", action="store_true")
    p.add_argument("--table", action="store_true")
    return p.parse_args(argv[:cut]), argv[cut + 1 :]


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name, row in ROWS.items():
            print(f"{name:24s} paper {fmt(row.paper):>6s}  {' '.join(command(name))}")
        return 0
    names = list(ROWS) if args.rows == ["all"] else args.rows
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"run.py: error: unknown row(s) {unknown}; see --list", file=sys.stderr)
        return 2
    for name in names:
        code = run_row(name, extra)
        if code:
            return code
    if args.table or names:
        write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
