"""Under systemd the station says READY=1 once it serves, pings the watchdog and says STOPPING=1."""

from __future__ import annotations

import socket
import subprocess
import time

from tests.harness import FIREFLY, Station


def test_ready_watchdog_and_stopping_are_notified(tmp_path) -> None:  # type: ignore[no-untyped-def]
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(20)
    station = Station(tmp_path, [])
    env = {**station.env(), "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    process = subprocess.Popen([FIREFLY, "station", "run", "--config", str(station.write_config())],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        messages = [listener.recv(256).decode() for _ in range(4)]
        assert messages[0] == "READY=1"
        assert messages[1:] == ["WATCHDOG=1"] * 3
        process.terminate()
        deadline = time.monotonic() + 20
        while "STOPPING=1" not in messages and time.monotonic() < deadline:
            messages.append(listener.recv(256).decode())
        assert "STOPPING=1" in messages
        assert process.wait(20) == 0
    finally:
        process.kill()
        listener.close()
