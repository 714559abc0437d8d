"""Duplicate detection like Meshtastic firmware's packet history: (sender, id) pairs seen
recently. Owns only the bounded memory of those pairs; what a duplicate means (re-ACK,
no second delivery) is the radio's business.
"""

from __future__ import annotations

from collections import OrderedDict

HISTORY_SIZE = 1000  # remembered (sender, id) pairs; firmware keeps a similar number


class RecentPackets:
    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, sender: int, packet_id: int) -> bool:
        """Remember the pair; True if it was already remembered."""
        key = (sender, packet_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return False
