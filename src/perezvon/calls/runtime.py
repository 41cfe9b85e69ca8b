"""Running the callback worker inside the API process (``perezvon serve``). Placeholder until the engine lands."""

from __future__ import annotations

from typing import Any


class _NoWorker:
    async def stop(self) -> None:
        return None


async def start_in_process(state: Any) -> _NoWorker:
    return _NoWorker()
