"""experiments/: the policy statistics behind the README's account of glimpses parked at the edge,
recomputed from the recorded checkpoints on real MNIST validation images."""

import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))
import policy_stats  # noqa: E402


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
