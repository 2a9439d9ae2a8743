"""Other consoles' commands (shared operations) in the console's state: named by their ref
(`ops-2#12`), so that another console's #12 and this console's #12 are two commands.
(The Commanding pane with them: tests/ui/test_commanding_pane.py.)"""

from __future__ import annotations

from groundctl.bus import CommandMessage
from groundctl.ui.backend import Backend
from groundctl.ui.panes.commanding import release_text
from groundctl.ui.panes.events import stage_line
from groundctl.ui.state import CommandView, ConsoleState


def test_a_remote_command_and_a_local_one_with_the_same_id_are_two_views():
    state = ConsoleState()
    state.apply(CommandMessage(12, "ODC-01", "ODC-01 NOOP", "queued", 10.0), 10.0)
    state.apply(
        CommandMessage(
            12, "ODC-07", "ODC-07 REBOOT", "queued", 11.0, "waiting", 99.0, origin="ops-2"
        ),
        11.0,
    )
    assert set(state.commands) == {"12", "ops-2#12"}
    local, remote = state.commands["12"], state.commands["ops-2#12"]
    assert (local.ref, local.origin, local.text, local.node) == ("12", "", "ODC-01 NOOP", "ODC-01")
    assert (remote.ref, remote.origin, remote.text, remote.node) == (
        "ops-2#12",
        "ops-2",
        "ODC-07 REBOOT",
        "ODC-07",
    )
    assert remote.command_id == 12 and remote.release_at == 99.0

    taken = state.take()
    assert set(taken.commands) == {"12", "ops-2#12"}
    assert taken.commands["ops-2#12"].origin == "ops-2"
    assert taken.commands["ops-2#12"] is not remote  # a copy, with its own stages
    assert taken.commands["ops-2#12"].stages == [("queued", 11.0, "waiting")]

    # the remote command's next stage is its own: the local #12 is untouched
    state.apply(CommandMessage(12, "ODC-07", "", "sent", 12.0, origin="ops-2"), 12.0)
    taken = state.take()
    assert set(taken.commands) == {"ops-2#12"}
    sent = taken.commands["ops-2#12"]
    assert (sent.stage, sent.text, sent.origin) == ("sent", "ODC-07 REBOOT", "ops-2")
    assert [s for s, _, _ in sent.stages] == ["queued", "sent"]
    assert state.commands["12"].stage == "queued"
    assert [s for s, _, _ in state.commands["12"].stages] == ["queued"]

    everything = state.everything()
    assert {ref: (v.origin, v.stage) for ref, v in everything.commands.items()} == {
        "12": ("", "queued"),
        "ops-2#12": ("ops-2", "sent"),
    }


def test_a_view_made_positionally_is_this_consoles():
    view = CommandView(3, "ODC-01", "ODC-01 NOOP", "queued", "", 0.0, None, [])
    assert view.origin == "" and view.ref == "3"
    assert CommandView(3, "ODC-01", "", "queued", "", 0.0, origin="ops-2").ref == "ops-2#3"


def test_the_events_log_names_a_remote_command_by_its_ref():
    view = CommandView(12, "ODC-07", "ODC-07 NOOP", "sent", "", 0.0, origin="ops-2")
    assert stage_line(view, "sent", 0.0, "").text.plain.endswith("CMD ops-2#12 ODC-07 NOOP: sent")


def test_no_remote_commands_without_a_ground_segment(tmp_path):
    from ui_support import make_backend

    backend: Backend = make_backend(tmp_path)
    assert backend.remote_queued() == []


def test_a_remote_command_waits_behind_a_command_of_its_own_console():
    view = CommandView(
        7, "ODC-07", "ODC-07 NOOP", "queued", "waiting behind command 6", 0.0, origin="ops-2"
    )
    assert release_text(view, None, 0.0) == "after ops-2#6"
