#!/usr/bin/env bash
# Throughput on a GPU machine that has JAX, Flax, Optax, orbax and chex but not this package
# (how experiments/bench/h100-*.jsonl were recorded; see experiments/BENCH.md):
#   bash experiments/bench/gpu.sh OUT_DIR
# writes OUT_DIR/h100-*.jsonl (one JSON record per batch size; see ram/bench.py) and h100-env.txt.
# Each batch size compiles three programs (the FLOP count, the fused train chunk, the evaluation):
# about 40 s for an LSTM preset on an H100, so those get one batch size per call.
set -u
out=${1:?usage: gpu.sh OUT_DIR}
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || python3 -m pip install --no-deps --no-build-isolation -e .
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'chex', chex.__version__, jax.devices())"
  nproc; date -u
} | tee "$out/h100-env.txt"
b() { name=$1; shift; echo "== $name: $*"; timeout 150 ram bench "$@" --seconds 2 --json > "$out/h100-$name.jsonl" && cat "$out/h100-$name.jsonl"; }
b mnist28 mnist28 --batch-sizes 128,1024,8192
b mnist28-seeds8 mnist28 --batch-sizes 128 --seeds 8
b cluttered60-lstm cluttered60 core=lstm --batch-sizes 256
b cluttered100-lstm cluttered100 core=lstm --batch-sizes 256
