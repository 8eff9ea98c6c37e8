"""Shared fixtures: the real model store and the test-media helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def model_store():
    """The real offline model store, built by the install command (`ahmer models build`)."""
    from ahmer.models.store import ModelStore

    store = ModelStore()
    store.build()  # idempotent: verifies and skips what is already there
    return store


@pytest.fixture(scope="session")
def model_path(model_store):
    """``model_path(name) -> Path`` of a verified store artifact."""
    return model_store.path
