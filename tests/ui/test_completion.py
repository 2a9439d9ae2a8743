"""Completion of command lines against the odc-node mission database (no Textual)."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundctl.mdb.loader import load_mission
from groundctl.ui.completion import (
    candidates,
    common_prefix,
    complete,
    split_words,
    suggestion,
    tab_complete,
)

ROOT = Path(__file__).parents[2]
ODC = load_mission(ROOT / "data" / "missions" / "odc-node.toml")
NODES = ["ODC-07", "ODC-01", "ODC-12"]


def mission_of(node):
    return ODC if node.upper().startswith("ODC-") else None


def tab(text):
    return tab_complete(text, NODES, mission_of)


def test_node_names_complete_with_a_space_and_ignore_case():
    assert tab("ODC-0") == ("ODC-0", ["ODC-01", "ODC-07"])
    assert tab("ODC-01") == ("ODC-01 ", [])
    assert tab("odc-07") == ("ODC-07 ", [])
    assert tab("") == ("ODC-", ["ODC-01", "ODC-07", "ODC-12"])
    assert complete("ODC-1", NODES, mission_of) == ["ODC-12 "]
    assert complete("XYZ", NODES, mission_of) == []


def test_command_names_come_from_the_nodes_database():
    assert tab("ODC-01 SET_PO") == ("ODC-01 SET_POWER_MODE ", [])
    assert tab("ODC-01 set_th") == ("ODC-01 SET_THROTTLE ", [])
    text, choices = tab("ODC-01 S")
    assert text == "ODC-01 S"
    assert choices == sorted(n for n in ODC.commands if n.startswith("S"))
    assert tab("ODC-01 ST") == ("ODC-01 ST", ["START_DOWNLINK", "STOP_DOWNLINK"])
    assert tab("ODC-01 STA") == ("ODC-01 START_DOWNLINK ", [])
    assert tab("ODC-01 RE") == ("ODC-01 RE", ["REBOOT", "RESET_COUNTERS"])
    # a node without a database: nothing to complete
    assert tab("GHOST-1 NO") == ("GHOST-1 NO", [])


def test_argument_names_not_given_yet_complete_with_equals():
    assert tab("ODC-01 SET_POWER_MODE ") == ("ODC-01 SET_POWER_MODE mode=", [])
    assert tab("ODC-01 SUBMIT_JOB ") == (
        "ODC-01 SUBMIT_JOB ",
        ["job_id=", "gpu_seconds=", "priority="],
    )
    assert tab("ODC-01 SUBMIT_JOB job_id=4 g") == ("ODC-01 SUBMIT_JOB job_id=4 gpu_seconds=", [])
    assert tab("ODC-01 SUBMIT_JOB job_id=4 gpu_seconds=1h ") == (
        "ODC-01 SUBMIT_JOB job_id=4 gpu_seconds=1h priority=",
        [],
    )
    # every argument given, or a command without arguments: nothing left
    assert tab("ODC-01 SET_POWER_MODE mode=ECO ") == ("ODC-01 SET_POWER_MODE mode=ECO ", [])
    assert tab("ODC-01 NOOP ") == ("ODC-01 NOOP ", [])
    # an unknown command: nothing to offer
    assert tab("ODC-01 SET_POWER ") == ("ODC-01 SET_POWER ", [])


def test_enumeration_values_after_the_equals_sign():
    text, choices = tab("ODC-01 SET_POWER_MODE mode=")
    assert text == "ODC-01 SET_POWER_MODE mode="
    assert choices == list(ODC.commands["SET_POWER_MODE"].arguments[0].states)
    assert choices == ["SAFE", "ECO", "NOMINAL", "PERFORMANCE"]
    assert tab("ODC-01 SET_POWER_MODE mode=E") == ("ODC-01 SET_POWER_MODE mode=ECO ", [])
    assert tab("ODC-01 SET_POWER_MODE mode=nom") == ("ODC-01 SET_POWER_MODE mode=NOMINAL ", [])
    assert tab("ODC-01 SET_THROTTLE level=") == (
        "ODC-01 SET_THROTTLE level=",
        ["OFF", "LOW", "MEDIUM", "HIGH", "SUSPENDED"],
    )
    assert tab("ODC-01 SET_THROTTLE level=S") == ("ODC-01 SET_THROTTLE level=SUSPENDED ", [])
    # a value that matches no state, or an argument the command does not have
    assert tab("ODC-01 SET_POWER_MODE mode=TURBO") == ("ODC-01 SET_POWER_MODE mode=TURBO", [])
    assert tab("ODC-01 SET_POWER_MODE speed=") == ("ODC-01 SET_POWER_MODE speed=", [])


def test_arguments_without_states_say_what_they_take():
    found = candidates("ODC-01 SUBMIT_JOB job_id=", NODES, mission_of)
    assert found.options == ()
    assert found.help == "job_id: u32 1.. - ground-assigned job id"
    found = candidates("ODC-01 SUBMIT_JOB gpu_seconds=3", NODES, mission_of)
    assert found.help.startswith("gpu_seconds: u32 1..604800 s")
    found = candidates("ODC-01 SUBMIT_JOB priority=", NODES, mission_of)
    assert found.labels == ["LOW", "NORMAL", "HIGH", "URGENT"]
    assert "default NORMAL" in found.help


def test_quoted_values_and_open_quotes():
    assert split_words('a b="two words" c') == (["a", 'b="two words"'], 16, False)
    assert split_words('a b="two wor') == (["a"], 2, True)
    # inside an open quote there is nothing to complete
    assert tab('ODC-01 SUBMIT_JOB priority="HI') == ('ODC-01 SUBMIT_JOB priority="HI', [])
    # a quoted word before: the words still count right
    assert tab('ODC-01 SUBMIT_JOB job_id="4" gpu') == (
        'ODC-01 SUBMIT_JOB job_id="4" gpu_seconds=',
        [],
    )


def test_the_suggestion_is_what_tab_gives_never_a_guess():
    assert suggestion("ODC-1", NODES, mission_of) == "ODC-12 "
    assert suggestion("ODC-01 SET_PO", NODES, mission_of) == "ODC-01 SET_POWER_MODE "
    assert suggestion("ODC-01 ST", NODES, mission_of) is None  # START_ or STOP_
    assert suggestion("ODC-01 S", NODES, mission_of) is None
    assert suggestion("", NODES, mission_of) == "ODC-"


@pytest.mark.parametrize(
    ("words", "prefix"),
    [
        ([], ""),
        (["abc"], "abc"),
        (["START_DOWNLINK ", "STOP_DOWNLINK "], "ST"),
        (["mode=SAFE ", "mode=ECO "], "mode="),
        (["x", "y"], ""),
    ],
)
def test_common_prefix(words, prefix):
    assert common_prefix(words) == prefix
