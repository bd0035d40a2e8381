"""Fixtures for the replay tests: the real records in ../shared/data."""

from pathlib import Path

import pytest

from .sources import DDP, PIERCE


@pytest.fixture(scope="session")
def pierce_path() -> Path:
    assert PIERCE.is_file(), f"the Pierce County extract is expected at {PIERCE}"
    return PIERCE


@pytest.fixture(scope="session")
def ddp_path() -> Path:
    assert DDP.is_file(), f"the DDP sample is expected at {DDP}"
    return DDP
