"""Process engine benchmark: MQTT in -> condition -> durable action, with 1,000 active processes,
against Node-RED running the same flow and against the broker alone.

Run from the repo root: `.venv/bin/python -m benchmarks.process_latency [--messages N] [--quick]`.
One mosquitto broker (loopback, RECIPES config) serves three paths, each measured by the same
harness (a paho publisher and a paho subscriber in this process, QoS 0 like RECIPES):

- ceiling: publisher straight to subscriber on `bench/ceiling`;
- Node-RED 4 (npm, installed once into ~/.cache/firefly-bench/node-red, started headless):
  `mqtt in` bench/nodered/in -> `switch` (payload contains "go") -> `mqtt out` bench/nodered/out;
- station (`firefly station run`, no radios, `[mqtt]` on that broker, default store durability):
  999 idle processes on topics bench/station/in/<i> plus "bench" on bench/station/in with the
  condition `event.payload contains "go"` and an `mqtt_publish` to bench/station/out. Every step
  is journaled (group commit) before the next one starts.

Per path: a burst of N messages "go <seq> <t_ns>" sent as fast as possible (throughput: messages
out per second from the first send to the last receive; loss if some never arrive), then 200 msg/s
paced for 10 s (latency: receive time - send time, p50/p99). Then "bench" is updated to the
durable no-op `log` action and sent the burst again: events/s through matching, conditions and
a journaled step without the publish, from the executions' own completed_at. RSS of the Node-RED
and station processes at the end. Prints one JSON line (figures, targets, ratios, pass flags) on
stdout and a summary on stderr. Uses scratch directories and free ports only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks._processes import (
    BenchmarkError,
    MosquittoProcess,
    NodeRedProcess,
    RadiolessStationProcess,
    ensure_node_red,
    wait_until,
)
from benchmarks._report import emit
from benchmarks.mesh_outbox import filesystem_of, latency_ms

DEFAULT_MESSAGES = 10_000
QUICK_MESSAGES = 1_000
PROCESSES = 1_000
CREATE_CONCURRENCY = 16
PACED_RATE = 200.0  # msg/s, the latency load
PACED_S, QUICK_PACED_S = 10.0, 3.0
WARM_UP = 200  # messages through each path first: subscriptions live, Node-RED's JIT warm
QOS = 0
CONNECT_TIMEOUT_S = 10.0  # a loopback MQTT connect + SUBACK takes milliseconds
STALL_S = 3.0  # no message for this long: the rest are lost (the station's group commit is < 10 ms)
BURST_WAIT_BASE_S, BURST_WAIT_PER_MSG_S = 10.0, 0.002  # bound for one burst: 500 msg/s worst case
NODE_RED_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "firefly-bench" / "node-red"
TARGET_TPUT_VS_NODE_RED = 1.5
TARGET_TPUT_VS_CEILING = 0.8
TARGET_P99_VS_NODE_RED = 0.1
TARGET_RSS_VS_NODE_RED = 0.5
BENCH_PROCESS = "bench"


# ---- the harness: one publisher, one subscriber ---------------------------------------------
class Probe:
    """Sends "go <seq> <t_ns>" to `in_topic`, records when each seq comes back on `out_topic`."""

    def __init__(self, port: int, name: str, in_topic: str, out_topic: str) -> None:
        self.in_topic, self.out_topic = in_topic, out_topic
        self.received: dict[int, int] = {}  # seq -> receive time (ns); written on paho's thread
        self._subscribed = threading.Event()
        stamp = time.monotonic_ns()
        self._sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{name}-{stamp}")
        self._sub.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(out_topic, qos=QOS)
        self._sub.on_subscribe = lambda *_args: self._subscribed.set()
        self._sub.on_message = self._on_message
        self._pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{name}-{stamp}")
        for client in (self._sub, self._pub):
            client.connect("127.0.0.1", port)
            client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            raise BenchmarkError(f"no SUBACK for {out_topic}")
        wait_until(self._pub.is_connected, CONNECT_TIMEOUT_S, "the publisher to connect")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.time_ns()
        _go, seq, _sent = message.payload.split(b" ", 2)
        self.received[int(seq)] = now

    def send(self, seq: int) -> int:
        at = time.time_ns()
        self._pub.publish(self.in_topic, f"go {seq} {at}", qos=QOS)
        return at

    def wait_for(self, seqs: range, timeout: float) -> None:
        """Until every seq arrived, nothing arrived for STALL_S, or `timeout`."""
        deadline, last_count, last_change = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            count = sum(1 for seq in seqs if seq in self.received)
            if count == len(seqs):
                return
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                return
            time.sleep(0.02)

    def close(self) -> None:
        for client in (self._sub, self._pub):
            client.loop_stop()
            client.disconnect()


def _cpu_s(pids: dict[str, int]) -> dict[str, float]:
    times = {name: psutil.Process(pid).cpu_times() for name, pid in pids.items()}
    return {name: t.user + t.system for name, t in times.items()}


def burst(probe: Probe, base: int, count: int, pids: dict[str, int],
          statuses: Callable[[], dict[str, int]] | None) -> dict[str, Any]:
    seqs = range(base, base + count)
    before = statuses() if statuses else {}
    cpu_before = _cpu_s(pids)
    sent = {seq: probe.send(seq) for seq in seqs}
    send_s = (time.time_ns() - sent[base]) / 1e9
    probe.wait_for(seqs, BURST_WAIT_BASE_S + BURST_WAIT_PER_MSG_S * count)
    cpu_after = _cpu_s(pids)
    got = {seq: probe.received[seq] for seq in seqs if seq in probe.received}
    if not got:
        raise BenchmarkError(f"nothing came back on {probe.out_topic}")
    wall_s = (max(got.values()) - sent[base]) / 1e9
    extra = {}
    if statuses:  # the station's executions of this burst, by status (skipped: refused by its limits)
        extra["executions"] = {key: value - before.get(key, 0) for key, value in statuses().items()}
    return {**extra,
        "messages": count, "received": len(got), "lost": count - len(got),
        "msgs_per_s": round(len(got) / wall_s, 1), "wall_s": round(wall_s, 3),
        "send_per_s": round(count / send_s, 1),
        "latency_ms": latency_ms([(got[seq] - sent[seq]) / 1e9 for seq in got]),
        "cpu_ms_per_msg": {name: round((cpu_after[name] - cpu_before[name]) * 1000 / len(got), 3)
                           for name in pids},
    }


def paced(probe: Probe, base: int, rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    seqs = range(base, base + count)
    sent: dict[int, int] = {}
    start = time.monotonic()
    for index, seq in enumerate(seqs):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[seq] = probe.send(seq)
    probe.wait_for(seqs, STALL_S)
    latency_s = {seq: (probe.received[seq] - sent[seq]) / 1e9 for seq in seqs if seq in probe.received}
    per_second = [[latency_s[seq] * 1000 for seq in seqs[start:start + int(rate)] if seq in latency_s]
                  for start in range(0, count, int(rate))]
    return {"rate_per_s": rate, "messages": count, "lost": count - len(latency_s),
            "latency_ms": latency_ms(list(latency_s.values())),
            # a latency that jumps mid-run and stays (as Nagle did to the station) shows here
            "p50_ms_each_second": [round(statistics.median(chunk), 2) for chunk in per_second if chunk]}


def measure_path(port: int, name: str, topics: tuple[str, str], count: int, paced_s: float,
                 pids: dict[str, int], statuses: Callable[[], dict[str, int]] | None = None) -> dict[str, Any]:
    probe = Probe(port, name, *topics)
    try:
        for seq in range(WARM_UP):
            probe.send(seq)
            time.sleep(0.002)
        probe.wait_for(range(WARM_UP), BURST_WAIT_BASE_S)
        if len(probe.received) < WARM_UP:
            raise BenchmarkError(f"{name}: {len(probe.received)} of {WARM_UP} warm-up messages came back")
        return {"burst": burst(probe, 1_000_000, count, pids, statuses),
                "paced": paced(probe, 2_000_000, PACED_RATE, paced_s)}
    finally:
        probe.close()


# ---- Node-RED -------------------------------------------------------------------------------
def node_red_flow(broker_port: int) -> list[dict[str, Any]]:
    return [
        {"id": "bench-tab", "type": "tab", "label": "bench"},
        {"id": "bench-broker", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1",
         "port": str(broker_port), "clientid": f"bench-node-red-{broker_port}", "autoConnect": True,
         "usetls": False, "protocolVersion": "4", "keepalive": "60", "cleansession": True},
        {"id": "bench-in", "type": "mqtt in", "z": "bench-tab", "topic": "bench/nodered/in", "qos": str(QOS),
         "datatype": "utf8", "broker": "bench-broker", "nl": False, "rap": True, "rh": 0, "inputs": 0,
         "wires": [["bench-switch"]]},
        {"id": "bench-switch", "type": "switch", "z": "bench-tab", "property": "payload",
         "propertyType": "msg", "rules": [{"t": "cont", "v": "go", "vt": "str"}], "checkall": "true",
         "repair": False, "outputs": 1, "wires": [["bench-out"]]},
        {"id": "bench-out", "type": "mqtt out", "z": "bench-tab", "topic": "bench/nodered/out",
         "qos": str(QOS), "retain": "false", "broker": "bench-broker", "wires": []},
    ]


# ---- the station ----------------------------------------------------------------------------
def bench_definition(action: dict[str, Any]) -> dict[str, Any]:
    # parallel: a burst must not be cut to one run ("single") nor serialised ("queued")
    return {"name": BENCH_PROCESS, "mode": "parallel", "max_parallel": 1000, "max_queued": 10_000,
            "triggers": [{"type": "mqtt_message", "config": {"topic": "bench/station/in"}}],
            "conditions": {"field": "event.payload", "op": "contains", "value": "go"},
            "actions": [action]}


PUBLISH = {"type": "mqtt_publish", "config": {"topic": "bench/station/out", "payload": "{{ event.payload }}"}}
LOG = {"type": "log", "config": {"message": "x"}}


def _write_station_config(tmp: Path, api_port: int, broker_port: int) -> Path:
    path = tmp / "station.toml"
    path.write_text(f'data_dir = "{tmp / "station-data"}"\nlog_level = "WARNING"\n[api]\nport = {api_port}\n'
                    f"[mqtt]\nenabled = true\nport = {broker_port}\n")
    return path


async def create_processes(station: RadiolessStationProcess) -> dict[str, Any]:
    definitions = [{"name": f"idle-{index:04d}", "actions": [LOG],
                    "triggers": [{"type": "mqtt_message", "config": {"topic": f"bench/station/in/{index}"}}]}
                   for index in range(PROCESSES - 1)]
    definitions.append(bench_definition(PUBLISH))
    pending = iter(definitions)
    limits = httpx.Limits(max_connections=CREATE_CONCURRENCY)
    headers = {"Authorization": f"Bearer {station.token()}"}
    async with httpx.AsyncClient(base_url=station.api, headers=headers, limits=limits, timeout=30.0) as client:
        async def worker() -> None:
            for definition in pending:
                response = await client.post("/processes", json=definition)
                if response.status_code != 201:
                    raise BenchmarkError(f"creating {definition['name']}: HTTP {response.status_code} "
                                         f"{response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return {"processes": len(definitions), "concurrency": CREATE_CONCURRENCY, "s": round(elapsed, 2),
            "per_s": round(len(definitions) / elapsed, 1)}


def _status_counts(station: RadiolessStationProcess) -> dict[str, int]:
    return dict(station.get(f"/processes/{BENCH_PROCESS}/analytics")["by_status"])


def measure_log_variant(station: RadiolessStationProcess, port: int, count: int, pid: int) -> dict[str, Any]:
    """"bench" with the durable no-op `log` action: executions finished per second."""
    station.put(f"/processes/{BENCH_PROCESS}", bench_definition(LOG))
    before = _status_counts(station)
    finished_before = sum(before.values())
    probe = Probe(port, "station-log", "bench/station/in", "bench/station/unused")
    try:
        cpu_before = _cpu_s({"station": pid})["station"]
        first_sent = probe.send(3_000_000) / 1e9
        for seq in range(3_000_001, 3_000_000 + count):
            probe.send(seq)

        def settled() -> bool:
            counts = _status_counts(station)
            return sum(counts.values()) - counts.get("running", 0) >= finished_before + count

        with contextlib.suppress(BenchmarkError):  # what did not finish is reported below
            wait_until(settled, BURST_WAIT_BASE_S + BURST_WAIT_PER_MSG_S * count, "log executions", 0.1)
        cpu_s = _cpu_s({"station": pid})["station"] - cpu_before
    finally:
        probe.close()
    rows: list[dict[str, Any]] = []
    while len(rows) < count:  # newest first: this burst's executions are the first `count` rows
        page = station.get(f"/processes/{BENCH_PROCESS}/executions", limit=1000, offset=len(rows))["executions"]
        if not page:
            break
        rows += page
    mine = [r for r in rows[:count] if str(r["trigger_event"].get("payload", "")).startswith("go 3")]
    done = [r for r in mine if r["status"] == "completed"]
    after = _status_counts(station)
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    if not done:
        raise BenchmarkError(f"no log execution completed: {delta}")
    wall_s = max(r["completed_at"] for r in done) - first_sent
    return {"messages": count, "completed": len(done), "by_status": delta,
            "executions_per_s": round(len(done) / wall_s, 1), "wall_s": round(wall_s, 3),
            "execution_time_ms_p50_p99": latency_ms([r["execution_time_ms"] / 1000 for r in done]),
            "cpu_ms_per_msg": round(cpu_s * 1000 / len(done), 3)}


# ---- the report -----------------------------------------------------------------------------
def _rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss_mb": round(psutil.Process(pid).memory_info().rss / 2**20, 1),
            "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1)}


def assess(report: dict[str, Any]) -> None:
    paths = report["paths"]
    tput = {name: paths[name]["burst"]["msgs_per_s"] for name in paths}
    p99 = {name: paths[name]["paced"]["latency_ms"]["p99"] for name in paths}
    rss = {name: report["rss"][name]["rss_mb"] for name in report["rss"]}
    report["ratios"] = {
        "station_vs_node_red_throughput": round(tput["station"] / tput["node_red"], 3),
        "station_vs_ceiling_throughput": round(tput["station"] / tput["ceiling"], 3),
        "station_vs_node_red_p99": round(p99["station"] / p99["node_red"], 3),
        "station_vs_node_red_rss": round(rss["station"] / rss["node_red"], 3),
    }
    report["targets"] = {"station_vs_node_red_throughput_min": TARGET_TPUT_VS_NODE_RED,
                         "station_vs_ceiling_throughput_min": TARGET_TPUT_VS_CEILING,
                         "station_vs_node_red_p99_max": TARGET_P99_VS_NODE_RED,
                         "station_vs_node_red_rss_max": TARGET_RSS_VS_NODE_RED}
    ratios = report["ratios"]
    report["pass"] = {
        "throughput_vs_node_red": ratios["station_vs_node_red_throughput"] >= TARGET_TPUT_VS_NODE_RED,
        "throughput_vs_ceiling": ratios["station_vs_ceiling_throughput"] >= TARGET_TPUT_VS_CEILING,
        "p99_vs_node_red": ratios["station_vs_node_red_p99"] <= TARGET_P99_VS_NODE_RED,
        "rss_vs_node_red": ratios["station_vs_node_red_rss"] <= TARGET_RSS_VS_NODE_RED,
        "no_loss": all(paths[name]["burst"]["lost"] == 0 for name in paths),
    }
    # Where a target asks for less than the harness or the runtime can give any subscriber, say so: the
    # station's path is the ceiling's plus a hop through the station, and its RSS includes what it had
    # before any process existed.
    tput_target = tput["node_red"] * TARGET_TPUT_VS_NODE_RED
    p99_target = p99["node_red"] * TARGET_P99_VS_NODE_RED
    rss_target = rss["node_red"] * TARGET_RSS_VS_NODE_RED
    report["floors"] = {
        "throughput_target_msgs_per_s": round(tput_target, 1),
        "throughput_target_above_ceiling": tput_target > tput["ceiling"],
        "p99_target_ms": round(p99_target, 3),
        "p99_target_below_ceiling_p99": p99_target < p99["ceiling"],
        "rss_target_mb": round(rss_target, 1),
        "rss_target_below_station_without_processes": rss_target < report["rss"]["station"]["before_processes_mb"],
    }


def summary(report: dict[str, Any]) -> str:
    install = "cached" if report["node_red_install_s"] is None else f"{report['node_red_install_s']} s"
    lines = [f"process latency benchmark: {report['processes']['processes']} active processes "
             f"(created in {report['processes']['s']} s), QoS {QOS}, burst of {report['messages']}, "
             f"paced {PACED_RATE:g}/s; Node-RED npm install: {install}; "
             f"data on {report['tmp_filesystem']}, load "
             f"{report['load_avg_1m_at_start']}->{report['load_avg_1m_at_end']} on {report['cpus']} CPUs"]
    for name, figures in report["paths"].items():
        b, p = figures["burst"], figures["paced"]
        seconds = p["p50_ms_each_second"]
        lines.append(f"  {name:<9} {b['msgs_per_s']:>8} msg/s (lost {b['lost']})  paced p50 "
                     f"{p['latency_ms']['p50']} ms p99 {p['latency_ms']['p99']} ms (p50 of each second "
                     f"{min(seconds)}-{max(seconds)} ms)  cpu/msg {b['cpu_ms_per_msg']}")
    log = report["station_log_variant"]
    lines.append(f"  station, log action: {log['executions_per_s']} executions/s {log['by_status']}, "
                 f"cpu {log['cpu_ms_per_msg']} ms/msg")
    lines.append(f"  RSS MB: station {report['rss']['station']}, Node-RED {report['rss']['node_red']}")
    ok = {key: "ok" if value else "MISSED" for key, value in report["pass"].items()}
    for (name, ratio), (target, verdict) in zip(report["ratios"].items(),
                                                zip(report["targets"].values(), ok.values(), strict=False),
                                                strict=True):
        lines.append(f"  {name} = {ratio} (target {target}) {verdict}")
    lines.append(f"  no loss: {ok['no_loss']}")
    floors, ceiling = report["floors"], report["paths"]["ceiling"]
    lines.append(f"  reachable at all? throughput target {floors['throughput_target_msgs_per_s']} msg/s "
                 f"{'ABOVE' if floors['throughput_target_above_ceiling'] else 'within'} the ceiling "
                 f"{ceiling['burst']['msgs_per_s']}; p99 target {floors['p99_target_ms']} ms "
                 f"{'BELOW' if floors['p99_target_below_ceiling_p99'] else 'above'} the ceiling's p99 "
                 f"{ceiling['paced']['latency_ms']['p99']} ms; RSS target {floors['rss_target_mb']} MB "
                 f"{'BELOW' if floors['rss_target_below_station_without_processes'] else 'above'} the station "
                 f"before any process ({report['rss']['station']['before_processes_mb']} MB)")
    return "\n".join(lines)


def run(count: int, paced_s: float) -> dict[str, Any]:
    install_s = ensure_node_red(NODE_RED_CACHE)
    with tempfile.TemporaryDirectory(prefix="firefly-bench-") as scratch:
        tmp = Path(scratch)
        report: dict[str, Any] = {
            "benchmark": "process_latency", "messages": count, "qos": QOS, "paced_s": paced_s,
            "node_red_install_s": None if install_s is None else round(install_s, 1),
            "tmp_filesystem": filesystem_of(tmp), "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        }
        broker = MosquittoProcess(tmp).start()
        node_red = station = None
        try:
            node_red = NodeRedProcess(tmp, NODE_RED_CACHE, node_red_flow(broker.port)).start()
            station = RadiolessStationProcess(tmp)
            station.config = _write_station_config(tmp, station.port, broker.port)
            station.start()
            station.wait_service("mqtt", "connected")
            assert broker.process and node_red.process and station.process
            rss_started = _rss_mb(station.process.pid)["rss_mb"]
            report["processes"] = asyncio.run(create_processes(station))
            pids = {"broker": broker.process.pid, "node_red": node_red.process.pid,
                    "station": station.process.pid, "harness": os.getpid()}
            report["paths"] = {
                "ceiling": measure_path(broker.port, "ceiling", ("bench/ceiling", "bench/ceiling"),
                                        count, paced_s, pids),
                "node_red": measure_path(broker.port, "node-red", ("bench/nodered/in", "bench/nodered/out"),
                                         count, paced_s, pids),
                "station": measure_path(broker.port, "station", ("bench/station/in", "bench/station/out"),
                                        count, paced_s, pids, lambda: _status_counts(station)),
            }
            report["station_log_variant"] = measure_log_variant(station, broker.port, count, pids["station"])
            report["rss"] = {"node_red": _rss_mb(pids["node_red"]),
                             "station": {**_rss_mb(pids["station"]), "before_processes_mb": rss_started}}
        finally:
            for process in (station, node_red, broker):
                if process is not None:
                    process.stop()
    report["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    assess(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=None,
                        help=f"burst size per path (default {DEFAULT_MESSAGES})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: bursts of {QUICK_MESSAGES}, {QUICK_PACED_S:g} s paced")
    args = parser.parse_args(argv)
    count = args.messages or (QUICK_MESSAGES if args.quick else DEFAULT_MESSAGES)
    started = time.monotonic()
    try:
        report = run(count, QUICK_PACED_S if args.quick else PACED_S)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    report["run_s"] = round(time.monotonic() - started, 1)
    emit(report, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
