"""RetryPolicy: bounded, jittered exponential backoff on transient errors only."""

from __future__ import annotations

import logging

import pytest

from zkadapt.storage.retry import RetryPolicy


class Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


def test_transient_failures_are_retried_with_growing_capped_delays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    fn = Flaky(4, ConnectionError("refused"))
    policy = RetryPolicy(retries=5, backoff_s=1.0, max_backoff_s=3.0)
    with caplog.at_level(logging.WARNING, logger="zkadapt.storage"):
        assert policy.call(fn, lambda e: True, sleep=slept.append, what="put x") == "ok"
    assert fn.calls == 5
    ceilings = [1.0, 2.0, 3.0, 3.0]
    assert all(c / 2 <= d <= c for d, c in zip(slept, ceilings, strict=True))
    assert "put x failed (refused); retry 1 of 5" in caplog.text


def test_gives_up_after_the_last_retry_with_the_last_error() -> None:
    fn = Flaky(10, ConnectionError("refused"))
    with pytest.raises(ConnectionError):
        RetryPolicy(retries=2, backoff_s=0).call(fn, lambda e: True, sleep=lambda s: None)
    assert fn.calls == 3


def test_permanent_errors_are_not_retried() -> None:
    fn = Flaky(1, PermissionError("denied"))
    with pytest.raises(PermissionError):
        RetryPolicy(retries=5).call(fn, lambda e: isinstance(e, ConnectionError))
    assert fn.calls == 1


def test_zero_retries_calls_once() -> None:
    fn = Flaky(1, ConnectionError("refused"))
    with pytest.raises(ConnectionError):
        RetryPolicy(retries=0).call(fn, lambda e: True)
    assert fn.calls == 1


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


def test_patience_keeps_retrying_an_outage_until_the_deadline() -> None:
    """8 retries are ~1 min of backoff; a party's store waits out its phase deadline instead."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    fn = Flaky(40, ConnectionError("refused"))  # a 40-attempt outage, far past 8 retries
    policy = RetryPolicy(retries=8, backoff_s=0.5, max_backoff_s=15.0, patience_s=600.0)
    assert policy.call(fn, lambda e: True, sleep=sleep, clock=lambda: now[0]) == "ok"
    assert fn.calls == 41 and now[0] <= 600.0
    short = Flaky(40, ConnectionError("refused"))
    now[0] = 0.0
    with pytest.raises(ConnectionError):
        RetryPolicy(retries=8, backoff_s=0.5, patience_s=60.0).call(
            short, lambda e: True, sleep=sleep, clock=lambda: now[0]
        )
    assert 9 <= short.calls < 41 and now[0] <= 60.0


def test_without_patience_the_retry_count_decides() -> None:
    fn = Flaky(20, ConnectionError("refused"))
    with pytest.raises(ConnectionError):
        RetryPolicy(retries=8, backoff_s=0).call(fn, lambda e: True, sleep=lambda s: None)
    assert fn.calls == 9
