"""Board link benchmark: file deploy over a 115200-baud link, heartbeat round trips, and how many
boards at 1 Hz heartbeats one station keeps on time.

Run from the repo root: `.venv/bin/python -m benchmarks.board_link [--size BYTES] [--quick]`.
Every board is a real MicroPython agent (the unix port). Phases and what each measures:

0. Relay calibration: raw bytes through the rate-limiting relay (benchmarks/_relay.py: a token
   bucket per direction at 11,520 B/s, the payload rate of 115200 baud 8N1, with a 64-byte
   burst like a UART FIFO) into a sink. The ceiling every transfer below is compared with.
1. Baseline: `mpremote connect socket://RELAY resume fs cp FILE :FILE` to a MicroPython unix-port
   REPL (socat gives it a pty) behind the same relay: end-to-end B/s of the command, and B/s
   with the fixed cost (connect, raw REPL) taken out by also copying a 1-byte file.
2. Station deploy: `firefly station run` with a `[[boards.links]]` tcp:// link through the same
   relay to `firefly board sim` in TCP mode (enrolled with a one-time code, session auth):
   `POST /boards/{id}/files` of the same file, from the POST to `finished_at` of the deploy
   (state `done`: the board verified the SHA-256 and switched the file in); again with a 1-byte
   file for the fixed cost. The file on the board is compared with the original.
3. Heartbeat round trip: a second board of that station, on an unthrottled relay that watches the
   frames, switched to 10 heartbeats/s (`write_config`); the time from the relay forwarding a
   heartbeat to it forwarding the station's ack (the station's work plus two loopback hops),
   against a bare TCP echo behind the same kind of relay (the same two hops, no work).
4. Boards per station at 1 Hz heartbeats: stations with 20, 40, 80, ... boards (sims of 20,
   enrolled wave by wave, direct TCP links); each board's heartbeat count is sampled over a
   window; the sweep stops at the first count with a late heartbeat (definition at LATE_GAP_S).

Prints one JSON line (figures, ratios, a pass flag per target) on stdout and a summary on
stderr. Touches no running station: scratch directories, free ports, every process stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from benchmarks._boards import (
    CODES_PER_WAVE,
    BoardSimProcess,
    BoardStation,
    free_port_block,
    start_sims,
    write_station_config,
)
from benchmarks._processes import BenchmarkError, free_port, wait_until
from benchmarks._relay import LINE_RATE_BPS, RelayThread, server_port, start_echo, start_sink
from benchmarks._report import emit
from benchmarks.mesh_outbox import percentile
from edge_agent.protocol import HEARTBEAT, HEARTBEAT_ACK, decode_message, encode_frame

MICROPYTHON = Path(sys.executable).with_name("micropython")
MPREMOTE = Path(sys.executable).with_name("mpremote")
DEFAULT_SIZE = 64 * 1024  # 5.7 s at the line rate: long enough that the fixed costs are small
QUICK_SIZE = 16 * 1024
TRANSFER_TIMEOUT_S = 300.0  # mpremote moves ~3-4 KB/s through the relay; 64 KiB in ~20 s
DEPLOY_POLL_S = 0.05
HEARTBEAT_FAST_S = 0.1  # the agent's minimum interval: the most samples per second
LATENCY_WINDOW_S, QUICK_LATENCY_WINDOW_S = 20.0, 5.0
ECHO_SAMPLES = 200
WARM_UP_BEATS = 10  # fast beats seen before the latency window opens
SWEEP = (20, 40, 80, 160, 320)  # boards per station, in sims of CODES_PER_WAVE; 320 agents ~4.3 GB RSS
QUICK_SWEEP = (20, 40)
SWEEP_HEARTBEAT_S = 1.0
SWEEP_SETTLE_S = 3.0  # after the last board connects: start-up work done, first beats in
SWEEP_WINDOW_S, QUICK_SWEEP_WINDOW_S = 20.0, 10.0
SAMPLE_S = 0.2  # GET /boards: every link's heartbeat counter and state
# Late: a board's counter did not advance for 1.5 intervals plus two samples, i.e. a beat came
# more than half an interval after it was due (or never came).
LATE_GAP_S = 1.5 * SWEEP_HEARTBEAT_S + 2 * SAMPLE_S
TARGET_DEPLOY_FRACTION = 0.9


def latency_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50/p99 in ms to the microsecond: a loopback echo takes ~0.1 ms."""
    p50, p99 = percentile(seconds, 0.50), percentile(seconds, 0.99)
    return {"p50": None if p50 is None else round(p50 * 1000, 3),
            "p99": None if p99 is None else round(p99 * 1000, 3)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- phase 0: the relay alone ------------------------------------------------------------
def calibrate(relays: RelayThread, size: int) -> dict[str, Any]:
    counter: list[float] = []
    sink = relays.call(start_sink(counter))
    relay = relays.relay(("127.0.0.1", server_port(sink)))
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as sock:
            started = time.perf_counter()
            sock.sendall(os.urandom(size))
        wait_until(lambda: counter[0] >= size, size / LINE_RATE_BPS * 2 + 10, "the sink to get every byte")
        rate = size / (counter[2] - started)
        return {"bytes": size, "bytes_per_s": round(rate), "fraction_of_line_rate": round(rate / LINE_RATE_BPS, 3)}
    finally:
        relays.call(relay.stop())
        sink.close()


# ---- phase 1: mpremote --------------------------------------------------------------------
def _mpremote_cp(port: int, source: Path, dest: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(MPREMOTE), "connect", f"socket://127.0.0.1:{port}", "resume", "fs", "cp",
                             str(source), f":{dest}"], capture_output=True, text=True, timeout=TRANSFER_TIMEOUT_S)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(f"mpremote cp failed: {result.stderr[-500:]}")
    if dest.read_bytes() != source.read_bytes():
        raise BenchmarkError("mpremote's copy differs from the original")
    return took


def run_mpremote(relays: RelayThread, tmp: Path, source: Path, tiny: Path) -> dict[str, Any]:
    port = free_port()
    socat = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                              f"EXEC:{MICROPYTHON} -X heapsize=512k,pty,raw,echo=0,setsid,ctty"],
                             stderr=subprocess.DEVNULL, start_new_session=True)
    relay = relays.relay(("127.0.0.1", port))
    try:
        wait_until(lambda: _listening(socat.pid, port), 10, "socat to listen")
        tiny_s = _mpremote_cp(relay.port, tiny, tmp / "mpremote-tiny.out")
        took = _mpremote_cp(relay.port, source, tmp / "mpremote.out")
        return _transfer_figures(source.stat().st_size, took, tiny_s) | {"bytes_on_the_wire": relay.bytes_up}
    finally:
        relays.call(relay.stop())
        if socat.poll() is None:
            os.killpg(socat.pid, signal.SIGTERM)
            socat.wait(10)


def _listening(pid: int, port: int) -> bool:
    return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.Process(pid).net_connections())


def _transfer_figures(size: int, took: float, tiny_s: float) -> dict[str, Any]:
    steady = size / max(took - tiny_s, 1e-6)
    return {"bytes": size, "seconds": round(took, 2), "fixed_cost_s": round(tiny_s, 2),
            "bytes_per_s": round(size / took), "fraction_of_line_rate": round(size / took / LINE_RATE_BPS, 3),
            "steady_bytes_per_s": round(steady), "steady_fraction_of_line_rate": round(steady / LINE_RATE_BPS, 3)}


# ---- phases 2 and 3: one station, two boards ------------------------------------------------
class HeartbeatTap:
    """Frames seen by an unthrottled relay: heartbeat (board -> station, "down") to ack ("up")."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.rtts: list[float] = []
        self.recording = False

    def __call__(self, direction: str, body: bytes, at: float) -> None:
        try:
            msg = decode_message(body)  # sealed frames decode too; the tap checks no MAC
        except Exception:
            return
        if not self.recording:
            return
        if direction == "down" and msg["t"] == HEARTBEAT:
            self.sent[msg["seq"]] = at
        elif direction == "up" and msg["t"] == HEARTBEAT_ACK and msg["seq"] in self.sent:
            self.rtts.append(at - self.sent.pop(msg["seq"]))


def _deploy(station: BoardStation, board_id: str, name: str, data: bytes) -> float:
    posted = time.time()  # finished_at is the station's time.time()
    record = station.post_bytes(f"/boards/{board_id}/files", data, path=name)

    def finished() -> dict[str, Any] | None:
        current: dict[str, Any] = station.get(f"/boards/deploys/{record['id']}")
        return current if current["state"] in ("done", "failed", "cancelled") else None

    final = wait_until(finished, TRANSFER_TIMEOUT_S, f"the deploy of {name}", interval=DEPLOY_POLL_S)
    if final["state"] != "done":
        raise BenchmarkError(f"deploy of {name} ended {final['state']}: {final.get('error')}")
    return float(final["finished_at"]) - posted


def run_station(relays: RelayThread, tmp: Path, data: bytes, latency_window_s: float) -> dict[str, Any]:
    base = free_port_block(2)
    tap = HeartbeatTap()
    throttled = relays.relay(("127.0.0.1", base))
    watched = relays.relay(("127.0.0.1", base + 1), rate=None, observer=tap)
    station = BoardStation(tmp)
    sim = BoardSimProcess(tmp / "sim", 2, base)
    try:
        station.config = write_station_config(tmp, station.port, [
            ("deploy", f"tcp://127.0.0.1:{throttled.port}"), ("latency", f"tcp://127.0.0.1:{watched.port}")])
        station.start()
        start_sims(station, [sim])
        ids = {link["name"]: link["board_id"] for link in station.links()}
        tiny_s = _deploy(station, ids["deploy"], "tiny.bin", b"x")
        took = _deploy(station, ids["deploy"], "bench.bin", data)
        on_board = (tmp / "sim" / "board-0" / "files" / "bench.bin").read_bytes()
        if _sha(on_board) != _sha(data):
            raise BenchmarkError("the deployed file differs from the original")
        deploy = _transfer_figures(len(data), took, tiny_s) | {"bytes_on_the_wire": throttled.bytes_up}
        latency = measure_heartbeats(station, ids["latency"], tap, latency_window_s)
        return {"deploy": deploy, "heartbeat": latency}
    finally:
        sim.stop()
        station.stop()
        relays.call(throttled.stop())
        relays.call(watched.stop())


def measure_heartbeats(station: BoardStation, board_id: str, tap: HeartbeatTap, window_s: float) -> dict[str, Any]:
    station.post(f"/boards/{board_id}/commands", {"cmd": "write_config", "args": {"heartbeat_s": HEARTBEAT_FAST_S}})
    tap.recording = True  # the agent takes the new interval after the beat it was waiting for (<= 5 s)
    wait_until(lambda: len(tap.rtts) >= WARM_UP_BEATS, 15.0, "heartbeats at the fast interval", interval=0.1)
    tap.rtts.clear()
    time.sleep(window_s)
    tap.recording = False
    if not tap.rtts:
        raise BenchmarkError("no heartbeat was acknowledged through the watching relay")
    return {"samples": len(tap.rtts), "unanswered": len(tap.sent), "rtt_ms": latency_ms(tap.rtts)}


def measure_echo(relays: RelayThread, samples: int) -> dict[str, Any]:
    """The same frames through the same kind of relay to a bare TCP echo, one at a time."""
    times: dict[bytes, float] = {}
    rtts: list[float] = []

    def observe(direction: str, body: bytes, at: float) -> None:
        if direction == "up":
            times[body] = at
        elif body in times:
            rtts.append(at - times.pop(body))

    echo = relays.call(start_echo())
    relay = relays.relay(("127.0.0.1", server_port(echo)), rate=None, observer=observe)
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(5.0)
            for index in range(samples):
                frame = encode_frame(index.to_bytes(4, "big") + bytes(140))  # a heartbeat's size
                sock.sendall(frame)
                got = b""
                while len(got) < len(frame):
                    got += sock.recv(4096)
                time.sleep(HEARTBEAT_FAST_S / 10)
        return {"samples": len(rtts), "rtt_ms": latency_ms(rtts)}
    finally:
        relays.call(relay.stop())
        echo.close()


# ---- phase 4: boards per station -------------------------------------------------------------
def sweep(tmp: Path, counts: tuple[int, ...], window_s: float) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    sims: list[BoardSimProcess] = []
    for count in counts:
        while sum(sim.count for sim in sims) < count:
            sims.append(BoardSimProcess(tmp / f"sweep-sim-{len(sims)}", CODES_PER_WAVE, 0,
                                        agent_config={"heartbeat_s": SWEEP_HEARTBEAT_S}))
        try:
            step = run_sweep_step(tmp, sims, window_s)
        except BenchmarkError as exc:  # reported, not fatal: the figures of the other phases stand
            steps.append({"boards": count, "error": str(exc)[:300], "late_boards": None})
            break
        steps.append(step)
        print(f"  {count} boards: {step['late_boards']} late, beats min {step['beats_min']}/"
              f"{step['beats_expected']}, station CPU {step['station_cpu_percent']} %", file=sys.stderr)
        if step["late_boards"]:
            break
    on_time = [step["boards"] for step in steps if step["late_boards"] == 0]
    return {"steps": steps, "max_boards_on_time": max(on_time) if on_time else 0,
            "limit_reached": steps[-1]["late_boards"] != 0, "sweep_bound": counts[-1]}


def run_sweep_step(tmp: Path, sims: list[BoardSimProcess], window_s: float) -> dict[str, Any]:
    station = BoardStation(tmp / "sweep-station")
    station.tmp.mkdir(exist_ok=True)
    base = free_port_block(sum(sim.count for sim in sims))  # one block: blocks checked apart could overlap
    for sim in sims:
        sim.base_port, base = base, base + sim.count
    links = [(f"b{n}-{i}", f"tcp://127.0.0.1:{port}")
             for n, sim in enumerate(sims) for i, port in enumerate(sim.ports())]
    try:
        station.config = write_station_config(station.tmp, station.port, links,
                                              heartbeat_timeout_s=3 * SWEEP_HEARTBEAT_S,
                                              offline_after_s=6 * SWEEP_HEARTBEAT_S)
        station.start()
        start_sims(station, sims)
        time.sleep(SWEEP_SETTLE_S)
        return _observe(station, sims, len(links), window_s)
    finally:
        for sim in sims:
            sim.stop()
        station.stop()


def _observe(station: BoardStation, sims: list[BoardSimProcess], count: int, window_s: float) -> dict[str, Any]:
    assert station.process is not None
    proc = psutil.Process(station.process.pid)
    agents = [psutil.Process(pid) for sim in sims for pid in sim.agent_pids()]
    first = {link["name"]: link["counters"]["heartbeats"] for link in station.links()}
    last, changed = dict(first), dict.fromkeys(first, time.monotonic())
    gaps = dict.fromkeys(first, 0.0)
    not_connected: set[str] = set()
    cpu_before = proc.cpu_times()
    started = time.monotonic()
    while (now := time.monotonic()) - started < window_s:
        for link in station.links():
            name, beats = link["name"], link["counters"]["heartbeats"]
            if beats != last[name]:
                last[name], changed[name] = beats, now
            gaps[name] = max(gaps[name], now - changed[name])
            if link["state"] != "connected":
                not_connected.add(name)
        time.sleep(SAMPLE_S)
    elapsed = time.monotonic() - started
    cpu_after = proc.cpu_times()
    beats = {name: last[name] - first[name] for name in first}
    expected = int(elapsed / SWEEP_HEARTBEAT_S)
    late = {name for name in first if gaps[name] > LATE_GAP_S or beats[name] < expected - 1} | not_connected
    station_cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / elapsed
    return {"boards": count, "window_s": round(elapsed, 1), "beats_expected": expected,
            "beats_min": min(beats.values()), "beats_max": max(beats.values()),
            "longest_gap_s": round(max(gaps.values()), 2), "late_boards": len(late),
            "not_connected": len(not_connected), "station_cpu_percent": round(100 * station_cpu, 1),
            "station_rss_mb": round(proc.memory_info().rss / 2**20, 1),
            "agents_rss_mb_total": round(sum(agent.memory_info().rss for agent in agents) / 2**20)}


# ---- the report ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help=f"file size in bytes (default {DEFAULT_SIZE})")
    parser.add_argument("--quick", action="store_true", help="a smaller file, shorter windows, a shorter sweep")
    parser.add_argument("--skip-sweep", action="store_true", help="phases 0-3 only")
    ns = parser.parse_args(argv)
    size = ns.size or (QUICK_SIZE if ns.quick else DEFAULT_SIZE)
    data = os.urandom(size)
    relays = RelayThread()
    report: dict[str, Any] = {"line_rate_bytes_per_s": LINE_RATE_BPS, "file_bytes": size}
    with tempfile.TemporaryDirectory(prefix="board-link-") as scratch:
        tmp = Path(scratch)
        source, tiny = tmp / "bench.bin", tmp / "tiny.bin"
        source.write_bytes(data)
        tiny.write_bytes(b"x")
        try:
            report["relay"] = calibrate(relays, size)
            report["mpremote"] = run_mpremote(relays, tmp, source, tiny)
            report["station"] = run_station(relays, tmp, data,
                                            QUICK_LATENCY_WINDOW_S if ns.quick else LATENCY_WINDOW_S)
            report["echo"] = measure_echo(relays, ECHO_SAMPLES // 4 if ns.quick else ECHO_SAMPLES)
            if not ns.skip_sweep:
                report["boards_per_station"] = sweep(tmp, QUICK_SWEEP if ns.quick else SWEEP,
                                                     QUICK_SWEEP_WINDOW_S if ns.quick else SWEEP_WINDOW_S)
        finally:
            relays.close()
    assess(report)
    emit(report, summary)
    return 0 if all(report["passed"].values()) else 1


def assess(report: dict[str, Any]) -> None:
    deploy, mpremote = report["station"]["deploy"], report["mpremote"]
    hb, echo = report["station"]["heartbeat"]["rtt_ms"], report["echo"]["rtt_ms"]
    report["ratios"] = {
        "deploy_to_line_rate": deploy["fraction_of_line_rate"],
        "deploy_to_mpremote": round(deploy["bytes_per_s"] / mpremote["bytes_per_s"], 2),
        "deploy_to_relay_ceiling": round(deploy["bytes_per_s"] / report["relay"]["bytes_per_s"], 3),
        "heartbeat_p50_to_echo_p50": round(hb["p50"] / echo["p50"], 1) if echo["p50"] else None,
        "heartbeat_p99_to_echo_p99": round(hb["p99"] / echo["p99"], 1) if echo["p99"] else None,
    }
    report["passed"] = {"deploy_at_least_0.9_of_line_rate": deploy["fraction_of_line_rate"] >= TARGET_DEPLOY_FRACTION}


def summary(report: dict[str, Any]) -> str:
    deploy, mpremote, relay = report["station"]["deploy"], report["mpremote"], report["relay"]
    hb, echo = report["station"]["heartbeat"], report["echo"]
    lines = [
        f"board link benchmark: {report['file_bytes']} B file, line rate {LINE_RATE_BPS:,.0f} B/s",
        f"  relay alone        {relay['bytes_per_s']:>6} B/s  ({relay['fraction_of_line_rate']:.1%} of line rate)",
        f"  mpremote cp        {mpremote['bytes_per_s']:>6} B/s  ({mpremote['fraction_of_line_rate']:.1%}; "
        f"{mpremote['steady_fraction_of_line_rate']:.1%} without its {mpremote['fixed_cost_s']} s fixed cost)",
        f"  station deploy     {deploy['bytes_per_s']:>6} B/s  ({deploy['fraction_of_line_rate']:.1%}; "
        f"{deploy['steady_fraction_of_line_rate']:.1%} without its {deploy['fixed_cost_s']} s fixed cost) "
        f"= {report['ratios']['deploy_to_mpremote']}x mpremote",
        f"  heartbeat -> ack   p50 {hb['rtt_ms']['p50']} ms, p99 {hb['rtt_ms']['p99']} ms ({hb['samples']} samples); "
        f"bare echo p50 {echo['rtt_ms']['p50']} ms, p99 {echo['rtt_ms']['p99']} ms",
    ]
    sweep_report = report.get("boards_per_station")
    if sweep_report:
        bound = ("" if sweep_report["limit_reached"]
                 else f" (no late beat up to the sweep's bound, {sweep_report['sweep_bound']})")
        lines.append(f"  boards per station at 1 Hz: {sweep_report['max_boards_on_time']} on time{bound}")
        last = sweep_report["steps"][-1]
        if "error" in last:
            lines.append(f"  sweep stopped at {last['boards']}: {last['error']}")
    lines.append(f"  passed: {report['passed']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
