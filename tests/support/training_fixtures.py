"""Fixtures shared by the trainer's test files: one torch thread per test (runs comparable and not fighting over
the 2 cores), a tiny SD 2.1 folder and a small captioned dataset, each built once per session."""
import pytest

from tests.support.tiny_sd import write_tiny_sd
from tests.support.training_runs import one_thread, write_dataset


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    return write_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd") / "sd21"), "sd21")


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")))
