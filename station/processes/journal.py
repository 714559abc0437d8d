"""Group commit for the process engine: writers queue statements and await; one transaction
commits everything queued since the last one. Each awaiting writer knows its rows are durable
when it resumes, yet a burst of steps costs one fsync, not one per step.

The journal has its own SQLite connection. A batch's statements run on the event loop (fast, and no
thread has to win the GIL back for each one). Its COMMIT waits for the disk: on a slow disk (an SD
card's fsync can take tens of milliseconds) it runs on the journal's thread, so the event loop keeps
serving events, boards and the API meanwhile and the next batch gathers; on a fast disk it runs on
the loop, where it costs less than the trip through a busy loop's queue that the thread's answer
takes (a burst then settles into fewer, larger rounds, with longer stalls of the loop). The disk is
timed once at start (station.files.fsync_seconds). One batch is in flight at a time, so batches
commit in the order they were queued.

Owns the write path of executions; must not decide what is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from station.files import fsync_seconds
from station.store import Database

logger = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any] | dict[str, Any]]
Batch = tuple[list[Statement], list[asyncio.Future[None]]]  # statements, and the writers awaiting them
SLOW_FSYNC_S = 0.002  # a disk whose fsync takes longer gets its commits off the loop (an SSD: ~0.2 ms)


class Journal:
    def __init__(self, database: Database, commit_off_loop: bool | None = None) -> None:
        """`commit_off_loop`: None to decide from the disk's fsync time at start."""
        self._database = database
        self._writer: Database | None = None  # opened by the first batch
        self.commit_off_loop = commit_off_loop
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
        """Commit batches until cancelled; then commit what is queued (and in flight) before returning."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process-journal")
        in_flight: tuple[Future[None], Batch] | None = None
        try:
            if self.commit_off_loop is None:
                self.commit_off_loop = await self._disk_is_slow(thread)
            while True:
                await self._wake.wait()
                self._wake.clear()
                await asyncio.sleep(0)  # let every runnable writer join this batch
                batch = self._take()
                if batch is None:
                    continue
                error: Exception | None = None
                try:
                    if self.commit_off_loop:
                        self._execute(batch[0])
                        in_flight = (thread.submit(self._writer_database().commit), batch)
                        await asyncio.wrap_future(in_flight[0])
                    else:
                        self._commit_here(batch[0])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = exc
                in_flight = None
                self._land(batch, error)
        finally:
            self._finish(thread, in_flight)

    async def _disk_is_slow(self, thread: ThreadPoolExecutor) -> bool:
        """Timed on the thread: a slow disk must not hold up the start. A disk that cannot be timed (full,
        read-only) counts as slow: the loop then never waits for it."""
        try:
            fsync_s = await asyncio.wrap_future(thread.submit(fsync_seconds, self._database.path.parent))
        except OSError as exc:
            logger.warning("process journal: could not time the disk; commits run off the event loop",
                           extra={"error": str(exc)})
            return True
        logger.info("process journal", extra={"fsync_ms": round(fsync_s * 1000, 2),
                                              "commit_off_loop": fsync_s > SLOW_FSYNC_S})
        return fsync_s > SLOW_FSYNC_S

    def _take(self) -> Batch | None:
        batch, waiters = self._batch, self._waiters
        if not batch and not waiters:
            return None
        self._batch, self._waiters = [], []
        return batch, waiters

    def _writer_database(self) -> Database:
        if self._writer is None:
            self._writer = self._database.open_writer()
        return self._writer

    def _execute(self, statements: list[Statement]) -> None:
        """Begin the batch's transaction and run its statements (on the event loop); the caller commits."""
        writer = self._writer_database()
        writer.begin()
        try:
            for sql, params in statements:
                writer.connection.execute(sql, params)
        except BaseException:
            writer.rollback()
            raise

    def _commit_here(self, statements: list[Statement]) -> None:
        self._execute(statements)
        self._writer_database().commit()

    def _land(self, batch: Batch, error: BaseException | None) -> None:
        """Tell the batch's writers how it ended; count it if it committed."""
        if error is None:
            self.commits += 1
            self.statements += len(batch[0])
        else:
            logger.error("journal batch failed; its writers were told", exc_info=error)
        _settle(batch[1], error)

    def _finish(self, thread: ThreadPoolExecutor, in_flight: tuple[Future[None], Batch] | None) -> None:
        """Shutdown: the batch in flight lands, then what is still queued, then the connection closes."""
        if in_flight is not None:
            job, batch = in_flight
            self._land(batch, job.exception())  # waits for the commit
        thread.shutdown(wait=True)
        rest = self._take()
        if rest is not None:
            try:
                self._commit_here(rest[0])
            except Exception as exc:
                self._land(rest, exc)
            else:
                self._land(rest, None)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
