"""Bounded retries with exponential backoff for remote stores.

S3 clients already retry single requests a few times; this outer loop covers what they give
up on: a server that restarts (connection refused for several seconds), throttling that
outlasts the client's own attempts, a response cut off mid-body. Only errors the backend
classifies as transient are retried; a wrong credential or a missing bucket fails at once.
Delays grow as ``backoff_s * 2**attempt`` up to ``max_backoff_s``, with full jitter from
``secrets`` so that parties retrying together do not hit a recovering server in lockstep.

A party's store retries for at least ``retries`` attempts and, with ``patience_s`` set, for
as long as that many seconds allow: a party sets it to its phase deadline
(``protocol.submit_timeout_s``), because giving up earlier turns a storage outage the
deadline would have absorbed into a rejected update and a failed round (issue 17).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_RANDOM = secrets.SystemRandom()
LOG = logging.getLogger("zkadapt.storage")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Attributes:
        retries: attempts after the first (0 disables retrying).
        backoff_s: delay before the first retry, doubled each time.
        max_backoff_s: cap on one delay.
        patience_s: keep retrying past ``retries`` while the next attempt would still start
            within this many seconds of the first one (None: ``retries`` alone decides).
    """

    retries: int = 8
    backoff_s: float = 0.5
    max_backoff_s: float = 15.0
    patience_s: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(f"retry settings must be >= 0, got {self}")
        if self.patience_s is not None and self.patience_s < 0:
            raise ValueError(f"patience_s must be >= 0, got {self.patience_s}")

    def gives_up(self, attempt: int, elapsed_s: float, delay_s: float) -> bool:
        """Whether retry number ``attempt`` (0-based) is one too many after ``elapsed_s``."""
        if attempt < self.retries:
            return False
        return self.patience_s is None or elapsed_s + delay_s > self.patience_s

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before retry number ``attempt`` (0-based), jittered."""
        ceiling = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return _RANDOM.uniform(ceiling / 2, ceiling)

    def call(
        self,
        fn: Callable[[], T],
        is_transient: Callable[[BaseException], bool],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        what: str = "storage operation",
    ) -> T:
        """Run ``fn``; on a transient exception wait and run it again, boundedly.

        Each retry logs one warning (``what``, the error, the delay) on the
        ``zkadapt.storage`` logger, so a party's log shows why it is waiting.

        Returns:
            ``fn``'s result.

        Raises:
            The last exception, once it is not transient or the retries are used up.
        """
        attempt, started = 0, clock()
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = self.delay(attempt)
                if self.gives_up(attempt, clock() - started, delay):
                    raise
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                patience = (
                    "" if self.patience_s is None else f", then up to {self.patience_s:.0f} s"
                )
                LOG.warning(
                    "%s failed (%s); retry %d of %d%s in %.1f s",
                    what,
                    first_line,
                    attempt + 1,
                    self.retries,
                    patience,
                    delay,
                )
                sleep(delay)
                attempt += 1
