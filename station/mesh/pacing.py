"""Per-radio pacing: how many packets the radio's TX queue can take, the firmware's minimum
gap between texts and the airtime (duty-cycle) budget. Pure bookkeeping, no I/O."""

from __future__ import annotations

import collections
import time

from station.config import OutboxConfig
from station.mesh.airtime import airtime_seconds

DUTY_CYCLE_WINDOW_S = 3600.0  # regulators (EU868) count duty cycle over a rolling hour
MESH_HEADER_BYTES = 16  # LoRa frame header Meshtastic adds before the encrypted payload
PROTOBUF_OVERHEAD_BYTES = 12  # Data message framing around the text (portnum, lengths)
UNREPORTED_GRACE_S = 30.0  # a write the radio never reported on stops counting after this


class RadioPacer:
    def __init__(self, settings: OutboxConfig) -> None:
        self._settings = settings
        self.tx_free: int | None = None  # last free slots the radio reported, None = unknown
        self._unreported: dict[int, float] = {}  # packet id -> when written, no queue status yet
        self._last_text_at = float("-inf")
        self._airtime: collections.deque[tuple[float, float]] = collections.deque()
        self.inflight = 0

    def reset(self) -> None:
        """A new connection: the radio's queue is unknown again."""
        self.tx_free = None
        self._unreported.clear()
        self.inflight = 0

    def capacity(self) -> int:
        """How many packets may be written right now."""
        clock = time.monotonic()
        for packet_id, written in list(self._unreported.items()):
            if clock - written > UNREPORTED_GRACE_S:
                del self._unreported[packet_id]
        free = 1 if self.tx_free is None else self.tx_free
        return max(0, min(free - len(self._unreported), self._settings.max_in_flight - self.inflight))

    def wait_s(self, payload_bytes: int) -> float:
        """Seconds until a text of this size may go (0: now), by rate limit and airtime budget."""
        clock = time.monotonic()
        wait = max(0.0, self._last_text_at + self._settings.min_text_interval_s - clock)
        percent = self._settings.duty_cycle_percent
        if percent > 0:
            budget = DUTY_CYCLE_WINDOW_S * percent / 100.0
            need = self.airtime_s(payload_bytes)
            while self._airtime and self._airtime[0][0] + DUTY_CYCLE_WINDOW_S <= clock:
                self._airtime.popleft()
            used = sum(spent for _, spent in self._airtime)
            for started, spent in self._airtime:
                if used + need <= budget:
                    break
                used -= spent
                wait = max(wait, started + DUTY_CYCLE_WINDOW_S - clock)
        return wait

    def airtime_s(self, payload_bytes: int) -> float:
        frame = payload_bytes + MESH_HEADER_BYTES + PROTOBUF_OVERHEAD_BYTES
        return airtime_seconds(frame, self._settings.modem_preset)

    def written(self, packet_id: int, payload_bytes: int) -> None:
        clock = time.monotonic()
        self._unreported[packet_id] = clock
        self._last_text_at = clock
        self.inflight += 1
        if self._settings.duty_cycle_percent > 0:
            self._airtime.append((clock, self.airtime_s(payload_bytes)))

    def reported(self, packet_id: int, free: int) -> None:
        self._unreported.pop(packet_id, None)
        self.tx_free = free

    def finished(self, packet_id: int) -> None:
        """The packet's fate is known (an ACK implies the radio took it off its queue)."""
        self._unreported.pop(packet_id, None)
        self.inflight = max(0, self.inflight - 1)
