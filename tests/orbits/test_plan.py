"""The contact plan: antennas granted by priority, then elevation; refusals explained."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from groundctl.orbits.model import Pass, Station
from groundctl.orbits.plan import plan_contacts

T0 = datetime(2026, 5, 14, tzinfo=UTC)


def make_pass(
    node: str,
    start_min: float,
    minutes: float,
    max_el: float,
    priority: int = 0,
    station: str = "S",
) -> Pass:
    aos = T0 + timedelta(minutes=start_min)
    los = aos + timedelta(minutes=minutes)
    return Pass(
        node=node,
        norad_id=1,
        station=station,
        aos=aos,
        tca=aos + (los - aos) / 2,
        los=los,
        max_elevation_deg=max_el,
        aos_azimuth_deg=0,
        tca_azimuth_deg=90,
        los_azimuth_deg=180,
        tca_range_km=800,
        sunlit=True,
        priority=priority,
    )


def test_higher_priority_wins_an_overlap_even_when_lower():
    low = make_pass("A", 0, 10, 80, priority=0)
    high = make_pass("B", 5, 10, 20, priority=3)
    a, b = plan_contacts([low, high], [Station("S", 0, 0)])
    assert b.scheduled and b.antenna == 1
    assert a.scheduled is False
    assert a.reason.startswith("antenna busy: B (priority 3, max 20.0 deg")


def test_equal_priority_goes_to_the_higher_pass():
    a, b = plan_contacts(
        [make_pass("A", 0, 10, 30), make_pass("B", 5, 10, 60)], [Station("S", 0, 0)]
    )
    assert (a.scheduled, b.scheduled) == (False, True)


def test_two_antennas_take_two_overlapping_passes_and_refuse_a_third():
    passes = [make_pass("A", 0, 10, 30), make_pass("B", 2, 10, 60), make_pass("C", 4, 10, 45)]
    a, b, c = plan_contacts(passes, [Station("S", 0, 0, antennas=2)])
    assert (b.antenna, c.antenna) == (1, 2)
    assert a.scheduled is False
    assert "B (" in a.reason and "C (" in a.reason


def test_turnaround_time_separates_contacts_on_one_antenna():
    first = make_pass("A", 0, 10, 60)
    close = make_pass("B", 10.5, 10, 30)  # starts 30 s after A's LOS
    station = Station("S", 0, 0, turnaround_s=60)
    assert plan_contacts([first, close], [station])[1].scheduled is False
    assert plan_contacts([first, close], [Station("S", 0, 0)])[1].scheduled is True


def test_stations_are_planned_independently():
    a = make_pass("A", 0, 10, 30, station="S1")
    b = make_pass("A", 0, 10, 30, station="S2")
    planned = plan_contacts([a, b], [Station("S1", 0, 0), Station("S2", 10, 10)])
    assert all(p.scheduled for p in planned)


def rank(p: Pass):
    return (-p.priority, -p.max_elevation_deg, p.aos, p.node)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 300),  # start minute
            st.integers(1, 15),  # duration minutes
            st.floats(0.5, 89.5),  # max elevation
            st.integers(0, 2),  # priority
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 3),
    st.integers(0, 1),
)
def test_plan_properties_by_brute_force(specs, antennas, turnaround_min):
    passes = [make_pass(f"N{i:02d}", *spec) for i, spec in enumerate(specs)]
    station = Station("S", 0, 0, antennas=antennas, turnaround_s=60.0 * turnaround_min)
    planned = plan_contacts(passes, [station])
    gap = timedelta(minutes=turnaround_min)
    granted = [p for p in planned if p.scheduled]
    # 1. Never two contacts on one antenna closer than the turnaround, at any minute.
    for p in granted:
        for q in granted:
            if p is not q and p.antenna == q.antenna:
                assert p.los + gap <= q.aos or q.los + gap <= p.aos
    # 2. Every refused pass is blocked, on every antenna, by a granted pass that outranks it.
    for p in planned:
        if p.scheduled:
            continue
        for antenna in range(1, antennas + 1):
            assert any(
                q.antenna == antenna
                and rank(q) < rank(p)
                and q.aos < p.los + gap
                and p.aos < q.los + gap
                for q in granted
            ), p
    # 3. Determinism: the input order does not change the plan.
    shuffled = passes[:]
    random.Random(len(passes)).shuffle(shuffled)
    again = {p.node: (p.scheduled, p.antenna) for p in plan_contacts(shuffled, [station])}
    assert again == {p.node: (p.scheduled, p.antenna) for p in planned}
