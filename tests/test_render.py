"""The leaf helpers every layer writes with: durations and enum values in words."""

from __future__ import annotations

import enum

import pytest

from vmfailover._render import format_duration, in_words
from vmfailover.engine.results import Outcome
from vmfailover.model import ConnectionState


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0s"),
        (4.24, "4.2s"),
        (42.3, "42.3s"),
        (59.94, "59.9s"),
        (59.96, "1m00s"),
        (167, "2m47s"),
        (3599.6, "1h00m00s"),
        (3723, "1h02m03s"),
        (30 * 3600 + 5, "30h00m05s"),
        (-90, "-1m30s"),
        (float("inf"), "inf"),
    ],
)
def test_one_duration_format_for_reports_and_simulations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_enum_values_in_words() -> None:
    assert in_words(ConnectionState.NOT_RESPONDING) == "not responding"
    assert in_words(Outcome.TIMED_OUT) == "timed out"

    class Plain(enum.Enum):
        ONE = 1

    assert in_words(Plain.ONE) == "1"
