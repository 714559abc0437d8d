from __future__ import annotations

from station.backoff import Backoff


def test_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=30.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_jitter_stays_within_bounds_and_cap() -> None:
    backoff = Backoff(initial_s=10.0, maximum_s=15.0, jitter=0.2)
    first = backoff.next_delay()
    assert 8.0 <= first <= 12.0
    assert all(backoff.next_delay() <= 15.0 for _ in range(50))


def test_reset_and_hard_failure() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=60.0, jitter=0.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0
    assert backoff.fail_hard() == 60.0
    assert backoff.next_delay() == 60.0
