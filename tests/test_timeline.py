"""The clean-point time line: well-formed SVG whatever the labels, every point drawn where its
time says, the chosen one ringed, no JavaScript."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from vmfailover._timeline import STATUSES, svg_timeline

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@given(
    marks=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(sorted(STATUSES)),
            st.text(max_size=12),
            st.text(max_size=40),
        ),
        max_size=30,
    ),
    chosen=st.none() | st.integers(0, 40),
    title=st.text(max_size=40),
)
def test_any_labels_make_well_formed_svg(
    marks: list[tuple[int, str, str, str]], chosen: int | None, title: str
) -> None:
    timed = [(T0 + timedelta(minutes=m), status, label, tip) for m, status, label, tip in marks]
    text = svg_timeline(timed, chosen=chosen, title=title)
    svg = ElementTree.fromstring(text)  # parses: labels escaped, unXMLable characters replaced
    assert "<script" not in text
    circles = list(svg.iter(f"{SVG}circle"))
    ringed = chosen is not None and chosen < len(marks)
    assert len(circles) == len(marks) + ringed


def test_points_sit_where_their_times_say_and_the_chosen_one_is_ringed() -> None:
    marks = [
        (T0, "untried", "", "a"),
        (T0 + timedelta(hours=1), "good", "1", "b"),
        (T0 + timedelta(hours=4), "bad", "2", "c"),
    ]
    svg = ElementTree.fromstring(svg_timeline(marks, chosen=1, title="db01"))
    circles = {c.find(f"{SVG}title").text: c for c in svg.iter(f"{SVG}circle")}  # type: ignore[union-attr]
    xs = [float(circles[name].get("cx", "0")) for name in ("a", "b", "c")]
    assert xs[0] < xs[1] < xs[2]
    assert abs((xs[1] - xs[0]) * 3 - (xs[2] - xs[1])) < 0.5  # 1 h then 3 h
    assert float(circles["chosen"].get("cx", "0")) == xs[1]
    assert circles["b"].get("fill") == STATUSES["good"][0]
    assert circles["c"].get("fill") == STATUSES["bad"][0]


def test_no_points_say_so() -> None:
    svg = ElementTree.fromstring(svg_timeline([], title="web01: no points"))
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["web01: no points"]
