"""The delivery record: one JSON line per packet the simulator delivered from its client
into the mesh (after deduplication), for tests that check exactly-once delivery.

Line format: {"id", "from", "to", "channel", "portnum", "text" (text packets only),
"want_ack", "t"} with numbers as integers, portnum as the PortNum name and t as Unix
seconds. Owns the file; flushes every line so a reader never sees half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from station.mesh.sim.packets import portnum_name, sender_of

TEXT_PORTS = frozenset({"TEXT_MESSAGE_APP", "TEXT_MESSAGE_COMPRESSED_APP", "ALERT_APP"})


def record_line(packet: Any, now: float) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": int(packet.id),
        "from": sender_of(packet),
        "to": int(packet.to),
        "channel": int(packet.channel),
        "portnum": None,
        "want_ack": bool(packet.want_ack),
        "t": round(now, 3),
    }
    if packet.HasField("decoded"):
        line["portnum"] = portnum_name(packet.decoded.portnum)
        if line["portnum"] in TEXT_PORTS:
            line["text"] = bytes(packet.decoded.payload).decode("utf-8", errors="replace")
    return line


class PacketRecorder:
    def __init__(self, handle: TextIO) -> None:
        self._handle = handle

    @classmethod
    def open(cls, path: Path) -> PacketRecorder:
        return cls(path.open("a", encoding="utf-8"))

    def record(self, packet: Any, now: float) -> None:
        self._handle.write(json.dumps(record_line(packet, now), ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
