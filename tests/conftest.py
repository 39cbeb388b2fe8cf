"""Shared pytest fixtures.  Keep this file small; add fixtures that several test modules need."""

from __future__ import annotations

import pytest

from betenet.seeding import seed_everything

#: Seed applied before every test (Python, NumPy and PyTorch global generators).
TEST_SEED = 1234


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, so golden numbers are reproducible."""
    seed_everything(TEST_SEED)
    yield
