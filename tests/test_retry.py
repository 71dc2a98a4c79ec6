"""pydb.retry.Backoff: the pauses, the tries and the budget (held by the sum of pauses, not only the clock)."""

from __future__ import annotations

from pydb.retry import Backoff


def _run(backoff: Backoff) -> list[float]:
    taken = []
    while (pause := backoff.next_pause()) is not None:
        backoff.wait(pause)
        taken.append(pause)
    return taken


def test_pauses_double_up_to_the_cap_within_the_budget() -> None:
    slept: list[float] = []
    assert _run(Backoff(0.25, cap=1.0, budget=3.0, sleep=slept.append)) == [0.25, 0.5, 1.0, 1.0]
    assert slept == [0.25, 0.5, 1.0, 1.0]


def test_a_clamped_backoff_ends_exactly_at_its_budget() -> None:
    assert _run(Backoff(1.0, budget=4.0, clamp=True, sleep=lambda _: None)) == [1.0, 2.0, 1.0]


def test_tries_bound_the_pauses_and_an_asked_pause_is_taken_as_asked() -> None:
    backoff = Backoff(0.5, tries=3, sleep=lambda _: None)
    assert backoff.next_pause(asked=7.0) == 7.0
    backoff.wait(7.0)
    assert _run(backoff) == [1.0, 2.0]
    assert backoff.pauses == 3
