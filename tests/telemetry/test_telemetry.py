"""Limit states with persistence and conditions, sequence gaps, staleness."""

from __future__ import annotations

import pytest

from groundctl.mdb.model import Limits
from groundctl.telemetry.limits import LimitChecker, classify
from groundctl.telemetry.sequence import SequenceTracker
from groundctl.telemetry.staleness import StalenessMonitor

TEMP = Limits(yellow_low=-10, yellow_high=60, red_low=-20, red_high=80, persistence=2)


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (-25, "red"),
        (-20, "yellow"),
        (-15, "yellow"),
        (-10, "nominal"),
        (60, "nominal"),
        (61, "yellow"),
        (80, "yellow"),
        (80.5, "red"),
    ],
)
def test_bands_are_inclusive_at_their_edges(value, state):
    assert classify(TEMP, value) == state


def test_persistence_delays_a_state_change_and_one_sample_resets_it():
    checker = LimitChecker({"T": TEMP})
    states = []
    transitions = []
    for t, value in enumerate([20, 70, 20, 70, 70, 70, 90, 20, 20]):
        state, change = checker.check("N1", "T", value, float(t))
        states.append(state)
        if change:
            transitions.append((change.old, change.new, change.time_s))
    assert states == [
        "nominal",
        "nominal",
        "nominal",
        "nominal",
        "yellow",
        "yellow",
        "yellow",
        "yellow",
        "nominal",
    ]
    assert transitions == [("nominal", "yellow", 4.0), ("yellow", "nominal", 8.0)]


def test_persistence_is_per_node():
    checker = LimitChecker({"T": Limits(red_high=10, persistence=1)})
    assert checker.check("A", "T", 11, 0)[0] == "red"
    assert checker.check("B", "T", 5, 0)[0] == "nominal"


def test_condition_disables_limits_and_enumerated_states():
    limits = Limits(red_states=("NO",), when="MODE != 'SAFE'")
    checker = LimitChecker({"LINK": limits})
    assert checker.check("N", "LINK", "NO", 0, {"MODE": "ECO"})[0] == "red"
    state, change = checker.check("N", "LINK", "NO", 1, {"MODE": "SAFE"})
    assert state == "disabled" and change.new == "disabled"
    assert checker.check("N", "LINK", "YES", 2, {"MODE": "ECO"})[0] == "nominal"


def test_sequence_gaps_repeats_resets_and_wrap():
    tracker = SequenceTracker()
    assert tracker.observe("N", 0x800, 16382) is None
    assert tracker.observe("N", 0x800, 16383) is None
    assert tracker.observe("N", 0x800, 0) is None  # wraps
    gap = tracker.observe("N", 0x800, 4)
    assert (gap.kind, gap.expected, gap.got, gap.missing) == ("gap", 1, 4, 3)
    assert tracker.observe("N", 0x800, 4).kind == "repeat"
    reset = tracker.observe("N", 0x800, 0)
    assert reset.kind == "reset"
    assert "sequence counter reset (expected count 5, got 0)" in reset.describe()
    assert tracker.observe("M", 0x800, 9) is None  # streams are per node


def test_staleness_reports_once_and_recovers():
    monitor = StalenessMonitor({"HK": 1.0}, factor=3)
    assert monitor.seen("N", "HK", 10.0) is None
    assert monitor.check(12.9) == []
    went = monitor.check(13.5)
    assert [(c.node, c.packet, c.stale) for c in went] == [("N", "HK", True)]
    assert monitor.check(20.0) == []
    back = monitor.seen("N", "HK", 21.0)
    assert back is not None and back.stale is False
    assert monitor.seen("N", "OTHER", 21.0) is None  # no period: never stale
