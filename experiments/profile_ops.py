"""Where the device time of training goes, by XLA operation: a `jax.profiler` trace of fused train
chunks, each op's time summed over the trace, grouped by kind, and the largest ops named with the
JAX code they came from.

    python experiments/profile_ops.py cluttered60 core=lstm policy_hidden=128 batch_size=256 [--steps 20]

Prints (1) the step time, (2) the share of summed op time per kind of op (`ynn_fusion` and `dot`
are the matmuls; on a CPU the thunk executor runs independent ops on both cores at once, so the
summed op time exceeds the wall time), (3) the largest ops with their shapes and `op_name`s. Pause
training runs first (`kill -STOP`): ops that share the cores with another process look slower.
Synthetic digit-shaped arrays, as `ram bench` (time does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax

from ram import step, tasks
from ram.config import get_config

MATMULS = ("ynn_fusion", "dot")
NOT_OPS = ("ThunkExecutor", "$", "SlinkyThreadPool", "PjitFunction", "end: ", "CommonPjRt", "ParseArguments")


def op_times(trace_dir: Path) -> tuple[collections.Counter, collections.Counter]:
    """Summed microseconds and call counts of every complete event in the trace, by name."""
    path = next(trace_dir.rglob("*.trace.json.gz"))
    with gzip.open(path) as f:
        trace = json.load(f)
    total, calls = collections.Counter(), collections.Counter()
    for event in trace["traceEvents"]:
        if event.get("ph") == "X" and not event["name"].startswith(NOT_OPS):
            total[event["name"]] += event["dur"]
            calls[event["name"]] += 1
    return total, calls


def instructions(hlo: str) -> dict[str, tuple[str, str]]:
    """`{name: (result shape, op_name)}` of each instruction of the compiled HLO text."""
    found = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ", line)
        if m and m.group(1) not in found:
            op = re.search(r'op_name="([^"]+)"', line)
            found[m.group(1)] = (m.group(2), op.group(1) if op else "")
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--steps", type=int, default=20, help="train steps per traced chunk (two chunks are traced)")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    config = get_config(args.preset, args.overrides)
    data = tasks.synthetic_split(50_000)
    graphdef, states = step.init_states(config)
    keys = step.seed_keys(config, 1)
    chunk = step.make_train_chunk(graphdef, config, steps=args.steps).lower(states, data, keys).compile()
    hlo = chunk.as_text()
    states = jax.block_until_ready(chunk(states, data, keys)[0])  # compile and warm up
    t = time.perf_counter()
    for _ in range(3):
        states = jax.block_until_ready(chunk(states, data, keys)[0])
    ms_per_step = 1000 * (time.perf_counter() - t) / (3 * args.steps)

    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(2):
                states = jax.block_until_ready(chunk(states, data, keys)[0])
        total, calls = op_times(Path(trace_dir))
    steps = 2 * args.steps
    kinds = collections.Counter()
    for name, us in total.items():
        kinds[re.sub(r"\.\d+$", "", name)] += us
    summed = sum(kinds.values())
    matmul = sum(us for kind, us in kinds.items() if kind in MATMULS)
    print(f"{args.preset} {' '.join(args.overrides)}: batch {config.batch_size}, {jax.devices()[0].platform}")
    print(f"  wall {ms_per_step:.2f} ms/step; summed op time {summed / 1000 / steps:.2f} ms/step")
    print(f"  matmuls (ynn_fusion, dot): {100 * matmul / summed:.1f}% of the summed op time\n")
    print("  share  ms/step  calls/step  kind")
    for kind, us in kinds.most_common(args.top):
        n = sum(c for name, c in calls.items() if re.sub(r"\.\d+$", "", name) == kind)
        print(f"  {100 * us / summed:5.1f}% {us / 1000 / steps:8.3f} {n / steps:10.1f}  {kind}")
    known = instructions(hlo)
    print("\n  largest ops (ms per call, calls/step, result shape, op_name):")
    for name, us in total.most_common(args.top):
        shape, op = known.get(name, ("?", ""))
        print(f"  {us / calls[name] / 1000:7.3f} {calls[name] / steps:5.1f}  {name:28s} {shape:22s} {op[-80:]}")


if __name__ == "__main__":
    main()
