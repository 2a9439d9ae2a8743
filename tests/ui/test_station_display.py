"""The stations' lines of the Passes pane: each station's latest tracking update (phase,
node, target against actual position, pointing error, frequencies, problem).

StationMessages go through a real Bus into the console's state, as the backend's
subscription takes them; the pane is driven with Pilot over a finished simulation
(groundctl.ui.fixed) whose console config has station control, the messages published by
the engine as a station tracker would (no rotctld nor rigctld needed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from testsupport import aio, until
from ui_support import ROOT, demo_config

from groundctl.bus import Bus, EventMessage, StationMessage
from groundctl.config import Config, demo_config_path, load_config
from groundctl.ui.app import ConsoleApp
from groundctl.ui.backend import Backend
from groundctl.ui.fixed import START, finished_backend
from groundctl.ui.panes.passes import (
    ERROR_HIGH_STYLE,
    ERROR_OK_STYLE,
    ERROR_RED_STYLE,
    PassesPane,
    error_style,
    mhz,
    station_lines,
    stations_height,
    stations_text,
)
from groundctl.ui.state import ConsoleState

T0 = START.timestamp()

# Weilheim: a rotator (threshold 1.5 degrees) and a radio; Santiago: a radio only.
WEILHEIM = """
[stations.rotator]
address = "127.0.0.1:4533"
threshold_deg = 1.5

[stations.radio]
address = "127.0.0.1:4532"
"""
SANTIAGO = """
[stations.radio]
address = "127.0.0.1:4532"
"""


def station_config(tmp_path: Path) -> Config:
    """The demo config with station control at Weilheim and Santiago, and ODC-07's
    frequencies."""
    text = demo_config_path().read_text()
    text = text.replace('path = "../missions/', f'path = "{ROOT}/data/missions/')
    text = text.replace('path = "groundctl.db"', f'path = "{tmp_path / "groundctl.db"}"')
    node = "[nodes.ODC-07]\npriority = 5\n"
    assert node in text
    text = text.replace(node, node + "downlink_hz = 437000000\nuplink_hz = 145900000\n")
    # each control table after its station's entry (the entry ends at a blank line)
    for name, table in (("Weilheim", WEILHEIM), ("Santiago", SANTIAGO)):
        head, tail = text.split(f'name = "{name}"\n')
        entry, rest = tail.split("\n\n", 1)
        text = f'{head}name = "{name}"\n{entry}\n{table}\n{rest}'
    path = tmp_path / "stations.toml"
    path.write_text(text)
    config = load_config(path)
    assert set(config.control) == {"Weilheim", "Santiago"}
    return config


def update(**fields) -> StationMessage:
    """A Weilheim update of ODC-07 (fields override)."""
    base = dict(station="Weilheim", node="ODC-07", phase="tracking", time_s=T0)
    return StationMessage(**(base | fields))


def through_bus(state: ConsoleState, *messages: StationMessage) -> None:
    """Publish on a real Bus, subscribed as the backend is, and apply what arrives."""
    bus = Bus()
    subscription = bus.subscribe(EventMessage, StationMessage, maxsize=50_000)
    for message in messages:
        bus.publish(message)
    for message in subscription.drain():
        state.apply(message, message.time_s)


# --- the state ------------------------------------------------------------------------------------
def test_the_last_sent_target_is_kept_until_the_pass_ends():
    state = ConsoleState()
    through_bus(
        state,
        update(phase="prepositioning", time_s=T0, target_az=120.0, target_el=10.0),
        update(phase="prepositioning", time_s=T0 + 1, actual_az=100.0, actual_el=5.0),
    )
    view = state.take().stations["Weilheim"]
    assert view.target == (120.0, 10.0) and view.target_s == T0
    assert view.message.actual_az == 100.0 and view.message.target_az is None
    assert state.take().stations == {}  # nothing new since

    # tracking: updates without a target keep the one sent last, a new one replaces it
    through_bus(
        state,
        update(time_s=T0 + 2, actual_az=119.0, actual_el=10.5, error_deg=0.8),
        update(time_s=T0 + 3, target_az=124.5, target_el=12.25, error_deg=1.1),
        update(time_s=T0 + 4, actual_az=124.0, actual_el=12.0, error_deg=0.3),
        update(time_s=T0 + 5, actual_az=124.4, actual_el=12.2, error_deg=0.2),
    )
    view = state.take().stations["Weilheim"]
    assert view.target == (124.5, 12.25) and view.target_s == T0 + 3
    assert view.message.time_s == T0 + 5 and view.message.error_deg == 0.2
    assert state.everything().stations["Weilheim"] == view

    # parking: the target goes; "parked" is what parking said
    through_bus(state, update(phase="parking", time_s=T0 + 600, detail="parked"))
    view = state.take().stations["Weilheim"]
    assert view.target is None and view.problem == "parked"

    # the next pass (another node) starts with no target and no problem
    through_bus(state, update(node="ODC-01", phase="prepositioning", time_s=T0 + 900))
    view = state.take().stations["Weilheim"]
    assert view.target is None and view.problem == ""


def test_a_new_node_or_a_problem_resets_or_is_kept():
    state = ConsoleState()
    through_bus(
        state,
        update(time_s=T0, target_az=10.0, target_el=20.0),
        update(time_s=T0 + 1, detail="rotator refused 10.0 95.0: out of range"),
        update(time_s=T0 + 2),
    )
    view = state.take().stations["Weilheim"]
    # the problem of an update stays for the rest of the pass, with the target
    assert view.problem == "rotator refused 10.0 95.0: out of range"
    assert view.problem_s == T0 + 1 and view.target == (10.0, 20.0)
    through_bus(state, update(node="ODC-01", time_s=T0 + 3))  # another node: all reset
    view = state.take().stations["Weilheim"]
    assert view.target is None and view.problem == ""
    # the stations are kept apart
    through_bus(state, update(station="Santiago", time_s=T0 + 4, downlink_hz=437_001_234))
    snapshot = state.everything()
    assert set(snapshot.stations) == {"Weilheim", "Santiago"}
    assert snapshot.stations["Santiago"].message.downlink_hz == 437_001_234


# --- formatting -----------------------------------------------------------------------------------
def test_frequencies_in_mhz_to_the_hertz():
    assert mhz(437_001_234) == "437.001234 MHz"
    assert mhz(145_900_000) == "145.900000 MHz"
    assert mhz(2_401_000_001) == "2401.000001 MHz"
    assert mhz(999) == "0.000999 MHz"
    assert mhz(None) == "–"


def test_error_colour_against_the_threshold():
    assert error_style(0.0, 2.0) == ERROR_OK_STYLE
    assert error_style(2.0, 2.0) == ERROR_OK_STYLE
    assert error_style(2.01, 2.0) == ERROR_HIGH_STYLE
    assert error_style(4.0, 2.0) == ERROR_HIGH_STYLE
    assert error_style(4.01, 2.0) == ERROR_RED_STYLE


def test_station_lines(tmp_path):
    config = station_config(tmp_path)
    weilheim, santiago = config.control["Weilheim"], config.control["Santiago"]
    # nothing heard yet: idle, values unknown
    assert [line.plain for line in station_lines(weilheim, None)] == [
        "Weilheim idle",
        "  target –  actual –  error –",
        "  down –  up –",
    ]
    assert [line.plain for line in station_lines(santiago, None)] == [
        "Santiago idle",
        "  down –  up –",
    ]
    assert stations_height([weilheim, santiago]) == 5
    assert stations_height([weilheim] * 4, limit=3) == 10  # three, and "… and 1 more"
    more = stations_text([weilheim] * 2 + [santiago] * 2, {}, limit=2).plain.splitlines()
    assert more[-1] == "… and 2 more stations"


# --- the pane -------------------------------------------------------------------------------------
class Console(ConsoleApp):
    """The console whose refreshes stop when the test is done with it (see
    test_passes_pane.Console)."""

    done = False

    def refresh_panes(self) -> None:
        if not self.done:
            super().refresh_panes()


def publish(backend: Backend, message: StationMessage) -> None:
    """Publish (and archive) a station's update on the engine's loop, as its tracker does."""
    session = backend.session
    assert backend.loop is not None and session is not None and session.engine is not None
    backend.loop.call_soon_threadsafe(session.engine.station, message)


def lines(pane: PassesPane) -> list[str]:
    return pane.stations_shown.plain.splitlines()


def style_of(pane: PassesPane, fragment: str, after: str = "") -> str:
    """The style of the span that starts where `fragment` is (after `after`) in the
    stations' text."""
    text = pane.stations_shown
    at = text.plain.index(after + fragment) + len(after)
    return next(str(s.style) for s in text.spans if s.start == at and s.end >= at + len(fragment))


def screen_text(app: ConsoleApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@aio
async def test_pane_shows_target_actual_error_and_frequencies(tmp_path):
    # The simulation runs with the plain demo config (no tracker would start); the
    # console's config is the one with station control.
    backend = await asyncio.to_thread(
        finished_backend, demo_config(tmp_path), tmp_path / "groundctl.db"
    )
    backend.config = station_config(tmp_path)
    app = Console(backend)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            try:
                await until(pilot, lambda: app.started, "the console up")
                pane = app.main_screen.query_one(PassesPane)
                assert [c.station for c in pane.controls] == ["Weilheim", "Santiago"]
                assert lines(pane) == [
                    "Weilheim idle",
                    "  target –  actual –  error –",
                    "  down –  up –",
                    "Santiago idle",
                    "  down –  up –",
                ]
                # prepositioning: a target sent
                publish(
                    backend,
                    update(
                        phase="prepositioning",
                        time_s=T0,
                        target_az=211.34,
                        target_el=10.0,
                        actual_az=180.0,
                        actual_el=0.0,
                        downlink_hz=437_009_876,
                        uplink_hz=145_897_001,
                        tuned=True,
                    ),
                )
                await until(pilot, lambda: "prepositioning" in lines(pane)[0], "prepositioning")
                assert lines(pane)[:3] == [
                    "Weilheim prepositioning ODC-07",
                    "  target 211.3° 10.0°  actual 180.0° 0.0°  error –",
                    "  down 437.009876 MHz  up 145.897001 MHz",
                ]
                # tracking, no new target: the last one sent stays; the error is within
                # the threshold (1.5): green
                publish(
                    backend,
                    update(
                        time_s=T0 + 130,
                        node_az=212.0,
                        node_el=11.0,
                        actual_az=211.0,
                        actual_el=10.2,
                        error_deg=1.04,
                        downlink_hz=437_001_234,
                        uplink_hz=145_899_999,
                        tuned=True,
                    ),
                )
                await until(pilot, lambda: "tracking" in lines(pane)[0], "tracking")
                assert lines(pane)[:3] == [
                    "Weilheim tracking ODC-07",
                    "  target 211.3° 10.0°  actual 211.0° 10.2°  error 1.0°",
                    "  down 437.001234 MHz  up 145.899999 MHz",
                ]
                assert style_of(pane, "1.0°", "error ") == ERROR_OK_STYLE
                assert style_of(pane, "tracking") == "bold green"
                # beyond the threshold: yellow; a refused target is the problem shown,
                # and the target sent before stays
                publish(
                    backend,
                    update(
                        time_s=T0 + 131,
                        actual_az=211.0,
                        actual_el=10.2,
                        error_deg=2.5,
                        downlink_hz=437_001_200,
                        uplink_hz=145_900_033,
                        detail="rotator refused 215.0 95.0: elevation above the limit",
                    ),
                )
                await until(pilot, lambda: "2.5°" in pane.stations_shown.plain, "the error")
                assert lines(pane)[:3] == [
                    "Weilheim tracking ODC-07  rotator refused 215.0 95.0: elevation above "
                    "the limit",
                    "  target 211.3° 10.0°  actual 211.0° 10.2°  error 2.5°",
                    "  down 437.001200 MHz  up 145.900033 MHz",
                ]
                assert style_of(pane, "2.5°", "error ") == ERROR_HIGH_STYLE
                # a new target, then far off: red; the problem stays for the pass
                radio = {"downlink_hz": 437_001_100, "uplink_hz": 145_900_066}
                publish(backend, update(time_s=T0 + 132, target_az=-3.5, target_el=88.0, **radio))
                publish(
                    backend,
                    update(
                        time_s=T0 + 133, actual_az=354.0, actual_el=80.0, error_deg=12.34, **radio
                    ),
                )
                await until(pilot, lambda: "12.3°" in pane.stations_shown.plain, "red error")
                assert lines(pane)[1] == "  target -3.5° 88.0°  actual 354.0° 80.0°  error 12.3°"
                assert style_of(pane, "12.3°", "error ") == ERROR_RED_STYLE
                assert "rotator refused" in lines(pane)[0]
                assert lines(pane)[2] == "  down 437.001100 MHz  up 145.900066 MHz"
                # Santiago (a radio only) is its own
                publish(
                    backend,
                    update(station="Santiago", time_s=T0 + 134, downlink_hz=437_000_001),
                )
                await until(pilot, lambda: "Santiago tracking" in lines(pane)[3], "Santiago")
                assert lines(pane)[3:] == [
                    "Santiago tracking ODC-07",
                    "  down 437.000001 MHz  up –",
                ]
                # on screen, whole (the pane is wide enough at 160x45)
                await pilot.pause(0.3)
                shown = screen_text(app)
                for line in lines(pane)[1:]:
                    assert line.strip() in shown, line
                # the long problem is cut at the pane's edge, not wrapped
                assert "│ Weilheim tracking ODC-07  rotator refused 215.0 95.0: eleva… │" in shown
                assert pane.query_one("#passes-stations").size.height == 5
                assert pane.table.size.height >= 5
                # parking: the target goes, the rest shows what parking said
                publish(backend, update(phase="parking", time_s=T0 + 700, detail="parked", **radio))
                await until(pilot, lambda: "parking" in lines(pane)[0], "parking")
                assert lines(pane)[:3] == [
                    "Weilheim parking ODC-07  parked",
                    "  target –  actual –  error –",
                    "  down 437.001100 MHz  up 145.900066 MHz",
                ]

                # 80x24: one pane at a time; the lines fit the full-width pane
                await pilot.resize_terminal(80, 24)
                app.action_pane("p")
                await until(pilot, lambda: pane.size.width >= 78, "the pane full width")
                await pilot.pause(0.3)
                assert pane.query_one("#passes-stations").size.height == 5
                assert pane.table.size.height >= 3
                shown = screen_text(app)
                assert "Weilheim parking ODC-07  parked" in shown
                assert "down 437.000001 MHz  up –" in shown
            finally:
                app.done = True
    finally:
        await asyncio.to_thread(backend.stop)
