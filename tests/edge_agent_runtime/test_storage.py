"""The board's state files: round trips, atomic replacement, corrupt files reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.agent import _port
from edge_agent.agent.storage import CorruptStateFile, Identity, Storage


def test_a_fresh_directory_has_nothing(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path / "a" / "b"))
    storage.ensure()
    assert (tmp_path / "a" / "b" / "xfer").is_dir()
    assert storage.load_identity() is None
    assert storage.load_cert() is None
    assert storage.load_config() == {}
    assert not storage.is_enrolled()


def test_round_trips(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.save_identity(Identity("esp32-0a1b", bytes(range(32))))
    storage.save_enrollment(b"cert-bytes", bytes(32), "st-1")
    storage.save_config({"heartbeat_s": 2.0, "sensors": ["battery"]})
    again = Storage(str(tmp_path))
    identity = again.load_identity()
    assert identity is not None and identity.board_id == "esp32-0a1b" and identity.seed == bytes(range(32))
    assert "seed" not in repr(identity) and bytes(range(32)).hex() not in repr(identity)
    assert again.load_cert() == b"cert-bytes" and again.load_station_pubkey() == bytes(32)
    assert again.is_enrolled() and again.load_station_id() == "st-1"
    assert again.load_config() == {"heartbeat_s": 2.0, "sensors": ["battery"]}


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    storage.save_config({"heartbeat_s": 2.0})
    # What a power cut between write and rename leaves behind: a complete or torn .tmp.
    (tmp_path / "config.json.tmp").write_bytes(b'{"heartbeat_s": 9')
    assert storage.load_config() == {"heartbeat_s": 2.0}
    storage.save_config({"heartbeat_s": 3.0})  # the next write simply replaces the leftover
    assert storage.load_config() == {"heartbeat_s": 3.0}
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_write_goes_through_a_temporary_file_and_one_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage(str(tmp_path))
    storage.write_atomic("cert.bin", b"old")
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def spy(src: str, dst: str) -> None:
        renames.append((src, dst))
        assert Path(dst).read_bytes() == b"old"  # the old file is intact until the rename
        assert Path(src).read_bytes() == b"new"  # the new one is complete before it
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    storage.write_atomic("cert.bin", b"new")
    assert renames == [(str(tmp_path / "cert.bin.tmp"), str(tmp_path / "cert.bin"))]
    assert storage.load_cert() == b"new"


def test_replace_falls_back_when_the_filesystem_refuses_to_overwrite(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    real_rename = os.rename

    def fat_rename(src: str, dst: str) -> None:  # FAT: rename onto an existing file fails
        if os.path.exists(dst):
            raise OSError(17, "EEXIST")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", fat_rename)
    _port.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b").read_bytes() == b"new" and not (tmp_path / "a").exists()


@pytest.mark.parametrize(("name", "content"), [
    ("identity.json", b"not json"),
    ("identity.json", b'{"board_id": "x", "seed": "abcd"}'),
    ("identity.json", b'{"seed": "' + b"00" * 32 + b'"}'),
    ("station.pub", b"short"),
    ("config.json", b"[1, 2]"),
    ("config.json", b"{"),
])
def test_corrupt_files_are_reported_by_name(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    storage = Storage(str(tmp_path))
    loader = {"identity.json": storage.load_identity, "station.pub": storage.load_station_pubkey,
              "config.json": storage.load_config}[name]
    with pytest.raises(CorruptStateFile) as caught:
        loader()
    assert caught.value.name == name
