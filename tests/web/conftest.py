"""Fixtures for the cabinet's HTTP tests: ``cabinet`` makes accounts, logged-in clients and requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from web.cabinet_support import Cabinet


@pytest.fixture
async def cabinet(app_client: httpx.AsyncClient) -> AsyncIterator[Cabinet]:
    helper = Cabinet(app_client)
    yield helper
    for client in helper.clients:
        await client.aclose()
