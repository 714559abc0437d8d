"""The agent's asyncio main loop: connect, say hello, enroll on first contact, then serve.

Per connection: `hello`; enrollment while the board holds no certificate; the
authentication hook (edge_agent/session.py's handshake, when it lands, returns the
SessionCodec that wraps every later message); then a heartbeat task, a telemetry task
and the dispatcher for commands, file transfers, acks, errors and certificate renewals
(`cert_update`). A stdio or UART link serves once; a TCP link reconnects with capped
exponential backoff. The watchdog runs beside it all.

A station that missed our hello (it opened a serial port after we sent it) asks for it with
an unsealed `hello_request`, answered at most once per link.REHELLO_MIN_INTERVAL_S. Before a
session, the connection starts over from hello. Inside a session the board keeps it: it
sends hello and answers a station-signed `challenge` that arrives within
HANDSHAKE_TIMEOUT_S, switching to the new session only once it has answered, so an
unauthenticated request can make the board offer a handshake but never drop its session.

Owns this sequencing and the counters; the work itself is in commands.py, files.py,
enrollment.py and sensors.py.
"""

import asyncio
import random

from edge_agent.agent import AGENT_VERSION, _port
from edge_agent.agent.authenticate import AuthenticationFailed
from edge_agent.agent.commands import Commands
from edge_agent.agent.enrollment import EnrollmentError, enroll, ensure_identity
from edge_agent.agent.files import MAX_FILE_SIZE, FileReceiver
from edge_agent.agent.handlers import registry
from edge_agent.agent.link import HelloRequested, Link, LinkClosed, PlainCodec
from edge_agent.agent.sensors import Sensors
from edge_agent.agent.transport import TransportError
from edge_agent.agent.watchdog import Watchdog
from edge_agent.protocol import (
    CERT_UPDATE,
    CHALLENGE,
    COMMAND,
    ERROR,
    FILE_BEGIN,
    FILE_CHUNK,
    FILE_END,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    HELLO_REQUEST,
    LOG,
    LOG_LEVELS,
    PROTOCOL_VERSION,
    RESULT,
    TELEMETRY,
    ProtocolError,
    make,
)
from edge_agent.session import HANDSHAKE_TIMEOUT_S

try:
    from collections.abc import Awaitable, Callable
    from typing import Any
except ImportError:  # MicroPython has no typing module and never evaluates annotations
    pass

CAPS = ["heartbeat", "telemetry", "commands", "files", "log", "enroll"]
RECONNECT_INITIAL_S = 1.0  # a station restarting comes back within seconds
RECONNECT_MAX_S = 30.0  # and a board offline for long still tries twice a minute
RECONNECT_JITTER = 0.2  # +-20 %: a fleet that lost its station does not return in lock-step
REBOOT_FLUSH_S = 0.1  # the reboot's result leaves a 115200-baud UART in 10 ms; ten times that
IDLE_RECHECK_S = 1.0  # telemetry off (telemetry_s = 0): look at the option again this often
LOG_TEXT_LIMIT = 200  # a log line is a line, not a dump

# Station-to-board message types the dispatcher answers; the rest is counted as ignored.
_FILE_STEPS = {FILE_BEGIN: "begin", FILE_CHUNK: "chunk", FILE_END: "end"}


def files_layout(profile: Any, state_dir: str) -> tuple[str, tuple[str, ...]]:
    """(files root, paths under it reserved for the state dir) from the profile's [flash]."""
    root = str(profile.flash.get("files_root", "files"))
    root = _port.join(state_dir, root)
    prefix = root.rstrip("/") + "/"
    if state_dir.startswith(prefix):
        return root, (state_dir[len(prefix):].strip("/"),)
    return root, ()


class Agent:
    """One board agent. `open_transport` opens the link (a new one on every call);
    `codec` makes message bodies; `authenticate(link, identity)` runs the session
    handshake on each connection and returns the codec for the rest of it (None: keep
    `codec`; raise LinkClosed to drop the connection), and `authenticate(link, identity,
    challenge)` answers a challenge that arrived inside a session; `reset(code)` reboots and `process_guard`
    enables the watchdog's guard thread (both off or replaced in in-process tests)."""

    def __init__(self, profile: Any, storage: Any, options: dict[str, Any],
                 open_transport: Callable[[], Awaitable[Any]], codec: Any = None,
                 authenticate: Callable[..., Awaitable[Any]] | None = None,
                 reset: Callable[[int], None] = _port.reset, process_guard: bool = True) -> None:
        self.profile = profile
        self.storage = storage
        self.options = options
        self._open_transport = open_transport
        self._authenticate = authenticate
        self._reset = reset
        self._codec = codec if codec is not None else PlainCodec()
        self.link = Link(self._codec)
        self.uptime = _port.Uptime()
        self.sensors = Sensors(options["sensors"], options)
        root, reserved = files_layout(profile, storage.root)
        self.files = FileReceiver(root, storage.spool_dir,
                                  int(profile.flash.get("max_file_size", MAX_FILE_SIZE)), reserved)
        self.commands = Commands(options, profile.agent, storage, self.sensors, registry(profile.handlers))
        self.watchdog = Watchdog(options["watchdog_s"], self._stalled, guard=process_guard)
        self.identity: Any = None
        self.connections = 0
        self.ignored = 0
        self.heartbeat_seq = 0
        self.acks = 0
        self.clock_offset_s: int | None = None  # station time minus uptime, from heartbeat_ack
        self._rehello_ms: int | None = None  # a hello sent inside a session: a challenge may follow
        self._tasks: list[Any] = []

    # ---- outside view

    def counters(self) -> dict[str, int]:
        counters = self.link.counters()
        counters["reconnects"] = max(0, self.connections - 1)
        counters["ignored"] = self.ignored
        counters["acks"] = self.acks
        counters["commands_ok"] = self.commands.handled
        counters["commands_refused"] = self.commands.refused
        counters["files_done"] = self.files.completed
        counters["files_failed"] = self.files.failed
        return counters

    def now_s(self) -> int | None:
        """Station (Unix) time, once a heartbeat_ack has told us; boards may have no clock."""
        if self.clock_offset_s is None:
            return None
        return self.clock_offset_s + self.uptime.s()

    # ---- main loop

    async def run(self) -> int:
        """Serve until a non-reconnecting link ends; returns the process exit code."""
        asyncio.get_event_loop().set_exception_handler(_task_failed)
        self.identity = ensure_identity(self.storage, self.profile.name, self.options["board_id"])
        if self.watchdog.limit_ms > 0:
            self._tasks.append(asyncio.create_task(self.watchdog.run()))
        failures = 0
        try:
            while True:
                try:
                    transport = await self._open_transport()
                except (OSError, TransportError, asyncio.TimeoutError) as exc:  # noqa: UP041 - see enrollment.py
                    failures += 1
                    _port.log(f"link: cannot connect ({exc!r})")
                    await asyncio.sleep(self._backoff_s(failures))
                    continue
                self.connections += 1
                failures = 0
                self.link.attach(transport)
                await self._serve_connection()
                if not transport.reconnects():
                    _port.log("link: closed by the station, stopping")
                    return 0
                failures = 1
                await asyncio.sleep(self._backoff_s(failures))
        finally:
            await _stop(self._tasks)
            self.link.close()

    def _backoff_s(self, failures: int) -> float:
        base = min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * 2 ** min(failures - 1, 16))
        spread = RECONNECT_JITTER * (random.getrandbits(16) / 32768 - 1)  # getrandbits: on every port
        return float(base * (1 + spread))

    async def _serve_connection(self) -> None:
        while True:
            try:
                await self._open_connection()
                await self._serve_messages()
            except HelloRequested:
                _port.log("link: the station asked for our hello, starting the connection over")
            except LinkClosed:
                return

    async def _open_connection(self) -> None:
        self.link.codec = self._codec  # every connection starts plain: hello, enrollment, handshake
        self._rehello_ms = None
        await self._send_hello()
        if not self.storage.is_enrolled():
            await self._enroll()
        if self._authenticate is not None:
            codec = await self._authenticate(self.link, self.identity)
            if codec is not None:
                self.link.codec = codec

    async def _serve_messages(self) -> None:
        tasks: list[Any] = []
        self.watchdog.watch_link(True)
        try:
            tasks.append(asyncio.create_task(self._heartbeats()))
            tasks.append(asyncio.create_task(self._telemetry()))
            while True:
                await self._handle(await self.link.receive())
        finally:
            self.watchdog.watch_link(False)
            await _stop(tasks)

    async def _send_hello(self) -> None:
        await self.link.send(make(HELLO, board_id=self.identity.board_id, profile=self.profile.name,
                                  agent_version=AGENT_VERSION, proto=PROTOCOL_VERSION, caps=CAPS,
                                  platform=_port.PLATFORM), plain=True)

    async def _enroll(self) -> None:
        try:
            response = await enroll(self.link, self.storage, self.identity, self.profile.name,
                                    self.options.get("enroll_token", ""), self.options["enroll_timeout_s"])
        except EnrollmentError as exc:  # served unenrolled until sessions require it; retried next time
            await self.log("warning", f"enrollment failed: {exc}")
            return
        self.options["enroll_token"] = ""
        await self.log("info", f"enrolled with station {response.get('station_id', '?')}")

    # ---- periodic tasks

    async def _heartbeats(self) -> None:
        due_ms = self.uptime.ms()
        try:
            while True:
                await self.send_heartbeat()
                self.watchdog.feed()
                period_ms = int(self.options["heartbeat_s"] * 1000)
                due_ms += period_ms
                delay_ms = due_ms - self.uptime.ms()
                if delay_ms < 0:  # late (a long handler): skip the missed beats, do not burst
                    due_ms = self.uptime.ms()
                    delay_ms = 0
                await asyncio.sleep(delay_ms / 1000)
        except LinkClosed:
            return

    async def send_heartbeat(self) -> None:
        self.heartbeat_seq += 1
        _port.collect()
        fields: dict[str, Any] = {"seq": self.heartbeat_seq, "uptime_s": self.uptime.s(),
                                  "free_mem": _port.free_mem(), "counters": self.counters()}
        battery = self.sensors.battery_mv()
        if battery is not None:
            fields["battery_mv"] = battery
        await self.link.send(make(HEARTBEAT, **fields))

    async def _telemetry(self) -> None:
        try:
            while True:
                period = self.options["telemetry_s"]
                if not period or not self.sensors.names:
                    await asyncio.sleep(IDLE_RECHECK_S)
                    continue
                await asyncio.sleep(period)
                await self.send_telemetry()
        except LinkClosed:
            return

    async def send_telemetry(self) -> None:
        fields: dict[str, Any] = {"values": self.sensors.read_all()}
        now = self.now_s()
        if now is not None:
            fields["ts"] = now
        await self.link.send(make(TELEMETRY, **fields))

    async def log(self, level: str, text: str) -> None:
        """A log line to stderr and, at or above the configured level, to the station."""
        _port.log(f"{level}: {text}")
        threshold = self.options.get("log_level", "info")
        if LOG_LEVELS.index(level) < LOG_LEVELS.index(threshold) or self.link.transport is None:
            return
        fields: dict[str, Any] = {"level": level, "msg": text[:LOG_TEXT_LIMIT]}
        now = self.now_s()
        if now is not None:
            fields["ts"] = now
        await self.link.send(make(LOG, **fields))

    # ---- dispatch

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if kind == COMMAND:
            await self._handle_command(msg)
        elif kind in _FILE_STEPS:
            reply = getattr(self.files, _FILE_STEPS[kind])(msg)
            await self.link.send(reply)
            if kind == FILE_END and reply["state"] != "receiving":
                await self.log("info" if reply["state"] == "done" else "warning",
                               f"file transfer {msg['xfer']}: {reply['state']} {reply.get('error', '')}".strip())
        elif kind == HEARTBEAT_ACK:
            self.acks += 1
            if "time_s" in msg:
                self.clock_offset_s = msg["time_s"] - self.uptime.s()
        elif kind == ERROR:
            _port.log(f"station error {msg['code']}: {msg['msg'][:LOG_TEXT_LIMIT]}")
        elif kind == CERT_UPDATE:
            await self._store_cert(msg)
        elif kind == HELLO_REQUEST:
            await self._answer_hello_request(msg)
        elif kind == CHALLENGE:
            await self._rehandshake(msg)
        else:
            self.ignored += 1

    async def _store_cert(self, msg: dict[str, Any]) -> None:
        """A renewed certificate: stored for the next handshake (the hook reads it from storage)."""
        if (self._authenticate is not None and "mac" not in msg) or not msg["cert"]:
            self.ignored += 1  # a board that authenticates takes a certificate only from its session
            return
        try:
            self.storage.save_cert(bytes(msg["cert"]))
        except OSError as exc:  # flash full or failing: the old certificate stays, still valid for a while
            await self.log("warning", f"renewed certificate not stored: {exc!r}")
            return
        await self.log("info", "certificate renewed")

    async def _answer_hello_request(self, msg: dict[str, Any]) -> None:
        if not self.link.hello_requested(msg):
            self.ignored += 1  # sealed, or too soon after our last hello
            return
        if self.link.codec is self._codec:
            raise HelloRequested()  # no session to keep: start the connection over
        await self._send_hello()
        self._rehello_ms = _port.ticks_ms()
        _port.log("link: the station asked for our hello; the session stays until a signed challenge")

    async def _rehandshake(self, msg: dict[str, Any]) -> None:
        """A plain challenge inside a session, answered only soon after a hello we sent there."""
        started = self._rehello_ms
        if (self._authenticate is None or "mac" in msg or started is None
                or _port.ticks_diff(_port.ticks_ms(), started) >= int(HANDSHAKE_TIMEOUT_S * 1000)):
            self.ignored += 1
            return
        try:
            codec = await self._authenticate(self.link, self.identity, msg)
        except AuthenticationFailed as exc:  # not our station's signature: keep the session (and the window)
            _port.log("link: challenge refused inside the session: " + exc.reason)
            return
        if codec is not None:
            self._rehello_ms = None
            self.link.codec = codec
            await self.log("info", "session renewed at the station's request")

    async def _handle_command(self, msg: dict[str, Any]) -> None:
        result = await self.commands.handle(msg)
        try:
            await self.link.send(result)
        except ProtocolError as exc:  # a handler returned a value CBOR cannot carry, or too much
            await self.link.send(make(RESULT, id=msg["id"], ok=False, error=f"unsendable value: {exc}"[:120]))
        if msg["cmd"] == "write_config" and result["ok"]:
            await self.log("info", "config written: " + ", ".join(sorted(msg.get("args", {}))))
        if self.commands.reboot_requested:
            await self.log("warning", "rebooting at the station's request")
            await asyncio.sleep(REBOOT_FLUSH_S)
            self._reset(_port.EXIT_REBOOT)

    def _stalled(self, reason: str, stalled_ms: int) -> None:
        _port.log(f"watchdog: {reason} for {stalled_ms} ms (limit {self.watchdog.limit_ms} ms), rebooting")
        self._reset(_port.EXIT_WATCHDOG)


def _task_failed(loop: Any, context: dict[str, Any]) -> None:
    """A background task died: say so on stderr. The default handler prints to stdout,
    which on the unix port is the board link."""
    _port.log(f"task failed: {context.get('message', '')} {context.get('exception')!r}")


async def _stop(tasks: list[Any]) -> None:
    """Cancel `tasks` and wait for them to finish."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    del tasks[:]
