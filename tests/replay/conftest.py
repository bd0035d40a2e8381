"""Fixtures for the replay tests: the real records in the upstream data folder of the project's
workspace (../shared/data, beside the repository, as in CI). Like the reference-table rebuild test,
these tests fail rather than skip without it: a silent skip would hide a broken import of real data."""

from pathlib import Path

import pytest

from .sources import DDP, PIERCE


def _real_records(path: Path, what: str) -> Path:
    assert path.is_file(), f"{what} is expected at {path} (the workspace's ../shared/data)"
    return path


@pytest.fixture(scope="session")
def pierce_path() -> Path:
    return _real_records(PIERCE, "the Pierce County extract")


@pytest.fixture(scope="session")
def ddp_path() -> Path:
    return _real_records(DDP, "the DDP sample")
