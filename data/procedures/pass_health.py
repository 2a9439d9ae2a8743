"""Pass-start health check of one orbital compute node.

Waits for the node's next contact (at a given station, or any), checks that telemetry
flows and the node answers a NOOP, then checks power, thermal, compute and storage
against the thresholds below. The first check that fails stops the run (exit status 1).

    groundctl run data/procedures/pass_health.py -a node=ODC-07 --sim --speed 60
"""

from __future__ import annotations

from groundctl.procedures import cmd, dry_run, log, tlm, wait_check, wait_pass


def main(
    node: str = "ODC-01",
    station: str = "",
    min_soc: float = 30.0,
    max_gpu_temp: float = 83.0,
    min_storage_free_gb: float = 100.0,
) -> None:
    """Check `node` at the start of its next pass."""
    contact = wait_pass(node, station or None)
    log(f"{node} in contact with {contact.station or 'its station'}")

    # Housekeeping arrives within a few seconds of AOS; the node answers commands.
    wait_check(f"{node}.COMMS_HK.CMD_COUNT >= 0", timeout=10)
    cmd(f"{node} NOOP")

    wait_check(f"{node}.POWER_HK.BATT_SOC >= {min_soc}", timeout=5)
    wait_check(f"{node}.POWER_HK.POWER_MODE != 'SAFE'", timeout=5)
    wait_check(f"{node}.BUS_VOLTAGE > 95 and BUS_VOLTAGE < 105", timeout=5)
    wait_check(f"{node}.THERMAL_HK.GPU_TEMP <= {max_gpu_temp}", timeout=5)
    wait_check(f"{node}.THERMAL_HK.THROTTLE_LEVEL != 'SUSPENDED'", timeout=5)
    wait_check(f"{node}.COMPUTE_HK.STORAGE_FREE >= {min_storage_free_gb}", timeout=5)
    wait_check(f"{node}.COMMS_HK.AUTH_FAILURES == 0", timeout=5)

    if dry_run():
        return  # no live values to summarise
    log(
        f"{node} healthy: battery {tlm(node + '.BATT_SOC'):.1f} %, "
        f"GPU {tlm(node + '.GPU_TEMP'):.1f} degC, "
        f"{tlm(node + '.JOBS_QUEUED')} jobs queued, "
        f"{tlm(node + '.STORAGE_FREE'):.0f} GB free"
    )
