"""The worker threads wasm calls run on: a bounded pool that takes a job from the event loop and hands its
outcome straight back to the loop that asked (one `call_soon_threadsafe`), with admission (how many calls
may run or wait), dropping of calls whose caller went away before they ran, and closing.

Why not ThreadPoolExecutor + asyncio.wrap_future: the hop there and back was most of a trivial call's
cost; its extra futures, condition variables and callback chains run on both threads while each waits
for the GIL. Knows nothing of wasm (runner.py decides what a job runs); never blocks the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import queue
import threading
from collections.abc import Callable
from typing import Any


class WorkersClosed(Exception):
    """The pool was closed before the job ran (or when it was submitted)."""


class WorkersFull(Exception):
    def __init__(self, pending: int) -> None:
        super().__init__(f"{pending} calls already running or waiting")
        self.pending = pending


class _State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DROPPED = "dropped"


class Job:
    """One submitted call: `outcome` is the future its caller awaits on the loop."""

    __slots__ = ("_loop", "_work", "outcome", "state")

    def __init__(self, loop: asyncio.AbstractEventLoop, work: Callable[[], Any]) -> None:
        self._loop, self._work = loop, work
        self.outcome: asyncio.Future[Any] = loop.create_future()
        self.state = _State.QUEUED  # changed only under CallWorkers._lock

    def run(self) -> tuple[Any, BaseException | None]:
        try:
            return self._work(), None
        except BaseException as exc:  # the caller gets it, as from a ThreadPoolExecutor future
            return None, exc

    def settle(self, result: Any, error: BaseException | None) -> None:
        """From any thread: resolve `outcome` on its loop, unless that loop is gone (nobody is waiting)."""
        with contextlib.suppress(RuntimeError):  # the loop closed while the call ran
            self._loop.call_soon_threadsafe(_resolve, self.outcome, result, error)


def _resolve(outcome: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if outcome.done():  # the caller was cancelled meanwhile
        return
    if error is None:
        outcome.set_result(result)
    else:
        outcome.set_exception(error)


class CallWorkers:
    """Up to `max_workers` daemon threads, started as calls need them. `submit` on the event loop, `drop`
    when the caller is cancelled, `close` once. Daemon threads: a call is interrupted by close() (runner.py
    passes its deadline), and the interpreter must not wait at exit for one blocked in a host function."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self.max_workers = max_workers
        self._name_prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # jobs queued or running; a dropped job stops counting at once
        self._closed = False

    def submit(self, work: Callable[[], Any], max_pending: int) -> Job:
        """Queue `work` for a worker (call on the event loop); WorkersFull / WorkersClosed if it cannot be."""
        job = Job(asyncio.get_running_loop(), work)
        with self._lock:
            if self._closed:
                raise WorkersClosed
            if self._pending >= max_pending:
                raise WorkersFull(self._pending)
            self._pending += 1
            # each pending job holds at most one thread: more pending than threads means none is free
            if self._pending > len(self._threads) and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self._name_prefix}_{len(self._threads)}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
        self._queue.put(job)
        return job

    def drop(self, job: Job) -> None:
        """The caller went away: a job still queued will not run and stops counting now."""
        with self._lock:
            if job.state is _State.QUEUED:
                job.state = _State.DROPPED
                self._pending -= 1

    def close(self) -> None:
        """Refuse new jobs, fail queued ones with WorkersClosed, let each thread end after its running job.
        Does not wait for them."""
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        closed: list[Job] = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                with self._lock:
                    if job.state is _State.QUEUED:
                        job.state = _State.DROPPED
                        self._pending -= 1
                        closed.append(job)
        for job in closed:
            job.settle(None, WorkersClosed())
        for _ in range(threads):
            self._queue.put(None)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            self._run(job)
            del job  # an idle worker keeps no payload or result alive

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.state is not _State.QUEUED:
                return
            job.state = _State.RUNNING
        result, error = job.run()
        with self._lock:  # counts no more before its caller can see the outcome (and call again)
            self._pending -= 1
        job.settle(result, error)  # last: the loop thread wakes for it and wants the GIL we hold
