"""Shared fixtures. Tests that need real MNIST read the folder named by $RAM_MNIST_DIR (as CI sets it);
without it they are skipped with a message. Nothing downloads."""

import os

import pytest

from ram import data
from ram.config import Config

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
