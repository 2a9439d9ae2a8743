"""`groundctl run`: procedures headless against the simulator, dry runs, failures.

The procedures run as an operator would run them, through the CLI, against the
in-process simulator started just before a contact from the contact plan; outcomes are
checked in the output, the exit status and the archive's procedure and command tables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from commanding_support import ROOT, first_contact, rows, write_config

from groundctl.cli import cli
from groundctl.cli import commands as _commands  # noqa: F401  (registers subcommands)

PROCEDURES = ROOT / "data" / "procedures"


def run(tmp_path: Path, *args: str, extra: str = "") -> tuple[int, str]:
    write_config(tmp_path, extra)
    result = CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "groundctl.toml"), "run", *args],
        obj={},
    )
    return result.exit_code, result.output


def near_aos(node: str = "ODC-01", before_s: int = 30) -> list[str]:
    """Simulator options: start `before_s` before the node's first contact, speed 20."""
    aos = first_contact(node).aos - timedelta(seconds=before_s)
    return ["--sim", "--speed", "20", "--start", aos.isoformat()]


def test_pass_health_check_passes_at_the_next_contact(tmp_path):
    code, output = run(
        tmp_path, str(PROCEDURES / "pass_health.py"), "-a", "node=ODC-01", *near_aos()
    )
    assert code == 0, output
    assert "wait_pass ODC-01: waiting (next AOS" in output
    assert "cmd ODC-01 NOOP: completed" in output
    assert "ODC-01 healthy: battery" in output
    db = tmp_path / "groundctl.db"
    [(status, dry, message)] = rows(db, "SELECT status, dry_run, message FROM procedure_runs")
    assert (status, dry, message) == ("passed", 0, "all steps passed")
    kinds = [k for (k,) in rows(db, "SELECT kind FROM procedure_log ORDER BY id")]
    assert kinds.count("check") >= 8 and "command" in kinds
    assert rows(db, "SELECT source, status FROM commands") == [("procedure:1", "completed")]
    actions = [a for (a,) in rows(db, "SELECT action FROM audit ORDER BY id")]
    assert actions[0] == "procedure-start" and actions[-1] == "procedure-end"


FAILING = """
from groundctl.procedures import cmd, wait_check, wait_pass


def main(node: str = "ODC-01", soc: float = 200) -> None:
    wait_pass(node)
    cmd(f"{node} NOOP")
    wait_check(f"{node}.BATT_SOC > {soc}", timeout=5)
    cmd(f"{node} SET_POWER_MODE mode=ECO")
"""


def test_a_failed_check_stops_the_run_with_exit_status_1(tmp_path):
    procedure = tmp_path / "failing.py"
    procedure.write_text(FAILING)
    code, output = run(tmp_path, str(procedure), *near_aos())
    assert code == 1
    assert "failed: wait_check ODC-01.BATT_SOC > 200: not true within 5 s (BATT_SOC = " in output
    db = tmp_path / "groundctl.db"
    [(status, message)] = rows(db, "SELECT status, message FROM procedure_runs")
    assert status == "failed" and message.startswith("wait_check ODC-01.BATT_SOC > 200")
    # the run stopped at the check: the command after it was never issued
    assert [c for (c,) in rows(db, "SELECT command FROM commands")] == ["NOOP"]
    [(ok,)] = rows(db, "SELECT ok FROM procedure_log WHERE kind = 'check'")
    assert ok == 0


def test_a_command_the_node_rejects_fails_the_run(tmp_path):
    procedure = tmp_path / "reject.py"
    procedure.write_text(
        "from groundctl.procedures import cmd, wait_pass\n\n\n"
        "def main() -> None:\n"
        "    wait_pass('ODC-01')\n"
        "    cmd('ODC-01 CANCEL_JOB job_id=4242')\n"
    )
    code, output = run(tmp_path, str(procedure), *near_aos())
    assert code == 1
    assert "failed: ODC-01 CANCEL_JOB job_id=4242: failed (COMMS_HK.ERR_COUNT 0 -> 1" in output
    assert "no job 4242" in output


def test_dry_run_validates_everything_and_sends_nothing(tmp_path):
    code, output = run(
        tmp_path, str(PROCEDURES / "compute_campaign.py"), "--dry-run", "-a", "jobs=2"
    )
    assert code == 0, output
    assert "dry run: nothing is sent" in output
    assert "cmd ODC-01 SUBMIT_JOB job_id=1001 gpu_seconds=900 priority=NORMAL: valid" in output
    db = tmp_path / "groundctl.db"
    assert rows(db, "SELECT count(*) FROM commands") == [(0,)]
    assert rows(db, "SELECT count(*) FROM frames") == [(0,)]
    assert rows(db, "SELECT status, dry_run FROM procedure_runs") == [("passed", 1)]


def test_dry_run_catches_a_bad_command_and_a_missing_confirmation(tmp_path):
    procedure = tmp_path / "bad.py"
    procedure.write_text(
        "from groundctl.procedures import cmd\n\n\n"
        "def main(hazard: bool = False) -> None:\n"
        "    if hazard:\n"
        "        cmd('ODC-01 REBOOT')\n"
        "    cmd('ODC-01 SET_POWER_MODE mode=TURBO')\n"
    )
    extra = '[commanding]\ndefault_role = "flight-director"\n'
    code, output = run(tmp_path, str(procedure), "--dry-run", extra=extra)
    assert code == 1
    assert "ODC-01 SET_POWER_MODE: argument mode: 'TURBO' is not one of" in output
    code, output = run(tmp_path, str(procedure), "--dry-run", "-a", "hazard=yes", extra=extra)
    assert code == 1
    assert "REBOOT is hazardous and needs confirming" in output


def test_procedure_arguments_and_loading_errors_are_usage_errors(tmp_path):
    code, output = run(
        tmp_path, str(PROCEDURES / "pass_health.py"), "--dry-run", "-a", "nod=ODC-01"
    )
    assert code == 2
    assert "no argument 'nod'" in output and "node: str='ODC-01'" in output
    code, output = run(
        tmp_path, str(PROCEDURES / "pass_health.py"), "--dry-run", "-a", "min_soc=lots"
    )
    assert code == 2 and "argument min_soc: 'lots' is not a float" in output
    broken = tmp_path / "broken.py"
    broken.write_text("def main(:\n    pass\n")
    code, output = run(tmp_path, str(broken), "--dry-run")
    assert code == 2 and "broken.py:1:" in output
    nomain = tmp_path / "nomain.py"
    nomain.write_text("x = 1\n")
    code, output = run(tmp_path, str(nomain), "--dry-run")
    assert code == 2 and "no main() function" in output
