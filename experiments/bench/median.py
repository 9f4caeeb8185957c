"""Median (and range) of the interleaved `ram bench` records of experiments/bench/recipes.sh, per recipe.

python experiments/bench/median.py experiments/bench/cpu2-recipes.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            runs[record["recipe"]].append(record)
    print("| recipe | runs | train img/s (median, range) | trajectories/s | achieved / matmul rate (median, range) |")
    print("| --- | --- | --- | --- | --- |")
    for recipe, rs in runs.items():
        ips = [r["train_images_per_s"] for r in rs]
        tps = [r["train_trajectories_per_s"] for r in rs]
        frac = [r["matmul_fraction"] for r in rs]
        print(
            f"| `{recipe}` | {len(rs)} | {statistics.median(ips):,.0f} ({min(ips):,.0f}-{max(ips):,.0f}) "
            f"| {statistics.median(tps):,.0f} | {statistics.median(frac):.2f} ({min(frac):.2f}-{max(frac):.2f}) |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
