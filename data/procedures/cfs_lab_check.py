"""cFS lab check: enable telemetry, NOOP each app, verify each command counter.

For NASA cFS with the lab apps (CI_LAB on UDP 1234, TO_LAB on UDP 1235) and the
cfs-lab mission database. The config needs a udp link to the flight software and the
node's mission, e.g.:

    [links.cfs]
    adapter = "udp"
    uplink = "127.0.0.1:1234"      # CI_LAB's command port
    downlink = "127.0.0.1:1235"    # where TO_LAB sends telemetry

    [nodes.cfs]
    mission = "cfs-lab"

    groundctl --config lab.toml run data/procedures/cfs_lab_check.py

Each NOOP is verified by its app's command counter rising by one (and, where the
mission database says so, its INFO event); a NOOP counted as an error, or not answered
in time, fails the run. The apps' counters are logged at the end.
"""

from __future__ import annotations

from groundctl.procedures import cmd, log, tlm, wait_check

APPS = "ES,EVS,SB,TBL,TIME,TO_LAB,SAMPLE_APP,CI_LAB"
HK = {
    "ES": "ES_HK",
    "EVS": "EVS_HK",
    "SB": "SB_HK",
    "TBL": "TBL_HK",
    "TIME": "TIME_HK",
    "TO_LAB": "TO_LAB_HK",
    "SAMPLE_APP": "SAMPLE_APP_HK",
    "CI_LAB": "CI_LAB_HK",
}


def main(node: str = "cfs", apps: str = APPS, dest_ip: str = "127.0.0.1") -> None:
    """Enable TO_LAB's telemetry to `dest_ip`, then NOOP each of `apps`."""
    wanted = [a.strip().upper() for a in apps.split(",") if a.strip()]
    unknown = [a for a in wanted if a not in HK]
    if unknown:
        raise ValueError(f"unknown apps {unknown}: choose from {APPS}")

    cmd(f"{node} TO_LAB_ENABLE_OUTPUT dest_ip={dest_ip}")
    wait_check(f"{node}.ES_HK.CMD_COUNT >= 0", timeout=10)

    # Each NOOP is verified by its own rules: its app's command counter +1 (a rise of the
    # error counter instead fails it, with the app's ERROR event).
    for app in wanted:
        cmd(f"{node} {app}_NOOP")
    for app in wanted:
        hk = HK[app]
        counted = tlm(f"{node}.{hk}.CMD_COUNT")
        errors = tlm(f"{node}.{hk}.ERR_COUNT")
        log(f"{app}: {counted} commands, {errors} errors since its counters were reset")
