"""Process engine on slow storage: durable executions per second and event-loop stalls when every fsync
takes 0, 5 or 20 ms (an SSD, a good SD card, a busy SD card), against one commit per step on the same
disk with the same delay, measured in the same run.

Run from the repo root: `.venv/bin/python -m benchmarks.journal_fsync [--quick]`. Needs `strace`: each
measurement runs in a child process under `strace --seccomp-bpf -e inject=fsync,fdatasync:delay_exit=D`,
so only the fsync calls stop and each returns D later, as on a slower disk; the data itself goes to a
scratch directory. Per delay:

- engine: the real process engine in the child's event loop (SQLite, bus, no other service), one
  process `mqtt_message -> log` in parallel mode; a burst of N events; executions/s from the first
  event to the last completed execution, and the event loop's longest stall (a 1 ms ticker's lag);
- baseline: the same three rows per execution (execution, step start, step end) each committed in its
  own transaction with `synchronous = FULL`, as an engine without group commit would: executions/s.

Prints one JSON line (figures and ratios) on stdout and a summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._report import emit

DELAYS_MS = (0, 5, 20)
EVENTS, QUICK_EVENTS = 3000, 600
BASELINE_EXECUTIONS, QUICK_BASELINE_EXECUTIONS = 300, 60
CHILD_TIMEOUT_S = 300.0  # the slowest case (baseline at 20 ms) takes ~20 s at full size
TICK_S = 0.001
PROCESS = {"name": "bench", "mode": "parallel", "max_parallel": 1000, "max_queued": 10_000,
           "triggers": [{"type": "mqtt_message", "config": {"topic": "bench/in"}}],
           "actions": [{"type": "log", "config": {"message": "x"}}]}


# ---- in the child (under strace) -------------------------------------------------------------
async def engine_burst(data_dir: Path, events: int) -> dict[str, Any]:
    from station.bus import EventBus
    from station.config import ProcessesConfig
    from station.mqtt.events import MqttMessageReceived
    from station.processes.engine import ProcessEngine
    from station.store.database import open_database

    database = open_database(data_dir / "station.db")
    station = SimpleNamespace(database=database, bus=EventBus(), boards=None, alerts=None, mesh=None,
                              mqtt=None, apps=None)
    engine = ProcessEngine(station, ProcessesConfig(alert_on_failure=False))  # type: ignore[arg-type]
    await engine.start()
    lags: list[float] = []
    ticking = True

    async def tick() -> None:
        while ticking:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - started - TICK_S)

    try:
        engine.catalog.create(PROCESS, None)
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        for index in range(events):
            station.bus.publish(MqttMessageReceived(topic="bench/in", payload=f"go {index}", qos=0, retain=False))
            if index % 50 == 49:
                await asyncio.sleep(0)  # events arrive over a few loop turns, as from a broker
        while True:
            await engine.journal.write()
            done = database.connection.execute(
                "SELECT count(*) FROM process_executions WHERE status = 'completed'").fetchone()[0]
            if done >= events:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        ticking = False
        await ticker
    finally:
        await engine.stop()
        database.close()
    return {"events": events, "executions_per_s": round(events / elapsed, 1),
            "commits": engine.journal.commits, "loop_stall_max_ms": round(max(lags) * 1000, 1)}


def commit_per_step(data_dir: Path, executions: int) -> dict[str, Any]:
    connection = sqlite3.connect(data_dir / "baseline.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE rows (execution INTEGER, kind TEXT, at REAL)")
    started = time.perf_counter()
    for execution in range(executions):
        for kind in ("execution", "step start", "step end"):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO rows VALUES (?, ?, ?)", (execution, kind, time.time()))
            connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return {"executions": executions, "executions_per_s": round(executions / elapsed, 1)}


def child(data_dir: Path, events: int, baseline_executions: int) -> None:
    result = {"engine": asyncio.run(engine_burst(data_dir, events)),
              "baseline": commit_per_step(data_dir, baseline_executions)}
    print(json.dumps(result))


# ---- the parent ----------------------------------------------------------------------------------
def measure(delay_ms: int, events: int, baseline_executions: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="firefly-bench-fsync-") as scratch:
        command = [sys.executable, "-m", "benchmarks.journal_fsync", "--child", scratch,
                   "--events", str(events), "--baseline-executions", str(baseline_executions)]
        if delay_ms:
            command = ["strace", "-f", "-qq", "--seccomp-bpf", "-o", "/dev/null", "-e", "trace=fsync,fdatasync",
                       "-e", f"inject=fsync,fdatasync:delay_exit={delay_ms * 1000}", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measurement at {delay_ms} ms failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["ratio"] = round(result["engine"]["executions_per_s"] / result["baseline"]["executions_per_s"], 1)
    return result


def summary(report: dict[str, Any]) -> str:
    lines = [f"journal on slow storage: burst of {report['events']} events, load "
             f"{report['load_avg_1m_at_start']}->{report['load_avg_1m_at_end']} on {report['cpus']} CPUs"]
    for delay, figures in report["delays_ms"].items():
        engine, baseline = figures["engine"], figures["baseline"]
        lines.append(f"  fsync +{delay:>2} ms: engine {engine['executions_per_s']:>8} executions/s "
                     f"({engine['commits']} commits, loop stalled at most {engine['loop_stall_max_ms']} ms)  "
                     f"commit per step {baseline['executions_per_s']:>7}/s  ratio {figures['ratio']}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller bursts")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=EVENTS, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-executions", type=int, default=BASELINE_EXECUTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.events, args.baseline_executions)
        return 0
    if shutil.which("strace") is None:
        print("benchmark failed: strace is not installed (apt-get install strace)", file=sys.stderr)
        return 1
    events = QUICK_EVENTS if args.quick else EVENTS
    baseline_executions = QUICK_BASELINE_EXECUTIONS if args.quick else BASELINE_EXECUTIONS
    report: dict[str, Any] = {"benchmark": "journal_fsync", "events": events, "cpus": os.cpu_count(),
                              "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    report["delays_ms"] = {delay: measure(delay, events, baseline_executions) for delay in DELAYS_MS}
    emit(report, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
