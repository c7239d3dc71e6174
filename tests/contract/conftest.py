"""One matrix gateway per test module (starting uvicorn per test would dominate the run time);
every test gets it freshly reset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from tests.contract.harness import Matrix, matrix


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[Matrix]:
    async with matrix() as m:
        yield m


@pytest_asyncio.fixture(loop_scope="module")
async def mx(shared: Matrix) -> AsyncIterator[Matrix]:
    shared.reset()
    yield shared
    shared.reset()
