"""Fixtures for the dashboard tests: a scripted session on a real ledger file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.scripted import ScriptedSession


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[ScriptedSession]:
    """A 3-party, 3-round session in ``tmp_path/out`` whose ledger does not exist yet."""
    session = ScriptedSession(tmp_path / "out")
    yield session
    session.close()
