#!/usr/bin/env bash
# Throughput on a GPU machine that has JAX, Flax, Optax, orbax and chex but not this package
# (how experiments/bench/h100-*.jsonl were recorded; see experiments/BENCH.md):
#   bash experiments/bench/gpu.sh OUT_DIR [NAME]
# writes OUT_DIR/NAME-*.jsonl (one JSON record per batch size; see ram/bench.py) and NAME-env.txt;
# NAME defaults to h100. A benchmark that fails or times out leaves no file and fails the script.
# Each batch size compiles three programs (the FLOP count, the fused train chunk, the evaluation):
# about 40 s for an LSTM preset on an H100, so those get one batch size per call.
set -u -o pipefail
out=${1:?usage: gpu.sh OUT_DIR [NAME]}
name=${2:-h100}
status=0
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || python3 -m pip install --no-deps --no-build-isolation -e .
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'chex', chex.__version__, jax.devices())"
  nproc; date -u
} | tee "$out/$name-env.txt"
b() {
  local f="$out/$name-$1.jsonl"; shift
  echo "== $f: ram bench $*"
  if timeout 150 ram bench "$@" --seconds 2 --json > "$f"; then cat "$f"; else rm -f "$f"; echo "failed: $*"; status=1; fi
}
b mnist28 mnist28 --batch-sizes 128,1024,8192
b mnist28-seeds8 mnist28 --batch-sizes 128 --seeds 8
b cluttered60-lstm cluttered60 core=lstm --batch-sizes 256
b cluttered100-lstm cluttered100 core=lstm --batch-sizes 256
exit $status
