"""Start-up refusals: an invalid config, a corrupt or newer database; each with one clear message."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import time

from tests.harness import FIREFLY, Station


def run_station(station: Station) -> subprocess.CompletedProcess[str]:
    config = station.write_config()
    return subprocess.run([FIREFLY, "station", "run", "--config", str(config)], capture_output=True,
                          text=True, env=station.env(), timeout=30, check=False)


def test_invalid_config_stops_start_up_naming_key_value_and_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = Station(tmp_path, [("r", "tcp://127.0.0.1:1")], outbox={"max_attempts": 0})
    result = run_station(station)
    assert result.returncode == 2
    assert "mesh.outbox.max_attempts = 0" in result.stderr
    assert "greater than or equal to 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_database_is_refused_untouched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = Station(tmp_path, [])
    station.data_dir.mkdir(parents=True)
    db = station.data_dir / "station.db"
    db.write_bytes(b"\x00garbage" * 512)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run_station(station)
    assert result.returncode == 1
    assert "corrupt" in result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_newer_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = Station(tmp_path, [])
    station.data_dir.mkdir(parents=True)
    connection = sqlite3.connect(station.data_dir / "station.db")
    connection.execute("PRAGMA user_version = 4242")
    connection.commit()
    connection.close()
    result = run_station(station)
    assert result.returncode == 1
    assert "schema version 4242" in result.stderr


def test_json_logs_are_one_object_per_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = Station(tmp_path, [])
    log = (tmp_path / "json.log").open("w")
    process = subprocess.Popen([FIREFLY, "station", "run", "--json", "--config", str(station.write_config())],
                               env=station.env(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while "station ready" not in (tmp_path / "json.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        process.kill()
    entries = [json.loads(line) for line in (tmp_path / "json.log").read_text().splitlines()]
    ready = [e for e in entries if e["msg"] == "station ready"]
    assert ready and ready[0]["api"] == station.api
    assert {e["level"] for e in entries} <= {"DEBUG", "INFO", "WARNING", "ERROR"}
