"""Beyond one process, for real: two processes on this machine (one CPU device each) joined by
`jax.distributed` (a coordinator on 127.0.0.1, JAX's gloo CPU collectives) train the same config as
one process with two devices, and end with the same parameters and the same results.

Each process runs `ram train ... --distributed --coordinator 127.0.0.1:PORT --num-processes 2
--process-id I` for 10 steps, then again with `--resume` to step 20 (the command line, in-process,
with the data replaced by small random arrays shaped like MNIST: synthetic, not MNIST), then the
compiled chunk of `ram.step` alone over the global mesh.
The reference is the same script in one process with two fake CPU devices (as tests/test_parallel.py).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # three processes compile and train: ~1 min of CPU on 2 cores

OVERRIDES = [
    "patch_size=4", "num_glimpses=2", "glimpse_hidden=8", "location_hidden=8", "glimpse_features=16",
    "core_hidden=16", "batch_size=8", "steps_per_call=10", "eval_every=10", "eval_batch_size=16",
    "mc_samples=2", "warmup_steps=0", "schedule=constant",  # constant: a resumed run may train longer
]  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    from ram import cli, datasets, rundir, step, tasks
    from ram.config import get_config
    from ram.data import Mnist, Split

    out, process_id, port, overrides = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32))

    data = Mnist(split(64), split(40), split(40))
    datasets.load = lambda *args, **kwargs: data  # every process reads the same data
    argv = ["train", "mnist28", *overrides, "--run-dir", f"{out}/run", "--no-progress"]
    if process_id >= 0:  # one of two processes; else one process with two devices
        argv += ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                 "--process-id", str(process_id)]
    assert cli.main([*argv, "train_steps=10"]) == 0
    assert cli.main([*argv, "train_steps=20", "--resume"]) == 0  # each process restores the checkpoint
    assert jax.device_count() == 2 and jax.process_count() == (2 if process_id >= 0 else 1)

    def save(name, tree):
        np.savez(f"{out}/{name}-{process_id}.npz", *[np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))])

    save("best", rundir.load_run(f"{out}/run").params)  # every process reads the checkpoint back

    # The compiled chunk alone, over the global mesh of both processes' devices.
    config = get_config("mnist28", overrides).replace(policy_hidden=8, first_location="learned", train_steps=20)
    mesh = step.make_mesh()
    graphdef, states = step.init_states(config)
    chunk = step.make_train_chunk(graphdef, config, steps=5, mesh=mesh)
    data = step.replicate(tasks.synthetic_split(64), mesh)
    states, metrics = chunk(step.replicate(states, mesh), data, step.seed_keys(config, 1))
    assert len(states.params["classifier"]["kernel"][...].sharding.device_set) == 2
    save("chunk", states.params)
    print("done", process_id, flush=True)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(out, process_id: int, port: int, xla_flags: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", **({"XLA_FLAGS": xla_flags} if xla_flags else {}))
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out), str(process_id), str(port), *OVERRIDES],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: list[subprocess.Popen], timeout: float = 500) -> list[str]:
    """The stdout of each process; a process that fails or outlives `timeout` (all together) fails the
    test, and the others (which would wait for it forever) are killed."""
    deadline, outs = time.monotonic() + timeout, []
    try:
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"timed out after {timeout} s: {err[-3000:]}")
            assert proc.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`(two, one)`: the folders of the two-process run and of the one-process, two-device run."""
    two, one = tmp_path_factory.mktemp("two-processes"), tmp_path_factory.mktemp("one-process")
    port = free_port()
    procs = [start(two, i, port) for i in (0, 1)]  # one CPU device each
    procs.append(start(one, -1, 0, xla_flags="--xla_force_host_platform_device_count=2"))
    outs = finish(procs)
    assert all(f"done {i}" in out for i, out in zip((0, 1, -1), outs, strict=True))
    return two, one


def leaves(path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)


def test_two_processes_compute_the_chunk_of_one_process_with_two_devices(runs):
    two, one = runs
    reference = leaves(one / "chunk--1.npz")
    for i in (0, 1):
        assert_same(leaves(two / f"chunk-{i}.npz"), reference)


def test_ram_train_distributed_and_resumed_trains_as_one_process_with_two_devices(runs):
    two, one = runs
    # The best parameters that each process reads back are the one-process run's.
    for i in (0, 1):
        assert_same(leaves(two / f"best-{i}.npz"), leaves(one / "best--1.npz"))
    # Process 0 alone wrote the files: one metrics line per validation, and no lock left behind.
    lines = [json.loads(x) for x in (two / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [10, 20]
    assert not (two / "run" / "lock").exists()
    reference = [json.loads(x) for x in (one / "run" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(lines, reference, strict=True):
        assert a["val_error_pct"] == b["val_error_pct"]
        np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
    results = json.loads((two / "run" / "results.json").read_text())
    expected = json.loads((one / "run" / "results.json").read_text())
    for key in ("best_step", "val_error_pct", "test_error_pct", "test_error_mc_pct", "seeds"):
        assert results[key] == expected[key], key
    assert results["machine"]["num_devices"] == 2
