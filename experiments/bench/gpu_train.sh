#!/usr/bin/env bash
# Trains rows of experiments/rows.py side by side on a lent GPU machine that has JAX, Flax, Optax,
# orbax and chex but not this package (how the session-11 H200 rows were made):
#   bash experiments/bench/gpu_train.sh OUT SECONDS ROW...
# MNIST comes from $RAM_MNIST_DIR, else ./.mnist (the four *-ubyte.gz files, carried there);
# wheels in ./.whl (tensorboardX, which the image lacks) are installed first. Each row runs through
# experiments/run.py; one still training after SECONDS is sent SIGTERM, so it checkpoints and stops
# (`python experiments/run.py ROW` continues it anywhere). Each row's folder
# is packed into OUT/ROW.tar.gz (with its newest train checkpoint, not the older one orbax keeps,
# if it did not finish); its log is OUT/ROW.log, and OUT/env.txt names the machine. The script
# fails (exit 1) if a row failed or was stopped at SECONDS; the folders come back either way.
# The device tool sends the tracked tree, over its 64 MiB limit with the recorded run folders; for
# the call, take those out of the index and back (the files stay where they are):
#   git rm -r -q --cached experiments/runs && echo /experiments/runs/ >> .git/info/exclude
#   git reset -q -- experiments/runs && sed -i '\|^/experiments/runs/$|d' .git/info/exclude
set -u -o pipefail
out=${1:?usage: gpu_train.sh OUT SECONDS ROW...}
seconds=${2:?usage: gpu_train.sh OUT SECONDS ROW...}
shift 2
[ $# -ge 1 ] || { echo "usage: gpu_train.sh OUT SECONDS ROW..." >&2; exit 2; }
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || python3 -m pip install --no-deps --no-build-isolation -e . || exit 1
export RAM_MNIST_DIR=${RAM_MNIST_DIR:-$PWD/.mnist}
# JAX takes 75% of the GPU's memory per process by default: share it between the rows instead.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-$(awk "BEGIN {print 0.9 / $#}")}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'chex', chex.__version__, jax.devices())"
  nproc; date -u
} 2>&1 | tee "$out/env.txt"
for row in "$@"; do
  PYTHONUNBUFFERED=1 timeout -s TERM -k 90 "$seconds" python3 experiments/run.py "$row" >"$out/$row.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
date -u | tee -a "$out/env.txt"
for row in "$@"; do
  # A finished row needs no train checkpoints; a stopped one needs its latest (orbax keeps two).
  skip=()
  if [ -d "experiments/runs/$row/checkpoints" ]; then
    steps=$(ls "experiments/runs/$row/checkpoints" | grep -E '^[0-9]+$' | sort -n)
    keep=$(echo "$steps" | tail -1)
    [ -f "experiments/runs/$row/results.json" ] && keep=none
    for s in $steps; do [ "$s" = "$keep" ] || skip+=("--exclude=$row/checkpoints/$s"); done
  fi
  tar czf "$out/$row.tar.gz" ${skip[@]+"${skip[@]}"} -C experiments/runs "$row" || status=1
  echo "== $row"
  grep -a -o "step [0-9]*: val error [^)]*)" "$out/$row.log" | tail -2
  grep -a -E '"test_error_pct"|"train_wall_time_s"|^ram: ' "$out/$row.log" | tail -4
done
exit $status
