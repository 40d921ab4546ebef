"""Back-off decisions for a busy API server."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.retry import RetryBudget, compute_backoff, parse_retry_after


@pytest.mark.parametrize(
    "attempt, jitter, expected",
    [(0, 0.0, 0.1), (0, 1.0, 0.2), (3, 1.0, 1.6), (10, 1.0, 5.0), (10, 0.0, 2.5)],
)
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt, jitter, expected):
    assert compute_backoff(attempt, jitter=lambda: jitter) == pytest.approx(expected)


def test_a_longer_retry_after_wins():
    assert compute_backoff(0, 3.0, jitter=lambda: 1.0) == 3.0


def test_a_shorter_retry_after_does_not_shorten_the_backoff():
    assert compute_backoff(4, 0.1, jitter=lambda: 1.0) == pytest.approx(3.2)


@pytest.mark.parametrize(
    "header, expected",
    [("2", 2.0), (" 1.5 ", 1.5), ("", None), (None, None), ("soon", None), ("-1", None)],
)
def test_retry_after_header(header, expected):
    assert parse_retry_after(header) == expected


def test_budget_refuses_a_wait_past_the_deadline():
    budget = RetryBudget(deadline=10.0, clock=lambda: 9.0)
    assert budget.allows(0.5)
    assert not budget.allows(1.5)
    assert RetryBudget(deadline=None, clock=lambda: 0.0).allows(1e9)
