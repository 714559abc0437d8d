"""The transmit airtime budget of the simulated radio over a rolling hour.

Owns the ledger of recent transmissions and the allow/spend decision. Pure: callers
pass the time, so tests can drive it without sleeping.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 3600.0  # regulators (EU 868 MHz: ETSI EN 300 220) count duty cycle per hour


class DutyCycleBudget:
    def __init__(self, percent: float, window_s: float = WINDOW_S) -> None:
        self.percent = percent  # 0 = unlimited
        self._window_s = window_s
        self._spent: deque[tuple[float, float]] = deque()  # (time, airtime seconds)
        self._total = 0.0

    @property
    def budget_s(self) -> float:
        return self._window_s * self.percent / 100.0

    def used_s(self, now: float) -> float:
        while self._spent and self._spent[0][0] <= now - self._window_s:
            _, airtime = self._spent.popleft()
            self._total -= airtime
        return max(self._total, 0.0)

    def allows(self, airtime_s: float, now: float) -> bool:
        if self.percent <= 0:
            return True
        return self.used_s(now) + airtime_s <= self.budget_s

    def spend(self, airtime_s: float, now: float) -> None:
        if airtime_s > 0:
            self._spent.append((now, airtime_s))
            self._total += airtime_s
