"""Group commit for the process engine: writers queue statements and await; one transaction
commits everything queued since the last one. Each awaiting writer knows its rows are durable
when it resumes, yet a burst of steps costs one fsync, not one per step.

Owns the write path of executions; must not decide what is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from station.store import Database

logger = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any] | dict[str, Any]]


class Journal:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._batch: list[Statement] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self.commits = 0
        self.statements = 0

    async def write(self, *statements: Statement) -> None:
        """Return once these statements (and everything queued before them) are committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.extend(statements)
        self._waiters.append(future)
        self._wake.set()
        await future

    def write_soon(self, *statements: Statement) -> None:
        """Queue statements nobody waits for (trace lines); they commit with the next batch."""
        self._batch.extend(statements)
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await asyncio.sleep(0)  # let every runnable writer join this batch
                try:
                    self.flush()
                except Exception:
                    logger.exception("journal batch failed; its writers were told")
        finally:
            self.flush()

    def flush(self) -> None:
        batch, waiters = self._batch, self._waiters
        if not batch and not waiters:
            return
        self._batch, self._waiters = [], []
        try:
            with self._database.transaction() as db:
                for sql, params in batch:
                    db.execute(sql, params)
        except Exception as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        self.commits += 1
        self.statements += len(batch)
        for waiter in waiters:
            with contextlib.suppress(asyncio.InvalidStateError):
                waiter.set_result(None)
