"""Mesh outbox benchmark: the station's durable send path against the bare `meshtastic` library.

Run from the repo root: `.venv/bin/python -m benchmarks.mesh_outbox [--messages N] [--quick]`.
Every phase starts its own radio simulator (`--nodes 4 --no-airtime`) on loopback and kills
it, and any station it started, before the next phase. Phases and what each measures:

1. Bare library, stock socket, then with TCP_NODELAY: `TCPInterface.sendText(want_ack)` of N
   texts to one node; msgs/s from the first send to the last ACK, latency from each
   `sendText` call and from the start of the burst to its ACK, time in the `sendText` calls,
   and a cProfile of the sending thread (where its time goes). One acked warm-up text goes
   first: the library does flow control only once the radio has sent a QueueStatus; a flood
   before that is refused by the radio and stays in the library's queue until its next send.
2. Station (`firefly station run --config`, that simulator as its one radio, outbox
   `min_text_interval_s = 0`: the firmware's text rate limit modelled off like the airtime):
   the same N texts in one batch POST; msgs/s from the POST to the last delivery, latency
   from `created_at` (the POST, so the burst's start) to `completed_at`, and exactly-once
   delivery checked in the simulator's record. Then messages accepted per second into the
   outbox (committed to SQLite before the answer), by concurrent single POSTs and by
   1000-message batches, while the station keeps sending.
3. `firefly station run --demo` in a scratch directory on a free API port, idle: VmRSS of
   the station process (its simulator child reported apart).

Prints one JSON line on stdout (figures, targets, a pass flag per target) and a summary on
stderr. Touches no running station: its processes use scratch directories and free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from meshtastic.tcp_interface import TCPInterface

from benchmarks._processes import BenchmarkError, SimProcess, StationProcess, wait_until
from benchmarks._report import emit

DEFAULT_MESSAGES = 300
QUICK_MESSAGES = 30
MAX_MESSAGES = 1000  # one batch POST and one listing page hold at most this many
LIBRARY_CONNECT_TIMEOUT_S = 20  # the config handshake with the simulator takes ~0.1 s
WARM_UP_ACK_TIMEOUT_S = 10.0
ACK_WAIT_BASE_S = 20.0
ACK_WAIT_PER_MESSAGE_S = 0.15  # the bare library manages ~17/s here (0.06 s each); 2.5x slack
ACK_SILENCE_S = 3.0  # the simulator ACKs in milliseconds: this long without one, the rest is lost
STATION_OUTBOX = {"min_text_interval_s": 0.0, "ack_timeout_s": 10.0}
SINGLE_POSTS = 2000
SINGLE_CONCURRENCY = 16
BATCH_POSTS, BATCH_SIZE = 10, 1000
IDLE_SETTLE_S = 70.0  # idle: boards enrolled and connected, the link probed, the daemon's first heap trim done
NAGLE_GAIN = 1.2  # NODELAY gaining less than this is run-to-run noise, not the bottleneck
TARGET_RATIO = 0.9  # station delivery msgs/s over the bare library's
TARGET_ACCEPT_PER_S = 1000.0
TARGET_IDLE_RSS_MB = 80.0


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def latency_ms(seconds: list[float]) -> dict[str, float | None]:
    p50, p99 = percentile(seconds, 0.50), percentile(seconds, 0.99)
    return {"p50": None if p50 is None else round(p50 * 1000, 1),
            "p99": None if p99 is None else round(p99 * 1000, 1)}


def exactly_once(texts: list[str], delivered: list[str]) -> dict[str, Any]:
    counts = collections.Counter(delivered)
    missing = sum(1 for text in texts if counts[text] == 0)
    duplicated = sum(1 for text in texts if counts[text] > 1)
    return {"ok": missing == 0 and duplicated == 0, "missing": missing, "duplicated": duplicated}


def ack_wait_s(count: int) -> float:
    return ACK_WAIT_BASE_S + ACK_WAIT_PER_MESSAGE_S * count


# ---- phase 1: the bare library ------------------------------------------------------------
class AckTracker:
    """Send and ACK times per message, filled in on the library's reader thread."""

    def __init__(self, count: int) -> None:
        self.sent = [0.0] * count
        self.acked: dict[int, float] = {}
        self.naks = 0
        self.all_done = threading.Event()
        self._count = count
        self._lock = threading.Lock()

    def handler(self, index: int) -> Callable[[dict[str, Any]], None]:
        return _AckHandler(self, index).onAckNak

    def record(self, index: int, packet: dict[str, Any]) -> None:
        reason = packet.get("decoded", {}).get("routing", {}).get("errorReason", "NONE")
        with self._lock:
            self.acked[index] = time.perf_counter()
            self.naks += reason != "NONE"
            if len(self.acked) == self._count:
                self.all_done.set()


class _AckHandler:
    def __init__(self, tracker: AckTracker, index: int) -> None:
        self._tracker, self._index = tracker, index

    # The library hands plain ACKs only to a callback of this name (or to one registered with
    # onResponseAckPermitted, which sendText cannot pass); NAKs reach any callback.
    def onAckNak(self, packet: dict[str, Any]) -> None:
        self._tracker.record(self._index, packet)


def _warm_up(iface: TCPInterface, destination: str) -> None:
    tracker = AckTracker(1)
    iface.sendText("warm-up", destinationId=destination, wantAck=True, onResponse=tracker.handler(0))
    if not tracker.all_done.wait(WARM_UP_ACK_TIMEOUT_S):
        raise BenchmarkError("the bare library's warm-up text was never acked")


def _sleep_profile(profile: cProfile.Profile) -> tuple[int, float]:
    """Calls of time.sleep and seconds spent in them on the profiled (sending) thread."""
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (_file, _line, name), (_cc, calls, own_s, *_rest) in stats.items():
        if name == "<built-in method time.sleep>":
            return int(calls), float(own_s)
    return 0, 0.0


def _wait_for_acks(tracker: AckTracker, timeout: float) -> None:
    """Until every ACK is in, the deadline passes, or ACKs stop coming (a packet the radio
    refused stays in the library's queue until its next send, which never comes here)."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while not tracker.all_done.wait(ACK_SILENCE_S / 10) and time.monotonic() < deadline:
        if len(tracker.acked) != last_count:
            last_count, last_change = len(tracker.acked), time.monotonic()
        elif time.monotonic() - last_change > ACK_SILENCE_S:
            return


def _send_all(iface: TCPInterface, destination: str, texts: list[str]) -> dict[str, Any]:
    tracker = AckTracker(len(texts))
    handlers = [tracker.handler(index) for index in range(len(texts))]  # strong references
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for index, text in enumerate(texts):
        tracker.sent[index] = time.perf_counter()
        iface.sendText(text, destinationId=destination, wantAck=True, onResponse=handlers[index])
    profile.disable()
    calls_s = time.perf_counter() - started
    _wait_for_acks(tracker, ack_wait_s(len(texts)))
    acked = dict(tracker.acked)
    if not acked:
        raise BenchmarkError("the bare library got no ACK for any text")
    wall_s = max(acked.values()) - started
    sleep_calls, sleep_s = _sleep_profile(profile)
    return {
        "msgs_per_s": round(len(acked) / wall_s, 1), "wall_s": round(wall_s, 3),
        "acked": len(acked), "naks": tracker.naks,
        "send_calls_s": round(calls_s, 3), "send_calls_per_s": round(len(texts) / calls_s, 1),
        "latency_ms": latency_ms([at - tracker.sent[index] for index, at in acked.items()]),
        "latency_from_burst_start_ms": latency_ms([at - started for at in acked.values()]),
        "sleep_calls": sleep_calls, "sleep_s": round(sleep_s, 3),
        "sleep_share_of_send_calls": round(sleep_s / calls_s, 3),
    }


def run_baseline(tmp: Path, texts: list[str], nodelay: bool) -> dict[str, Any]:
    sim = SimProcess(tmp).start()
    iface: TCPInterface | None = None
    try:
        iface = TCPInterface(hostname="127.0.0.1", portNumber=sim.port, timeout=LIBRARY_CONNECT_TIMEOUT_S)
        if nodelay:
            iface.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        destination = sim.node_ids()[0]
        _warm_up(iface, destination)
        result = _send_all(iface, destination, texts)
        result["exactly_once"] = exactly_once(texts, sim.delivered_texts())
        result["radio_refusals"] = sim.log_path.read_text(errors="replace").count("tx queue full")
        return result
    finally:
        if iface is not None:
            iface.close()
        sim.stop()


def baseline_bottleneck(stock: dict[str, Any], nodelay: dict[str, Any]) -> str:
    share = stock["sleep_share_of_send_calls"]
    verdict = (
        f"time.sleep(0.5) in MeshInterface._sendToRadio, polled whenever the library's own count "
        f"of the radio's free TX-queue slots reaches 0: {stock['sleep_calls']} sleeps = "
        f"{stock['sleep_s']:.1f} s of {stock['send_calls_s']:.1f} s in sendText ({share:.0%})"
        if share >= 0.5 else f"no dominant sleep ({share:.0%} of sendText time); see the profile"
    )
    gain = nodelay["msgs_per_s"] / stock["msgs_per_s"]
    nagle = "so Nagle/delayed ACK matters" if gain > NAGLE_GAIN else "so not Nagle/delayed ACK"
    return (f"{verdict}; with TCP_NODELAY {nodelay['msgs_per_s']} msgs/s vs {stock['msgs_per_s']} "
            f"stock, {nagle}")


# ---- phase 2: the station -----------------------------------------------------------------
def _write_config(tmp: Path, api_port: int, radio_url: str) -> Path:
    lines = [f'data_dir = "{tmp / "station-data"}"', 'log_level = "WARNING"',
             "[api]", f"port = {api_port}", "[mesh.outbox]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in STATION_OUTBOX.items()]
    lines += ["[[mesh.radios]]", 'name = "sim"', f'url = "{radio_url}"']
    path = tmp / "station.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _open_messages(station: StationProcess) -> int:
    counts = station.get("/mesh/status")["outbox"]["messages"]
    return int(counts.get("queued", 0)) + int(counts.get("sending", 0))


def measure_delivery(station: StationProcess, sim: SimProcess, texts: list[str]) -> dict[str, Any]:
    destination = sim.node_ids()[0]
    body = {"messages": [{"text": text, "to": destination, "want_ack": True} for text in texts]}
    posted_at = time.time()  # the station stamps created_at/completed_at with time.time() too
    ids = {row["id"] for row in station.post("/mesh/messages/batch", body)["messages"]}
    accepted_s = time.time() - posted_at
    wait_until(lambda: _open_messages(station) == 0, ack_wait_s(len(texts)), "the outbox to drain")
    rows = [row for row in station.get("/mesh/messages", limit=MAX_MESSAGES)["messages"] if row["id"] in ids]
    delivered = [row for row in rows if row["status"] == "delivered"]
    if not delivered:
        raise BenchmarkError(f"the station delivered none of {len(texts)} texts")
    wall_s = max(row["completed_at"] for row in delivered) - posted_at
    return {
        "msgs_per_s": round(len(delivered) / wall_s, 1), "wall_s": round(wall_s, 3),
        "delivered": len(delivered), "not_delivered": len(texts) - len(delivered),
        "batch_post_s": round(accepted_s, 3),
        "latency_ms": latency_ms([row["completed_at"] - row["created_at"] for row in delivered]),
        "exactly_once": exactly_once(texts, sim.delivered_texts()),
    }


async def _post_singles(station: StationProcess, count: int, concurrency: int) -> dict[str, Any]:
    pending = iter(range(count))  # shared: each worker takes the next index
    took: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {station.token()}"}
    async with httpx.AsyncClient(base_url=station.api, headers=headers, limits=limits,
                                 timeout=30.0) as client:
        async def worker() -> None:
            for index in pending:
                started = time.perf_counter()
                response = await client.post("/mesh/messages", json={"text": f"accept single {index}"})
                response.raise_for_status()
                took.append(time.perf_counter() - started)

        await asyncio.gather(*(client.get("/health") for _ in range(concurrency)))  # open connections
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"messages": count, "concurrency": concurrency, "per_s": round(count / elapsed, 1),
            "request_latency_ms": latency_ms(took)}


def _post_batches(station: StationProcess, batches: int, size: int) -> dict[str, Any]:
    took: list[float] = []
    for batch in range(batches):
        body = {"messages": [{"text": f"accept batch {batch} {index}"} for index in range(size)]}
        started = time.perf_counter()
        station.post("/mesh/messages/batch", body)
        took.append(time.perf_counter() - started)
    return {"messages": batches * size, "batch_size": size, "per_s": round(batches * size / sum(took), 1),
            "best_batch_per_s": round(size / min(took), 1), "batch_latency_ms": latency_ms(took)}


def run_station(tmp: Path, texts: list[str], singles: int, batches: int) -> dict[str, Any]:
    sim = SimProcess(tmp).start()
    station = StationProcess(tmp)
    try:
        station.config = _write_config(tmp, station.port, sim.url)
        station.start()
        delivery = measure_delivery(station, sim, texts)
        accept = {"single_posts": asyncio.run(_post_singles(station, singles, SINGLE_CONCURRENCY)),
                  "batch_posts": _post_batches(station, batches, BATCH_SIZE)}
        return {"delivery": delivery, "accept": accept}
    finally:
        station.stop()
        sim.stop()


# ---- phase 3: the idle demo station -------------------------------------------------------
def _rss_mb(pid: int) -> dict[str, float]:
    memory = psutil.Process(pid).memory_info()
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss_mb": round(memory.rss / 2**20, 1),
            "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def run_idle_demo(tmp: Path) -> dict[str, Any]:
    station = StationProcess(tmp, demo=True)
    try:
        station.start()
        time.sleep(IDLE_SETTLE_S)
        assert station.process is not None
        result: dict[str, Any] = _rss_mb(station.process.pid)
        result["simulator_child_rss_mb"] = [_rss_mb(pid)["rss_mb"] for pid in station.child_pids()]
        return result
    finally:
        station.stop()


# ---- the report ---------------------------------------------------------------------------
def filesystem_of(path: Path) -> str:
    """The mount type holding `path` (SQLite's fsync cost depends on it)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        _device, mount, fstype, *_ = line.split()
        if str(path).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def assess(report: dict[str, Any]) -> None:
    stock = report["baseline"]["msgs_per_s"]
    delivery = report["station"]["delivery"]["msgs_per_s"]
    accept = report["station"]["accept"]
    paths = {name: figures["per_s"] for name, figures in accept.items()}
    report["ratio_station_to_baseline"] = round(delivery / stock, 2)
    nodelay = report["baseline_nodelay"]["msgs_per_s"]
    report["ratio_station_to_baseline_nodelay"] = round(delivery / nodelay, 2)
    report["targets"] = {"delivery_ratio_min": TARGET_RATIO, "accept_per_s_min": TARGET_ACCEPT_PER_S,
                         "idle_rss_mb_max": TARGET_IDLE_RSS_MB}
    meeting = [name for name, rate in paths.items() if rate >= TARGET_ACCEPT_PER_S]
    report["accept_paths_meeting_target"] = meeting
    report["pass"] = {
        "delivery_ratio": report["ratio_station_to_baseline"] >= TARGET_RATIO,
        "accept_burst": bool(report["accept_paths_meeting_target"]),
        "idle_rss": report["idle_demo"]["rss_mb"] < TARGET_IDLE_RSS_MB,
    }


def summary(report: dict[str, Any]) -> str:
    base, nodelay = report["baseline"], report["baseline_nodelay"]
    burst = base["latency_from_burst_start_ms"]
    delivery, accept = report["station"]["delivery"], report["station"]["accept"]
    ok = {key: "ok" if value else "MISSED" for key, value in report["pass"].items()}
    return "\n".join([
        f"mesh outbox benchmark: {report['messages']} want_ack texts, simulator airtime off, "
        f"station min_text_interval_s=0 (firmware rate limit modelled off), "
        f"data on {report['tmp_filesystem']}, load {report['load_avg_1m_at_start']} on {report['cpus']} CPUs",
        f"  bare meshtastic   {base['msgs_per_s']:>7} msgs/s  p50 {base['latency_ms']['p50']} ms"
        f"  p99 {base['latency_ms']['p99']} ms from sendText, p50 {burst['p50']} ms  p99 {burst['p99']} ms "
        f"from burst start  (TCP_NODELAY: {nodelay['msgs_per_s']} msgs/s)",
        f"  station delivery  {delivery['msgs_per_s']:>7} msgs/s  p50 {delivery['latency_ms']['p50']} ms"
        f"  p99 {delivery['latency_ms']['p99']} ms  exactly once: {delivery['exactly_once']['ok']}",
        f"  ratio station/bare {report['ratio_station_to_baseline']} (target >= {TARGET_RATIO}) "
        f"{ok['delivery_ratio']}",
        f"  accept: single POSTs x{accept['single_posts']['concurrency']} "
        f"{accept['single_posts']['per_s']}/s, batches of {BATCH_SIZE} {accept['batch_posts']['per_s']}/s "
        f"(target >= {TARGET_ACCEPT_PER_S:g}/s) {ok['accept_burst']}",
        f"  idle demo station RSS {report['idle_demo']['rss_mb']} MB (target < {TARGET_IDLE_RSS_MB:g}) "
        f"{ok['idle_rss']}",
        f"  bare library bottleneck: {report['baseline_bottleneck']}",
    ])


def run(messages: int, quick: bool) -> dict[str, Any]:
    texts = [f"firefly bench {index:04d}: the quick brown fox" for index in range(messages)]
    singles = SINGLE_POSTS // 10 if quick else SINGLE_POSTS
    batches = 2 if quick else BATCH_POSTS
    with tempfile.TemporaryDirectory(prefix="firefly-bench-") as scratch:
        root = Path(scratch)
        phases = {name: root / name for name in ("stock", "nodelay", "station", "demo")}
        for path in phases.values():
            path.mkdir()
        report: dict[str, Any] = {
            "benchmark": "mesh_outbox", "messages": messages, "quick": quick,
            "simulator": {"nodes": 4, "airtime": False}, "station_outbox": STATION_OUTBOX,
            "tmp_filesystem": filesystem_of(root), "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        }
        steps: dict[str, Callable[[], dict[str, Any]]] = {
            "baseline": lambda: run_baseline(phases["stock"], texts, nodelay=False),
            "baseline_nodelay": lambda: run_baseline(phases["nodelay"], texts, nodelay=True),
            "station": lambda: run_station(phases["station"], texts, singles, batches),
            "idle_demo": lambda: run_idle_demo(phases["demo"]),
        }
        report["phase_s"] = {}
        for name, step in steps.items():
            started = time.monotonic()
            report[name] = step()
            report["phase_s"][name] = round(time.monotonic() - started, 1)
    report["baseline_bottleneck"] = baseline_bottleneck(report["baseline"], report["baseline_nodelay"])
    assess(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=None,
                        help=f"texts per phase, 1..{MAX_MESSAGES} (default {DEFAULT_MESSAGES})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_MESSAGES} texts, small accept bursts")
    args = parser.parse_args(argv)
    messages = args.messages or (QUICK_MESSAGES if args.quick else DEFAULT_MESSAGES)
    if not 1 <= messages <= MAX_MESSAGES:
        parser.error(f"--messages must be 1..{MAX_MESSAGES}")
    started = time.monotonic()
    try:
        report = run(messages, args.quick)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    report["run_s"] = round(time.monotonic() - started, 1)
    emit(report, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
