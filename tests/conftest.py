"""Shared fixtures. Tests that need real MNIST read the folder named by $RAM_MNIST_DIR (as CI sets it);
without it they are skipped with a message. Nothing downloads."""

import os

import pytest

from ram import data


@pytest.fixture(scope="session")
def mnist_dir():
    folder = os.environ.get(data.ENV_VAR)
    if not folder:
        pytest.skip(f"set ${data.ENV_VAR} to the folder of the four MNIST *-ubyte.gz files")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    return data.load_mnist(mnist_dir)
