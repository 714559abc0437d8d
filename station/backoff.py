"""Capped exponential backoff with jitter, for every reconnect loop in the station."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

JITTER_FRACTION = 0.2  # +-20 %: enough to keep several radios from retrying in lock-step


@dataclass
class Backoff:
    initial_s: float
    maximum_s: float
    factor: float = 2.0
    jitter: float = JITTER_FRACTION
    _failures: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """Delay before the next attempt; each call counts one more failure."""
        base = min(self.maximum_s, self.initial_s * self.factor**self._failures)
        self._failures += 1
        spread = base * self.jitter
        return max(0.0, min(self.maximum_s, base + random.uniform(-spread, spread)))

    def fail_hard(self) -> float:
        """An error that retrying soon will not fix (bad credentials): wait the maximum at once."""
        self._failures = 64
        return self.maximum_s

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures
