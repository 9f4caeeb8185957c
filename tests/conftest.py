"""Shared fixtures. Tests that need real MNIST read the folder named by $RAM_MNIST_DIR (as CI sets it);
without it they are skipped with a message. Nothing downloads."""

import os
import shutil
import tempfile

# Decoded folders are cached in a folder of this test session's (removed at its end), never in the
# user's ~/.cache; set at import, so that it holds from the first test on. The tests run in two
# processes (pytest-xdist, setup.cfg): the workers inherit the folder of the process that started them.
INHERITED = "PYTEST_XDIST_WORKER" in os.environ and "RAM_CACHE_DIR" in os.environ
CACHE_DIR = os.environ["RAM_CACHE_DIR"] if INHERITED else tempfile.mkdtemp(prefix="ram-test-cache-")
os.environ["RAM_CACHE_DIR"] = CACHE_DIR
# Compiled programs too, in the same folder: many tests train the same tiny model, each through new
# closures that jit cannot recognise, but XLA's persistent cache keys on the program itself. With it
# the fresh-clone CI suite went from 13.1 to 10.2 minutes on 2 cores (session 19); two xdist processes
# then took one machine's suite from 12.1 to 8.3 minutes (fresh clone, session 21). Set before JAX is
# imported (so before `ram`), and inherited by the tests' subprocesses (CLI, notebook, two-process runs).
os.environ.update(
    JAX_COMPILATION_CACHE_DIR=os.path.join(CACHE_DIR, "xla"),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ram import data  # noqa: E402
from ram.config import Config  # noqa: E402
from ram.data import Mnist, Split  # noqa: E402

# The files that take longest (on 2 cores, session 21: 170, 95, 60, 60, 40, 40, 40 and 35 s), first: each
# of the two processes takes the next file when it is done with one (setup.cfg's --dist=loadfile), so
# none of these is left to run alone at the end. The other files follow in their usual order.
LONGEST_FIRST = (
    "test_train.py",
    "test_model.py",
    "test_distributed.py",
    "test_own_data.py",
    "test_cli.py",
    "test_tasks.py",
    "test_notebook.py",
    "test_faults.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order


def pytest_unconfigure(config):
    if not INHERITED:  # removed by the process that made it
        shutil.rmtree(CACHE_DIR, ignore_errors=True)


# A tiny model (synthetic-data tests): trains in seconds on a CPU.
TINY = Config(
    patch_size=4,
    num_glimpses=2,
    glimpse_hidden=8,
    location_hidden=8,
    glimpse_features=16,
    core_hidden=16,
    batch_size=8,
    train_steps=40,
    steps_per_call=10,
    eval_every=20,
    eval_batch_size=16,
    mc_samples=2,
    warmup_steps=5,
)


@pytest.fixture(scope="session")
def mnist_dir():
    folder = os.environ.get(data.ENV_VAR)
    if not folder:
        pytest.skip(f"set ${data.ENV_VAR} to the folder of the four MNIST *-ubyte.gz files")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    return data.load_mnist(mnist_dir)


@pytest.fixture(scope="module")
def synthetic():
    """Small random uint8 arrays shaped like MNIST digits (synthetic, not MNIST): 64/40/40 images."""
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32))

    return Mnist(split(64), split(40), split(40))
