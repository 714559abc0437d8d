"""The process journal's group commit: a slow disk must not stall the event loop (and is recognised at
start), a write returns only once its rows are committed, a failed commit reaches its writers, and
shutdown commits what is queued."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from station.files import fsync_seconds
from station.processes import journal as journal_module
from station.processes.journal import SLOW_FSYNC_S, Journal
from station.store import Database

SLOW_COMMIT_S = 0.4  # an SD card under load can take this long for one fsync
INSERT = "INSERT INTO journal_probe (value) VALUES (?)"


@pytest.fixture(autouse=True)
def probe_table(database: Database) -> None:
    database.connection.execute("CREATE TABLE journal_probe (value TEXT NOT NULL)")


@contextlib.asynccontextmanager
async def running(journal: Journal) -> AsyncIterator[None]:
    runner = asyncio.create_task(journal.run())
    try:
        yield
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def committed_values(path: Path) -> list[str]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as reader:
        return [row[0] for row in reader.execute("SELECT value FROM journal_probe ORDER BY rowid")]


def slow_writer_commits(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[int]:
    """Make the journal's commits take `seconds` (as a slow fsync would); returns the threads that committed."""
    threads: list[int] = []
    open_writer = Database.open_writer

    def slow_open_writer(self: Database) -> Database:
        writer = open_writer(self)
        commit = writer.commit

        def slow_commit() -> None:
            threads.append(threading.get_ident())
            time.sleep(seconds)
            commit()

        writer.commit = slow_commit  # type: ignore[method-assign]
        return writer

    monkeypatch.setattr(Database, "open_writer", slow_open_writer)
    return threads


async def test_a_slow_commit_does_not_stall_the_event_loop(database: Database,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    committing_threads = slow_writer_commits(monkeypatch, SLOW_COMMIT_S)
    journal = Journal(database, commit_off_loop=True)
    lags: list[float] = []

    async def tick() -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - started - 0.005)

    ticker = asyncio.create_task(tick())
    try:
        async with running(journal):
            started = time.monotonic()
            await journal.write((INSERT, ("first",)))
            waited = time.monotonic() - started
            assert committed_values(database.path) == ["first"]  # durable when write() returns, not before
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
    assert waited >= SLOW_COMMIT_S
    assert committing_threads and threading.get_ident() not in committing_threads
    assert len(lags) > 20 and max(lags) < SLOW_COMMIT_S / 2, f"the loop stalled {max(lags):.3f} s"


async def test_writes_queued_during_a_commit_form_the_next_batch(database: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slow_writer_commits(monkeypatch, 0.1)
    journal = Journal(database, commit_off_loop=True)
    async with running(journal):
        first = asyncio.create_task(journal.write((INSERT, ("a",))))
        await asyncio.sleep(0.03)  # "a" is committing now
        rest = [asyncio.create_task(journal.write((INSERT, (value,)))) for value in "bcd"]
        await asyncio.gather(first, *rest)
    assert committed_values(database.path) == ["a", "b", "c", "d"]
    assert journal.commits == 2  # b, c and d waited together for one fsync


@pytest.mark.parametrize("commit_off_loop", [False, True])
async def test_a_failed_batch_reaches_its_writers_and_the_next_batch_commits(database: Database,
                                                                              commit_off_loop: bool) -> None:
    journal = Journal(database, commit_off_loop)
    async with running(journal):
        with pytest.raises(sqlite3.IntegrityError):
            await journal.write((INSERT, ("kept out",)), (INSERT, (None,)))  # NOT NULL: the batch fails whole
        await journal.write((INSERT, ("after",)))
    assert committed_values(database.path) == ["after"]


async def test_stopping_commits_what_is_queued_and_in_flight(database: Database,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    slow_writer_commits(monkeypatch, 0.1)
    journal = Journal(database, commit_off_loop=True)
    runner = asyncio.create_task(journal.run())
    in_flight = asyncio.create_task(journal.write((INSERT, ("in flight",))))
    await asyncio.sleep(0.03)
    journal.write_soon((INSERT, ("queued",)))
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await in_flight  # its writer was told: committed
    assert committed_values(database.path) == ["in flight", "queued"]


def test_the_disk_is_timed_by_an_fsync_in_the_data_directory(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    assert 0 < fsync_seconds(data_dir) < 1
    real_fsync = os.fsync

    def sd_card_fsync(fd: int) -> None:
        time.sleep(0.02)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", sd_card_fsync)
    assert fsync_seconds(data_dir) >= 0.02
    assert list(data_dir.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize(("fsync_s", "off_loop"), [(0.0002, False), (SLOW_FSYNC_S * 10, True)])
async def test_the_journal_commits_off_the_loop_when_the_disk_is_slow(
        database: Database, monkeypatch: pytest.MonkeyPatch, fsync_s: float, off_loop: bool) -> None:
    monkeypatch.setattr(journal_module, "fsync_seconds", lambda _directory: fsync_s)
    committing_threads = slow_writer_commits(monkeypatch, 0)
    journal = Journal(database)
    async with running(journal):
        await journal.write((INSERT, ("x",)))
    assert journal.commit_off_loop is off_loop
    assert (threading.get_ident() not in committing_threads) is off_loop


async def test_a_disk_that_cannot_be_timed_counts_as_slow(database: Database,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(_directory: Path) -> float:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module, "fsync_seconds", full_disk)
    journal = Journal(database)
    async with running(journal):
        await journal.write((INSERT, ("x",)))
    assert journal.commit_off_loop is True
    assert committed_values(database.path) == ["x"]
