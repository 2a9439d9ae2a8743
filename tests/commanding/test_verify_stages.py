"""Command verification stages (`groundctl.commanding.verify.Verifier`) on real telemetry.

The samples and events come from the real recorded cFS session
(tests/fixtures/cfs/cfs-lab-session.jsonl) decoded with the cfs-lab mission database and
the telemetry processor. The expected outcome of every uplink is written in
tests/fixtures/cfs/README.md (from the running flight software), and the counters are
also read straight from the packet bytes (offsets 16 and 17 of ES_HK) as an oracle.

Times: sample and event times are packet times (the cFE clock); the send time of an
uplink, recorded on the ground clock, is moved to the cFE clock with the offset between
the two clocks seen on the nearest downlink packet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from groundctl.commanding.verify import FINAL, StageChange, Verifier
from groundctl.mdb.loader import load_mission
from groundctl.mdb.model import Verification
from groundctl.telemetry.model import Frame
from groundctl.telemetry.pipeline import Processed, TelemetryProcessor

ROOT = Path(__file__).parents[2]
SESSION = ROOT / "tests" / "fixtures" / "cfs" / "cfs-lab-session.jsonl"
NODE = "cfs"


@dataclass(frozen=True)
class Step:
    """One recorded datagram: an uplink (with its note) or a processed downlink packet."""

    direction: str
    arrival_s: float  # the ground clock
    raw: bytes
    note: str = ""
    processed: Processed | None = None

    @property
    def time_s(self) -> float:
        """The packet time (the cFE clock) of a downlink packet."""
        assert self.processed is not None
        return (self.processed.samples or self.processed.events)[0].time_s

    @property
    def packet(self) -> str | None:
        return self.processed.packet if self.processed is not None else None


def load_steps(mission, patch=None) -> list[Step]:
    """The whole session through a fresh processor; `patch(raw) -> raw` edits downlinks."""
    processor = TelemetryProcessor(default=mission)
    steps = []
    for line in SESSION.read_text().splitlines():
        row = json.loads(line)
        raw = bytes.fromhex(row["hex"])
        if row["dir"] == "up":
            steps.append(Step("up", row["t"], raw, row["note"]))
            continue
        if patch is not None:
            raw = patch(raw)
        processed = processor.process(Frame(raw, row["t"], "udp", NODE))
        assert processed.status == "ok", processed.error
        steps.append(Step("down", row["t"], raw, processed=processed))
    return steps


@pytest.fixture(scope="module")
def mission():
    return load_mission(ROOT / "data" / "missions" / "cfs-lab.toml")


@pytest.fixture(scope="module")
def steps(mission):
    return load_steps(mission)


def uplink(steps, note, nth=0) -> int:
    """The index of the `nth` uplink with this note."""
    found = [i for i, s in enumerate(steps) if s.direction == "up" and s.note == note]
    return found[nth]


def sent_time(steps, index) -> float:
    """The uplink's ground time on the cFE clock (offset from the nearest downlink)."""
    before = [s for s in steps[:index] if s.direction == "down"]
    near = before[-1] if before else next(s for s in steps[index:] if s.direction == "down")
    return steps[index].arrival_s + (near.time_s - near.arrival_s)


def latest_before(steps, index):
    """The node's latest raw and engineering values when the uplink was sent."""
    raw, values = {}, {}
    for step in steps[:index]:
        if step.direction == "down":
            for s in step.processed.samples:
                raw[s.parameter] = s.raw
                values[s.parameter] = s.value
    return raw, values


def verifier_at(mission, steps, index, verification, raw=None) -> Verifier:
    latest_raw, latest_values = latest_before(steps, index)
    return Verifier(
        NODE,
        verification,
        mission,
        sent_time(steps, index),
        latest_raw if raw is None else raw,
        latest_values,
    )


def feed(verifier, steps, start, *, events=True, stop=None) -> list[StageChange]:
    """Everything received after uplink `start` (until index `stop`), with the clock."""
    out: list[StageChange] = []
    for step in steps[start + 1 : stop]:
        if step.direction == "up":
            continue
        out += verifier.tick(step.time_s)
        out += verifier.samples(step.processed.samples, step.time_s)
        if events:
            for event in step.processed.events:
                out += verifier.event(event)
    return out


def next_uplink(steps, index) -> int:
    return next(i for i, s in enumerate(steps) if i > index and s.direction == "up")


def first_after(steps, index, packet, where=lambda step: True) -> Step:
    return next(s for s in steps[index + 1 :] if s.packet == packet and where(s))


def node_event(steps, index, app, event_id) -> tuple[int, Step]:
    for i, s in enumerate(steps[index + 1 :], index + 1):
        if s.direction == "down" and any(
            e.source == app and e.event_id == event_id for e in s.processed.events
        ):
            return i, s
    raise AssertionError(f"no event {app} {event_id}")


def event_text(step, app, event_id) -> str:
    return next(e.text for e in step.processed.events if (e.source, e.event_id) == (app, event_id))


# --- accepted and completed ---------------------------------------------------------------------


@pytest.mark.parametrize(("nth", "before", "after"), [(0, 0, 1), (1, 1, 2)])
def test_es_noop_is_accepted_then_completed(mission, steps, nth, before, after):
    start = uplink(steps, "CFE_ES NOOP", nth)
    raw, _ = latest_before(steps, start)
    assert raw["ES_HK.CMD_COUNT"] == before
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    assert verifier.missing_baselines() == []

    changes = feed(verifier, steps, start)

    hk = first_after(steps, start, "ES_HK")
    assert hk.raw[16] == after  # the command counter, read from the bytes
    event_index, event_step = node_event(steps, start, "CFE_ES", 3)
    assert event_index < steps.index(hk)  # the event comes before the housekeeping packet
    text = event_text(event_step, "CFE_ES", 3)
    assert text.startswith("No-op command:\n cFS Versions: cfe v7.0.0-rc4+dev370")
    assert changes == [
        StageChange("accepted", hk.time_s, f"ES_HK.CMD_COUNT {before} -> {after}"),
        StageChange("completed", hk.time_s, f"event CFE_ES 3: {text}"),
    ]
    assert verifier.done and verifier.stage == "completed"
    assert verifier.errors == []


def test_to_lab_noop_completed_by_its_event(mission, steps):
    start = uplink(steps, "TO_LAB NOOP")
    verifier = verifier_at(mission, steps, start, mission.commands["TO_LAB_NOOP"].verification)
    changes = feed(verifier, steps, start)
    hk = first_after(steps, start, "TO_LAB_HK")
    assert (hk.raw[16], hk.raw[17]) == (2, 0)
    _, event_step = node_event(steps, start, "TO_LAB_APP", 18)
    assert event_step.time_s <= hk.time_s
    assert changes == [
        StageChange("accepted", hk.time_s, "TO_LAB_HK.CMD_COUNT 1 -> 2"),
        StageChange("completed", hk.time_s, "event TO_LAB_APP 18: No-op command"),
    ]


def test_a_step_of_two_needs_two_counts(mission, steps):
    """`ES_HK.ERR_COUNT += 2` from before the 0x55 uplink: only the second bad command."""
    start = uplink(steps, "CFE_ES invalid function code 0x55")
    verifier = verifier_at(
        mission, steps, start, Verification(accepted=("ES_HK.ERR_COUNT += 2",), timeout_s=30)
    )
    changes = feed(verifier, steps, start)
    second = first_after(steps, start, "ES_HK", lambda s: s.raw[17] == 2)
    assert first_after(steps, start, "ES_HK").raw[17] == 1  # the first rise is not enough
    assert changes == [StageChange("accepted", second.time_s, "ES_HK.ERR_COUNT 0 -> 2")]
    assert verifier.done


# --- failed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "before", "event_id", "severity_text"),
    [
        (
            "CFE_ES invalid function code 0x55",
            0,
            22,
            "Invalid ground command code: ID = 0x1806, CC = 85",
        ),
        (
            "CFE_ES NOOP with 4 extra bytes",
            1,
            23,
            "Invalid msg length: ID = 0x1806,  CC = 0, Len = 12, Expected = 8",
        ),
    ],
)
def test_a_rejected_command_fails_with_the_error_event(
    mission, steps, note, before, event_id, severity_text
):
    start = uplink(steps, note)
    # the command sent is not ES_NOOP, but it is verified the same way
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    changes = feed(verifier, steps, start)
    hk = first_after(steps, start, "ES_HK")
    assert (hk.raw[16], hk.raw[17]) == (1, before + 1)  # not counted; one more error
    assert changes == [
        StageChange(
            "failed",
            hk.time_s,
            f"ES_HK.ERR_COUNT {before} -> {before + 1}; "
            f"event CFE_ES {event_id} ERROR: {severity_text}",
        )
    ]
    assert verifier.done and verifier.stage == "failed"


# --- timeout -----------------------------------------------------------------------------------


def test_timeout_when_nothing_relevant_arrives(mission, steps):
    """The runt datagram never reached CFE_ES: no counter moves, the deadline passes."""
    start = uplink(steps, "runt datagram (3 bytes)")
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    sent_s = verifier.sent_s
    assert verifier.tick(sent_s + 9.999) == []
    changes = feed(verifier, steps, start)
    ci_lab = "event CI_LAB_APP 8 ERROR: CI: L369, cmd 186 c00 dropped, bad length=3\n"
    assert changes == [
        StageChange(
            "timeout",
            sent_s + 10,
            f"no acceptance within 10 s; the node reported meanwhile: {ci_lab}",
        )
    ]
    assert verifier.done and verifier.stage == "timeout"
    # CI_LAB's error event arrived meanwhile: reported as context, not as this command's
    assert verifier.errors == [
        "event CI_LAB_APP 8 ERROR: CI: L369, cmd 186 c00 dropped, bad length=3\n"
    ]
    assert verifier.tick(sent_s + 100) == []  # reported once


def test_timeout_waiting_for_completion_once_accepted(mission, steps):
    start = uplink(steps, "CFE_ES NOOP")
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    # the completion event is lost; the next command (0x55, rejected) is sent only later
    changes = feed(verifier, steps, start, events=False, stop=next_uplink(steps, start))
    changes += verifier.tick(verifier.sent_s + 10)
    hk = first_after(steps, start, "ES_HK")
    assert changes == [
        StageChange("accepted", hk.time_s, "ES_HK.CMD_COUNT 0 -> 1"),
        StageChange("timeout", verifier.sent_s + 10, "no completion within 10 s"),
    ]


def test_timeout_names_the_missing_baselines(mission, steps):
    start = uplink(steps, "runt datagram (3 bytes)")
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification, raw={})
    assert verifier.missing_baselines() == ["ES_HK.CMD_COUNT", "ES_HK.ERR_COUNT"]
    changes = feed(verifier, steps, start)
    assert changes == [
        StageChange(
            "timeout",
            verifier.sent_s + 10,
            "no acceptance within 10 s (no value of ES_HK.CMD_COUNT, ES_HK.ERR_COUNT "
            "before sending to compare with); the node reported meanwhile: event CI_LAB_APP 8 "
            "ERROR: CI: L369, cmd 186 c00 dropped, bad length=3\n",
        )
    ]


def test_a_counter_that_went_down_is_not_acceptance(mission, steps):
    """A baseline of 5 and then 1 (e.g. a reset): not a rise, even with the event."""
    start = uplink(steps, "CFE_ES NOOP")
    raw, _ = latest_before(steps, start)
    verifier = verifier_at(
        mission,
        steps,
        start,
        mission.commands["ES_NOOP"].verification,
        raw={**raw, "ES_HK.CMD_COUNT": 5},
    )
    changes = feed(verifier, steps, start, stop=next_uplink(steps, start))
    assert verifier.stage == "sent"  # the event came, but acceptance is not decided
    changes += verifier.tick(verifier.sent_s + 10)
    assert changes == [StageChange("timeout", verifier.sent_s + 10, "no acceptance within 10 s")]


# --- counters that wrap --------------------------------------------------------------------------


def test_a_u8_counter_wrapping_from_255_to_0_counts_as_one(mission):
    """The same session with ES_HK's command counter one lower (mod 256): 255 -> 0."""

    def lower_es_counter(raw: bytes) -> bytes:
        if raw[:2] != b"\x08\x00":  # ES_HK, message id 0x0800
            return raw
        patched = bytearray(raw)
        patched[16] = (patched[16] - 1) % 256
        return bytes(patched)

    steps = load_steps(mission, patch=lower_es_counter)
    start = uplink(steps, "CFE_ES NOOP")
    raw, _ = latest_before(steps, start)
    assert raw["ES_HK.CMD_COUNT"] == 255
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    changes = feed(verifier, steps, start)
    hk = first_after(steps, start, "ES_HK")
    assert hk.raw[16] == 0
    assert [c.stage for c in changes] == ["accepted", "completed"]
    assert changes[0] == StageChange("accepted", hk.time_s, "ES_HK.CMD_COUNT 255 -> 0")


# --- expressions -------------------------------------------------------------------------------


def test_an_expression_true_before_sending_waits_for_a_new_packet(mission, steps):
    """ES_HK.CMD_COUNT is already 1 when the 0x55 uplink is sent: only the next ES_HK
    packet, not the values from before nor other packets, may complete the command."""
    start = uplink(steps, "CFE_ES invalid function code 0x55")
    _, values = latest_before(steps, start)
    assert values["ES_HK.CMD_COUNT"] == 1
    verifier = verifier_at(mission, steps, start, Verification(completed=("ES_HK.CMD_COUNT == 1",)))
    hk = first_after(steps, start, "ES_HK")
    stop = steps.index(hk)
    # everything before the next ES_HK: other housekeeping and the CFE_ES error event
    others = {s.packet for s in steps[start + 1 : stop] if s.direction == "down"}
    assert "ES_HK" not in others and "EVS_LONG_EVENT" in others and len(others) > 2
    assert feed(verifier, steps, start, stop=stop) == []
    assert verifier.stage == "sent" and not verifier.done
    changes = feed(verifier, steps, stop - 1, stop=stop + 1)
    assert changes == [
        StageChange("accepted", hk.time_s, "implied by completion"),
        StageChange("completed", hk.time_s, "ES_HK.CMD_COUNT == 1"),
    ]


def test_an_expression_that_stays_false_times_out(mission, steps):
    start = uplink(steps, "CFE_ES invalid function code 0x55")
    verifier = verifier_at(
        mission, steps, start, Verification(completed=("ES_HK.CMD_COUNT == 7",), timeout_s=5)
    )
    changes = feed(verifier, steps, start)
    assert changes == [
        StageChange(
            "timeout",
            verifier.sent_s + 5,
            "no acceptance within 5 s; the node reported meanwhile: event CFE_ES 22 ERROR: "
            "Invalid ground command code: ID = 0x1806, CC = 85",
        )
    ]


# --- no rules; completion without a decidable acceptance ---------------------------------------


def test_a_command_without_rules_is_done_once_sent(mission, steps):
    start = uplink(steps, "CFE_ES NOOP")
    assert mission.commands["ES_RESET_COUNTERS"].verification == Verification()
    verifier = verifier_at(
        mission, steps, start, mission.commands["ES_RESET_COUNTERS"].verification
    )
    assert verifier.done and not verifier.has_rules
    assert verifier.stage == "sent"
    assert feed(verifier, steps, start) == []
    assert verifier.tick(verifier.sent_s + 1e6) == []


def test_completion_implies_acceptance_when_no_baseline_was_received(mission, steps):
    """TO_LAB sends nothing before "enable output": no baseline for its command counter,
    so the completion event stands for the acceptance too."""
    start = uplink(steps, "TO_LAB enable output 127.0.0.1")
    assert start == 0 and latest_before(steps, start) == ({}, {})
    verification = mission.commands["TO_LAB_ENABLE_OUTPUT"].verification
    verifier = verifier_at(mission, steps, start, verification)
    assert verifier.missing_baselines() == ["TO_LAB_HK.CMD_COUNT"]
    changes = feed(verifier, steps, start)
    _, event_step = node_event(steps, start, "TO_LAB_APP", 3)
    t = event_step.time_s
    assert changes == [
        StageChange(
            "accepted",
            t,
            "implied by completion (no value of TO_LAB_HK.CMD_COUNT before sending to "
            "compare with)",
        ),
        StageChange(
            "completed", t, "event TO_LAB_APP 3: TO telemetry output enabled for IP 127.0.0.1"
        ),
    ]
    assert verifier.stage in FINAL


def test_ground_events_are_ignored(mission, steps):
    from groundctl.telemetry.model import Event

    start = uplink(steps, "CFE_ES NOOP")
    verifier = verifier_at(mission, steps, start, mission.commands["ES_NOOP"].verification)
    ground = Event(verifier.sent_s + 1, NODE, "ground", "sequence-gap", "ERROR", "gap")
    assert verifier.event(ground) == []
    assert verifier.errors == []
