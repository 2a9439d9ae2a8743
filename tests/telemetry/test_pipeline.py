"""The telemetry processor on the real recorded cFS session, and on damaged input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundctl.mdb.loader import load_mission
from groundctl.telemetry.alerts import AlertBook
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import TelemetryProcessor

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def mission():
    return load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")


@pytest.fixture(scope="module")
def frames():
    rows = [
        json.loads(x)
        for x in (ROOT / "tests/fixtures/cfs/cfs-lab-session.jsonl").read_text().splitlines()
    ]
    return [
        Frame(bytes.fromhex(r["hex"]), r["t"], "udp", "cfs") for r in rows if r["dir"] == "down"
    ]


def run(processor, frames):
    return [processor.process(f) for f in frames]


def test_real_session_gives_samples_events_and_alerts(mission, frames):
    processor = TelemetryProcessor(default=mission)
    results = run(processor, frames)
    assert {r.status for r in results} == {"ok"}
    events = [e for r in results for e in r.events]
    assert [e.kind for e in events] == ["node-event"] * 10  # no gaps, nothing malformed
    assert events[0].source == "TO_LAB_APP" and events[0].event_id == 3
    assert events[0].severity == "INFO"
    assert events[0].text == "TO telemetry output enabled for IP 127.0.0.1"
    # Sample times are packet times (cFE epoch 1980), not arrival times.
    first = results[0].samples[0]
    assert 315532800 + 1_000_000 < first.time_s < 315532800 + 1_100_000
    # ES error counter went 0 -> 1 -> 2: one yellow alert, raised once.
    raised = [(a.alert.parameter, a.alert.severity) for r in results for a in r.alerts]
    assert ("ES_HK.ERR_COUNT", "yellow") in raised
    assert ("CI_LAB_HK.INGEST_ERRORS", "yellow") in raised
    assert raised.count(("ES_HK.ERR_COUNT", "yellow")) == 1
    samples = [s for r in results for s in r.samples]
    es_err = [s for s in samples if s.parameter == "ES_HK.ERR_COUNT"]
    assert es_err[0].state == "nominal" and es_err[-1].state == "yellow"
    assert processor.counters["cfs"]["frames"] == 560
    assert processor.counters["cfs"]["samples"] == len(samples)


def test_damaged_frames_are_reported_and_the_stream_goes_on(mission, frames):
    processor = TelemetryProcessor(default=mission)
    good = frames[:3]
    bad = [
        Frame(good[0].raw[:4], 1.0, "udp", "cfs"),  # truncated header
        Frame(good[0].raw[:-2], 2.0, "udp", "cfs"),  # length field disagrees
        Frame(good[0].raw + b"\x00", 3.0, "udp", "cfs"),
    ]
    results = run(processor, [good[0], *bad, good[1], good[2]])
    assert [r.status for r in results] == ["ok", "malformed", "malformed", "malformed", "ok", "ok"]
    assert results[1].error == "truncated: 4 bytes, a header needs 6"
    assert results[2].error.startswith("length field says")
    assert all(r.events[0].kind == "malformed-frame" for r in results[1:4])
    assert processor.counters["cfs"]["malformed"] == 3
    assert results[5].samples  # decoding carries on


def test_a_lost_packet_is_one_gap_event(mission, frames):
    processor = TelemetryProcessor(default=mission)
    es = [f for f in frames if f.raw[:2] == b"\x08\x00"]
    results = run(processor, [es[0], es[1], es[3]])
    gaps = [e for r in results for e in r.events if e.kind.startswith("sequence")]
    assert len(gaps) == 1 and gaps[0].kind == "sequence-gap"
    assert "1 packet(s) missing" in gaps[0].text


def test_unknown_ids_are_counted_and_reported_once(mission, frames):
    processor = TelemetryProcessor(default=mission)
    raw = bytearray(frames[0].raw)
    raw[0:2] = b"\x08\x99"
    results = run(processor, [Frame(bytes(raw), t, "udp", "cfs") for t in (1.0, 2.0, 3.0)])
    assert [r.status for r in results] == ["unknown"] * 3
    kinds = [e.kind for r in results for e in r.events]
    assert kinds.count("unknown-packet") == 1
    assert kinds.count("sequence-repeat") == 2  # the copies share one sequence count
    assert processor.counters["cfs"]["unknown"] == 3


def test_stale_packet_raises_and_clears_an_alert(mission, frames):
    processor = TelemetryProcessor(default=mission)
    es = [f for f in frames if f.raw[:2] == b"\x08\x00"]
    processor.process(es[0])
    period = mission.packet_named("ES_HK").period_s
    assert processor.tick(es[0].time_s + 2 * period) == []
    stale = processor.tick(es[0].time_s + 3.5 * period)
    assert [(c.action, c.alert.parameter) for c in stale if "ES_HK" in c.alert.parameter] == [
        ("raised", "ES_HK (stale)")
    ]
    back = processor.process(Frame(es[1].raw, es[0].time_s + 4 * period, "udp", "cfs"))
    assert [(a.action, a.alert.parameter) for a in back.alerts] == [("cleared", "ES_HK (stale)")]


def test_alert_lifecycle_ack_clear_shelve():
    book = AlertBook()
    raised = book.state_changed("N", "T", "yellow", 70, 10.0)
    assert raised.action == "raised"
    assert book.state_changed("N", "T", "yellow", 71, 11.0) is None
    assert book.state_changed("N", "T", "red", 90, 12.0).action == "escalated"
    alert_id = raised.alert.id
    assert book.state_changed("N", "T", "nominal", 20, 13.0).action == "cleared"
    # Cleared but not acknowledged: still shown.
    assert [a.id for a in book.visible(14.0)] == [alert_id]
    book.acknowledge(alert_id, "ops1", 15.0, "heater cycled")
    assert book.visible(16.0) == []
    again = book.state_changed("N", "T", "yellow", 70, 20.0)
    assert again.action == "raised" and again.alert.count == 2 and again.alert.acked_s is None
    book.shelve(alert_id, until_s=100.0, time_s=21.0)
    assert book.visible(50.0) == []
    assert [a.id for a in book.visible(100.0)] == [alert_id]
