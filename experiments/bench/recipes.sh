#!/usr/bin/env bash
# The recipes of issue #17, `ram bench` 5 times each, interleaved (round r runs every recipe once),
# one JSON record per run into OUT (default experiments/bench/cpu2-recipes.jsonl). Pause training runs first
# (kill -STOP): the figures are meant for idle cores. Summarise: python experiments/bench/median.py OUT
set -euo pipefail
out=${1:-experiments/bench/cpu2-recipes.jsonl}
rounds=${ROUNDS:-5}
lstm="num_glimpses=8 policy_hidden=128 first_location=learned core=lstm location_std_final=0.03 mean_penalty=0.01 mean_penalty_margin=1.5"
recipes=(
  "mnist28 --batch-sizes 128"
  "cluttered60 --batch-sizes 128"
  "cluttered60 $lstm --batch-sizes 256"
  "cluttered100 $lstm --batch-sizes 256"
  "mnist28 num_glimpses=6 policy_hidden=128 first_location=learned samples_per_image=4 baseline=both --batch-sizes 32"
)
: > "$out"
for round in $(seq "$rounds"); do
  for recipe in "${recipes[@]}"; do
    # shellcheck disable=SC2086
    ram bench $recipe --seconds "${SECONDS_PER_RUN:-4}" --json | python -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line); r.update(round=$round, recipe='''$recipe'''); print(json.dumps(r))" >> "$out"
  done
done
