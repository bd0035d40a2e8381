"""Fixtures for the replay tests: the real records in the upstream data folder of the project's
workspace (../shared/data, beside the repository). A clone without that folder skips the tests
that read them; every other replay test runs."""

from pathlib import Path

import pytest

from .sources import DDP, PIERCE


def _real_records(path: Path, what: str) -> Path:
    if not path.parent.parent.is_dir():
        pytest.skip(f"../shared/data is not present ({what} expected at {path})")
    assert path.is_file(), f"{what} is expected at {path}"
    return path


@pytest.fixture(scope="session")
def pierce_path() -> Path:
    return _real_records(PIERCE, "the Pierce County extract")


@pytest.fixture(scope="session")
def ddp_path() -> Path:
    return _real_records(DDP, "the DDP sample")
