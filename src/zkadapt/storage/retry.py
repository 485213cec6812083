"""Bounded retries with exponential backoff for remote stores.

S3 clients already retry single requests a few times; this outer loop covers what they give
up on: a server that restarts (connection refused for several seconds), throttling that
outlasts the client's own attempts, a response cut off mid-body. Only errors the backend
classifies as transient are retried; a wrong credential or a missing bucket fails at once.
Delays grow as ``backoff_s * 2**attempt`` up to ``max_backoff_s``, with full jitter from
``secrets`` so that parties retrying together do not hit a recovering server in lockstep.
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
    """

    retries: int = 8
    backoff_s: float = 0.5
    max_backoff_s: float = 15.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(f"retry settings must be >= 0, got {self}")

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
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.retries or not is_transient(exc):
                    raise
                delay = self.delay(attempt)
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                LOG.warning(
                    "%s failed (%s); retry %d of %d in %.1f s",
                    what,
                    first_line,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                sleep(delay)
                attempt += 1
