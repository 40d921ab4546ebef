"""When and how long to wait before trying an API call again.

A busy or restarting API server must cost the user a short wait, never a wrong verdict or a
traceback. The decisions (is this retryable, how long to back off) are pure; ``RetryBudget``
only keeps the overall deadline so no retry outlives ``--timeout``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Statuses after which a write is known not to have been applied: the API server rejects
# 429 (throttled) and 503 (unavailable) before the request reaches storage.
NOT_APPLIED_STATUSES = frozenset({429, 503})


def compute_backoff(
    attempt: int,
    retry_after: Optional[float] = None,
    *,
    base: float = 0.2,
    cap: float = 5.0,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0).

    Capped exponential back-off with "full jitter" spreads the retries of many clients; a
    server's Retry-After wins when it is longer, since it knows its own load best.
    """
    exponential = min(cap, base * (2**attempt))
    delay = exponential * (0.5 + 0.5 * jitter())
    if retry_after is not None and retry_after > delay:
        return min(retry_after, 60.0)
    return delay


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After in seconds (the API server only sends delta-seconds), None when absent."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass
class RetryBudget:
    """The overall deadline all retries of one run share (monotonic clock seconds)."""

    deadline: Optional[float]
    clock: Callable[[], float]

    def remaining(self) -> Optional[float]:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    def allows(self, delay: float) -> bool:
        remaining = self.remaining()
        return remaining is None or delay < remaining
