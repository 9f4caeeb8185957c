#!/usr/bin/env bash
# `ram bench RECIPE` under XLA's CPU flags that pick other matmul libraries or threading, interleaved
# (each round runs every variant once), one JSON record per run into OUT:
#   bash experiments/bench/xla_flags.sh OUT ROUNDS mnist28 --batch-sizes 128
# Pause training runs first (kill -STOP). Summarise: python experiments/bench/median.py OUT
set -euo pipefail
out=$1 rounds=$2
shift 2
variants=("" "--xla_cpu_use_xnnpack=true" "--xla_cpu_use_onednn=true" "--xla_cpu_multi_thread_eigen=false")
for round in $(seq "$rounds"); do
  for flags in "${variants[@]}"; do
    XLA_FLAGS="$flags" ram bench "$@" --seconds "${SECONDS_PER_RUN:-3}" --json | python -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line); r.update(round=$round, recipe='''XLA_FLAGS=$flags $*'''); print(json.dumps(r))" >> "$out"
  done
done
