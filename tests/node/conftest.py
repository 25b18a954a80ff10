"""Fixtures shared by the node tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .test_federation_harness import Sim


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    """An in-process federation on an in-memory network (closed at the end of the test)."""
    s = Sim(tmp_path)
    yield s
    await s.close()
