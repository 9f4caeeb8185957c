"""experiments/: the policy statistics behind the README's account of glimpses parked at the edge,
recomputed from the recorded checkpoints on real MNIST validation images."""

import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))
import error_overlap  # noqa: E402
import policy_stats  # noqa: E402
import train_error  # noqa: E402


@pytest.mark.parametrize("name, parked", [("cluttered60-g8", True), ("cluttered60-g8-penalty", False)])
def test_recorded_policy_parks_without_penalty_only(mnist, name, parked):
    rows = policy_stats.policy_stats(str(EXPERIMENTS / "runs" / name), mnist, num_images=300)
    assert [r["glimpse"] for r in rows] == list(range(1, 9))
    late = rows[4:]  # glimpses 5-8
    saturated = np.mean([r["saturated"] for r in late])
    off = np.mean([r["off_canvas"] for r in late])
    for r in rows:
        assert 0 <= r["z_p50"] <= r["z_p90"] <= r["z_p99"]
        assert 0 <= r["off_canvas"] <= 1 and 0 <= r["saturated"] <= 1
    if parked:
        assert saturated > 0.5 and off > 0.3 and min(r["z_p90"] for r in late) > 5
    else:
        assert saturated < 0.01 and off < 0.01 and max(r["z_p99"] for r in rows) < 1.5


def test_policy_stats_cli_fails_in_one_line(capsys, mnist_dir):
    code = policy_stats.main(["/no/such/run", "--mnist-dir", mnist_dir, "--images", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("policy_stats: error: ") and "not a run folder" in err


def test_train_error_measures_validation_as_training_did(mnist):
    """Its validation column is the recorded best validation error (the same key, std and examples),
    so its train column is measured the same way."""
    import json

    run = EXPERIMENTS / "runs" / "mnist28-g6-seed1"  # seed 1: validation draws with the seed's key, not key 0
    (row,) = train_error.train_and_validation_errors(str(run), mnist, num=300, mc_samples=2)
    recorded = json.loads((run / "results.json").read_text())
    assert row["seed"] == 1 and row["best_step"] == recorded["best_step"][0]
    assert row["validation"]["error_pct"] == pytest.approx(recorded["val_error_pct"][0], abs=1e-6)
    assert row["train"]["num_examples"] == 300 and 0 <= row["train"]["error_pct"] <= 100


def test_train_error_cli_fails_in_one_line(capsys, mnist_dir):
    code = train_error.main(["/no/such/run", "--mnist-dir", mnist_dir, "--num", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("train_error: error: ") and "not a run folder" in err


def test_error_overlap_counts_by_hand():
    """Five digits, three trajectories each (made-up outcomes, no model)."""
    a = {"single": np.array([0, 0, 1, 1, 0], bool), "num_correct": np.array([0, 2, 3, 1, 0]), "mc_samples": 3}
    b = {"single": np.array([1, 0, 1, 0, 1], bool), "num_correct": np.array([3, 0, 3, 1, 2]), "mc_samples": 3}
    assert error_overlap.summary(a, b) == {
        "digits": 5,
        "errors_a": 3,  # digits 0, 1, 4
        "all_wrong_a": 2,  # 0 and 4: no trajectory right
        "errors_b": 2,  # 1, 3
        "all_wrong_b": 1,  # 1
        "both": 1,  # 1
        "a_only_b_sure": 1,  # 0: b's three trajectories right (4: two of three)
    }


def test_error_overlap_reproduces_the_recorded_validation_error(mnist):
    import json

    run = EXPERIMENTS / "runs" / "mnist28-g6-seed1"
    outcomes = error_overlap.validation_outcomes(str(run), mnist, mc_samples=2)
    recorded = json.loads((run / "results.json").read_text())["val_error_pct"][0]
    assert 100 * (1 - outcomes["single"].mean()) == pytest.approx(recorded, abs=1e-6)
    assert outcomes["num_correct"].shape == outcomes["single"].shape and outcomes["num_correct"].max() <= 2


def test_error_overlap_cli_fails_in_one_line(capsys, mnist_dir):
    code = error_overlap.main(["/no/such/run", "/no/such/run", "--mnist-dir", mnist_dir])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error_overlap: error: ") and "not a run folder" in err


def test_run_script_forwards_sigterm_to_the_training_process(tmp_path):
    """`kill -TERM` of experiments/run.py must reach `ram train` (which then checkpoints), not orphan it.

    The 'training process' here is a small Python stand-in that records the signal it gets.
    """
    import signal
    import subprocess
    import time

    marker = tmp_path / "got"
    child = (
        "import signal, sys, time, pathlib\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "def h(s, f):\n"
        "    p.write_text(str(s)); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, h)\n"
        "p.with_suffix('.ready').write_text('')\n"
        "time.sleep(60)\n"
    )
    parent = (
        f"import sys; sys.path.insert(0, {str(EXPERIMENTS)!r}); import run\n"
        f"sys.exit(run.call([sys.executable, '-c', {child!r}]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 120  # python and run.py start slowly on a loaded machine
    while not marker.with_suffix(".ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "stand-in never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7  # the child's exit status comes back through run.py
    assert marker.read_text() == str(int(signal.SIGTERM))


def test_run_script_passes_what_follows_the_double_dash_to_ram_train():
    import run

    args, extra = run.parse(["mnist28-g6", "translated60-g8", "--", "--mnist-dir", "DIR"])
    assert (args.rows, extra) == (["mnist28-g6", "translated60-g8"], ["--mnist-dir", "DIR"])
    args, extra = run.parse(["--table"])
    assert (args.rows, args.table, extra) == ([], True, [])


def test_budget_of_a_continued_run_counts_its_parent():
    import run

    r = {"images_seen": 5_120_000, "epochs": 102.4, "train_wall_time_s": 6000.0}
    assert run.budget(r) == "5.1M (102) | 100 min"
    r.update(init_from="experiments/runs/x", images_seen_before=7_680_000, wall_time_before_s=8280.0)
    assert run.budget(r) == "5.1M (102) + 7.7M before | 100 min + 138 min before"


def test_every_recorded_run_has_the_config_of_its_row():
    """rows.py can't drift from what ran: each recorded run's config.json is its row's config.

    Runs of the first session saved fewer fields and `unroll_glimpses=false` (it changes speed, not
    arithmetic; see experiments/README.md), so only the saved fields other than that are compared."""
    import json

    from rows import ROWS

    from ram.config import get_config
    from ram.datasets import MNIST_INFO, fit_config

    checked = 0
    for name, row in ROWS.items():
        folder = EXPERIMENTS / "runs" / name
        if not (folder / "results.json").is_file():
            continue
        saved = json.loads((folder / "config.json").read_text())
        want = fit_config(row.config, MNIST_INFO).to_dict()  # as training saves it
        differ = {k: (saved[k], want.get(k)) for k in saved if k != "unroll_glimpses" and saved[k] != want.get(k)}
        assert not differ, f"{name}: recorded config differs from rows.py (recorded, row): {differ}"
        checked += 1
    assert checked >= 20
    for name, row in ROWS.items():  # the command a row prints gives its config
        assert get_config(row.preset, row.overrides) == row.config, name


def test_generated_tables_match_the_recorded_runs():
    """The README's full table and experiments/RESULTS.md are what `run.py --table` writes from the
    recorded results.json files today: a result recorded (or a row's note changed) without
    regenerating them fails here."""
    import run

    readme = run.README.read_text()

    def block(start: str, end: str) -> str:
        return readme.split(start, 1)[1].split(end, 1)[0].strip()

    assert block(run.START, run.END) == run.table("experiments/runs"), (
        "README table is stale: python experiments/run.py --table"
    )
    assert block(run.SUMMARY_START, run.SUMMARY_END) == run.summary(), (
        "README summary is stale: python experiments/run.py --table"
    )
    assert block(run.RECIPES_START, run.RECIPES_END) == run.recipes(), (
        "README recipes are stale: python experiments/run.py --table"
    )
    results = (EXPERIMENTS / "RESULTS.md").read_text()
    assert results == run.results_md(), "experiments/RESULTS.md is stale: python experiments/run.py --table"


def test_the_rows_of_a_recipe_differ_only_in_their_seed():
    """A recipe's mean +- std pools its rows' runs, so they must be one config (and one preset's
    command) apart from the seed: a row that changed anything else would be averaged in silently."""
    import dataclasses

    import run
    from rows import ROWS

    for task, recipe, names in run.RECIPES:
        configs = {dataclasses.replace(ROWS[n].config, seed=0) for n in names}
        assert len(configs) == 1, f"{task}, {recipe}: its rows differ in more than the seed"
        assert len({ROWS[n].preset for n in names}) == 1, f"{task}, {recipe}"
        assert len({ROWS[n].config.seed + k for n in names for k in range(ROWS[n].seeds)}) > 1, f"{task}, {recipe}"


def test_a_recipe_pools_every_seed_of_every_row():
    """Made-up results.json contents (not recorded runs): a three-seed row and a one-seed row are four
    runs, reported with the sample std; one run is its value; names shorten after their base row."""
    import run

    assert run.over_runs([{"e": [1.0, 2.0, 3.0]}, {"e": [4.0]}], "e") == "2.50 +- 1.29"
    assert run.over_runs([{"e": [0.874]}], "e") == "0.87"
    assert run.over_runs([{"e": [0.874]}, {}], "e") == ""  # not a mean over the runs that have it
    assert run.short_names(("a-3seeds", "b-seed0", "b-seed1", "b-seed3", "c", "c-seed1")) == [
        "a-3seeds",
        "b-seed0",
        "-seed1",
        "-seed3",
        "c",
        "-seed1",
    ]


def test_the_summary_shows_the_run_best_on_validation_over_every_seed():
    """Made-up results.json contents (not recorded runs): each seed of a several-seed run competes on
    its own, the lowest validation error wins whatever its test error, and a tie goes to the earlier run."""
    import run

    def results(*val):
        return {"num_seeds": len(val), "val_error_pct": list(val), "test_error_pct": [0.0] * len(val)}

    assert run.best_on_validation([]) is None
    assert run.best_on_validation([("a", results(0.6)), ("b", results(0.7, 0.5, 0.9))]) == ("b", 1)
    assert run.best_on_validation([("a", results(0.5)), ("b", results(0.5))]) == ("a", 0)
    assert run.best_on_validation([("a", results(0.61, 0.5)), ("b", results(0.5))]) == ("a", 1)
    assert run.best_on_validation([("a", results(None)), ("b", results(0.9))]) == ("b", 0)
    assert run.between("x <s>\nold\n<e> y", "<s>", "<e>", "new") == "x <s>\nnew\n<e> y"
    assert run.between("no markers", "<s>", "<e>", "new") == "no markers"
