"""File transfers on the board's side: chunks at the right offset only, resume from the
partial file after a restart, SHA-256 checked before the atomic rename, paths and sizes
refused."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.files import MAX_ACTIVE_TRANSFERS, FileReceiver, PathRefused, safe_relative_path
from edge_agent.protocol import FILE_CHUNK_SIZE, make, validate

PAYLOAD = bytes(i % 253 for i in range(2 * FILE_CHUNK_SIZE + 123))
DIGEST = hashlib.sha256(PAYLOAD).digest()


def receiver(tmp_path: Path, max_size: int = 1 << 20) -> FileReceiver:
    return FileReceiver(str(tmp_path / "files"), str(tmp_path / "spool"), max_size, reserved=("state",))


def begin(rx: FileReceiver, xfer: int, path: str = "app/x.bin", data: bytes = PAYLOAD,
          sha: bytes | None = None) -> dict[str, Any]:
    return rx.begin(make("file_begin", xfer=xfer, path=path, size=len(data),
                         sha256=hashlib.sha256(data).digest() if sha is None else sha))


def send_all(rx: FileReceiver, xfer: int, start: int = 0, data: bytes = PAYLOAD) -> int:
    have = start
    while have < len(data):
        ack = rx.chunk(make("file_chunk", xfer=xfer, off=have, data=data[have:have + FILE_CHUNK_SIZE]))
        validate(ack)
        have = ack["have"]
    return have


def test_a_whole_transfer(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    assert begin(rx, 1) == make("file_status", xfer=1, have=0, state="receiving")
    assert send_all(rx, 1) == len(PAYLOAD)
    assert rx.end(make("file_end", xfer=1)) == make("file_status", xfer=1, have=len(PAYLOAD), state="done")
    assert (tmp_path / "files" / "app" / "x.bin").read_bytes() == PAYLOAD
    assert list((tmp_path / "spool").iterdir()) == []
    assert rx.completed == 1


def test_chunks_at_the_wrong_offset_are_not_appended(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    begin(rx, 1)
    assert rx.chunk(make("file_chunk", xfer=1, off=100, data=b"later"))["have"] == 0
    assert rx.chunk(make("file_chunk", xfer=1, off=0, data=PAYLOAD[:10]))["have"] == 10
    assert rx.chunk(make("file_chunk", xfer=1, off=0, data=PAYLOAD[:10]))["have"] == 10  # a resent duplicate
    overflow = make("file_chunk", xfer=1, off=10, data=b"\x00" * len(PAYLOAD))
    assert rx.chunk(overflow)["have"] == 10  # past the announced size


def test_resume_after_a_restart_from_the_partial_file(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    begin(rx, 1)
    rx.chunk(make("file_chunk", xfer=1, off=0, data=PAYLOAD[:FILE_CHUNK_SIZE]))
    restarted = receiver(tmp_path)  # the board rebooted: nothing in memory survives
    status = begin(restarted, 2)
    assert status == make("file_status", xfer=2, have=FILE_CHUNK_SIZE, state="receiving")
    assert send_all(restarted, 2, start=FILE_CHUNK_SIZE) == len(PAYLOAD)
    assert restarted.end(make("file_end", xfer=2))["state"] == "done"
    assert (tmp_path / "files" / "app" / "x.bin").read_bytes() == PAYLOAD


def test_a_new_version_of_the_file_starts_over_and_drops_the_old_partial(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    begin(rx, 1)
    rx.chunk(make("file_chunk", xfer=1, off=0, data=PAYLOAD[:100]))
    newer = PAYLOAD[::-1]
    assert begin(rx, 2, data=newer)["have"] == 0
    assert len(list((tmp_path / "spool").iterdir())) == 1


def test_sha_mismatch_is_rejected_and_the_old_file_kept(tmp_path: Path) -> None:
    target = tmp_path / "files" / "app" / "x.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    rx = receiver(tmp_path)
    begin(rx, 1, sha=hashlib.sha256(b"something else").digest())
    send_all(rx, 1)
    status = rx.end(make("file_end", xfer=1))
    assert status == make("file_status", xfer=1, have=0, state="failed", error="sha256 mismatch")
    assert target.read_bytes() == b"old"
    assert list((tmp_path / "spool").iterdir()) == []
    assert rx.failed == 1


def test_end_before_all_bytes_keeps_receiving(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    begin(rx, 1)
    rx.chunk(make("file_chunk", xfer=1, off=0, data=PAYLOAD[:10]))
    status = rx.end(make("file_end", xfer=1))
    assert status["state"] == "receiving" and status["have"] == 10


def test_an_identical_file_already_in_place_is_done_at_once(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    begin(rx, 1)
    send_all(rx, 1)
    rx.end(make("file_end", xfer=1))
    assert begin(rx, 2) == make("file_status", xfer=2, have=len(PAYLOAD), state="done")


def test_an_empty_file(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    assert begin(rx, 1, path="empty", data=b"")["state"] == "receiving"
    assert rx.end(make("file_end", xfer=1))["state"] == "done"
    assert (tmp_path / "files" / "empty").read_bytes() == b""


@pytest.mark.parametrize("path", ["../x", "a/../../x", "..", "a/..", ".hidden", "a/.git/config", "a\\b", "",
                                  "/", "./.", "state/identity.json", "state", "x" * 200])
def test_paths_escaping_the_root_are_refused(tmp_path: Path, path: str) -> None:
    rx = receiver(tmp_path)
    status = begin(rx, 1, path=path)
    assert status["state"] == "failed" and status["have"] == 0
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("path", "relative"), [("/lib/x.py", "lib/x.py"), ("a//b/./c", "a/b/c"), ("m.py", "m.py")])
def test_paths_are_normalised_inside_the_root(path: str, relative: str) -> None:
    assert safe_relative_path(path) == relative


def test_path_refused_carries_the_path() -> None:
    with pytest.raises(PathRefused) as caught:
        safe_relative_path("../etc/passwd")
    assert caught.value.path == "../etc/passwd"


def test_size_limit(tmp_path: Path) -> None:
    rx = receiver(tmp_path, max_size=len(PAYLOAD) - 1)
    status = begin(rx, 1)
    assert status["state"] == "failed" and "exceeds" in status["error"]
    assert rx.chunk(make("file_chunk", xfer=1, off=0, data=b"x"))["state"] == "failed"  # never began


def test_unknown_transfer_is_refused(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    assert rx.end(make("file_end", xfer=99))["state"] == "failed"
    assert rx.chunk(make("file_chunk", xfer=99, off=0, data=b"x"))["state"] == "failed"


def test_abandoned_transfers_are_forgotten_idlest_first_and_resume_from_flash(tmp_path: Path) -> None:
    rx = receiver(tmp_path)
    for xfer in range(MAX_ACTIVE_TRANSFERS):
        assert begin(rx, xfer, path=f"f{xfer}")["state"] == "receiving"
    assert rx.chunk(make("file_chunk", xfer=0, off=0, data=PAYLOAD[:10]))["have"] == 10  # 0 is not the idlest
    assert begin(rx, 100, path="one-more")["state"] == "receiving"  # the station gave up on 1: forgotten
    assert rx.chunk(make("file_chunk", xfer=1, off=0, data=b"x"))["state"] == "failed"
    assert rx.chunk(make("file_chunk", xfer=0, off=10, data=PAYLOAD[10:20]))["have"] == 20
    resumed = begin(rx, 7, path="f0")  # a new transfer id for the same file: resumes from its partial file
    assert resumed["state"] == "receiving" and resumed["have"] == 20
    assert rx.chunk(make("file_chunk", xfer=0, off=20, data=b"x"))["state"] == "failed"  # replaced by 7
